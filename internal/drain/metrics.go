package drain

import (
	"context"
	"time"

	"github.com/drainctl/drainctl/internal/sidekiq"
)

// metrics is the sampler's memory between polls.
type metrics struct {
	queues      []string
	lastWorking time.Time
	started     bool
}

// sample reads, once per poll of a run that writes, the latency of the selection's queues
// and whether any live, non-quiet process (old or new) works them: the figures users feel
// (Result.Metrics). A failed read is a skipped sample.
func (x *run) sample(ctx context.Context) {
	if len(x.selected) == 0 || x.cfg.DryRun || ctx.Err() != nil {
		return
	}
	m := &x.metrics
	if !m.started {
		m.started, m.lastWorking = true, x.res.StartedAt
		seen := map[string]bool{}
		for _, p := range x.selected {
			for _, q := range p.Queues {
				if !seen[q] {
					seen[q] = true
					m.queues = append(m.queues, q)
				}
			}
		}
	}
	now := x.cfg.Now()
	x.count("redis.QueueStats")
	if qs, err := x.fleet.QueueStats(ctx, m.queues, now); err == nil {
		for _, q := range qs {
			x.res.Metrics.LongestQueueWait = max(x.res.Metrics.LongestQueueWait, q.Latency)
		}
	}
	snap, err := x.heartbeats(ctx)
	if err != nil {
		return
	}
	x.res.Metrics.Samples++
	if working(snap.Processes, m.queues) {
		m.lastWorking = now
		return
	}
	x.res.Metrics.ProcessingGap = max(x.res.Metrics.ProcessingGap, now.Sub(m.lastWorking))
}

// working says whether a live, non-quiet process works one of the queues.
func working(ps []sidekiq.Process, queues []string) bool {
	for _, p := range ps {
		if !p.HashExists || !p.Listed || p.Quiet {
			continue
		}
		for _, q := range p.Queues {
			for _, want := range queues {
				if q == want {
					return true
				}
			}
		}
	}
	return false
}

// heartbeats is this poll's read of every process's heartbeat, without the jobs (one
// Fleet.Processes per poll however many parts of the run want it).
func (x *run) heartbeats(ctx context.Context) (*sidekiq.Snapshot, error) {
	if x.beats != nil {
		return x.beats, nil
	}
	x.count("redis.Processes")
	snap, err := x.fleet.Processes(ctx)
	if err != nil {
		return nil, err
	}
	x.beats = snap
	return snap, nil
}

// process is the selected process's entry in the Result, or nil.
func (x *run) process(identity string) *ProcessResult {
	if i, ok := x.procIndex[identity]; ok {
		return &x.res.Processes[i]
	}
	return nil
}
