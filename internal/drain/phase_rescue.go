package drain

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/drainctl/drainctl/internal/sidekiq"
)

// rescue requeues the jobs of the selected processes that died (Fleet.Rescue pushes each
// death's jobs exactly once) and names the likely cause. Only jobs this run pushed count as
// rescued; the others say what they were found to be.
func (x *run) rescue(ctx context.Context) (err error) {
	var dead []string
	var jobs []sidekiq.Job
	for _, p := range x.selected {
		o, ok := x.last[p.Identity]
		if !ok || o.State != sidekiq.StateDead {
			continue
		}
		dead = append(dead, p.Identity)
		jobs = append(jobs, o.Jobs...)
	}
	if len(dead) == 0 {
		return nil
	}
	defer x.phase(PhaseRescue)(&err)
	x.warn("%d process(es) were killed instead of stopping: %s; the signal path likely does not deliver SIGTERM to Sidekiq (shell wrapper as PID 1, no init, or stopTimeout below sidekiq -t + 5s)",
		len(dead), strings.Join(dead, ", "))
	if len(jobs) == 0 {
		return nil
	}
	if x.cfg.NoRescue {
		x.warn("%d job(s) of killed processes not rescued (--rescue=false): run drainctl rescue", len(jobs))
		return nil
	}
	x.count("redis.Rescue")
	rr, err := x.fleet.Rescue(ctx, jobs, sidekiq.RescueOptions{Dead: dead, RunID: x.runID(), Now: x.cfg.Now})
	for _, j := range rr.Jobs {
		if f, ok := rescueFateOf(j); ok {
			x.rescued[j.Job.JID] = f
		}
	}
	if err != nil {
		return fmt.Errorf("rescue %d job(s) of %d killed process(es): %w", len(jobs), len(dead), err)
	}
	if n := rr.Count(sidekiq.OutcomePushed); n > 0 {
		x.warn("rescued %d job(s) of killed processes: nothing lost, but they run again from the start", n)
	}
	return nil
}

// rescueFateOf maps one job's rescue outcome to its fate; ok is false for an outcome that
// says nothing about the job (the same jid seen twice).
func rescueFateOf(j sidekiq.JobRescue) (rescueFate, bool) {
	switch j.Outcome {
	case sidekiq.OutcomePushed:
		return rescueFate{fate: JobRescued}, true
	case sidekiq.OutcomeAlreadyRescued:
		note := j.Reason
		if j.RescuedBy != "" {
			note = fmt.Sprintf("already rescued by run %s at %s", j.RescuedBy, j.RescuedAt.UTC().Format(time.RFC3339))
		}
		return rescueFate{fate: JobAlreadyRescued, note: note}, true
	case sidekiq.OutcomeQueued, sidekiq.OutcomeScheduled, sidekiq.OutcomeRetry, sidekiq.OutcomeRunning:
		note := j.Reason
		if note == "" {
			note = string(j.Outcome)
		}
		return rescueFate{fate: JobSafe, note: note}, true
	case sidekiq.OutcomeDuplicate:
		return rescueFate{}, false
	}
	reason := j.Reason
	if reason == "" {
		reason = string(j.Outcome)
	}
	return rescueFate{fate: JobLost, note: "not rescued: " + reason}, true
}

// runID names this run in the rescue markers it writes ("already rescued by run …").
func (x *run) runID() string {
	o := x.cfg.LockOwner
	return RunID(o.Host, o.PID, x.res.StartedAt)
}
