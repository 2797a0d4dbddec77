package sidekiq

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Benchmarks of one poll of drain's wait and exits phases (Watcher.Poll) at 10,000 processes
// × 5 in-flight jobs, on the fleet benchFleet writes (see bench_test.go). The watcher is seeded
// from a Snapshot and polled once outside the timer, as the quiet phase's polls leave it
// before the wait phase. Each reports round-trips/op: the commands and pipelines sent to Redis
// per poll, counted by a go-redis hook.

// pollBench is a fleet ready for watcher benchmarks: its client, its identities, the snapshot a
// watcher is seeded from, and the round-trip counter on the client.
type pollBench struct {
	c    *Client
	rdb  *redis.Client
	ids  []string
	snap *Snapshot
	rt   *roundTrips
	// trips counts the round trips of the timed polls.
	trips int64
}

func newPollBench(b *testing.B) *pollBench {
	b.Helper()
	ctx := context.Background()
	c := benchFleet(b)
	rdb := c.rdb.(*redis.Client)
	// The wait phase follows the quiet: every process acknowledged it.
	ids, _, err := c.FleetIDs(ctx)
	if err != nil {
		b.Fatal(err)
	}
	pb := &pollBench{c: c, rdb: rdb, ids: ids, rt: &roundTrips{}}
	pb.pipe(b, func(p redis.Pipeliner, id string) { p.HSet(ctx, id, "quiet", "true") })
	if pb.snap, err = c.Snapshot(ctx); err != nil {
		b.Fatal(err)
	}
	rdb.AddHook(pb.rt)
	return pb
}

// pipe runs f for every identity, in pipelines of 1,000.
func (pb *pollBench) pipe(b *testing.B, f func(p redis.Pipeliner, id string)) {
	b.Helper()
	ctx := context.Background()
	for start := 0; start < len(pb.ids); start += 1000 {
		p := pb.rdb.Pipeline()
		for _, id := range pb.ids[start:min(start+1000, len(pb.ids))] {
			f(p, id)
		}
		if _, err := p.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// watcher returns a watcher of the whole fleet, seeded and polled once (outside the timer).
func (pb *pollBench) watcher(b *testing.B) *Watcher {
	b.Helper()
	w := pb.c.NewWatcher(pb.snap.Processes)
	if _, err := w.Poll(context.Background()); err != nil {
		b.Fatal(err)
	}
	return w
}

// poll runs one timed Poll and checks every observation with check.
func (pb *pollBench) poll(b *testing.B, w *Watcher, check func(o Observation) error) {
	b.Helper()
	before := pb.rt.n.Load()
	b.StartTimer()
	obs, err := w.Poll(context.Background())
	b.StopTimer()
	pb.trips += pb.rt.n.Load() - before
	if err != nil {
		b.Fatal(err)
	}
	if len(obs) != len(pb.ids) {
		b.Fatalf("poll observed %d processes, want %d", len(obs), len(pb.ids))
	}
	for _, o := range obs {
		if err := check(o); err != nil {
			b.Fatalf("%s: %v", o.Identity, err)
		}
	}
}

func quietWithJobs(o Observation) error {
	if o.State != StateQuiet || len(o.Jobs) != benchJobs {
		return fmt.Errorf("%s with %d jobs, want quiet with %d", o.State, len(o.Jobs), benchJobs)
	}
	return nil
}

// BenchmarkPollWaitUnchanged is one poll of the wait phase when no process beat since the last
// poll: every process quiet and busy with 5 jobs, nothing changed in Redis.
func BenchmarkPollWaitUnchanged(b *testing.B) {
	pb := newPollBench(b)
	w := pb.watcher(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		pb.poll(b, w, quietWithJobs)
	}
	pb.report(b)
}

// BenchmarkPollWaitAllBeat is one poll of the wait phase when every process beat since the
// last poll (its `beat` moved) and is still busy with its 5 jobs, the poll before having
// found nothing moved (an untimed poll before each): the worst case of a wait phase poll, the
// Beats round trip and then a full read of all. (A poll after one where more than half moved
// reads all in full at once instead: one round trip, as BenchmarkWatchPoll.)
func BenchmarkPollWaitAllBeat(b *testing.B) {
	pb := newPollBench(b)
	w := pb.watcher(b)
	ctx := context.Background()
	beat := pb.snap.Processes[0].Beat
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		if _, err := w.Poll(ctx); err != nil { // nothing moved
			b.Fatal(err)
		}
		beat = beat.Add(beatPause6)
		raw := fmt.Sprintf("%.6f", float64(beat.UnixNano())/1e9)
		pb.pipe(b, func(p redis.Pipeliner, id string) { p.HSet(ctx, id, "beat", raw) })
		pb.poll(b, w, func(o Observation) error {
			if !o.LastBeat.Equal(beat) {
				return fmt.Errorf("last beat %s, want %s", o.LastBeat, beat)
			}
			return quietWithJobs(o)
		})
	}
	pb.report(b)
}

// BenchmarkPollExits is one poll of the exits phase while processes leave: since the last
// poll, a share of the fleet stopped cleanly (Sidekiq's clear_heartbeat: out of `processes`,
// work hash unlinked, heartbeat hash left to expire); the others are still quiet and busy.
// Each iteration starts a fresh watcher (outside the timer) and puts the leavers back after.
func BenchmarkPollExits(b *testing.B) {
	pb := newPollBench(b)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		every int // every n-th process leaves
	}{
		{"all-left", 1},
		{"tenth-left", 10},
	} {
		b.Run(tc.name, func(b *testing.B) {
			pb.trips = 0
			leaves := func(i int) bool { return i%tc.every == 0 }
			left := map[string]bool{}
			for i, id := range pb.ids {
				left[id] = leaves(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.StopTimer()
			for i := 0; i < b.N; i++ {
				w := pb.watcher(b)
				pb.pipe(b, func(p redis.Pipeliner, id string) {
					if left[id] {
						p.SRem(ctx, "processes", id)
						p.Rename(ctx, id+":workers", id+":workers.bench")
					}
				})
				pb.poll(b, w, func(o Observation) error {
					if left[o.Identity] {
						if o.State != StateGone {
							return fmt.Errorf("%s (%s), want gone", o.State, o.Evidence)
						}
						return nil
					}
					return quietWithJobs(o)
				})
				pb.pipe(b, func(p redis.Pipeliner, id string) {
					if left[id] {
						p.SAdd(ctx, "processes", id)
						p.Rename(ctx, id+":workers.bench", id+":workers")
					}
				})
			}
			pb.report(b)
		})
	}
}

// report adds the round trips per poll and the memory figures.
func (pb *pollBench) report(b *testing.B) {
	b.ReportMetric(float64(pb.trips)/float64(b.N), "round-trips/op")
	reportMemory(b)
}

// BenchmarkCoverage is the processing-gap half of drain's metrics sample at 10,000 processes
// in a drain's wait phase: Coverage.Working of the selection's queues with the whole fleet
// quiet (every process works the queues, none may take a job), after a first Working outside
// the timer has read every heartbeat once. BenchmarkSample in internal/drain times the whole
// sample against reading every heartbeat at each poll.
func BenchmarkCoverage(b *testing.B) {
	pb := newPollBench(b)
	ctx := context.Background()
	cv := pb.c.NewCoverage([]string{"default", "mail"})
	if working, err := cv.Working(ctx); err != nil || working {
		b.Fatalf("first Working = %v, %v; want false: every process is quiet", working, err)
	}
	before := pb.rt.n.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if working, err := cv.Working(ctx); err != nil || working {
			b.Fatalf("Working = %v, %v; want false", working, err)
		}
	}
	b.StopTimer()
	pb.trips = pb.rt.n.Load() - before
	pb.report(b)
}
