package sidekiq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// HeartbeatTTL is the EXPIRE Sidekiq (6, 7 and 8) puts on a process's heartbeat hash at each
// beat: a process that stopped beating is certainly dead once that much time has passed since
// its last beat, because the hash is then gone.
const HeartbeatTTL = heartbeatTTL

// Death is how sure Redis alone makes us that a process is dead.
type Death string

// The classes of ClassifyDeath.
const (
	// DeathAlive: the process beat recently.
	DeathAlive Death = "alive"
	// DeathNotYetKnown: the beat is stale but the heartbeat hash still exists. The process
	// may be dead (SIGKILL, OOM) or only slow; the hash's expiry at CertainAt settles it.
	DeathNotYetKnown Death = "not-yet-known-dead"
	// DeathCertain: the heartbeat hash is gone. (A clean stop leaves the hash to expire too,
	// so this also covers processes that stopped cleanly after the same 60 s.)
	DeathCertain Death = "dead"
)

// Certainty is the classification of one process.
type Certainty struct {
	Identity string `json:"identity"`
	Death    Death  `json:"death"`
	// LastBeat is the process's own last beat; zero when none was read.
	LastBeat time.Time `json:"last_beat,omitzero"`
	// Silent is how long before now the last beat was; zero when unknown or in the future.
	Silent time.Duration `json:"silent,omitempty"`
	// CertainAt is when death becomes certain — the latest moment the heartbeat hash can
	// still exist: the last beat plus the TTL. Set only for DeathNotYetKnown; when the
	// process's clock is behind (its last beat plus the TTL has passed while the hash still
	// exists) or no beat was read, it is now plus the TTL, the longest a hash can live.
	CertainAt time.Time `json:"certain_at,omitzero"`
}

// StaleAfter is how long p may go without a beat before it counts as stale: two heartbeat
// intervals and 2 s for a late beat and Redis latency (12 s on 6.x, 22 s on 7 and 8).
func StaleAfter(p Process) time.Duration {
	return 2*HeartbeatInterval(p) + 2*time.Second
}

// ClassifyDeath tells from p's heartbeat (Beat, HashExists, and its version for the beat
// interval), the heartbeat hash's TTL and now whether p is alive, not yet known dead, or
// certainly dead. Zero ttl means HeartbeatTTL. A beat in the future (the process's clock is
// ahead) counts as fresh. It reads no clock and does no I/O.
func ClassifyDeath(p Process, ttl time.Duration, now time.Time) Certainty {
	if ttl <= 0 {
		ttl = HeartbeatTTL
	}
	c := Certainty{Identity: p.Identity, LastBeat: p.Beat}
	if !p.Beat.IsZero() && now.After(p.Beat) {
		c.Silent = now.Sub(p.Beat)
	}
	switch {
	case !p.HashExists:
		c.Death = DeathCertain
	case !p.Beat.IsZero() && c.Silent <= StaleAfter(p):
		c.Death = DeathAlive
	default:
		c.Death = DeathNotYetKnown
		c.CertainAt = p.Beat.Add(ttl)
		if p.Beat.IsZero() || !c.CertainAt.After(now) {
			c.CertainAt = now.Add(ttl)
		}
	}
	return c
}

// ErrAlive means a process WaitCertain waited for wrote a new heartbeat: it is not dead.
var ErrAlive = errors.New("process is alive")

// NotCertainError is WaitCertain ending (its context done) before every process was certainly
// dead; Pending lists the others' last classification.
type NotCertainError struct {
	Pending []Certainty
	Err     error // the context's error
}

// Error names the processes still not known dead and when each becomes certain.
func (e *NotCertainError) Error() string {
	parts := make([]string, len(e.Pending))
	for i, c := range e.Pending {
		parts[i] = c.Identity + " (" + string(c.Death)
		if !c.CertainAt.IsZero() {
			parts[i] += ", certain at " + c.CertainAt.UTC().Format(time.RFC3339)
		}
		parts[i] += ")"
	}
	return fmt.Sprintf("wait for death of %d processes: %v; not yet certain: %s", len(e.Pending), e.Err, strings.Join(parts, ", "))
}

// Unwrap returns the context's error.
func (e *NotCertainError) Unwrap() error { return e.Err }

// WaitOptions tunes WaitCertain.
type WaitOptions struct {
	// Interval is the time between polls. Zero means DefaultWatchInterval.
	Interval time.Duration
	// TTL is the heartbeat hash's TTL. Zero means HeartbeatTTL.
	TTL time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// After waits between polls. Nil means time.After.
	After func(time.Duration) <-chan time.Time
	// OnPoll, when set, receives the classifications after every successful poll.
	OnPoll func([]Certainty)
}

// WaitCertain polls the heartbeats of the given processes (one pipelined round trip per
// poll) until every one is certainly dead (DeathCertain), and returns their classifications
// in the given order. A process that beats again during the wait makes it return at once with
// an error wrapping ErrAlive; when ctx ends first the error is a *NotCertainError (wrapping
// ctx's error) listing the processes still pending. A failed poll is retried at the next
// interval; its error is returned only if ctx ends before a poll succeeds.
func (c *Client) WaitCertain(ctx context.Context, identities []string, opt WaitOptions) ([]Certainty, error) {
	now, after, interval := opt.Now, opt.After, opt.Interval
	if now == nil {
		now = time.Now
	}
	if after == nil {
		after = time.After
	}
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	firstBeat := make(map[string]time.Time, len(identities))
	lastBeat := make(map[string]time.Time, len(identities))
	var last []Certainty
	var pollErr error
	for {
		snap, err := c.read(ctx, append([]string(nil), identities...), true, false)
		if err == nil {
			pollErr = nil
			t := now()
			last = make([]Certainty, len(snap.Processes))
			done := true
			for i, p := range snap.Processes {
				if p.HashExists && !p.Beat.IsZero() {
					b0, seen := firstBeat[p.Identity]
					if !seen {
						firstBeat[p.Identity] = p.Beat
					} else if p.Beat.After(b0) {
						return nil, fmt.Errorf("wait for death of %s: it beat at %s after the wait began: %w",
							p.Identity, p.Beat.UTC().Format(time.RFC3339), ErrAlive)
					}
					lastBeat[p.Identity] = p.Beat
				} else if !p.HashExists {
					p.Beat = lastBeat[p.Identity] // keep the last beat seen for the record
				}
				last[i] = ClassifyDeath(p, opt.TTL, t)
				done = done && last[i].Death == DeathCertain
			}
			if opt.OnPoll != nil {
				opt.OnPoll(last)
			}
			if done {
				return last, nil
			}
		} else {
			pollErr = err
		}
		select {
		case <-ctx.Done():
			if last == nil && pollErr != nil {
				return nil, fmt.Errorf("wait for death of %d processes: %w", len(identities), errors.Join(ctx.Err(), pollErr))
			}
			var pending []Certainty
			for _, c := range last {
				if c.Death != DeathCertain {
					pending = append(pending, c)
				}
			}
			return last, &NotCertainError{Pending: pending, Err: ctx.Err()}
		case <-after(interval):
		}
	}
}
