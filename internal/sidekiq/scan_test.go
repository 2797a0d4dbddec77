package sidekiq

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/drainctl/drainctl/internal/testenv"
)

// scanAll collects what Scan reads, in order.
func scanAll(t *testing.T, c *Client, opt ScanOptions) ([]Process, error) {
	t.Helper()
	ctx := context.Background()
	ids, super, err := c.FleetIDs(ctx)
	if err != nil {
		return nil, err
	}
	var out []Process
	err = Scan(ctx, c, ids, super, opt, func(ps []Process) []Process { return ps }, func(ps []Process) error {
		out = append(out, ps...)
		return nil
	})
	return out, err
}

// TestScanIsSnapshot: Scan reads exactly what Snapshot reads (Processes without jobs when
// NoJobs), as SnapshotOf reads it through go-redis, in identity order, in two round trips
// (FleetIDs and one stream) whatever the chunk size.
func TestScanIsSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testenv.StartRedis(t)
	const n = 301
	if _, err := fakeFleet(ctx, r.Client(t), "ns", n, 3); err != nil {
		t.Fatal(err)
	}
	rdb := r.Client(t)
	rdb.SAdd(ctx, "ns:processes", "gone:1:x", "bad:2:y")                 // listed, hash expired; WRONGTYPE
	rdb.Set(ctx, "ns:bad:2:y", "not a hash", 0)                          // a per-process error
	rdb.SAdd(ctx, "ns:super_processes", "ip-10-0-0-1:1001:000000000001") // super_fetch
	c, rt := counted(t, r, "ns")
	warm(t, c, rt)
	// SnapshotOf still reads through go-redis's own pipeline: the reference.
	ids, _, err := c.FleetIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.SnapshotOf(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	procs := &Snapshot{}
	for _, p := range snap.Processes {
		p.Jobs = nil
		procs.Processes = append(procs.Processes, p)
	}
	sc := newStreamCounter(t, r)
	for _, opt := range []ScanOptions{{}, {Chunk: 1, Workers: 1}, {Chunk: 7, Workers: 3}, {Chunk: 50, NoJobs: true}, {Chunk: 1000}} {
		t.Run(fmt.Sprintf("%+v", opt), func(t *testing.T) {
			rt.n.Store(0)
			sc.take(t)
			got, err := scanAll(t, c, opt)
			if err != nil {
				t.Fatal(err)
			}
			want := snap.Processes
			if opt.NoJobs {
				want = procs.Processes
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Scan differs from Snapshot: %d vs %d processes", len(got), len(want))
				for i := range min(len(got), len(want)) {
					if !reflect.DeepEqual(got[i], want[i]) {
						t.Fatalf("first difference at %d:\n got %+v\nwant %+v", i, got[i], want[i])
					}
				}
			}
			// FleetIDs, then one stream whatever the chunk size.
			if got, streams := rt.n.Load(), sc.take(t); got != 1 || streams != 1 {
				t.Errorf("%d round trips and %d streams, want 1 and 1", got, streams)
			}
		})
	}
}

// TestScanErrors: a failing emit stops the scan with its error; a dead Redis fails it; an
// empty fleet calls nothing.
func TestScanErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testenv.StartRedis(t)
	c := coreOpen(t, r, "")
	ids, super, err := c.FleetIDs(ctx)
	if err != nil || len(ids) != 0 {
		t.Fatalf("empty fleet: %v, %v", ids, err)
	}
	if err := Scan(ctx, c, ids, super, ScanOptions{}, func([]Process) int { t.Error("work on nothing"); return 0 },
		func(int) error { t.Error("emit of nothing"); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := fakeFleet(ctx, r.Client(t), "", 40, 1); err != nil {
		t.Fatal(err)
	}
	ids, super, err = c.FleetIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	calls := 0
	err = Scan(ctx, c, ids, super, ScanOptions{Chunk: 3, Workers: 2}, func(ps []Process) int { return len(ps) },
		func(int) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("emit error: %v after %d calls, want stop after 1", err, calls)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := Scan(cctx, c, ids, super, ScanOptions{Chunk: 3}, func(ps []Process) int { return 0 },
		func(int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled scan: %v", err)
	}
	r.Stop()
	if err := Scan(ctx, c, ids, super, ScanOptions{Chunk: 3}, func(ps []Process) int { return 0 },
		func(int) error { return nil }); err == nil {
		t.Error("scan of a stopped Redis: no error")
	}
}
