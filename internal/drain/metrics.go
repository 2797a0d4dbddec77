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
	x.count("redis.Snapshot")
	snap, err := x.fleet.Snapshot(ctx)
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
