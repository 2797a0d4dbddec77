package sidekiq

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/drainctl/drainctl/internal/testenv"
)

// Benchmarks over a real redis-server holding a fleet in Sidekiq 6.x's layout: 10,000
// processes × 5 in-flight jobs (`<id>:workers`, string payloads). The fill runs once per
// benchmark, outside the timer, and only when -bench selects it. With DRAINCTL_BENCH_REDIS_URL
// set, the fleet is written to that (flushed!) Redis instead of a private one and left there,
// so scripts/bench.sh can time Sidekiq's Ruby API on the very same data; see BENCHMARKS.md.
const (
	benchProcesses = 10000
	benchJobs      = 5
)

func benchFleet(b *testing.B) *Client {
	b.Helper()
	ctx := context.Background()
	var c *Client
	if url := os.Getenv("DRAINCTL_BENCH_REDIS_URL"); url != "" {
		o, err := ParseURL(url)
		if err != nil {
			b.Fatal(err)
		}
		if c, err = Open(o); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
	} else {
		c = coreOpen(b, testenv.StartRedis(b), "")
	}
	rdb, ok := c.rdb.(*redis.Client)
	if !ok {
		b.Fatalf("benchmark needs a plain Redis, not %T", c.rdb)
	}
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	if _, err := fakeFleet(ctx, rdb, "", benchProcesses, benchJobs); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	return c
}

// reportMemory adds the process's peak RSS (VmHWM, the figure /usr/bin/time -v prints as
// "Maximum resident set size") and the Go heap in use to the benchmark's output.
func reportMemory(b *testing.B) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapSys)/(1<<20), "heap-sys-MiB")
	if raw, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
				if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
					b.ReportMetric(kb/1024, "peak-RSS-MiB")
				}
			}
		}
	}
}

// BenchmarkSnapshot reads the whole fleet: every heartbeat and every in-flight job, decoded
// and kept (FleetIDs, then Scan of them all).
// The Ruby counterpart is Sidekiq::WorkSet.new.each.
func BenchmarkSnapshot(b *testing.B) {
	c := benchFleet(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		snap, err := c.Snapshot(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(snap.Processes) != benchProcesses || len(snap.Processes[benchProcesses-1].Jobs) != benchJobs {
			b.Fatalf("snapshot has %d processes", len(snap.Processes))
		}
	}
	b.StopTimer()
	reportMemory(b)
}

// BenchmarkProcesses is what quiet's preflight and each metrics sample read: every heartbeat
// of the fleet (FleetIDs, then one stream of HGETALL <id>), no work hashes.
func BenchmarkProcesses(b *testing.B) {
	c := benchFleet(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		snap, err := c.Processes(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(snap.Processes) != benchProcesses || snap.Processes[benchProcesses-1].Tag == "" {
			b.Fatalf("read %d processes", len(snap.Processes))
		}
	}
	b.StopTimer()
	reportMemory(b)
}

// BenchmarkQuietAll is drainctl's quiet of a whole fleet: read every heartbeat (Processes),
// Select{All: true}, and one pipelined Quiet of all 10,000 processes. The Ruby counterpart is
// Sidekiq::ProcessSet.new.each(&:quiet!), which reads the same heartbeats.
func BenchmarkQuietAll(b *testing.B) {
	c := benchFleet(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		snap, err := c.Processes(ctx)
		if err != nil {
			b.Fatal(err)
		}
		sel, err := snap.Select(Selector{All: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Quiet(ctx, sel.Identities()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportMemory(b)
	ids, _ := c.rdb.SRandMemberN(ctx, "processes", 1).Result()
	if len(ids) != 1 || c.rdb.LIndex(ctx, ids[0]+"-signals", 0).Val() != "TSTP" {
		b.Fatalf("no TSTP pushed to %v", ids)
	}
}

// BenchmarkScan reads the whole fleet as `drainctl status --output json` does: FleetIDs, then
// Scan (one stream, decoded chunk by chunk of DefaultScanChunk processes), every heartbeat
// and job decoded (work here only counts the jobs). Compare BenchmarkSnapshot, which keeps
// every process and job in memory.
func BenchmarkScan(b *testing.B) {
	c := benchFleet(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ids, super, err := c.FleetIDs(ctx)
		if err != nil {
			b.Fatal(err)
		}
		procs, jobs := 0, 0
		err = Scan(ctx, c, ids, super, ScanOptions{}, func(ps []Process) [2]int {
			n := 0
			for _, p := range ps {
				n += len(p.Jobs)
			}
			return [2]int{len(ps), n}
		}, func(r [2]int) error {
			procs += r[0]
			jobs += r[1]
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if procs != benchProcesses || jobs != benchProcesses*benchJobs {
			b.Fatalf("scan read %d processes, %d jobs", procs, jobs)
		}
	}
	b.StopTimer()
	reportMemory(b)
}

// TestBenchFill writes the benchmark fleet into DRAINCTL_BENCH_REDIS_URL (flushed!) when
// DRAINCTL_BENCH_FILL=1, and does nothing otherwise: scripts/bench.sh refills the fleet
// with it before each whole-process run, so every heartbeat is fresh (drainctl's preflight
// refuses processes whose last beat is older than 30 s).
func TestBenchFill(t *testing.T) {
	url := os.Getenv("DRAINCTL_BENCH_REDIS_URL")
	if os.Getenv("DRAINCTL_BENCH_FILL") != "1" || url == "" {
		t.Skip("set DRAINCTL_BENCH_FILL=1 and DRAINCTL_BENCH_REDIS_URL")
	}
	ctx := context.Background()
	o, err := ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rdb, ok := c.rdb.(*redis.Client)
	if !ok {
		t.Fatalf("needs a plain Redis, not %T", c.rdb)
	}
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := fakeFleet(ctx, rdb, "", benchProcesses, benchJobs); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkWatchPoll is one Watcher.Poll of the whole fleet at 10,000 processes reading every
// process in full at every tick (one SnapshotOf pipeline: SISMEMBER processes, HGETALL <id>,
// <id>:workers and <id>:work per process), every job decoded, the states concluded: what
// every poll cost before polls read only what changed, and what a Source without Beats still
// costs. The watcher is seeded from a Snapshot outside the timer, as drain seeds it at
// preflight. BenchmarkPollWaitUnchanged, BenchmarkPollWaitAllBeat and BenchmarkPollExits
// measure the polls of the wait and exits phases as they are now.
func BenchmarkWatchPoll(b *testing.B) {
	c := benchFleet(b)
	ctx := context.Background()
	snap, err := c.Snapshot(ctx)
	if err != nil {
		b.Fatal(err)
	}
	w := NewWatcher(snapshotOnly{c}, snap.Processes)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		obs, err := w.Poll(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(obs) != benchProcesses || len(obs[benchProcesses-1].Jobs) != benchJobs {
			b.Fatalf("poll observed %d processes", len(obs))
		}
	}
	b.StopTimer()
	reportMemory(b)
}

// BenchmarkQuiet is Quiet's signal step alone at 10,000 processes: one pipeline of
// `MULTI; LPUSH <id>-signals TSTP; EXPIRE <id>-signals 60; EXEC` per process.
func BenchmarkQuiet(b *testing.B) {
	c := benchFleet(b)
	ctx := context.Background()
	ids, _, err := c.FleetIDs(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Quiet(ctx, ids); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportMemory(b)
}
