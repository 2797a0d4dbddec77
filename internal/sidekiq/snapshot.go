package sidekiq

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Snapshot reads every process listed in `processes` with its heartbeat and in-flight jobs, in
// two round trips whatever the fleet size: SMEMBERS processes and SMEMBERS super_processes
// (Sidekiq Pro's super_fetch registry, small or empty) in one pipeline (FleetIDs), then one
// streamed pipeline (Scan) of HGETALL <id>, HGETALL <id>:workers and HGETALL <id>:work for
// every identity, its replies decoded as they arrive. (SMEMBERS rather than Sidekiq's SSCAN
// loop: a set of 10,000 identities is returned in about a millisecond, and the round-trip
// count stays constant.) Listed identities whose hash has expired come back with
// HashExists=false. Processes are sorted by identity.
func (c *Client) Snapshot(ctx context.Context) (*Snapshot, error) {
	return c.scanFleet(ctx, false)
}

// Processes is Snapshot without the work hashes (Jobs is nil): the heartbeats of every listed
// process in two round trips (FleetIDs, then one stream of HGETALL <id>), which is all that
// selecting processes to quiet needs — the counterpart of Sidekiq's ProcessSet. (HGETALL
// rather than HMGET of the fields used: decodeHeartbeat uses every field Sidekiq writes, and
// HMGET could not tell a hash without those fields from a missing one.)
func (c *Client) Processes(ctx context.Context) (*Snapshot, error) {
	return c.scanFleet(ctx, true)
}

// scanFleet is Snapshot, or Processes when noJobs: FleetIDs, then Scan of them all.
func (c *Client) scanFleet(ctx context.Context, noJobs bool) (*Snapshot, error) {
	ids, super, err := c.FleetIDs(ctx)
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{Processes: make([]Process, 0, len(ids))}
	err = Scan(ctx, c, ids, super, ScanOptions{NoJobs: noJobs}, func(ps []Process) []Process { return ps },
		func(ps []Process) error {
			snap.Processes = append(snap.Processes, ps...)
			return nil
		})
	if err != nil {
		return nil, err
	}
	snap.At = time.Now()
	return snap, nil
}

// SnapshotOf reads the given identities the way Snapshot does, in one pipelined round trip
// (adding SISMEMBER processes <id> for each), whether or not they are still in `processes`:
// Listed says whether each still is, and one
// whose hash is gone comes back with HashExists=false. The order of identities is kept.
func (c *Client) SnapshotOf(ctx context.Context, identities []string) (*Snapshot, error) {
	return c.read(ctx, identities, true, true)
}

// read is Snapshot, SnapshotOf and Processes: checkListed adds SISMEMBER processes per
// identity, withWork the two work hashes.
func (c *Client) read(ctx context.Context, ids []string, checkListed, withWork bool) (*Snapshot, error) {
	if !checkListed {
		sort.Strings(ids)
	}
	snap := &Snapshot{At: time.Now(), Processes: make([]Process, 0, len(ids))}
	if len(ids) == 0 {
		return snap, nil
	}
	type cmds struct {
		hb, workers, work *redis.MapStringStringCmd
		listed            *redis.BoolCmd
	}
	all := make([]cmds, len(ids))
	pipe := c.rdb.Pipeline()
	procKey := c.key(keyProcesses)
	superCmd := pipe.SMembers(ctx, c.key(keySuperProcesses))
	for i, id := range ids {
		all[i].hb = pipe.HGetAll(ctx, c.key(heartbeatKey(id)))
		if withWork {
			workers, work := workKeys(id)
			all[i].workers = pipe.HGetAll(ctx, c.key(workers))
			all[i].work = pipe.HGetAll(ctx, c.key(work))
		}
		if checkListed {
			all[i].listed = pipe.SIsMember(ctx, procKey, id)
		}
	}
	cmdsRun, err := pipe.Exec(ctx)
	if err := pipelineErr(err, cmdsRun); err != nil {
		return nil, fmt.Errorf("read heartbeats of %d processes on %s: %w", len(ids), c.Redacted(), c.connErr(err))
	}
	snap.At = time.Now()
	super := map[string]bool{}
	for _, id := range superCmd.Val() {
		super[id] = true
	}
	snap.Processes = snap.Processes[:len(ids)]
	// Decoding tens of thousands of payloads is CPU work: spread it over the available cores,
	// each worker with its own interner and its own contiguous share of the processes.
	workers := runtime.GOMAXPROCS(0)
	if workers > 8 {
		workers = 8
	}
	if len(ids) < 512 {
		workers = 1
	}
	forced := c.forced
	var wg sync.WaitGroup
	chunk := (len(ids) + workers - 1) / workers
	for start := 0; start < len(ids); start += chunk {
		end := min(start+chunk, len(ids))
		wg.Add(1)
		go func(start, end int) {
			defer wg.Done()
			in := interner{}
			for i := start; i < end; i++ {
				c := all[i]
				all[i] = cmds{} // let the replies go as soon as they are decoded
				listed := !checkListed || c.listed.Val()
				p := decodeProcess(in, ids[i], c.hb, c.workers, c.work, listed, super[ids[i]])
				if p.HashExists && p.Layout == LayoutUnknown && forced != LayoutUnknown {
					p.Layout = forced
				}
				snap.Processes[i] = p
			}
		}(start, end)
	}
	wg.Wait()
	return snap, nil
}

// decodeProcess builds one Process from its pipelined go-redis replies (workers and work nil
// for the heartbeat only).
func decodeProcess(in interner, id string, hb, workers, work *redis.MapStringStringCmd, listed, super bool) Process {
	r := procReplies{hbErr: hb.Err(), withWork: workers != nil, workersErr: cmdErr(workers), workErr: cmdErr(work)}
	for k, v := range hb.Val() {
		r.hb.set(k, v)
	}
	if r.withWork {
		for tid, raw := range workers.Val() {
			r.workers = append(r.workers, workEntry{tid, raw})
		}
		for tid, raw := range work.Val() {
			r.work = append(r.work, workEntry{tid, raw})
		}
	}
	return decodeReplies(in, id, &r, listed, super)
}

// procReplies are one process's replies: its heartbeat hash and, withWork, its two work
// hashes, each with its reply error (nil, or a redis.Error such as WRONGTYPE).
type procReplies struct {
	hb                         hbFields
	withWork                   bool
	workers, work              []workEntry
	hbErr, workersErr, workErr error
}

// decodeReplies builds one Process from its replies, however they were read.
func decodeReplies(in interner, id string, r *procReplies, listed, super bool) Process {
	p := decodeHeartbeatFields(in, id, &r.hb)
	for _, e := range []error{r.hbErr, r.workersErr, r.workErr} {
		if e != nil && !isNil(e) {
			if p.Err != "" {
				p.Err += "; "
			}
			p.Err += "read " + id + ": " + e.Error()
		}
	}
	p.Listed = listed
	p.SuperFetch = super
	if !r.withWork { // Processes: heartbeats only
		return p
	}
	var werrs []error
	if len(r.workers) > 0 {
		jobs, err := decodeWorkEntries(in, id, r.workers)
		p.Jobs = jobs
		werrs = append(werrs, err)
		if p.Version == "" && p.HashExists {
			p.Layout = Layout6 // `:workers` is only written up to 6.4.1
		}
	}
	if len(r.work) > 0 {
		jobs, err := decodeWorkEntries(in, id, r.work)
		if p.Jobs == nil {
			p.Jobs = jobs
		} else {
			p.Jobs = append(p.Jobs, jobs...)
		}
		werrs = append(werrs, err)
	}
	if err := errors.Join(werrs...); err != nil {
		if p.Err != "" {
			p.Err += "; "
		}
		p.Err += err.Error()
	}
	if p.Jobs == nil {
		p.Jobs = []Job{}
	}
	return p
}

// cmdErr is cmd's error, nil for a command that was not sent.
func cmdErr(cmd *redis.MapStringStringCmd) error {
	if cmd == nil {
		return nil
	}
	return cmd.Err()
}

// isReplyError reports whether err is an error reply from Redis rather than a transport error:
// a redis.Error, or one wrapped by single %w links. A redis.Error found only inside a joined
// error is not: go-redis's Sentinel dialer fails with "redis: all sentinels specified in
// configuration are unreachable: %w" of errors.Join of each Sentinel's error, which are
// redis.Nil when no Sentinel knows the master name and WRONGPASS for a wrong
// sentinel_password; that is a failure to reach the master, not a reply of it.
func isReplyError(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) { // errors.Unwrap does not descend into a join
		if _, ok := err.(redis.Error); ok {
			return true
		}
	}
	return false
}

// pipelineErr is the error that fails a whole pipeline, given Exec's error and its commands,
// or nil: a reply error (WRONGTYPE on a key someone else wrote) or a nil reply belongs to
// one process; anything else (connection, context) fails the read. A failed dial is
// returned by Exec alone, with no command carrying it (go-redis v9.23), so Exec's own error
// decides first.
func pipelineErr(err error, cmds []redis.Cmder) error {
	if err == nil || isNil(err) {
		return nil
	}
	if !isReplyError(err) {
		return err
	}
	for _, cmd := range cmds {
		if e := cmd.Err(); e != nil && !isNil(e) && !isReplyError(e) {
			return e
		}
	}
	return nil
}

// isNil reports whether err is go-redis's nil reply (a missing key), which go-redis returns
// as redis.Nil itself. Not errors.Is: the Sentinel dialer's error wraps redis.Nil when no
// Sentinel knows the master, and errors.Is would read that failure as "no such key" (an empty
// fleet, a free lock).
func isNil(err error) bool { return err == redis.Nil }

// Jobs lists every in-flight job of the snapshot, process by process.
func (s *Snapshot) Jobs() []Job {
	var out []Job
	for _, p := range s.Processes {
		out = append(out, p.Jobs...)
	}
	return out
}
