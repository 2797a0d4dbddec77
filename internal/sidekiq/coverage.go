package sidekiq

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Coverage answers, poll after poll, whether any live process that is not quiet works one of a
// set of queues — listed in `processes`, its heartbeat hash present, `quiet` not "true", one of
// the queues among its own: the measure of a processing gap. It reads every process's full
// heartbeat only once: a process's queues are fixed for its life (its identity is new at every
// start), so later reads need only its `quiet` field, and only for the processes that work one
// of the queues; and quiet is one-way (a process never un-quiets), so a process once seen quiet
// is never read again.
//
// Each Working costs at most two round trips whatever the fleet: SMEMBERS processes, then one
// pipeline of HMGET <id> quiet beat for every listed process that works one of the queues and
// was not quiet at the last read, and HGETALL <id> for every listed process not seen before —
// none when there is nothing to read, as in a drain's wait phase, where every selected process
// is quiet. A Coverage is not safe for concurrent use.
type Coverage struct {
	c      *Client
	queues map[string]bool
	// works is, for each process whose heartbeat was read, whether it may work one of the
	// queues: false once it is known to work none of them, or to be quiet.
	works map[string]bool
}

// NewCoverage returns a Coverage of the given queues.
func (c *Client) NewCoverage(queues []string) *Coverage {
	cv := &Coverage{c: c, queues: map[string]bool{}, works: map[string]bool{}}
	for _, q := range queues {
		cv.queues[q] = true
	}
	return cv
}

// Working reports whether a live process that is not quiet works one of the queues now.
func (cv *Coverage) Working(ctx context.Context) (bool, error) {
	c := cv.c
	ids, err := c.rdb.SMembers(ctx, c.key(keyProcesses)).Result()
	if err != nil {
		return false, fmt.Errorf("read %s on %s: %w", c.key(keyProcesses), c.Redacted(), c.connErr(err))
	}
	type read struct {
		id    string
		quiet *redis.SliceCmd           // a process known to work one of the queues
		hb    *redis.MapStringStringCmd // a process not seen before
	}
	var reads []read
	pipe := c.rdb.Pipeline()
	for _, id := range ids {
		works, known := cv.works[id]
		switch {
		case !known:
			reads = append(reads, read{id: id, hb: pipe.HGetAll(ctx, c.key(heartbeatKey(id)))})
		case works:
			reads = append(reads, read{id: id, quiet: pipe.HMGet(ctx, c.key(heartbeatKey(id)), fieldQuiet, fieldBeat)})
		}
	}
	if len(reads) == 0 {
		return false, nil
	}
	cmdsRun, err := pipe.Exec(ctx)
	if err := pipelineErr(err, cmdsRun); err != nil {
		return false, fmt.Errorf("read the heartbeats of %d processes on %s: %w", len(reads), c.Redacted(), c.connErr(err))
	}
	working := false
	for _, r := range reads {
		if r.hb != nil {
			p := decodeHeartbeat(r.id, r.hb.Val())
			if !p.HashExists {
				continue // expired: nothing to learn its queues from
			}
			cv.works[r.id] = cv.worksOne(p.Queues) && !p.Quiet
			working = working || cv.works[r.id]
			continue
		}
		vals := r.quiet.Val()
		if len(vals) != 2 || (vals[0] == nil && vals[1] == nil) {
			continue // hash gone (Sidekiq writes quiet and beat together)
		}
		if quiet, _ := vals[0].(string); quiet == "true" {
			cv.works[r.id] = false // for good: quiet is one-way
			continue
		}
		working = true
	}
	return working, nil
}

func (cv *Coverage) worksOne(queues []string) bool {
	for _, q := range queues {
		if cv.queues[q] {
			return true
		}
	}
	return false
}
