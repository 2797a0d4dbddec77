package sidekiq

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// DefaultScanChunk is how many processes a Scan writes, reads and decodes as one chunk of its
// stream: with 5 jobs each, about 350 KB of replies.
const DefaultScanChunk = 256

// ScanOptions tunes Scan.
type ScanOptions struct {
	// Chunk is the number of processes in one chunk of the stream; DefaultScanChunk when 0.
	Chunk int
	// Workers is the number of goroutines decoding chunks; GOMAXPROCS (at most 8) when 0.
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
	if _, err := pipe.Exec(ctx); err != nil && !isNil(err) {
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

// DefaultScanAhead is how many chunks of commands a Scan writes ahead of the replies it has
// read: enough to keep Redis busy while a chunk's replies travel, few enough that Redis's
// output buffer for the stream stays around a megabyte.
const DefaultScanAhead = 3

// Scan reads the processes ids (sorted, as FleetIDs returns them; super from FleetIDs) the
// way Snapshot does, in one pipelined stream on a connection of its own (see stream): HGETALL
// <id>, <id>:workers and <id>:work for each process, written opt.Chunk processes at a time,
// at most DefaultScanAhead chunks ahead of the replies read. Each chunk's raw replies are
// decoded by one of opt.Workers goroutines, which then call work on the chunk's processes
// (concurrently, so work must be safe for that). emit gets the results of work in the order
// of ids, on the calling goroutine; at most Workers+1 chunks are read and not yet emitted, so
// a fleet of any size is read in bounded memory. The round trips are one stream whatever the
// fleet size (plus the connection's AUTH/SELECT, if any). An error (a connection or context
// error, or one from emit) stops the scan and is returned once every goroutine has stopped.
func Scan[T any](ctx context.Context, c *Client, ids []string, super map[string]bool, opt ScanOptions,
	work func(ps []Process) T, emit func(T) error) error {
	chunk := opt.Chunk
	if chunk <= 0 {
		chunk = DefaultScanChunk
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = min(runtime.GOMAXPROCS(0), 8)
	}
	n := (len(ids) + chunk - 1) / chunk
	workers = max(1, min(workers, n))
	if n == 0 {
		return nil
	}
	withWork := !opt.NoJobs
	per := 1
	if withWork {
		per = 3
	}
	part := func(i int) []string { return ids[i*chunk : min((i+1)*chunk, len(ids))] }
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type task struct {
		i   int
		raw *rawChunk
	}
	slots := make(chan struct{}, workers+1) // chunks read and not yet emitted
	free := make(chan *rawChunk, workers+1) // their buffers, for reuse
	tasks := make(chan task, workers+1)
	results := make([]chan T, n)
	for i := range results {
		results[i] = make(chan T, 1)
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := interner{}
			var r procReplies
			for t := range tasks {
				ps := t.raw.decode(in, &r, part(t.i), withWork, super, c.forced)
				select {
				case free <- t.raw:
				default:
				}
				results[t.i] <- work(ps)
			}
		}()
	}
	prefix := c.key(heartbeatKey(""))
	workersSuffix, workSuffix := workKeys("")
	streamErr := make(chan error, 1)
	go func() {
		defer close(tasks)
		streamErr <- c.stream(ctx, n, DefaultScanAhead, func(w *respWriter, i int) {
			for _, id := range part(i) {
				w.keyCommand("HGETALL", prefix, id, "")
				if withWork {
					w.keyCommand("HGETALL", prefix, id, workersSuffix)
					w.keyCommand("HGETALL", prefix, id, workSuffix)
				}
			}
		}, func(r *respReader, i int) error {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			var raw *rawChunk
			select {
			case raw = <-free:
				raw.reset()
			default:
				raw = &rawChunk{}
			}
			for k := len(part(i)) * per; k > 0; k-- {
				if err := r.readHash(raw); err != nil {
					return err
				}
			}
			tasks <- task{i, raw}
			return nil
		})
	}()
	var err error
	errc := streamErr
	for i := 0; i < n && err == nil; {
		select {
		case v := <-results[i]:
			<-slots
			err = emit(v)
			i++
		case e := <-errc:
			errc = nil // the stream is over; its chunks are still being decoded
			if e != nil {
				err = c.streamErr(ctx, e, len(ids))
			}
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	cancel()
	if errc != nil {
		<-errc
	}
	wg.Wait()
	return err
}

// streamErr is the error of a stream reading n processes: the context's own error when it is
// done, otherwise the message go-redis's pipelines gave.
func (c *Client) streamErr(ctx context.Context, err error, n int) error {
	if cerr := ctxErr(ctx); cerr != nil {
		return cerr
	}
	return fmt.Errorf("read heartbeats of %d processes on %s: %w", n, c.Redacted(), c.connErr(err))
}

// decode builds the processes ids from the chunk's raw replies (per process: its heartbeat
// hash, then withWork its two work hashes), as decodeProcess does from go-redis's.
func (ch *rawChunk) decode(in interner, r *procReplies, ids []string, withWork bool, super map[string]bool, forced Layout) []Process {
	per := 1
	if withWork {
		per = 3
	}
	ps := make([]Process, len(ids))
	for k, id := range ids {
		*r = procReplies{withWork: withWork, workers: r.workers[:0], work: r.work[:0]}
		h := ch.hashes[k*per]
		r.hbErr = h.err
		for j := h.first; j < h.first+2*h.pairs; j += 2 {
			r.hb.set(ch.str(ch.spans[j]), ch.str(ch.spans[j+1]))
		}
		if withWork {
			r.workers, r.workersErr = ch.entries(r.workers, ch.hashes[k*per+1])
			r.work, r.workErr = ch.entries(r.work, ch.hashes[k*per+2])
		}
		p := decodeReplies(in, id, r, true, super[id])
		if p.HashExists && p.Layout == LayoutUnknown && forced != LayoutUnknown {
			p.Layout = forced
		}
		ps[k] = p
	}
	return ps
}

// entries appends a work hash's entries to dst: the thread ids copied (Job.Thread keeps them),
// the values views of the chunk.
func (ch *rawChunk) entries(dst []workEntry, h rawHash) ([]workEntry, error) {
	for j := h.first; j < h.first+2*h.pairs; j += 2 {
		dst = append(dst, workEntry{tid: strings.Clone(ch.str(ch.spans[j])), raw: ch.str(ch.spans[j+1])})
	}
	return dst, h.err
}
