package sidekiq

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/drainctl/drainctl/internal/testenv"
)

// TestMain raises the default -parallel: the lifecycle tests spend their time waiting for
// Sidekiq heartbeats (5 s / 10 s) and for a 60 s expiry, not on the CPU, and at the default
// of GOMAXPROCS (2 here) they would queue behind each other. An explicit -parallel wins.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if p := flag.Lookup("test.parallel"); !explicit && p != nil {
		if n, err := strconv.Atoi(p.Value.String()); err == nil && n < 16 {
			_ = p.Value.Set("16")
		}
	}
	os.Exit(m.Run())
}

// lc is one lifecycle test's world: a real redis-server, a real Sidekiq and a watcher on it.
type lc struct {
	t   *testing.T
	ctx context.Context
	r   *testenv.Redis
	rdb *redis.Client
	c   *Client
	sk  *testenv.Sidekiq
	id  string
	p   Process // as the first snapshot saw it
	w   *Watcher

	mu      sync.Mutex
	history []Observation // every observation of every successful tick
}

// startLC starts Redis and one Sidekiq of version v and watches it every 250 ms.
func startLC(t *testing.T, v testenv.SidekiqVersion, host string, concurrency, timeout int) *lc {
	t.Helper()
	l := &lc{t: t, ctx: context.Background(), r: testenv.StartRedis(t)}
	l.rdb = l.r.Client(t)
	l.c = NewClient(redis.NewClient(&redis.Options{Addr: l.r.Addr}), "")
	t.Cleanup(func() { _ = l.c.Close() })
	l.sk = testenv.StartSidekiq(t, testenv.SidekiqOptions{Version: v, RedisURL: l.r.URL(), Hostname: host,
		Tag: "lifecycle", Concurrency: concurrency, Timeout: timeout})
	l.id = l.sk.WaitRegistered(t, l.rdb, "", 30*time.Second)
	snap, err := l.c.SnapshotOf(l.ctx, []string{l.id})
	if err != nil {
		t.Fatal(err)
	}
	l.p = snap.Processes[0]
	l.w = l.c.NewWatcher(snap.Processes)
	l.w.Interval = 250 * time.Millisecond
	l.w.OnTick = func(obs []Observation) {
		l.mu.Lock()
		l.history = append(l.history, obs...)
		l.mu.Unlock()
	}
	return l
}

// until waits up to within for pred on the watcher's observations of the process.
func (l *lc) until(within time.Duration, what string, pred func(o Observation) bool) Observation {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(l.ctx, within)
	defer cancel()
	obs, err := l.w.Until(ctx, func(obs []Observation) bool { return pred(obs[0]) })
	if err != nil {
		l.t.Fatalf("%s within %s: %v; last observation: state %s, busy %d, jobs %d, listed %v, hash %v, evidence %q",
			what, within, err, obs[0].State, obs[0].Process.Busy, len(obs[0].Jobs), obs[0].Listed, obs[0].HashExists, obs[0].Evidence)
	}
	return obs[0]
}

// enqueue pushes SleepJobs as Sidekiq's client does and returns their jids.
func (l *lc) enqueue(n int, seconds float64) []string {
	l.t.Helper()
	var jids []string
	for i := 0; i < n; i++ {
		jid, err := testenv.Enqueue(l.ctx, l.rdb, "", "default", "SleepJob", seconds)
		if err != nil {
			l.t.Fatal(err)
		}
		jids = append(jids, jid)
	}
	return jids
}

// counts returns how often each jid appears in a list.
func counts(ctx context.Context, t *testing.T, rdb *redis.Client, list string) map[string]int {
	t.Helper()
	ids, err := rdb.LRange(ctx, list, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, id := range ids {
		m[id]++
	}
	return m
}

// waitList waits until every jid appears n times in list.
func waitList(ctx context.Context, t *testing.T, rdb *redis.Client, list string, jids []string, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		m := counts(ctx, t, rdb, list)
		ok := true
		for _, j := range jids {
			ok = ok && m[j] >= n
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v within %s, want each of %v %d times", list, m, within, jids, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func jidsOf(jobs []Job) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.JID)
	}
	sort.Strings(out)
	return out
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// TestLifecycleQuiet: quiet is acknowledged within two heartbeats while jobs run, the quiet
// process takes no new job, and its running jobs finish.
func TestLifecycleQuiet(t *testing.T) {
	t.Parallel()
	for _, v := range testenv.Versions {
		t.Run(string(v), func(t *testing.T) {
			t.Parallel()
			l := startLC(t, v, "ip-10-0-1-10", 2, 3)
			ack := AckWithin(l.p)
			running := l.enqueue(2, (ack + 2*time.Second).Seconds()) // still running when quiet is seen
			waitList(l.ctx, t, l.rdb, testenv.StartedList, running, 1, 10*time.Second)

			pushed := time.Now()
			if err := l.c.Quiet(l.ctx, []string{l.id}); err != nil {
				t.Fatal(err)
			}
			o := l.until(ack, "quiet acknowledged", func(o Observation) bool { return o.State == StateQuiet })
			took := time.Since(pushed)
			if o.Process.Busy != 2 || fmt.Sprint(jidsOf(o.Jobs)) != fmt.Sprint(sorted(running)) {
				t.Fatalf("quiet after %s with busy %d, jobs %v; want both running jobs %v", took, o.Process.Busy, jidsOf(o.Jobs), running)
			}
			t.Logf("%s: quiet acknowledged %s after TSTP (AckWithin %s)", v, took.Round(time.Millisecond), ack)

			waiting := l.enqueue(2, 0.1) // a quiet process must leave these alone
			o = l.until(ack+5*time.Second, "drained", func(o Observation) bool { return o.State == StateDrained })
			if len(o.Jobs) != 0 || o.Process.Busy != 0 || !o.Process.Quiet || !o.Listed {
				t.Fatalf("drained with %+v", o)
			}
			done := counts(l.ctx, t, l.rdb, testenv.DoneList)
			for _, j := range running {
				if done[j] != 1 {
					t.Errorf("running job %s done %d times, want 1", j, done[j])
				}
			}
			started := counts(l.ctx, t, l.rdb, testenv.StartedList)
			for _, j := range waiting {
				if started[j] != 0 {
					t.Errorf("quiet process started job %s enqueued after quiet", j)
				}
			}
			if n, _ := l.rdb.LLen(l.ctx, "queue:default").Result(); n != 2 {
				t.Errorf("queue:default holds %d jobs, want the 2 enqueued after quiet", n)
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			var seq []State
			for _, h := range l.history {
				if len(seq) == 0 || seq[len(seq)-1] != h.State {
					seq = append(seq, h.State)
				}
			}
			if fmt.Sprint(seq) != "[running quiet drained]" {
				t.Errorf("states seen %v, want [running quiet drained]", seq)
			}
		})
	}
}

// TestLifecycleStop: TERM through Redis makes Sidekiq push its unfinished jobs back, byte for
// byte, and the watcher reports it gone clean with nothing to rescue.
func TestLifecycleStop(t *testing.T) {
	t.Parallel()
	for _, v := range testenv.Versions {
		t.Run(string(v), func(t *testing.T) {
			t.Parallel()
			l := startLC(t, v, "ip-10-0-1-11", 2, 2)
			jids := l.enqueue(2, 60)
			o := l.until(HeartbeatInterval(l.p)+10*time.Second, "both jobs in the work hash",
				func(o Observation) bool { return len(o.Jobs) == 2 })
			payloads := []string{string(o.Jobs[0].Payload), string(o.Jobs[1].Payload)}

			if err := l.c.Stop(l.ctx, []string{l.id}); err != nil {
				t.Fatal(err)
			}
			o = l.until(AckWithin(l.p)+2*time.Second+10*time.Second, "gone", func(o Observation) bool { return o.State.Terminal() })
			if o.State != StateGone || !strings.Contains(o.Evidence, "clean") {
				t.Fatalf("ended %s (%s), want gone clean", o.State, o.Evidence)
			}
			if got := Orphans([]Observation{o}); len(got) != 0 {
				t.Errorf("a clean exit left orphans %v", jidsOf(got))
			}
			q, err := l.rdb.LRange(l.ctx, "queue:default", 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(sorted(q)) != fmt.Sprint(sorted(payloads)) {
				t.Fatalf("queue:default after TERM = %q, want the exact payloads of the 2 running jobs %q", q, payloads)
			}
			done := counts(l.ctx, t, l.rdb, testenv.DoneList)
			for _, j := range jids {
				if done[j] != 0 {
					t.Errorf("job %s finished; it should have been interrupted", j)
				}
			}
			if st := l.sk.Wait(10 * time.Second); st == nil {
				t.Errorf("sidekiq still running after it left processes")
			}
		})
	}
}

// TestLifecycleKilledRescued: a SIGKILLed process is reported dead (from ECS-like evidence),
// its in-flight jobs are rescued exactly once however many rescues run, and another real
// Sidekiq process runs each of them exactly once.
func TestLifecycleKilledRescued(t *testing.T) {
	t.Parallel()
	for _, v := range testenv.Versions {
		t.Run(string(v), func(t *testing.T) {
			t.Parallel()
			l := startLC(t, v, "ip-10-0-1-12", 2, 2)
			hb := HeartbeatInterval(l.p)
			jids := l.enqueue(2, (hb + 6*time.Second).Seconds())
			o := l.until(hb+5*time.Second, "both jobs in the work hash", func(o Observation) bool { return len(o.Jobs) == 2 })
			// The replacement starts now; the jobs are already fetched, so only a rescue gives it them.
			other := testenv.StartSidekiq(t, testenv.SidekiqOptions{Version: v, RedisURL: l.r.URL(), Hostname: "ip-10-0-1-13",
				Tag: "replacement", Concurrency: 4, Timeout: 2})

			if err := l.sk.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if l.sk.Wait(5*time.Second) == nil {
				t.Fatal("sidekiq survived SIGKILL")
			}
			if done := counts(l.ctx, t, l.rdb, testenv.DoneList); done[jids[0]]+done[jids[1]] != 0 {
				t.Fatalf("a job finished before the kill (done %v): the test needs longer jobs", done)
			}
			l.w.MarkDead(l.id, "ECS task stopped, container exit 137")
			obs, err := l.w.Poll(l.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if obs[0].State != StateDead || !strings.Contains(obs[0].Evidence, "exit 137") {
				t.Fatalf("after SIGKILL and evidence: %s (%s), want dead", obs[0].State, obs[0].Evidence)
			}
			orphans := Orphans(obs)
			if fmt.Sprint(jidsOf(orphans)) != fmt.Sprint(sorted(jids)) {
				t.Fatalf("orphans %v, want %v", jidsOf(orphans), jids)
			}
			seen := map[string]string{}
			for _, j := range o.Jobs {
				seen[j.JID] = string(j.Payload)
			}
			for _, j := range orphans {
				if string(j.Payload) != seen[j.JID] || j.Process != l.id {
					t.Fatalf("orphan %s (of %s) differs from what the work hash held", j.JID, j.Process)
				}
			}

			// Two drainctls rescue at once, then a third one later.
			var wg sync.WaitGroup
			results := make([]RescueResult, 2)
			errs := make([]error, 2)
			for i := range results {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					c := NewClient(redis.NewClient(&redis.Options{Addr: l.r.Addr}), "")
					defer c.Close()
					results[i], errs[i] = c.Rescue(l.ctx, orphans, RescueOptions{})
				}(i)
			}
			wg.Wait()
			pushed := map[string]int{}
			for i, res := range results {
				if errs[i] != nil {
					t.Fatalf("rescue %d: %v", i, errs[i])
				}
				for _, r := range res.Jobs {
					if r.Outcome == OutcomePushed {
						pushed[r.Job.JID]++
					} else if r.Outcome != OutcomeAlreadyRescued {
						t.Errorf("rescue %d: %s %s (%s)", i, r.Job.JID, r.Outcome, r.Reason)
					}
				}
			}
			for _, j := range jids {
				if pushed[j] != 1 {
					t.Errorf("job %s pushed %d times by the concurrent rescues, want 1", j, pushed[j])
				}
			}
			third, err := l.c.Rescue(l.ctx, orphans, RescueOptions{})
			if err != nil || third.Count(OutcomePushed) != 0 {
				t.Fatalf("third rescue: %v, %+v: want nothing pushed", err, third.Jobs)
			}

			other.WaitRegistered(t, l.rdb, "", 30*time.Second)
			waitList(l.ctx, t, l.rdb, testenv.DoneList, jids, 1, hb+6*time.Second+20*time.Second)
			done := counts(l.ctx, t, l.rdb, testenv.DoneList)
			started := counts(l.ctx, t, l.rdb, testenv.StartedList)
			for _, j := range jids {
				if done[j] != 1 || started[j] != 2 {
					t.Errorf("job %s started %d times and done %d times, want started twice (killed, rescued) and done once",
						j, started[j], done[j])
				}
			}
			if n, _ := l.rdb.LLen(l.ctx, "queue:default").Result(); n != 0 {
				t.Errorf("queue:default still holds %d jobs", n)
			}
		})
	}
}

// TestLifecycleKilledExpires reaches "dead" from Redis alone: after SIGKILL the identity stays
// listed, the beat stops, and only the 60 s expiry of the heartbeat hash concludes death. It
// costs about a minute, so it runs for one version, in parallel with the rest.
func TestLifecycleKilledExpires(t *testing.T) {
	t.Parallel()
	l := startLC(t, testenv.Sidekiq6, "ip-10-0-1-14", 1, 2)
	hb := HeartbeatInterval(l.p)
	jids := l.enqueue(1, 120)
	running := l.until(hb+5*time.Second, "the job in the work hash", func(o Observation) bool { return len(o.Jobs) == 1 })
	if err := l.sk.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	o := l.until(heartbeatTTL+hb+10*time.Second, "dead", func(o Observation) bool { return o.State.Terminal() })
	took := time.Since(killed)
	if o.State != StateDead || !strings.Contains(o.Evidence, "hash expired; still listed") {
		t.Fatalf("ended %s (%s), want dead by expiry while still listed", o.State, o.Evidence)
	}
	// The hash lives 60 s after the last beat, which came at most one interval before the kill.
	if took < heartbeatTTL-hb-time.Second {
		t.Fatalf("dead %s after the kill: sooner than the hash can expire", took)
	}
	if len(o.Jobs) != 1 || o.Jobs[0].JID != jids[0] || string(o.Jobs[0].Payload) != string(running.Jobs[0].Payload) {
		t.Fatalf("kept jobs %v, want %v with its exact payload", jidsOf(o.Jobs), jids)
	}
	l.mu.Lock()
	for _, h := range l.history {
		if h.HashExists && h.State == StateDead {
			t.Errorf("dead while its heartbeat hash still existed: %+v", h)
		}
	}
	l.mu.Unlock()
	res, err := l.c.Rescue(l.ctx, Orphans([]Observation{o}), RescueOptions{})
	if err != nil || res.Count(OutcomePushed) != 1 {
		t.Fatalf("rescue: %v %+v", err, res.Jobs)
	}
	if q, _ := l.rdb.LRange(l.ctx, "queue:default", 0, -1).Result(); len(q) != 1 || q[0] != string(running.Jobs[0].Payload) {
		t.Fatalf("queue:default = %q, want the orphan's exact payload", q)
	}
	t.Logf("dead %s after SIGKILL", took.Round(time.Millisecond))
}

// TestLifecycleRedisRestart restarts Redis (losing its data) under a watch of a quiet process:
// the watch keeps going, sees the process write its heartbeat again, never calls it dead, and
// ends with it gone clean after TERM.
func TestLifecycleRedisRestart(t *testing.T) {
	t.Parallel()
	for _, v := range testenv.Versions {
		t.Run(string(v), func(t *testing.T) {
			t.Parallel()
			l := startLC(t, v, "ip-10-0-1-15", 2, 2)
			// No go-redis retries: ticks during the restart fail and the watcher must retry them.
			noRetry := NewClient(redis.NewClient(&redis.Options{Addr: l.r.Addr, MaxRetries: -1, DialerRetries: 1}), "")
			l.w.Source = noRetry
			t.Cleanup(func() { _ = noRetry.Close() })
			var failed int
			l.w.OnError = func(error) { failed++ }
			if err := l.c.Quiet(l.ctx, []string{l.id}); err != nil {
				t.Fatal(err)
			}
			l.until(AckWithin(l.p), "quiet acknowledged", func(o Observation) bool { return o.State == StateDrained })

			// Redis goes away for two seconds while the watch polls, and comes back empty.
			restarted := make(chan time.Time, 1)
			go func() {
				l.r.Stop()
				time.Sleep(2 * time.Second)
				l.r.Restart(t)
				restarted <- time.Now()
			}()
			sawMissing := false
			o := l.until(3*HeartbeatInterval(l.p)+15*time.Second, "heartbeat back after the restart", func(o Observation) bool {
				sawMissing = sawMissing || !o.HashExists
				return sawMissing && o.HashExists && o.Listed
			})
			back := <-restarted
			if o.State != StateDrained || !o.Process.Quiet {
				t.Fatalf("after the restart: %s quiet=%v, want drained and still quiet", o.State, o.Process.Quiet)
			}
			t.Logf("%s: heartbeat back %s after the restart (%d failed ticks)", v, time.Since(back).Round(time.Millisecond), failed)
			if failed == 0 {
				t.Fatalf("no tick failed while Redis was down: the watch did not run through the outage")
			}

			if err := l.c.Stop(l.ctx, []string{l.id}); err != nil {
				t.Fatal(err)
			}
			o = l.until(AckWithin(l.p)+10*time.Second, "gone", func(o Observation) bool { return o.State.Terminal() })
			if o.State != StateGone {
				t.Fatalf("ended %s (%s), want gone", o.State, o.Evidence)
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			for _, h := range l.history {
				if h.State == StateDead {
					t.Fatalf("reported dead during the restart: %+v", h)
				}
			}
		})
	}
}

// TestLifecycleOrphanedTwice: a real job is orphaned by a SIGKILLed worker, rescued, fetched
// by a second worker, orphaned again by SIGKILL, and rescued again — each death is its own
// rescue — and a third worker finishes it: started three times, done once, never lost.
func TestLifecycleOrphanedTwice(t *testing.T) {
	t.Parallel()
	for _, v := range testenv.Versions {
		t.Run(string(v), func(t *testing.T) {
			t.Parallel()
			l := startLC(t, v, "ip-10-0-1-16", 1, 2)
			hb := HeartbeatInterval(l.p)
			jobFor := hb + 8*time.Second // outlives its sighting in a work hash
			jids := l.enqueue(1, jobFor.Seconds())

			// killRescue waits for the job on w's process, SIGKILLs it, and rescues the orphan as run.
			killRescue := func(w *Watcher, sk *testenv.Sidekiq, run string) RescueResult {
				t.Helper()
				ctx, cancel := context.WithTimeout(l.ctx, hb+10*time.Second)
				defer cancel()
				if _, err := w.Until(ctx, func(obs []Observation) bool { return len(obs[0].Jobs) == 1 }); err != nil {
					t.Fatalf("%s: the job in the work hash: %v", run, err)
				}
				id := w.Observations()[0].Identity
				if err := sk.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				if sk.Wait(5*time.Second) == nil {
					t.Fatal("sidekiq survived SIGKILL")
				}
				w.MarkDead(id, "ECS task stopped, container exit 137")
				obs, err := w.Poll(l.ctx)
				if err != nil {
					t.Fatal(err)
				}
				orphans := Orphans(obs)
				if fmt.Sprint(jidsOf(orphans)) != fmt.Sprint(jids) {
					t.Fatalf("%s: orphans %v, want %v", run, jidsOf(orphans), jids)
				}
				res, err := l.c.Rescue(l.ctx, orphans, RescueOptions{RunID: run})
				if err != nil || res.Count(OutcomePushed) != 1 {
					t.Fatalf("%s: rescue: %v %+v, want the job pushed", run, err, res.Jobs)
				}
				return res
			}
			watch := func(sk *testenv.Sidekiq) *Watcher {
				t.Helper()
				id := sk.WaitRegistered(t, l.rdb, "", 30*time.Second)
				snap, err := l.c.SnapshotOf(l.ctx, []string{id})
				if err != nil {
					t.Fatal(err)
				}
				w := l.c.NewWatcher(snap.Processes)
				w.Interval = 250 * time.Millisecond
				return w
			}

			// Worker B starts once A has fetched the job, so only a rescue gives B the job.
			ctx, cancel := context.WithTimeout(l.ctx, hb+10*time.Second)
			_, err := l.w.Until(ctx, func(obs []Observation) bool { return len(obs[0].Jobs) == 1 })
			cancel()
			if err != nil {
				t.Fatalf("the job on A: %v", err)
			}
			b := testenv.StartSidekiq(t, testenv.SidekiqOptions{Version: v, RedisURL: l.r.URL(), Hostname: "ip-10-0-1-17",
				Tag: "second", Concurrency: 1, Timeout: 2})
			wb := watch(b)
			killRescue(l.w, l.sk, "deploy-1")

			c := testenv.StartSidekiq(t, testenv.SidekiqOptions{Version: v, RedisURL: l.r.URL(), Hostname: "ip-10-0-1-18",
				Tag: "third", Concurrency: 1, Timeout: 2})
			killRescue(wb, b, "deploy-2")
			c.WaitRegistered(t, l.rdb, "", 30*time.Second)

			waitList(l.ctx, t, l.rdb, testenv.DoneList, jids, 1, jobFor+20*time.Second)
			done := counts(l.ctx, t, l.rdb, testenv.DoneList)
			started := counts(l.ctx, t, l.rdb, testenv.StartedList)
			if done[jids[0]] != 1 || started[jids[0]] != 3 {
				t.Errorf("job started %d times and done %d times, want started 3 times (A, B killed; C) and done once",
					started[jids[0]], done[jids[0]])
			}
			if n, _ := l.rdb.LLen(l.ctx, "queue:default").Result(); n != 0 {
				t.Errorf("queue:default still holds %d jobs", n)
			}
		})
	}
}
