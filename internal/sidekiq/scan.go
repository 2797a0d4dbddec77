package sidekiq

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// DefaultScanChunk is how many processes one pipeline of a Scan reads: with 5 jobs each,
// about 350 KB of replies.
const DefaultScanChunk = 256

// ScanOptions tunes Scan.
type ScanOptions struct {
	// Chunk is the number of processes read by one pipeline; DefaultScanChunk when 0.
	Chunk int
	// Workers is the number of chunks read and decoded at once; GOMAXPROCS (at most 8) + 1
	// when 0.
	Workers int
	// NoJobs reads the heartbeats only, as Processes does (Jobs is nil).
	NoJobs bool
}

// FleetIDs reads the identities listed in `processes`, sorted, and Sidekiq Pro's
// super_fetch registry, in one round trip: what Scan needs before its chunks.
func (c *Client) FleetIDs(ctx context.Context) (ids []string, super map[string]bool, err error) {
	pipe := c.rdb.Pipeline()
	idsCmd := pipe.SMembers(ctx, c.key(keyProcesses))
	superCmd := pipe.SMembers(ctx, c.key(keySuperProcesses))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fmt.Errorf("read %s on %s: %w", c.key(keyProcesses), c.Redacted(), c.connErr(err))
	}
	ids = idsCmd.Val()
	sort.Strings(ids)
	super = map[string]bool{}
	for _, id := range superCmd.Val() {
		super[id] = true
	}
	return ids, super, nil
}

// Scan reads the processes ids (sorted, as FleetIDs returns them; super from FleetIDs) the
// way Snapshot does, but a chunk at a time, so that a fleet of any size is read in bounded
// memory: each chunk of opt.Chunk processes is one pipeline (HGETALL <id>, <id>:workers and
// <id>:work for each), read and decoded by one of opt.Workers goroutines, which then call
// work on the chunk's processes (concurrently, so work must be safe for that). emit gets the
// results of work in the order of ids, on the calling goroutine; at most Workers+1 chunks are
// in flight or waiting for emit. The round trips are ceil(len(ids)/Chunk), Workers of them
// in flight at a time. An error (a connection or context error from a chunk, or from emit)
// stops the scan and is returned once every worker has stopped.
func Scan[T any](ctx context.Context, c *Client, ids []string, super map[string]bool, opt ScanOptions,
	work func(ps []Process) T, emit func(T) error) error {
	chunk := opt.Chunk
	if chunk <= 0 {
		chunk = DefaultScanChunk
	}
	workers := opt.Workers
	if workers <= 0 {
		// One more than the cores: a worker waiting for Redis leaves its core to another.
		workers = min(runtime.GOMAXPROCS(0), 8) + 1
	}
	n := (len(ids) + chunk - 1) / chunk
	workers = max(1, min(workers, n))
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	results := make([]chan result, n)
	for i := range results {
		results[i] = make(chan result, 1)
	}
	slots := make(chan struct{}, workers+1)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				part := ids[i*chunk : min((i+1)*chunk, len(ids))]
				ps, err := c.readChunk(ctx, part, super, !opt.NoJobs)
				if err != nil {
					results[i] <- result{err: err}
					continue
				}
				results[i] <- result{v: work(ps)}
			}
		}()
	}
	var err error
	for i := 0; i < n && err == nil; i++ {
		select {
		case r := <-results[i]:
			<-slots
			if r.err != nil {
				err = r.err
			} else {
				err = emit(r.v)
			}
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	cancel()
	wg.Wait()
	return err
}

// readChunk reads and decodes the processes ids (listed ones) in one pipeline.
func (c *Client) readChunk(ctx context.Context, ids []string, super map[string]bool, withWork bool) ([]Process, error) {
	type cmds struct{ hb, workers, work *redis.MapStringStringCmd }
	all := make([]cmds, len(ids))
	pipe := c.rdb.Pipeline()
	for i, id := range ids {
		all[i].hb = pipe.HGetAll(ctx, c.key(heartbeatKey(id)))
		if withWork {
			workers, work := workKeys(id)
			all[i].workers = pipe.HGetAll(ctx, c.key(workers))
			all[i].work = pipe.HGetAll(ctx, c.key(work))
		}
	}
	cmdsRun, err := pipe.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) {
		for _, cmd := range cmdsRun {
			if e := cmd.Err(); e != nil && !errors.Is(e, redis.Nil) && !isReplyError(e) {
				return nil, fmt.Errorf("read heartbeats of %d processes on %s: %w", len(ids), c.Redacted(), c.connErr(e))
			}
		}
	}
	in := interner{}
	ps := make([]Process, len(ids))
	for i, id := range ids {
		cm := all[i]
		all[i] = cmds{}
		p := decodeProcess(in, id, cm.hb, cm.workers, cm.work, true, super[id])
		if p.HashExists && p.Layout == LayoutUnknown && c.forced != LayoutUnknown {
			p.Layout = c.forced
		}
		ps[i] = p
	}
	return ps, nil
}
