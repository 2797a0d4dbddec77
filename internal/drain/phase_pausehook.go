package drain

import (
	"context"
	"errors"
	"fmt"

	"github.com/drainctl/drainctl/internal/ecs"
)

// PhaseHook is the pause-hook strategy's own phase: at the PAUSE hook, quiet blue, wait for its
// jobs and answer the hook.
const PhaseHook Phase = "hook"

// pauseHook deploys a blue/green (linear, canary) service whose PAUSE hook at POST_SCALE_UP
// gives drainctl the moment green is up: blue is quieted once green heartbeats, its jobs are
// waited for within the drain budget, and the hook is answered CONTINUE; CLEAN_UP then stops
// idle blue tasks. Green failing before the hook rolls back with blue never quieted.
func (x *run) pauseHook(ctx context.Context) (Result, error) {
	if ended, res, err := x.begin(ctx); ended {
		return res, err
	}
	return x.deployAndHandOver(ctx, PhaseHook, x.hookHandover)
}

// deployAndHandOver makes the one UpdateService, runs the strategy's hand-over phase p and
// ends the run by its result.
func (x *run) deployAndHandOver(ctx context.Context, p Phase, handOver func(context.Context) (RolloutResult, error)) (Result, error) {
	if err := x.deploy(ctx); err != nil {
		return x.abort(ctx, PhaseDeploy, err)
	}
	result, err := handOver(ctx)
	switch {
	case errors.Is(err, ErrDrainTimeout):
		return x.stopEarly(ctx, OutcomeDrainTimeout, err)
	case err != nil:
		return x.abort(ctx, p, err)
	}
	return x.afterRollout(ctx, result)
}

// afterRollout ends every deploy strategy once the rollout ended: on success the old
// processes' exits and the rescue; on a timeout or failure the processes of the services that
// succeeded leave all the same, and the quieted tasks a rollback kept are replaced — unless
// nothing was quieted yet (overlap, the hand-overs), which costs nothing.
func (x *run) afterRollout(ctx context.Context, result RolloutResult) (Result, error) {
	nothingQuiet := x.ov != nil && len(x.ov.quieted) == 0
	const keep = "; no process was quieted: the old tasks keep working"
	switch result {
	case RolloutSucceeded:
		x.releaseAll(ctx, "rollout succeeded")
		x.noteDeferredCleanup()
		if err := x.exits(ctx, nil); err != nil {
			return x.abort(ctx, PhaseExits, err)
		}
		if err := x.rescue(ctx); err != nil {
			return x.abort(ctx, PhaseRescue, err)
		}
		return x.end(ctx, OutcomeSucceeded, nil)
	case RolloutTimedOut:
		if nothingQuiet {
			return x.stopEarly(ctx, OutcomeRolloutTimeout, fmt.Errorf("%w after %v: %s%s", ErrRolloutTimeout,
				x.cfg.RolloutTimeout, x.rolloutSummary(), keep))
		}
		// Another service's rollout may have succeeded: its old processes leave all the same.
		if err := x.exitsOfSucceeded(ctx); err != nil {
			return x.abort(ctx, PhaseExits, err)
		}
		x.finalPoll(ctx)
		if err := x.rescue(ctx); err != nil {
			return x.abort(ctx, PhaseRescue, err)
		}
		return x.stopEarly(ctx, OutcomeRolloutTimeout, fmt.Errorf("%w after %v: %s", ErrRolloutTimeout,
			x.cfg.RolloutTimeout, x.rolloutSummary()))
	default:
		outcome := OutcomeFailed
		if result == RolloutRolledBack {
			outcome = OutcomeRolledBack
		}
		if nothingQuiet {
			return x.end(ctx, outcome, fmt.Errorf("%w: %s%s", ErrRolloutFailed, x.rolloutSummary(), keep))
		}
		// Get the quieted tasks the rollback kept replaced.
		if err := x.recover(ctx); err != nil {
			return x.abort(ctx, PhaseRecover, err)
		}
		if err := x.exitsOfSucceeded(ctx); err != nil {
			return x.abort(ctx, PhaseExits, err)
		}
		if err := x.rescue(ctx); err != nil {
			return x.abort(ctx, PhaseRescue, err)
		}
		return x.end(ctx, outcome, fmt.Errorf("%w: %s", ErrRolloutFailed, x.rolloutSummary()))
	}
}

// noteDeferredCleanup says when a COMPLETED rollout does not mean the old tasks are gone:
// early success with DEFERRED clean-up stops them afterwards, and the exits phase waits.
func (x *run) noteDeferredCleanup() {
	for _, s := range x.res.Services {
		if es := s.State.Strategy.EarlySuccess; es != nil && es.Cleanup == "DEFERRED" {
			x.warn("%s: the deployment succeeded early (healthyPercent %d) with DEFERRED clean-up: the old tasks stop afterwards; watching them leave for up to %v",
				s.Ref, es.HealthyPercent, x.cfg.ExitTimeout)
		}
	}
}

// hookHandover watches the rollout; at each service's PAUSE hook (POST_SCALE_UP, hook
// AWAITING_ACTION) it quiets blue as green heartbeats, waits for blue's jobs within the drain
// budget, and answers the hook CONTINUE. It returns the worst rollout result once every
// rollout ended.
func (x *run) hookHandover(ctx context.Context) (worst RolloutResult, err error) {
	defer x.phase(PhaseHook)(&err)
	x.watcher = x.watch(x.selected)
	continued := map[int]bool{}
	return x.rolloutLoop(ctx, func(ctx context.Context, ws []*rolloutWatch) (bool, error) {
		deadline := x.pollOld(ctx, PhaseHook)
		if failedAny(ws) {
			return true, nil
		}
		var paused []*rolloutWatch
		for _, w := range ws {
			if w.sdOff {
				return false, fmt.Errorf("%s: the Service Deployments API is not available, so drainctl cannot see or answer the PAUSE hook: answer it with aws ecs continue-service-deployment, or use --strategy drain-first", x.res.Services[w.i].Ref)
			}
			if !w.done && !continued[w.i] && w.sd != nil && w.sd.LifecycleStage == ecs.StagePostScaleUp && w.sd.AwaitingPause() != nil {
				paused = append(paused, w)
			}
		}
		if len(paused) > 0 {
			if err := x.quietForNewWorkers(ctx, paused); err != nil {
				return false, err
			}
		}
		if !deadline.IsZero() && !x.ov.timedOut && !x.cfg.Now().Before(deadline) {
			x.ov.timedOut = true
			if err := x.hookDrainTimeout(ctx); err != nil {
				return false, err
			}
		}
		for _, w := range paused {
			if !x.blueDrained(w) && !x.ov.timedOut {
				continue
			}
			s := x.res.Services[w.i]
			hook := w.sd.AwaitingPause()
			x.count("ecs.ContinueDeployment")
			if err := x.ecs.ContinueDeployment(ctx, s.Ref, w.sd.ARN, hook.ID, "CONTINUE"); err != nil {
				return false, fmt.Errorf("continue the deployment of %s at its PAUSE hook: %w", s.Ref, err)
			}
			continued[w.i] = true
		}
		return false, nil
	})
}

// blueDrained is true when every selected process of the service was quieted and has
// nothing left in flight (or left).
func (x *run) blueDrained(w *rolloutWatch) bool {
	svc := x.res.Services[w.i].Ref.String()
	any := false
	for _, p := range x.res.Processes {
		if p.Service != svc {
			continue
		}
		any = true
		o, ok := x.last[p.Identity]
		if !x.ov.quieted[p.Identity] || !ok || !drained(o) {
			return false
		}
	}
	return any
}

// hookDrainTimeout applies Config.OnTimeout at the hook when blue's jobs outlast the drain
// budget: fail stops (the deployment stays paused until its hook times out), stop sends TERM
// first, deploy continues (CLEAN_UP's SIGTERM lets Sidekiq requeue what is left).
func (x *run) hookDrainTimeout(ctx context.Context) error {
	ids, jobs := x.busyProcesses()
	if len(ids) == 0 {
		return nil
	}
	switch x.cfg.OnTimeout {
	case OnTimeoutFail:
		return fmt.Errorf("%w after %v: %d job(s) still running on %v; the deployment waits at its PAUSE hook until the hook times out or is answered", ErrDrainTimeout,
			x.cfg.DrainTimeout, jobs, ids)
	case OnTimeoutStop:
		x.warn("drain timed out after %v with %d job(s) on %d process(es): sending TERM so Sidekiq requeues them now", x.cfg.DrainTimeout, jobs, len(ids))
		x.count("redis.Stop")
		if err := x.fleet.Stop(ctx, ids); err != nil {
			return fmt.Errorf("stop %d process(es) after drain timeout: %w", len(ids), err)
		}
		x.stopSent = true
	default:
		x.warn("drain timed out after %v with %d job(s) on %d process(es): continuing; CLEAN_UP's SIGTERM lets Sidekiq requeue them", x.cfg.DrainTimeout, jobs, len(ids))
	}
	return nil
}
