package main

import (
	"context"
	"time"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// fleet adapts *sidekiq.Client to drain.Fleet.
type fleet struct {
	c        *sidekiq.Client
	interval time.Duration // the watcher's poll interval; zero means sidekiq's default
}

var _ drain.Fleet = fleet{}

func (f fleet) Ping(ctx context.Context) error { return f.c.Ping(ctx) }

func (f fleet) Snapshot(ctx context.Context) (*sidekiq.Snapshot, error) { return f.c.Snapshot(ctx) }

func (f fleet) SnapshotOf(ctx context.Context, ids []string) (*sidekiq.Snapshot, error) {
	return f.c.SnapshotOf(ctx, ids)
}

func (f fleet) QueueStats(ctx context.Context, queues []string) ([]drain.QueueDepth, error) {
	qs, err := f.c.QueueStats(ctx, queues, time.Now())
	out := make([]drain.QueueDepth, 0, len(qs))
	for _, q := range qs {
		out = append(out, drain.QueueDepth{Name: q.Name, Size: q.Size, Latency: q.Latency})
	}
	return out, err
}

func (f fleet) Quiet(ctx context.Context, ids []string) error { return f.c.Quiet(ctx, ids) }

func (f fleet) Stop(ctx context.Context, ids []string) error { return f.c.Stop(ctx, ids) }

func (f fleet) Watch(ps []sidekiq.Process) drain.ProcessWatcher {
	w := f.c.NewWatcher(ps)
	w.Interval = f.interval
	return watcher{w}
}

// Rescue maps sidekiq's per-job outcomes onto drain's three lists: pushed now → Requeued;
// already safe (rescued before, queued, scheduled, in retry, running on a live process) →
// Safe; super_fetch-owned, invalid or failed → Skipped with the reason (counted as lost).
// A duplicate jid is the same job seen twice and is ignored.
func (f fleet) Rescue(ctx context.Context, jobs []sidekiq.Job) (drain.RescueResult, error) {
	res, err := f.c.Rescue(ctx, jobs, sidekiq.RescueOptions{})
	return rescueResult(res), err
}

func rescueResult(res sidekiq.RescueResult) drain.RescueResult {
	out := drain.RescueResult{Skipped: map[string]string{}}
	for _, j := range res.Jobs {
		switch j.Outcome {
		case sidekiq.OutcomePushed:
			out.Requeued = append(out.Requeued, j.Job.JID)
		case sidekiq.OutcomeAlreadyRescued, sidekiq.OutcomeQueued, sidekiq.OutcomeScheduled,
			sidekiq.OutcomeRetry, sidekiq.OutcomeRunning:
			out.Safe = append(out.Safe, j.Job.JID)
		case sidekiq.OutcomeDuplicate:
		default:
			reason := j.Reason
			if reason == "" {
				reason = string(j.Outcome)
			}
			out.Skipped[j.Job.JID] = reason
		}
	}
	return out
}

func (f fleet) AcquireLock(ctx context.Context, name string, owner sidekiq.LockOwner, ttl time.Duration) (drain.Lock, error) {
	l, err := f.c.AcquireLock(ctx, name, owner, ttl)
	if err != nil {
		return nil, err // never a typed nil inside the interface
	}
	return l, nil
}

func (f fleet) LockHolder(ctx context.Context, name string) (*sidekiq.LockOwner, error) {
	return f.c.LockHolder(ctx, name)
}

// watcher adapts *sidekiq.Watcher to drain.ProcessWatcher.
type watcher struct{ w *sidekiq.Watcher }

func (w watcher) Poll(ctx context.Context) ([]drain.Observation, error) {
	obs, err := w.w.Poll(ctx)
	return observations(obs), err
}

func (w watcher) MarkDead(identity, evidence string) { w.w.MarkDead(identity, evidence) }

func observations(obs []sidekiq.Observation) []drain.Observation {
	out := make([]drain.Observation, 0, len(obs))
	for _, o := range obs {
		out = append(out, drain.Observation{
			Identity: o.Identity,
			State:    drain.State(o.State),
			Process:  o.Process,
			Jobs:     o.Jobs,
			LastBeat: o.LastBeat,
			Evidence: o.Evidence,
		})
	}
	return out
}
