package drain

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/drainctl/drainctl/internal/sidekiq"
)

// drained is the one rule for "nothing left to wait for": the process is quiet with nothing
// in flight (busy 0, no work entries), or it has left.
func drained(o sidekiq.Observation) bool {
	switch o.State {
	case sidekiq.StateDrained, sidekiq.StateGone, sidekiq.StateDead:
		return true
	}
	return false
}

// allDrained is true when every observation is drained.
func allDrained(obs []sidekiq.Observation) bool {
	for _, o := range obs {
		if !drained(o) {
			return false
		}
	}
	return true
}

// drainJobs waits until no selected process runs a job, bounded by DrainTimeout, then applies
// the drain-timeout policy: OnTimeoutDeploy continues, OnTimeoutStop sends TERM through Redis
// and continues, OnTimeoutFail returns ErrDrainTimeout.
func (x *run) drainJobs(ctx context.Context) (err error) {
	defer x.phase(PhaseDrain)(&err)
	var deadline time.Time
	if x.cfg.DrainTimeout > 0 {
		deadline = x.cfg.Now().Add(x.cfg.DrainTimeout)
	}
	for {
		obs := x.poll(ctx)
		x.progress(PhaseDrain, obs, deadline)
		if obs != nil && allDrained(obs) {
			return nil
		}
		if !deadline.IsZero() && !x.cfg.Now().Before(deadline) {
			return x.onDrainTimeout(ctx)
		}
		if err := x.wait(ctx); err != nil {
			return err
		}
	}
}

// busyProcesses lists the alive processes with jobs in flight at the last poll.
func (x *run) busyProcesses() (ids []string, jobs int) {
	for _, p := range x.selected {
		o, ok := x.last[p.Identity]
		if !ok || o.State.Terminal() || len(o.Jobs) == 0 {
			continue
		}
		ids = append(ids, p.Identity)
		jobs += len(o.Jobs)
	}
	return ids, jobs
}

// onDrainTimeout applies Config.OnTimeout once the drain budget is spent.
func (x *run) onDrainTimeout(ctx context.Context) error {
	ids, jobs := x.busyProcesses()
	switch x.cfg.OnTimeout {
	case OnTimeoutStop:
		x.warn("drain timed out after %v with %d job(s) on %d process(es): sending TERM so Sidekiq requeues them now",
			x.cfg.DrainTimeout, jobs, len(ids))
		// A deploy stops only the busy ones (ECS stops the rest); drain stops them all.
		targets := ids
		if x.cfg.Strategy == StrategyDrainOnly {
			targets = x.aliveProcesses()
		}
		x.count("redis.Stop")
		if err := x.fleet.Stop(ctx, targets); err != nil {
			return fmt.Errorf("stop %d process(es) after drain timeout: %w", len(targets), err)
		}
		x.stopSent = true
		return nil
	case OnTimeoutFail:
		return fmt.Errorf("%w after %v: %d job(s) still running on %s", ErrDrainTimeout, x.cfg.DrainTimeout, jobs,
			strings.Join(ids, ", "))
	default:
		rest := "drainctl rescues the jobs of any process that is killed instead"
		if x.cfg.NoRescue {
			rest = "the jobs of any process that is killed instead are reported, not rescued (--rescue=false)"
		}
		x.warn("drain timed out after %v with %d job(s) on %d process(es): deploying anyway; ECS's SIGTERM lets Sidekiq requeue them if the signal path delivers it, and %s",
			x.cfg.DrainTimeout, jobs, len(ids), rest)
		return nil
	}
}
