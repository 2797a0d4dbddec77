package sidekiq

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/drainctl/drainctl/internal/testenv"
)

// cmdCounter counts round trips and, by name, the commands they carry.
type cmdCounter struct {
	mu    sync.Mutex
	trips int
	names map[string]int
}

func (h *cmdCounter) add(cmds []redis.Cmder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(cmds) == 0 || cmds[0].Name() == "hello" || cmds[0].Name() == "client" {
		return // connection set-up
	}
	h.trips++
	for _, c := range cmds {
		h.names[c.Name()]++
	}
}

func (h *cmdCounter) take() (trips int, names map[string]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	trips, names = h.trips, h.names
	h.trips, h.names = 0, map[string]int{}
	return trips, names
}

func (h *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.add([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}
func (h *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.add(cmds)
		return next(ctx, cmds)
	}
}

// snapshotOnly hides Beats: a Source that can only read processes in full.
type snapshotOnly struct{ Source }

// TestWatcherReadsOnlyWhatChanged follows 20 processes through ticks where some beat, leave,
// lose their hash or are marked dead, and checks which processes each tick read in full
// (HGETALL of the heartbeat and both work hashes), how many round trips it took, and that the
// observations are those of a full read every tick (the same Source without Beats).
func TestWatcherReadsOnlyWhatChanged(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	const n = 20
	type step struct {
		name    string
		do      func(f *deltaFix)
		trips   int // round trips with Beats
		full    int // processes read in full with Beats
		beats   int // processes whose Beat was read
		fullAll int // processes read in full without Beats (every one not yet gone or dead)
	}
	steps := []step{
		{name: "first tick: one full read of all", trips: 1, full: n, fullAll: n},
		{name: "nothing moved: the beats only", trips: 1, beats: n, fullAll: n},
		{name: "three beat: one finished a job, one with the same jobs, one saying it is not quiet",
			do: func(f *deltaFix) {
				f.beat(0, true, "p0-b")
				f.beat(1, true, "p1-a", "p1-b")
				f.beat(2, false, "p2-a", "p2-b")
			},
			trips: 2, beats: n, full: 3, fullAll: n},
		{name: "one left processes, its work hash not yet unlinked", do: func(f *deltaFix) { f.srem(3) },
			trips: 2, beats: n, full: 1, fullAll: n},
		{name: "it unlinked its work hash: gone clean", do: func(f *deltaFix) { f.unlink(3) },
			trips: 2, beats: n, full: 1, fullAll: n},
		{name: "gone is not read again; one's hash disappeared", do: func(f *deltaFix) { f.del(4) },
			trips: 2, beats: n - 1, full: 1, fullAll: n - 1},
		{name: "a missing hash is not read in full again", trips: 1, beats: n - 1, fullAll: n - 1},
		{name: "its hash is back (same beat, as after a restore)", do: func(f *deltaFix) { f.restore(4) },
			trips: 2, beats: n - 1, full: 1, fullAll: n - 1},
		{name: "a torn beat: busy moved, work hash not yet", do: func(f *deltaFix) { f.torn(5) },
			trips: 2, beats: n - 1, full: 1, fullAll: n - 1},
		{name: "marked dead: never read again", do: func(f *deltaFix) { f.w.MarkDead(f.ids[6], "exit 137") },
			trips: 1, beats: n - 2, fullAll: n - 2},
		{name: "every process left beat", do: func(f *deltaFix) {
			for i := range f.ids {
				if i != 3 && i != 6 {
					f.beatAt(i, 10*time.Second, true, fmt.Sprintf("p%d-a", i), fmt.Sprintf("p%d-b", i))
				}
			}
		}, trips: 2, beats: n - 2, full: n - 2, fullAll: n - 2},
		{name: "after a tick where most moved: one full read of all at once", trips: 1, full: n - 2, fullAll: n - 2},
		{name: "nothing moved at that one: the beats only again", trips: 1, beats: n - 2, fullAll: n - 2},
		{name: "everyone left or died: no read", do: func(f *deltaFix) {
			for _, id := range f.ids {
				f.w.MarkDead(id, "exit 137")
			}
		}},
	}
	var (
		mu   sync.Mutex
		seen = map[string][][]Observation{} // by variant: the observations of each step
	)
	for _, delta := range []bool{true, false} {
		name := "with Beats"
		if !delta {
			name = "SnapshotOf only"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			ns := strings.ReplaceAll(name, " ", "-")
			f := newDeltaFix(t, r, ns, n, delta)
			var got [][]Observation
			for i, s := range steps {
				if s.do != nil {
					s.do(f)
				}
				f.h.take()
				obs, err := f.w.Poll(ctx)
				if err != nil {
					t.Fatalf("step %d (%s): %v", i, s.name, err)
				}
				trips, names := f.h.take()
				wantTrips, wantFull, wantBeats := s.trips, s.full, s.beats
				if !delta {
					wantTrips, wantFull, wantBeats = min(1, s.fullAll), s.fullAll, 0
				}
				if trips != wantTrips || names["hgetall"] != 3*wantFull || names["hmget"] != wantBeats {
					t.Errorf("step %d (%s): %d round trips, %d HGETALL, %d HMGET; want %d, %d (3 per process read in full), %d",
						i, s.name, trips, names["hgetall"], names["hmget"], wantTrips, 3*wantFull, wantBeats)
				}
				got = append(got, obs)
			}
			mu.Lock()
			seen[name] = got
			mu.Unlock()
		})
	}
	// Both variants must have observed the same things, step by step.
	a, b := seen["with Beats"], seen["SnapshotOf only"]
	if len(a) != len(steps) || len(b) != len(steps) {
		t.Fatalf("missing steps: %d and %d", len(a), len(b))
	}
	for i := range steps {
		for j := range a[i] {
			x, y := a[i][j], b[i][j]
			if x.State != y.State || len(x.Jobs) != len(y.Jobs) || x.Listed != y.Listed || x.HashExists != y.HashExists ||
				!x.LastBeat.Equal(y.LastBeat) || x.Process.Busy != y.Process.Busy || x.Process.Quiet != y.Process.Quiet ||
				!x.Since.Equal(y.Since) || x.Evidence != y.Evidence {
				t.Errorf("step %d (%s), process %d: with Beats %s jobs=%d listed=%v hash=%v busy=%d quiet=%v %q; "+
					"SnapshotOf only %s jobs=%d listed=%v hash=%v busy=%d quiet=%v %q", i, steps[i].name, j,
					x.State, len(x.Jobs), x.Listed, x.HashExists, x.Process.Busy, x.Process.Quiet, x.Evidence,
					y.State, len(y.Jobs), y.Listed, y.HashExists, y.Process.Busy, y.Process.Quiet, y.Evidence)
			}
		}
	}
	// And what they observed is what happened.
	want := []struct {
		state State
		jobs  int
	}{
		{StateQuiet, 1}, {StateQuiet, 2}, {StateRunning, 2}, {StateGone, 2}, {StateQuiet, 2}, {StateQuiet, 2},
	}
	last := a[9] // after "marked dead: never read again"
	for i, w := range want {
		if o := last[i]; o.State != w.state || len(o.Jobs) != w.jobs {
			t.Errorf("process %d ended %s with %d jobs (%s), want %s with %d", i, o.State, len(o.Jobs), o.Evidence, w.state, w.jobs)
		}
	}
}

// deltaFix is one variant of TestWatcherReadsOnlyWhatChanged: n quiet processes with two jobs
// each, in a namespace of their own, on a client whose commands are counted.
type deltaFix struct {
	t    *testing.T
	ctx  context.Context
	rdb  *redis.Client // uncounted, for the changes
	ns   string
	ids  []string
	at   time.Time
	h    *cmdCounter
	w    *Watcher
	kept map[string]map[string]string // a deleted heartbeat hash, for restore
}

func newDeltaFix(t *testing.T, r *testenv.Redis, ns string, n int, delta bool) *deltaFix {
	t.Helper()
	f := &deltaFix{t: t, ctx: context.Background(), rdb: r.Client(t), ns: ns, at: testenv.ClockStart,
		h: &cmdCounter{names: map[string]int{}}, kept: map[string]map[string]string{}}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("ip-10-2-0-%d:7:dddddddddddd", i)
		f.ids = append(f.ids, id)
		if err := handBeat(f.ctx, f.rdb, ns, id, "", f.at, true, -1, fmt.Sprintf("p%d-a", i), fmt.Sprintf("p%d-b", i)); err != nil {
			t.Fatal(err)
		}
	}
	counted := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = counted.Close() })
	counted.AddHook(f.h)
	c := NewClient(counted, ns)
	var src Source = c
	if !delta {
		src = snapshotOnly{c}
	}
	procs := make([]Process, n)
	for i, id := range f.ids {
		procs[i] = Process{Identity: id}
	}
	f.w = NewWatcher(src, procs)
	clock := testenv.NewFakeClock()
	f.w.Now, f.w.After, f.w.Interval = clock.Now, clock.After, time.Second
	return f
}

func (f *deltaFix) key(s string) string { return f.ns + ":" + s }

func (f *deltaFix) beat(i int, quiet bool, jids ...string) {
	f.t.Helper()
	if err := handBeat(f.ctx, f.rdb, f.ns, f.ids[i], "", f.at.Add(5*time.Second), quiet, -1, jids...); err != nil {
		f.t.Fatal(err)
	}
}

func (f *deltaFix) beatAt(i int, d time.Duration, quiet bool, jids ...string) {
	f.t.Helper()
	if err := handBeat(f.ctx, f.rdb, f.ns, f.ids[i], "", f.at.Add(d), quiet, -1, jids...); err != nil {
		f.t.Fatal(err)
	}
}

func (f *deltaFix) torn(i int) { // the heartbeat says one job, the work hash still two
	f.t.Helper()
	if err := f.rdb.HSet(f.ctx, f.key(f.ids[i]), "busy", 1, "beat", fmt.Sprintf("%.6f", float64(f.at.Add(5*time.Second).UnixNano())/1e9)).Err(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *deltaFix) srem(i int) { f.do("srem", f.key("processes"), f.ids[i]) }
func (f *deltaFix) unlink(i int) {
	f.do("unlink", f.key(f.ids[i]+":workers"), f.key(f.ids[i]+":work"))
}

func (f *deltaFix) del(i int) {
	f.t.Helper()
	m, err := f.rdb.HGetAll(f.ctx, f.key(f.ids[i])).Result()
	if err != nil {
		f.t.Fatal(err)
	}
	f.kept[f.ids[i]] = m
	f.do("del", f.key(f.ids[i]))
}

func (f *deltaFix) restore(i int) {
	f.t.Helper()
	if err := f.rdb.HSet(f.ctx, f.key(f.ids[i]), f.kept[f.ids[i]]).Err(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *deltaFix) do(args ...any) {
	f.t.Helper()
	if err := f.rdb.Do(f.ctx, args...).Err(); err != nil {
		f.t.Fatalf("%v: %v", args, err)
	}
}

// TestBeats reads the state fields of processes in every condition a watch meets, and checks
// them against a full read of the same processes.
func TestBeats(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx := context.Background()
	at := testenv.ClockStart.Add(123456789 * time.Nanosecond)
	tests := []struct {
		name   string
		setup  func(id string) error
		listed bool
		fields bool
		err    bool
	}{
		{"listed with a heartbeat", func(id string) error { return handBeat(ctx, rdb, "ns", id, "", at, false, -1, "j1") }, true, true, false},
		{"7.x, quiet", func(id string) error { return handBeat(ctx, rdb, "ns", id, "7.3.2", at, true, 0) }, true, true, false},
		{"left processes, hash still there", func(id string) error {
			if err := handBeat(ctx, rdb, "ns", id, "", at, true, 0); err != nil {
				return err
			}
			return rdb.SRem(ctx, "ns:processes", id).Err()
		}, false, true, false},
		{"listed, hash expired", func(id string) error { return rdb.SAdd(ctx, "ns:processes", id).Err() }, true, false, false},
		{"never there", func(id string) error { return nil }, false, false, false},
		{"someone else's string at the key", func(id string) error {
			if err := rdb.SAdd(ctx, "ns:processes", id).Err(); err != nil {
				return err
			}
			return rdb.Set(ctx, "ns:"+id, "x", 0).Err()
		}, true, false, true},
		{"beat in milliseconds", func(id string) error {
			return rdb.HSet(ctx, "ns:"+id, "beat", "1764043200123.456", "busy", " 3 ", "quiet", "false").Err()
		}, false, true, false},
	}
	var ids []string
	for i, tc := range tests {
		id := fmt.Sprintf("ip-10-3-0-%d:9:eeeeeeeeeeee", i)
		ids = append(ids, id)
		if err := tc.setup(id); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	c := NewClient(rdb, "ns")
	beats, err := c.Beats(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.SnapshotOf(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, p := beats[i], snap.Processes[i]
			if b.Identity != ids[i] || b.Listed != tc.listed || b.Fields != tc.fields || (b.Err != "") != tc.err {
				t.Fatalf("beat %+v, want listed %v, fields %v, error %v", b, tc.listed, tc.fields, tc.err)
			}
			if b.Listed != p.Listed || b.Fields != p.HashExists {
				t.Errorf("beat listed %v fields %v, the full read listed %v hash %v", b.Listed, b.Fields, p.Listed, p.HashExists)
			}
			if b.Fields && (!b.Beat.Equal(p.Beat) || b.Busy != p.Busy || b.Quiet != p.Quiet) {
				t.Errorf("beat %s busy %d quiet %v, the full read %s, %d, %v", b.Beat, b.Busy, b.Quiet, p.Beat, p.Busy, p.Quiet)
			}
		})
	}
	if got, err := c.Beats(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("Beats of nothing = %v, %v", got, err)
	}
}

// TestBeatTime checks the beat parser against the full heartbeat decoder on the forms Sidekiq
// writes (Ruby's Float#to_s of Time.now.to_f) and on odd ones.
func TestBeatTime(t *testing.T) {
	for _, s := range []string{
		"1764043200.1234567", "1764043200.123456", "1764043200.1234565", "1764043200.9999996", "1764043200.0",
		"1764043200", "1764043200.5", " 1764043200.25 ", "1764043200123.456", "1764043200123", "1.7640432001234567e9",
		"1.764043200123e12", "0", "0.5", "-5", "", "x", "1764043200.", ".5", "1e400", "NaN", "99999999999999999",
		"1764043200.123456789123",
	} {
		want := decodeHeartbeat("h:1:a", map[string]string{"beat": s}).Beat
		if got := beatTime(s); !got.Equal(want) {
			t.Errorf("beatTime(%q) = %s, want %s as the full read decodes it", s, got, want)
		}
	}
}

// TestCoverage answers "is a live, non-quiet process working these queues" tick after tick as
// a full read of every heartbeat would, reading each heartbeat in full only once.
func TestCoverage(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx := context.Background()
	at := testenv.ClockStart
	// beat writes a heartbeat working the given queues (6.x layout).
	beat := func(id string, quiet bool, queues ...string) {
		t.Helper()
		info := fmt.Sprintf(`{"hostname":"h","pid":1,"queues":["%s"],"identity":"%s"}`, strings.Join(queues, `","`), id)
		if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.SAdd(ctx, "cv:processes", id)
			p.HSet(ctx, "cv:"+id, "info", info, "busy", 0, "beat", fmt.Sprintf("%.6f", float64(at.Unix())),
				"quiet", fmt.Sprint(quiet))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	counter := &cmdCounter{names: map[string]int{}}
	counted := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = counted.Close() })
	counted.AddHook(counter)
	c := NewClient(counted, "cv")
	cv := c.NewCoverage([]string{"default", "mail"})
	steps := []struct {
		name         string
		do           func()
		want         bool
		trips        int
		hgetall, hmg int
	}{
		{"no process", func() {}, false, 1, 0, 0},
		{"one works default", func() { beat("a", false, "default") }, true, 2, 1, 0},
		{"it is quiet; another works other queues only", func() { beat("a", true, "default"); beat("b", false, "other") }, false, 2, 1, 1},
		{"nothing new: a quiet process is never read again", func() {}, false, 1, 0, 0},
		{"a third works mail and other", func() { beat("c", false, "other", "mail") }, true, 2, 1, 0},
		{"its hash expired, still listed", func() { rdb.Del(ctx, "cv:c") }, false, 2, 0, 1},
		{"it left processes", func() { rdb.SRem(ctx, "cv:processes", "c") }, false, 1, 0, 0},
		{"listed without a hash, never seen", func() { rdb.SAdd(ctx, "cv:processes", "d") }, false, 2, 1, 0},
		{"it writes its heartbeat", func() { beat("d", false, "mail") }, true, 2, 1, 0},
		{"still working", func() {}, true, 2, 0, 1},
		{"only processes working other queues or quiet left", func() { rdb.SRem(ctx, "cv:processes", "d") }, false, 1, 0, 0},
	}
	for i, s := range steps {
		s.do()
		counter.take()
		got, err := cv.Working(ctx)
		trips, names := counter.take()
		if err != nil || got != s.want {
			t.Fatalf("step %d (%s): working = %v, %v; want %v", i, s.name, got, err, s.want)
		}
		if trips != s.trips || names["hgetall"] != s.hgetall || names["hmget"] != s.hmg {
			t.Errorf("step %d (%s): %d round trips, %d HGETALL, %d HMGET; want %d, %d, %d",
				i, s.name, trips, names["hgetall"], names["hmget"], s.trips, s.hgetall, s.hmg)
		}
		// The same question answered from a full read of every heartbeat.
		snap, err := NewClient(rdb, "cv").Processes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		full := false
		for _, p := range snap.Processes {
			if p.HashExists && p.Listed && !p.Quiet && cv.worksOne(p.Queues) {
				full = true
			}
		}
		if full != got {
			t.Errorf("step %d (%s): Coverage says %v, a full read %v", i, s.name, got, full)
		}
	}
}
