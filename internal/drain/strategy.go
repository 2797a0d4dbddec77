package drain

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// A strategy is an ordering of the phases; each reads like its description in README.md.
// Every return goes through end, stopEarly or interrupted, so the Result always says what was
// left behind.

// drainFirstReason is drain-first's description in the report.
const drainFirstReason = "quiet every selected process and wait for its jobs before the deployment starts"

// deploySequence is `drainctl deploy`: the preflight, then the strategy it settled on
// (overlap or drain-first; auto chooses in the preflight).
func (x *run) deploySequence(ctx context.Context) (Result, error) {
	x.res.Strategy.Reason = drainFirstReason
	if err := x.preflight(ctx); err != nil {
		return x.refused(ctx, PhasePreflight, err)
	}
	if ctx.Err() != nil {
		return x.interrupted(ctx, PhasePreflight)
	}
	switch x.res.Strategy.Name {
	case StrategyOverlap, StrategyBlueGreen:
		return x.overlap(ctx)
	case StrategyPauseHook:
		return x.pauseHook(ctx)
	}
	return x.drainFirst(ctx)
}

// begin is every deploy strategy's start after the preflight: a dry run ends with its plan,
// else the deploy lock is taken. ended is true when the run ended there (res, err are its end).
func (x *run) begin(ctx context.Context) (ended bool, res Result, err error) {
	if x.cfg.DryRun {
		x.plan()
		res, err = x.end(ctx, OutcomeDryRun, nil)
		return true, res, err
	}
	if err := x.acquireLock(ctx); err != nil {
		res, err = x.refused(ctx, PhaseLock, err)
		return true, res, err
	}
	if ctx.Err() != nil {
		res, err = x.interrupted(ctx, PhaseLock)
		return true, res, err
	}
	return false, Result{}, nil
}

// drainFirst quiets the selection, waits for its jobs, deploys, watches the rollout, watches
// the old processes leave and rescues the jobs of any that were killed.
func (x *run) drainFirst(ctx context.Context) (Result, error) {
	if ended, res, err := x.begin(ctx); ended {
		return res, err
	}
	return x.drainFirstLocked(ctx)
}

// overlap protects the old tasks, deploys once, hands the work over to the new processes as
// they arrive (see handover) and watches the old ones leave. A rollout that fails before any
// old process was quieted costs nothing: the protection is cleared and the old tasks keep
// working. Protection that turns out unavailable before anything was quieted falls back to
// drain-first.
func (x *run) overlap(ctx context.Context) (Result, error) {
	if ended, res, err := x.begin(ctx); ended {
		return res, err
	}
	if err := x.protect(ctx); err != nil {
		if errors.Is(err, errProtectionUnavailable) && ctx.Err() == nil {
			x.res.Strategy.Name = StrategyDrainFirst
			x.res.Strategy.Reason = fmt.Sprintf("task scale-in protection is unavailable (%v): drain-first instead, nothing had been quieted", err)
			x.warn("%s", x.res.Strategy.Reason)
			return x.drainFirstLocked(ctx)
		}
		return x.abort(ctx, PhaseProtect, err)
	}
	if ctx.Err() != nil {
		return x.interrupted(ctx, PhaseProtect)
	}
	return x.deployAndHandOver(ctx, PhaseHandover, x.handover)
}

// drainFirstLocked is drain-first once the lock is held.
func (x *run) drainFirstLocked(ctx context.Context) (Result, error) {
	// From here on the selection can only be restarted, not un-quieted.
	if err := x.quiet(ctx); err != nil {
		return x.abort(ctx, PhaseQuiet, err)
	}
	if err := x.drainJobs(ctx); err != nil {
		if errors.Is(err, ErrDrainTimeout) {
			return x.stopEarly(ctx, OutcomeDrainTimeout, err)
		}
		return x.abort(ctx, PhaseDrain, err)
	}
	if ctx.Err() != nil {
		return x.interrupted(ctx, PhaseDrain)
	}

	if err := x.deploy(ctx); err != nil {
		return x.abort(ctx, PhaseDeploy, err)
	}
	if ctx.Err() != nil {
		return x.interrupted(ctx, PhaseDeploy)
	}
	result, err := x.rollout(ctx)
	if err != nil {
		return x.abort(ctx, PhaseRollout, err)
	}
	return x.afterRollout(ctx, result)
}

// drainOnly is `drainctl drain`: the sequence without the ECS phases. On a drain timeout,
// OnTimeoutStop sends TERM and waits for the processes to leave (rescuing any that die);
// OnTimeoutFail stops, leaving them quiet.
func (x *run) drainOnly(ctx context.Context) (Result, error) {
	x.res.Strategy.Reason = "quiet the selected processes and wait for their jobs; no ECS"
	if err := x.preflight(ctx); err != nil {
		return x.refused(ctx, PhasePreflight, err)
	}
	if ctx.Err() != nil {
		return x.interrupted(ctx, PhasePreflight)
	}
	if x.cfg.DryRun {
		x.plan()
		return x.end(ctx, OutcomeDryRun, nil)
	}
	if err := x.quiet(ctx); err != nil {
		return x.abort(ctx, PhaseQuiet, err)
	}
	err := x.drainJobs(ctx)
	switch {
	case errors.Is(err, ErrDrainTimeout):
		return x.stopEarly(ctx, OutcomeDrainTimeout, err)
	case err != nil:
		return x.abort(ctx, PhaseDrain, err)
	case ctx.Err() != nil:
		return x.interrupted(ctx, PhaseDrain)
	}
	if x.stopSent {
		if err := x.exits(ctx, nil); err != nil {
			return x.abort(ctx, PhaseExits, err)
		}
		if err := x.rescue(ctx); err != nil {
			return x.abort(ctx, PhaseRescue, err)
		}
		if alive := x.aliveProcesses(); len(alive) > 0 {
			return x.stopEarly(ctx, OutcomeFailed, fmt.Errorf("%w: %d process(es) still running %v after TERM: %s",
				ErrStillRunning, len(alive), x.cfg.ExitTimeout, strings.Join(alive, ", ")))
		}
	}
	return x.end(ctx, OutcomeSucceeded, nil)
}

// quietOnly is `drainctl quiet`: send TSTP and wait for the acknowledgement (unless NoWait).
func (x *run) quietOnly(ctx context.Context) (Result, error) {
	x.res.Strategy.Reason = "quiet the selected processes"
	if err := x.preflight(ctx); err != nil {
		return x.refused(ctx, PhasePreflight, err)
	}
	if ctx.Err() != nil {
		return x.interrupted(ctx, PhasePreflight)
	}
	if x.cfg.DryRun {
		x.plan()
		return x.end(ctx, OutcomeDryRun, nil)
	}
	unacked, err := x.quietAck(ctx, !x.cfg.NoWait)
	if err != nil {
		return x.abort(ctx, PhaseQuiet, err)
	}
	if ctx.Err() != nil {
		return x.interrupted(ctx, PhaseQuiet)
	}
	if len(unacked) > 0 {
		return x.end(ctx, OutcomeFailed, fmt.Errorf("%w: %d process(es) did not acknowledge quiet within %v: %s",
			ErrNotAcknowledged, len(unacked), x.ackTimeout(), strings.Join(unacked, ", ")))
	}
	return x.end(ctx, OutcomeSucceeded, nil)
}

// refused ends a run that stopped before any write: a preflight refusal or a held lock, or
// an interrupt.
func (x *run) refused(ctx context.Context, p Phase, err error) (Result, error) {
	if ctx.Err() != nil {
		return x.interrupted(ctx, p)
	}
	if errors.Is(err, ErrLocked) {
		return x.end(ctx, OutcomeLocked, err)
	}
	if errors.Is(err, ErrPreflight) {
		return x.end(ctx, OutcomeRefused, err)
	}
	return x.end(ctx, OutcomeFailed, err)
}

// abort ends the run after a failed write or read: an interrupt when ctx was cancelled,
// otherwise a failure with the state left behind re-read.
func (x *run) abort(ctx context.Context, p Phase, err error) (Result, error) {
	if ctx.Err() != nil {
		return x.interrupted(ctx, p)
	}
	return x.stopEarly(ctx, OutcomeFailed, err)
}
