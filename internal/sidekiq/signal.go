package sidekiq

import (
	"context"
	"errors"
	"fmt"
)

// The only strings drainctl ever pushes onto a signal list: Sidekiq sends whatever it pops to
// itself with Process.kill, so anything else (KILL) would be obeyed too.
const (
	sigQuiet = "TSTP"
	sigStop  = "TERM"
)

// signalTTL is the EXPIRE Sidekiq's API sets on a signal list, in seconds.
const signalTTL = 60

// Quiet asks each process to stop fetching new jobs (TSTP), the Web UI's Quiet button. A
// process reads the signal at its next heartbeat; see AckWithin. All identities are signalled
// in one pipelined round trip.
func (c *Client) Quiet(ctx context.Context, identities []string) error {
	return c.signal(ctx, identities, sigQuiet)
}

// Stop asks each process to shut down (TERM): it quiets, waits its -t timeout for running jobs,
// pushes unfinished ones back to their queues and leaves `processes`. One round trip for all.
func (c *Client) Stop(ctx context.Context, identities []string) error {
	return c.signal(ctx, identities, sigStop)
}

// signal sends `MULTI; LPUSH <id>-signals sig; EXPIRE <id>-signals 60; EXEC` for every identity,
// exactly as Sidekiq::Process#signal does, all in one pipeline.
func (c *Client) signal(ctx context.Context, identities []string, sig string) error {
	if sig != sigQuiet && sig != sigStop {
		return fmt.Errorf("refusing to push signal %q: only TSTP and TERM are sent", sig)
	}
	if len(identities) == 0 {
		return nil
	}
	pipe := c.rdb.Pipeline()
	for _, id := range identities {
		key := c.key(signalsKey(id))
		pipe.Do(ctx, "multi")
		pipe.Do(ctx, "lpush", key, sig)
		pipe.Do(ctx, "expire", key, signalTTL)
		pipe.Do(ctx, "exec")
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil && len(cmds) == 0 {
		return fmt.Errorf("signal %s to %d processes on %s: %w", sig, len(identities), c.Redacted(), err)
	}
	var errs []error
	for i, id := range identities {
		if i*4+3 >= len(cmds) {
			errs = append(errs, fmt.Errorf("signal %s to %s: no reply", sig, id))
			continue
		}
		for _, cmd := range cmds[i*4 : i*4+4] {
			if e := cmd.Err(); e != nil {
				errs = append(errs, fmt.Errorf("signal %s to %s on %s: %w", sig, id, c.Redacted(), e))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// Drainable reports whether p can be drained through Redis, and why not, with what to do:
// a process whose heartbeat hash expired is gone (only its jobs may be rescued), and embedded
// processes (7.0.3+, Sidekiq inside another program) read remote signals and ignore them.
func Drainable(p Process) (bool, string) {
	switch {
	case !p.HashExists:
		return false, fmt.Sprintf("process %s has no heartbeat (it died earlier); drainctl rescue handles the jobs of dead processes", p.Identity)
	case p.Embedded:
		return false, fmt.Sprintf("process %s is embedded and ignores signals through Redis; restart it instead", p.Identity)
	}
	return true, ""
}
