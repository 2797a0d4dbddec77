package sidekiq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/drainctl/drainctl/internal/testenv"
)

// fakeClock is the watcher's clock in unit tests (testenv's one fake clock).
type fakeClock = testenv.FakeClock

func newFakeClock() *fakeClock { return testenv.NewFakeClock() }

// handBeat writes one heartbeat of identity as Sidekiq does (6.4.1 layout without version,
// 7.x layout with it): the work hash in one MULTI, then the registry and heartbeat hash in
// another, every timestamp from the fake clock. busy < 0 means len(jids).
func handBeat(ctx context.Context, rdb *redis.Client, ns, id, version string, at time.Time, quiet bool, busy int, jids ...string) error {
	k := func(s string) string {
		if ns == "" {
			return s
		}
		return ns + ":" + s
	}
	if busy < 0 {
		busy = len(jids)
	}
	workKey := k(id + ":work")
	if version == "" {
		workKey = k(id + ":workers")
	}
	info := map[string]any{"hostname": strings.Split(id, ":")[0], "started_at": float64(at.Unix()) - 100,
		"pid": 4242, "tag": "unit", "concurrency": 5, "queues": []string{"default"}, "labels": []string{},
		"identity": id}
	if version != "" {
		info["version"] = version
		info["weights"] = []map[string]int{{"default": 0}}
	}
	infoJSON, err := json.Marshal(info)
	if err != nil {
		return err
	}
	_, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Unlink(ctx, workKey)
		for n, jid := range jids {
			w, _ := json.Marshal(map[string]any{"queue": "default", "payload": handPayload(jid, "default"), "run_at": at.Unix()})
			p.HSet(ctx, workKey, strconv.FormatInt(int64(1000+n), 36), w)
		}
		if len(jids) > 0 {
			p.Expire(ctx, workKey, time.Minute)
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, k("processes"), id)
		p.HSet(ctx, k(id), "info", infoJSON, "busy", busy, "beat", fmt.Sprintf("%.6f", float64(at.UnixNano())/1e9),
			"quiet", strconv.FormatBool(quiet), "rss", 123456, "rtt_us", 250)
		p.Expire(ctx, k(id), time.Minute)
		return nil
	})
	return err
}

// handPayload is a job payload as Sidekiq's client writes it.
func handPayload(jid, queue string) string {
	return `{"retry":true,"queue":"` + queue + `","class":"SleepJob","args":[1.5],"jid":"` + jid +
		`","created_at":1764043200.123456,"enqueued_at":1764043200.123457}`
}

// wfix is one state-machine case's world: a real Redis, a fake clock and a watcher.
type wfix struct {
	t       *testing.T
	ctx     context.Context
	rdb     *redis.Client
	id      string
	version string
	clock   *fakeClock
	w       *Watcher
}

func (f *wfix) beat(quiet bool, jids ...string) {
	f.t.Helper()
	if err := handBeat(f.ctx, f.rdb, "", f.id, f.version, f.clock.Now(), quiet, -1, jids...); err != nil {
		f.t.Fatal(err)
	}
}

// beatAgo writes a heartbeat whose `beat` is d before the fake clock's now (d < 0: after it,
// as from a process whose clock runs ahead).
func (f *wfix) beatAgo(d time.Duration, quiet bool, jids ...string) {
	f.t.Helper()
	if err := handBeat(f.ctx, f.rdb, "", f.id, f.version, f.clock.Now().Add(-d), quiet, -1, jids...); err != nil {
		f.t.Fatal(err)
	}
}

func (f *wfix) tornBeat(quiet bool, busy int) { // heartbeat says busy, work hash empty
	f.t.Helper()
	if err := handBeat(f.ctx, f.rdb, "", f.id, f.version, f.clock.Now(), quiet, busy); err != nil {
		f.t.Fatal(err)
	}
}

func (f *wfix) redis(cmds ...[]any) {
	f.t.Helper()
	for _, c := range cmds {
		for i, a := range c {
			if s, ok := a.(string); ok {
				c[i] = strings.ReplaceAll(s, "ID", f.id)
			}
		}
		if err := f.rdb.Do(f.ctx, c...).Err(); err != nil && !errors.Is(err, redis.Nil) {
			f.t.Fatalf("%v: %v", c, err)
		}
	}
}

// Redis-side events, as hand-written data.
func (f *wfix) expire()  { f.redis([]any{"del", "ID", "ID:work", "ID:workers"}) } // both TTLs ran out
func (f *wfix) cleanup() { f.redis([]any{"srem", "processes", "ID"}) }            // someone's ProcessSet.new
func (f *wfix) clearHeartbeat() {
	f.redis([]any{"srem", "processes", "ID"}, []any{"unlink", "ID:work", "ID:workers"})
}                     // clean exit
func (f *wfix) lost() { f.expire(); f.cleanup() } // Redis lost its data

// failedTick records a tick that failed a second ago, as Poll does on a Redis error (a real
// outage is TestWatcherRetriesFailedTicks).
func (f *wfix) failedTick() {
	f.w.mu.Lock()
	f.w.lastFail = f.clock.Now().Add(-time.Second)
	f.w.mu.Unlock()
}

// wstep is one tick of a state-machine case: the clock moves, Redis changes, the watcher polls.
type wstep struct {
	advance  time.Duration
	do       func(f *wfix)
	want     State
	jobs     int    // len(Observation.Jobs)
	evidence string // substring of Observation.Evidence ("" = not checked)
}

func TestWatcherStates(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	tests := []struct {
		name    string
		version string // "" = 6.4.1 layout (5 s beats), else 7.x (10 s beats)
		start   func(f *wfix)
		steps   []wstep
	}{
		{
			name:  "quiet, drained, then gone clean",
			start: func(f *wfix) { f.beat(false, "a1", "a2") },
			steps: []wstep{
				{want: StateRunning, jobs: 2},
				{advance: 5 * time.Second, do: func(f *wfix) { f.beat(true, "a1", "a2") }, want: StateQuiet, jobs: 2},
				{advance: 5 * time.Second, do: func(f *wfix) { f.beat(true, "a2") }, want: StateQuiet, jobs: 1},
				{advance: 5 * time.Second, do: func(f *wfix) { f.beat(true) }, want: StateDrained, jobs: 0},
				{advance: time.Second, do: (*wfix).clearHeartbeat, want: StateGone, jobs: 0, evidence: "clean shutdown"},
				{advance: time.Minute, do: (*wfix).expire, want: StateGone, evidence: "clean shutdown"},
			},
		},
		{
			name:  "killed while quiet: the hash expires 60 s after the last beat",
			start: func(f *wfix) { f.beat(true, "b1", "b2") },
			steps: []wstep{
				{want: StateQuiet, jobs: 2},
				{advance: 5 * time.Second, want: StateQuiet, jobs: 2},
				{advance: 50 * time.Second, want: StateQuiet, jobs: 2},
				{advance: 5 * time.Second, do: (*wfix).expire, want: StateDead, jobs: 2, evidence: "hash expired; still listed"},
				{advance: 5 * time.Second, do: func(f *wfix) { f.beat(false) }, want: StateDead, jobs: 2},
			},
		},
		{
			name:  "killed, then someone's ProcessSet cleanup removed it: dead, not gone",
			start: func(f *wfix) { f.beat(true, "c1") },
			steps: []wstep{
				{want: StateQuiet, jobs: 1},
				{advance: time.Minute, do: func(f *wfix) { f.expire(); f.cleanup() }, want: StateDead, jobs: 1, evidence: "ProcessSet cleanup"},
			},
		},
		{
			name:  "left processes before its work hash was unlinked",
			start: func(f *wfix) { f.beat(true, "d1") },
			steps: []wstep{
				{want: StateQuiet, jobs: 1},
				{advance: time.Second, do: (*wfix).cleanup, want: StateQuiet, jobs: 1, evidence: "waiting for its work hash"},
				{advance: time.Second, do: (*wfix).clearHeartbeat, want: StateGone, jobs: 1},
			},
		},
		{
			name:  "Redis lost its data and the process wrote its heartbeat again",
			start: func(f *wfix) { f.beat(false, "e1") },
			steps: []wstep{
				{want: StateRunning, jobs: 1},
				{advance: 2 * time.Second, do: (*wfix).lost, want: StateRunning, jobs: 1, evidence: "waiting up to 16s"},
				{advance: 3 * time.Second, do: func(f *wfix) { f.beat(true, "e1") }, want: StateQuiet, jobs: 1, evidence: ""},
				{advance: 5 * time.Second, do: func(f *wfix) { f.beat(true) }, want: StateDrained},
			},
		},
		{
			name:  "hash missing for more than three 5 s beats",
			start: func(f *wfix) { f.beat(false, "f1") },
			steps: []wstep{
				{want: StateRunning, jobs: 1},
				{advance: 2 * time.Second, do: (*wfix).lost, want: StateRunning, jobs: 1},
				{advance: 15 * time.Second, want: StateRunning, jobs: 1},
				{advance: time.Second, want: StateDead, jobs: 1, evidence: "hash missing for 16s, longer than three heartbeats"},
			},
		},
		{
			name:    "7.x: grace is three 10 s beats",
			version: "7.3.2",
			start:   func(f *wfix) { f.beat(false, "g1") },
			steps: []wstep{
				{want: StateRunning, jobs: 1},
				{advance: time.Second, do: (*wfix).lost, want: StateRunning, jobs: 1},
				{advance: 30 * time.Second, want: StateRunning, jobs: 1},
				{advance: time.Second, want: StateDead, jobs: 1},
			},
		},
		{
			name:  "external evidence concludes death at once and for good",
			start: func(f *wfix) { f.beat(true, "h1") },
			steps: []wstep{
				{want: StateQuiet, jobs: 1},
				{advance: time.Second, do: func(f *wfix) { f.w.MarkDead(f.id, "ECS task stopped, container exit 137") },
					want: StateDead, jobs: 1, evidence: "external evidence: ECS task stopped, container exit 137"},
				{advance: 5 * time.Second, do: func(f *wfix) { f.beat(true) }, want: StateDead, jobs: 1},
			},
		},
		{
			name:  "busy without work entries (a torn read) keeps the last jobs",
			start: func(f *wfix) { f.beat(true, "i1") },
			steps: []wstep{
				{want: StateQuiet, jobs: 1},
				{advance: 5 * time.Second, do: func(f *wfix) { f.tornBeat(true, 1) }, want: StateQuiet, jobs: 1},
				{advance: 5 * time.Second, do: func(f *wfix) { f.beat(true) }, want: StateDrained, jobs: 0},
			},
		},
		{
			name:  "listed without a hash from the start: dead after the grace",
			start: func(f *wfix) { f.redis([]any{"sadd", "processes", "ID"}) },
			steps: []wstep{
				{want: StateUnknown, evidence: "heartbeat hash missing since"},
				{advance: 15 * time.Second, want: StateUnknown},
				{advance: time.Second, want: StateDead, evidence: "no heartbeat hash seen for 16s"},
			},
		},
		{
			name:  "stale at start: dead at the first tick after its hash expired, 60 s after its beat",
			start: func(f *wfix) { f.beatAgo(50*time.Second, true, "k1", "k2") },
			steps: []wstep{
				{want: StateQuiet, jobs: 2},
				{advance: 8 * time.Second, want: StateQuiet, jobs: 2},
				{advance: time.Second, want: StateQuiet, jobs: 2}, // 59 s after the beat, hash still there: never dead
				{advance: time.Second, do: (*wfix).expire, want: StateDead, jobs: 2, evidence: "none seen for 1m0s) and its hash expired; still listed"},
			},
		},
		{
			name:    "7.x stale at start: dead soon after its hash expired",
			version: "7.3.2",
			start:   func(f *wfix) { f.beatAgo(55*time.Second, true, "l1") },
			steps: []wstep{
				{want: StateQuiet, jobs: 1},
				{advance: 5 * time.Second, do: (*wfix).expire, want: StateDead, jobs: 1, evidence: "none seen for 1m0s"},
			},
		},
		{
			name:  "stale at start, expired and pruned between two ticks: only the watcher's clock counts",
			start: func(f *wfix) { f.beatAgo(50*time.Second, true, "m1") },
			steps: []wstep{
				{want: StateQuiet, jobs: 1},
				{advance: 10 * time.Second, do: func(f *wfix) { f.expire(); f.cleanup() }, want: StateQuiet, jobs: 1, evidence: "waiting up to 16s"},
				{advance: 15 * time.Second, want: StateQuiet, jobs: 1},
				{advance: time.Second, want: StateDead, jobs: 1, evidence: "heartbeat hash missing for 16s"},
			},
		},
		{
			name:  "fresh at start, hash lost while still listed: the grace, as before",
			start: func(f *wfix) { f.beatAgo(2*time.Second, false, "n1") },
			steps: []wstep{
				{want: StateRunning, jobs: 1},
				{advance: time.Second, do: (*wfix).expire, want: StateRunning, jobs: 1, evidence: "waiting up to 16s"},
				{advance: 15 * time.Second, want: StateRunning, jobs: 1},
				{advance: time.Second, want: StateDead, jobs: 1, evidence: "heartbeat hash missing for 16s"},
			},
		},
		{
			name:  "fresh at start, killed: dead when its hash expired 60 s after its beat",
			start: func(f *wfix) { f.beatAgo(3*time.Second, true, "o1") },
			steps: []wstep{
				{want: StateQuiet, jobs: 1},
				{advance: 56 * time.Second, want: StateQuiet, jobs: 1},
				{advance: time.Second, do: (*wfix).expire, want: StateDead, jobs: 1, evidence: "none seen for 1m0s"},
			},
		},
		{
			name:  "beat in the future (its clock runs ahead): counted from now",
			start: func(f *wfix) { f.beatAgo(-30*time.Second, true, "p1") },
			steps: []wstep{
				{want: StateQuiet, jobs: 1},
				{advance: 58 * time.Second, want: StateQuiet, jobs: 1},
				{advance: time.Second, do: (*wfix).expire, want: StateDead, jobs: 1, evidence: "none seen for 59s"},
			},
		},
		{
			name:  "beat older than the hash's TTL while the hash exists (its clock lags): never dead early",
			start: func(f *wfix) { f.beatAgo(2*time.Minute, true, "q1") },
			steps: []wstep{
				{want: StateQuiet, jobs: 1},
				{advance: 30 * time.Second, want: StateQuiet, jobs: 1}, // hash still there: never dead
				{advance: time.Second, do: (*wfix).expire, want: StateQuiet, jobs: 1, evidence: "waiting up to 16s"},
				{advance: 4 * time.Second, do: func(f *wfix) { f.beatAgo(2*time.Minute-35*time.Second, true) }, want: StateDrained},
			},
		},
		{
			name:  "a tick failed before the first read: counted from the first tick, as before",
			start: func(f *wfix) { f.beatAgo(10*time.Second, true, "r1") },
			steps: []wstep{
				{do: (*wfix).failedTick, want: StateQuiet, jobs: 1},
				{advance: 50 * time.Second, do: (*wfix).expire, want: StateQuiet, jobs: 1, evidence: "waiting up to 16s"},
				{advance: 8 * time.Second, want: StateQuiet, jobs: 1},
				{advance: time.Second, want: StateDead, jobs: 1, evidence: "none seen for 59s"},
			},
		},
		{
			name:  "MarkDead after a clean exit leaves it gone",
			start: func(f *wfix) { f.beat(true) },
			steps: []wstep{
				{want: StateDrained},
				{advance: time.Second, do: (*wfix).clearHeartbeat, want: StateGone},
				{do: func(f *wfix) { f.w.MarkDead(f.id, "exit 137") }, want: StateGone, evidence: "clean shutdown"},
			},
		},
	}
	for n, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := &wfix{t: t, ctx: ctx, rdb: rdb, id: fmt.Sprintf("ip-10-0-0-%d:4242:0123456789ab", n),
				version: tc.version, clock: newFakeClock()}
			tc.start(f)
			c := NewClient(rdb, "")
			snap, err := c.SnapshotOf(ctx, []string{f.id})
			if err != nil {
				t.Fatal(err)
			}
			f.w = c.NewWatcher(snap.Processes)
			f.w.Now, f.w.After, f.w.Interval = f.clock.Now, f.clock.After, time.Second
			prev := Observation{State: StateUnknown}
			for i, s := range tc.steps {
				f.clock.Add(s.advance)
				if s.do != nil {
					s.do(f)
				}
				obs, err := f.w.Poll(ctx)
				if err != nil {
					t.Fatalf("step %d: poll: %v", i, err)
				}
				if len(obs) != 1 {
					t.Fatalf("step %d: %d observations, want 1", i, len(obs))
				}
				o := obs[0]
				if o.State != s.want || len(o.Jobs) != s.jobs || !strings.Contains(o.Evidence, s.evidence) {
					t.Fatalf("step %d: state %s with %d jobs (evidence %q), want %s with %d jobs (evidence containing %q)",
						i, o.State, len(o.Jobs), o.Evidence, s.want, s.jobs, s.evidence)
				}
				if o.State != prev.State && !o.Since.Equal(f.clock.Now()) {
					t.Errorf("step %d: entered %s with Since %s, want the tick's time %s", i, o.State, o.Since, f.clock.Now())
				}
				if o.State == prev.State && i > 0 && !o.Since.Equal(prev.Since) {
					t.Errorf("step %d: still %s but Since moved from %s to %s", i, o.State, prev.Since, o.Since)
				}
				for _, j := range o.Jobs {
					if j.Process != f.id || len(j.Payload) == 0 || string(j.Payload) != handPayload(j.JID, "default") {
						t.Errorf("step %d: kept job %+v, want the exact payload of a job of %s", i, j, f.id)
					}
				}
				prev = o
			}
		})
	}
}

// TestWatcherRetriesFailedTicks stops Redis under a watch: Poll reports the error, Until keeps
// ticking, and after Redis comes back empty a process whose beat is long stale is not declared
// dead before it had the chance to write its heartbeat again.
func TestWatcherRetriesFailedTicks(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx := context.Background()
	clock := newFakeClock()
	id := "ip-10-0-9-9:77:aaaaaaaaaaaa"
	if err := handBeat(ctx, rdb, "", id, "", clock.Now(), true, -1, "j1"); err != nil {
		t.Fatal(err)
	}
	c := NewClient(redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1}), "")
	t.Cleanup(func() { _ = c.Close() })
	w := c.NewWatcher([]Process{{Identity: id}})
	w.Now, w.After, w.Interval = clock.Now, clock.After, time.Second
	var errs []error
	w.OnError = func(err error) {
		errs = append(errs, err)
		if len(errs) == 3 { // the outage ends after three failed ticks, with every key lost
			r.Restart(t)
		}
	}
	if obs, err := w.Poll(ctx); err != nil || obs[0].State != StateQuiet {
		t.Fatalf("first tick: %v, %+v", err, obs)
	}

	r.Stop()
	clock.Add(70 * time.Second) // longer than the hash TTL: only the outage explains the silence
	obs, err := w.Until(ctx, func(obs []Observation) bool { return true })
	if err != nil {
		t.Fatalf("until: %v", err)
	}
	if len(errs) != 3 {
		t.Fatalf("%d failed ticks reported, want 3: %v", len(errs), errs)
	}
	if !strings.Contains(errs[0].Error(), "watch 1 sidekiq processes") {
		t.Errorf("tick error %q does not name the operation", errs[0])
	}
	if o := obs[0]; o.State != StateQuiet || o.HashExists || len(o.Jobs) != 1 {
		t.Fatalf("after the outage: %s hash=%v jobs=%d (%s), want quiet, hash missing, 1 job kept", o.State, o.HashExists, len(o.Jobs), o.Evidence)
	}

	// The process writes its heartbeat again within the grace: still quiet, never dead.
	clock.Add(4 * time.Second)
	rdb2 := r.Client(t)
	if err := handBeat(ctx, rdb2, "", id, "", clock.Now(), true, 0); err != nil {
		t.Fatal(err)
	}
	obs, err = w.Poll(ctx)
	if err != nil || obs[0].State != StateDrained || !obs[0].Listed {
		t.Fatalf("after re-registration: %v %+v, want drained and listed", err, obs)
	}
}

// TestWatcherUntil drives Until with the fake clock to a predicate and to a cancelled context.
func TestWatcherUntil(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx := context.Background()
	clock := newFakeClock()
	id := "ip-10-0-8-8:88:bbbbbbbbbbbb"
	if err := handBeat(ctx, rdb, "", id, "", clock.Now(), true, -1, "u1"); err != nil {
		t.Fatal(err)
	}
	c := NewClient(rdb, "")
	w := c.NewWatcher([]Process{{Identity: id}})
	w.Now, w.Interval = clock.Now, 2*time.Second
	ticks := 0
	w.OnTick = func(obs []Observation) { ticks++ }
	w.After = func(d time.Duration) <-chan time.Time {
		if d != 2*time.Second {
			t.Errorf("After(%s), want the 2s interval", d)
		}
		if ticks == 3 { // the job finishes at the third tick's beat
			if err := handBeat(ctx, rdb, "", id, "", clock.Now(), true, 0); err != nil {
				t.Error(err)
			}
		}
		return clock.After(d)
	}
	obs, err := w.Until(ctx, Every(StateDrained, StateGone, StateDead))
	if err != nil || obs[0].State != StateDrained || ticks != 4 {
		t.Fatalf("until drained: %v after %d ticks, %+v", err, ticks, obs)
	}

	cctx, cancel := context.WithCancel(ctx)
	w.After = func(d time.Duration) <-chan time.Time { cancel(); return make(chan time.Time) }
	obs, err = w.Until(cctx, Every(StateGone))
	if !errors.Is(err, context.Canceled) || len(obs) != 1 || obs[0].State != StateDrained {
		t.Fatalf("until cancelled: %v %+v, want context.Canceled with the last observations", err, obs)
	}
}

// tickCounter counts round trips (one per command or pipeline).
type tickCounter struct{ n atomic.Int64 }

func (h *tickCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *tickCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "hello" && cmd.Name() != "client" {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *tickCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() != "hello" && cmds[0].Name() != "client" { // not connection set-up
			h.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// TestWatcherOneRoundTripPerTick watches 200 processes: every tick is one pipelined read,
// processes that reached a final state are no longer read, and a tick with nothing to read
// costs nothing.
func TestWatcherOneRoundTripPerTick(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx := context.Background()
	clock := newFakeClock()
	var ps []Process
	for i := 0; i < 200; i++ {
		id := fmt.Sprintf("ip-10-1-%d-%d:1:cccccccccccc", i/100, i%100)
		if err := handBeat(ctx, rdb, "", id, "", clock.Now(), true, -1, fmt.Sprintf("r%03d", i)); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, Process{Identity: id})
	}
	counted := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = counted.Close() })
	h := &tickCounter{}
	counted.AddHook(h)
	w := NewClient(counted, "").NewWatcher(ps)
	w.Now = clock.Now
	for tick := 0; tick < 3; tick++ {
		before := h.n.Load()
		obs, err := w.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := h.n.Load() - before; got != 1 {
			t.Fatalf("tick %d: %d round trips for %d processes, want 1", tick, got, len(obs))
		}
		if !Every(StateQuiet)(obs) {
			t.Fatalf("tick %d: not all quiet", tick)
		}
	}
	for _, p := range ps {
		w.MarkDead(p.Identity, "test")
	}
	before := h.n.Load()
	obs, err := w.Poll(ctx)
	if err != nil || !Every(StateDead)(obs) || h.n.Load() != before {
		t.Fatalf("all dead: %v, %d round trips, want none", err, h.n.Load()-before)
	}
	if got := len(Orphans(obs)); got != 200 {
		t.Fatalf("%d orphans, want 200", got)
	}
}

func TestEveryAndOrphans(t *testing.T) {
	job := func(jid string) Job { return Job{JID: jid} }
	obs := []Observation{
		{Identity: "a", State: StateDead, Jobs: []Job{job("1"), job("2")}},
		{Identity: "b", State: StateGone, Jobs: []Job{job("3")}},
		{Identity: "c", State: StateDrained},
	}
	tests := []struct {
		name   string
		states []State
		want   bool
	}{
		{"all final or drained", []State{StateDead, StateGone, StateDrained}, true},
		{"drained missing", []State{StateDead, StateGone}, false},
		{"none", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Every(tc.states...)(obs); got != tc.want {
				t.Fatalf("Every(%v) = %v, want %v", tc.states, got, tc.want)
			}
		})
	}
	if !Every(StateGone)(nil) {
		t.Error("Every on no observations should hold")
	}
	got := Orphans(obs)
	if len(got) != 2 || got[0].JID != "1" || got[1].JID != "2" {
		t.Fatalf("Orphans = %+v, want the dead process's two jobs only", got)
	}
}
