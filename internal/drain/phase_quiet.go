package drain

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/drainctl/drainctl/internal/sidekiq"
)

// quiet sends TSTP to the selection and waits for the acknowledgement; processes that do not
// acknowledge within AckTimeout are warned about and drained all the same.
func (x *run) quiet(ctx context.Context) error {
	unacked, err := x.quietAck(ctx, true)
	if err == nil && len(unacked) > 0 {
		x.warn("%d process(es) did not acknowledge quiet within %v: %s", len(unacked), x.ackTimeout(), strings.Join(unacked, ", "))
	}
	return err
}

// quietAck sends TSTP to the selection — fixed at preflight, so processes that appear later
// are never quieted — starts watching it, and with wait polls until every process reports
// quiet (or left) or AckTimeout passes. It returns the processes that did not acknowledge.
func (x *run) quietAck(ctx context.Context, wait bool) (unacked []string, err error) {
	defer x.phase(PhaseQuiet)(&err)
	ids := identities(x.selected)
	x.count("redis.Quiet")
	if err := x.fleet.Quiet(ctx, ids); err != nil {
		return nil, fmt.Errorf("quiet %d process(es): %w", len(ids), err)
	}
	x.quietSent = true
	x.watcher = x.watch(x.selected)
	if !wait {
		for i := range x.res.Processes {
			x.res.Processes[i].Evidence = "quiet sent; not waiting for the acknowledgement (--no-wait)"
		}
		return nil, nil
	}
	deadline := x.cfg.Now().Add(x.ackTimeout())
	for {
		obs := x.poll(ctx)
		x.progress(PhaseQuiet, obs, deadline)
		unacked = unacked[:0]
		for _, p := range x.selected {
			if o, ok := x.last[p.Identity]; !ok || o.State == sidekiq.StateRunning || o.State == sidekiq.StateUnknown {
				unacked = append(unacked, p.Identity)
			}
		}
		if len(unacked) == 0 {
			return nil, nil
		}
		if !x.cfg.Now().Before(deadline) {
			return unacked, nil
		}
		if err := x.wait(ctx); err != nil {
			return unacked, err
		}
	}
}

// ackTimeout is Config.AckTimeout, or what the selection's heartbeats need.
func (x *run) ackTimeout() time.Duration {
	if x.cfg.AckTimeout > 0 {
		return x.cfg.AckTimeout
	}
	var d time.Duration
	for _, p := range x.selected {
		d = max(d, sidekiq.AckWithin(p))
	}
	return d + x.cfg.PollInterval
}

// poll reads the watched processes once; a failed poll is a warning and a skipped tick.
func (x *run) poll(ctx context.Context) []sidekiq.Observation {
	x.count("redis.Poll")
	obs, err := x.watcher.Poll(ctx)
	if err != nil {
		if ctx.Err() == nil {
			x.warn("poll sidekiq processes: %v (retrying)", err)
		}
		return nil
	}
	for _, o := range obs {
		x.last[o.Identity] = o
	}
	x.jobs.observe(obs)
	return obs
}

// finalPoll records the processes' states once more, for a run that ends without exits.
func (x *run) finalPoll(ctx context.Context) {
	if x.watcher != nil {
		x.poll(ctx)
	}
}

// progress emits a DrainProgress for the latest observations.
func (x *run) progress(p Phase, obs []sidekiq.Observation, deadline time.Time) {
	if obs == nil {
		return
	}
	now := x.cfg.Now()
	dp := DrainProgress{Phase: p, At: now, Total: len(x.jobs.order), Processes: map[sidekiq.State]int{},
		Longest: longest(obs, now, 5), Deadline: deadline}
	for _, o := range obs {
		dp.Processes[o.State]++
		if !o.State.Terminal() {
			dp.Remaining += len(o.Jobs)
		}
	}
	x.obs.DrainProgress(dp)
}

// aliveProcesses lists the selected processes not known to have left at the last poll.
func (x *run) aliveProcesses() []string {
	var out []string
	for _, p := range x.selected {
		if o, ok := x.last[p.Identity]; !ok || !o.State.Terminal() {
			out = append(out, p.Identity)
		}
	}
	return out
}
