package drain

import (
	"context"
	"fmt"
	"strings"
)

// recover finds the quieted processes still alive in tasks a failed rollout kept and stops
// those tasks (unless OnRolloutFailure is leave), so the service starts fresh, un-quieted
// ones: quiet cannot be undone, and a rollback keeps the very tasks that were quieted.
// Services whose own rollout succeeded are left alone.
func (x *run) recover(ctx context.Context) (err error) {
	defer x.phase(PhaseRecover)(&err)
	x.finalPoll(ctx)
	for i, s := range x.res.Services {
		if s.Outcome != nil && s.Outcome.Result == RolloutSucceeded {
			continue
		}
		x.count("ecs.Tasks")
		running, err := x.ecs.Tasks(ctx, s.Ref, "RUNNING")
		if err != nil {
			return fmt.Errorf("list running tasks of %s: %w", s.Ref, err)
		}
		alive := map[string]bool{}
		for _, t := range running {
			alive[t.ARN] = true
		}
		seen := map[string]bool{}
		var kept []string
		for _, p := range x.selected {
			arn := x.taskOf[p.Identity]
			if arn == "" || !alive[arn] || seen[arn] {
				continue
			}
			if o, ok := x.last[p.Identity]; ok && o.State.Terminal() {
				continue
			}
			seen[arn] = true
			kept = append(kept, arn)
		}
		if len(kept) == 0 {
			continue
		}
		if x.cfg.OnRolloutFailure == OnRolloutFailureLeave {
			x.res.Services[i].KeptQuietTasks = kept
			x.warn("%s: %d task(s) kept by the failed rollout run quieted processes that will not work again until restarted (--on-rollout-failure=leave): %s",
				s.Ref, len(kept), strings.Join(kept, ", "))
			continue
		}
		x.count("ecs.StopTasks")
		if err := x.ecs.StopTasks(ctx, s.Ref.Cluster, kept, "drainctl: replace quieted tasks after a failed rollout"); err != nil {
			x.res.Services[i].KeptQuietTasks = kept
			return fmt.Errorf("stop %d quieted task(s) of %s: %w", len(kept), s.Ref, err)
		}
		x.res.Services[i].ReplacedTasks = kept
		x.warn("%s: stopped %d task(s) kept by the failed rollout whose processes were quiet; the service starts fresh ones",
			s.Ref, len(kept))
	}
	for _, p := range x.selected {
		if x.taskOf[p.Identity] != "" {
			continue
		}
		if o, ok := x.last[p.Identity]; ok && !o.State.Terminal() {
			x.warn("process %s is quiet and in no task of the services: restart it", p.Identity)
		}
	}
	return nil
}
