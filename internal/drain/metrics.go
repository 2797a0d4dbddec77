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
	// cover answers "is anyone working the queues" when the Fleet offers it (coverageFleet).
	cover *sidekiq.Coverage
}

// coverageFleet is a Fleet that tells whether a live, non-quiet process works some queues
// without a full read of every heartbeat at every poll; *sidekiq.Client is one.
type coverageFleet interface {
	NewCoverage(queues []string) *sidekiq.Coverage
}

var _ coverageFleet = (*sidekiq.Client)(nil)

// sample reads, once per poll of a run that writes, the latency of the selection's queues
// and whether any live, non-quiet process (old or new) works them: the figures users feel
// (Result.Metrics). A failed read is a skipped sample.
//
// Round trips: 1 for the queues (LLEN/LINDEX of each), then either 2 for Fleet.Processes
// (SMEMBERS, one pipeline of HGETALL <id> for every process) — shared with an overlap or
// blue/green hand-over, which reads every heartbeat in the same poll — or, elsewhere and when
// the Fleet offers it, at most 2 for sidekiq.Coverage: SMEMBERS, then HMGET <id> quiet beat
// for the processes working a selected queue not yet seen quiet, and HGETALL only for
// processes not seen before — just the SMEMBERS in a drain's wait phase, once the selection is
// quiet. Both answer the same question from the same fields (TestSampleProcessingGap).
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
	work, err := x.workingNow(ctx)
	if err != nil {
		return
	}
	x.res.Metrics.Samples++
	if work {
		m.lastWorking = now
		return
	}
	x.res.Metrics.ProcessingGap = max(x.res.Metrics.ProcessingGap, now.Sub(m.lastWorking))
}

// workingNow says whether a live, non-quiet process works one of the sampled queues now.
func (x *run) workingNow(ctx context.Context) (bool, error) {
	m := &x.metrics
	if cf, ok := x.fleet.(coverageFleet); ok && x.beats == nil && !x.handingOver() {
		if m.cover == nil {
			m.cover = cf.NewCoverage(m.queues)
		}
		x.count("redis.Coverage")
		return m.cover.Working(ctx)
	}
	snap, err := x.heartbeats(ctx)
	if err != nil {
		return false, err
	}
	return working(snap.Processes, m.queues), nil
}

// handingOver is true while an overlap or blue/green hand-over may still quiet old processes
// for new workers: it reads every heartbeat at each poll, so the sample shares that read.
func (x *run) handingOver() bool {
	return x.ov != nil && len(x.ov.quieted) < len(x.selected)
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
