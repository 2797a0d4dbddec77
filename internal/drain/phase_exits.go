package drain

import (
	"context"
	"sort"

	"github.com/drainctl/drainctl/internal/ecs"
)

// exits waits until every selected process in only (every one when only is nil) has left —
// cleanly, or killed — marking processes dead early on the ECS evidence of a killed
// container, bounded by ExitTimeout.
func (x *run) exits(ctx context.Context, only map[string]bool) (err error) {
	defer x.phase(PhaseExits)(&err)
	deadline := x.cfg.Now().Add(x.cfg.ExitTimeout)
	marked := map[string]bool{}
	if only != nil {
		for _, p := range x.selected {
			marked[p.Identity] = !only[p.Identity] // never mark the others: they are not waited for
		}
	}
	for {
		x.markKilled(ctx, marked)
		obs := x.poll(ctx)
		x.progress(PhaseExits, obs, deadline)
		if obs != nil && x.allLeft(only) {
			x.recordOldStops(ctx)
			return nil
		}
		if !x.cfg.Now().Before(deadline) {
			for _, p := range x.selected {
				if only != nil && !only[p.Identity] {
					continue
				}
				if o, ok := x.last[p.Identity]; !ok || !o.State.Terminal() {
					x.warn("process %s still running %v after the rollout: not part of this service?", p.Identity, x.cfg.ExitTimeout)
				}
			}
			x.recordOldStops(ctx)
			return nil
		}
		if err := x.wait(ctx); err != nil {
			return err
		}
	}
}

// exitsOfSucceeded runs the exits phase for the processes of the services whose rollout
// succeeded when another service's did not: ECS stopped their old tasks all the same, and the
// jobs of one killed there must be rescued. The other services' processes are not waited for.
func (x *run) exitsOfSucceeded(ctx context.Context) error {
	ok := map[string]bool{}
	for _, s := range x.res.Services {
		if s.Outcome != nil && s.Outcome.Result == RolloutSucceeded {
			ok[s.Ref.String()] = true
		}
	}
	only := map[string]bool{}
	for _, p := range x.res.Processes {
		if ok[p.Service] {
			only[p.Identity] = true
		}
	}
	if len(only) == 0 {
		return nil
	}
	return x.exits(ctx, only)
}

// allLeft is true when every selected process in only (every one when only is nil) was seen
// to leave.
func (x *run) allLeft(only map[string]bool) bool {
	for _, p := range x.selected {
		if only != nil && !only[p.Identity] {
			continue
		}
		if o, ok := x.last[p.Identity]; !ok || !o.State.Terminal() {
			return false
		}
	}
	return true
}

// markKilled reads the services' stopped tasks and marks dead the alive processes whose task
// has a container that exited 137.
func (x *run) markKilled(ctx context.Context, marked map[string]bool) {
	if x.ecs == nil {
		return
	}
	pending := map[string][]string{} // task ARN → identities still alive and unmarked
	for id, arn := range x.taskOf {
		if marked[id] {
			continue
		}
		if o, ok := x.last[id]; ok && o.State.Terminal() {
			continue
		}
		pending[arn] = append(pending[arn], id)
	}
	if len(pending) == 0 {
		return
	}
	for _, s := range x.res.Services {
		x.count("ecs.Tasks")
		tasks, err := x.ecs.Tasks(ctx, s.Ref, "STOPPED")
		if err != nil {
			if ctx.Err() == nil {
				x.warn("list stopped tasks of %s: %v (retrying)", s.Ref, err)
			}
			continue
		}
		for _, t := range tasks {
			ids := pending[t.ARN]
			sort.Strings(ids)
			for _, id := range ids {
				if v, evidence := exitVerdict(x.last[id], &t); v == ExitKilled {
					x.watcher.MarkDead(id, evidence)
					marked[id] = true
				}
			}
		}
	}
}

// recordOldStops reads each service's stopped tasks once and records those that were running
// at preflight, for the report.
func (x *run) recordOldStops(ctx context.Context) {
	if x.ecs == nil {
		return
	}
	for i, s := range x.res.Services {
		atStart := map[string]bool{}
		for _, t := range s.TasksAtStart {
			atStart[t.ARN] = true
		}
		if len(atStart) == 0 {
			continue
		}
		x.count("ecs.Tasks")
		tasks, err := x.ecs.Tasks(ctx, s.Ref, "STOPPED")
		if err != nil {
			if ctx.Err() == nil {
				x.warn("list stopped tasks of %s: %v (the report lacks their exit codes)", s.Ref, err)
			}
			continue
		}
		for _, t := range tasks {
			if atStart[t.ARN] {
				x.res.Services[i].OldTasksStopped = append(x.res.Services[i].OldTasksStopped, t)
			}
		}
	}
}

// stoppedTaskOf is the recorded stop of the process's task, or nil.
func (x *run) stoppedTaskOf(identity string) *ecs.Task {
	arn := x.taskOf[identity]
	if arn == "" {
		return nil
	}
	for _, s := range x.res.Services {
		for i := range s.OldTasksStopped {
			if s.OldTasksStopped[i].ARN == arn {
				return &s.OldTasksStopped[i]
			}
		}
	}
	return nil
}
