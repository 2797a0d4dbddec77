package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestSidekiqVersions proves the harness itself on every release in Versions: the process
// starts and heartbeats as that release, runs a job to completion, goes quiet on a TSTP pushed
// through Redis (and then fetches nothing new), and on a TERM pushed through Redis requeues the
// job it is still running — the exact bytes, at the tail — before it stops cleanly.
func TestSidekiqVersions(t *testing.T) {
	for _, v := range Versions {
		t.Run(string(v), func(t *testing.T) {
			t.Parallel()
			testSidekiqVersion(t, v)
		})
	}
}

func testSidekiqVersion(t *testing.T, v SidekiqVersion) {
	ctx := context.Background()
	r := StartRedis(t)
	rdb := r.Client(t)
	const host = "ip-10-0-1-23"
	sk := StartSidekiq(t, SidekiqOptions{Version: v, RedisURL: r.URL(), Hostname: host, Tag: "harness", Timeout: 3})
	id := sk.WaitRegistered(t, rdb, "", 60*time.Second)

	// Its heartbeat: identity, info and beat as this release writes them.
	if want := host + ":" + strconv.Itoa(sk.PID) + ":"; !strings.HasPrefix(id, want) {
		t.Fatalf("identity %q does not start with %q", id, want)
	}
	beat := heartbeat(ctx, t, rdb, id)
	var info map[string]any
	if err := json.Unmarshal([]byte(beat["info"]), &info); err != nil {
		t.Fatalf("info of %s: %v: %q", id, err, beat["info"])
	}
	if got, want := info["version"], v.InfoVersion(); want == "" && got != nil || want != "" && got != want {
		t.Errorf("info.version = %v, want %q", got, want)
	}
	if info["identity"] != id || info["hostname"] != host || info["tag"] != "harness" || info["pid"] != float64(sk.PID) {
		t.Errorf("info = %s, want identity %s, hostname %s, tag harness, pid %d", beat["info"], id, host, sk.PID)
	}
	if at, err := strconv.ParseFloat(beat["beat"], 64); err != nil || time.Since(time.Unix(int64(at), 0)) > time.Minute {
		t.Errorf("beat = %q, want a recent epoch in seconds", beat["beat"])
	}
	// The release's own word, from its log (6.4.1: "Booting Sidekiq 6.4.1 with redis options";
	// 7 and 8: "Sidekiq 8.1.7 connecting to Redis").
	waitFor(t, sk, 10*time.Second, "the boot line naming Sidekiq "+string(v), func() bool {
		return strings.Contains(readLog(t, sk), "Sidekiq "+string(v)+" ")
	})

	// A job runs to completion.
	jid, err := Enqueue(ctx, rdb, "", "default", "SleepJob", 0.1)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, sk, 20*time.Second, "job "+jid+" to finish", func() bool {
		done, err := DoneCounts(ctx, rdb)
		return err == nil && done[jid] == 1
	})

	// A long job starts, then TSTP through Redis: quiet="true" within two beats.
	long, longPayload := payload(t, v, "SleepJob", 120)
	push(ctx, t, rdb, longPayload)
	waitFor(t, sk, 20*time.Second, "job "+long+" to start", func() bool { return listed(ctx, t, rdb, StartedList, long) })
	signal(ctx, t, rdb, id, "TSTP")
	waitFor(t, sk, 3*v.BeatInterval()+15*time.Second, "quiet=true after TSTP", func() bool {
		q, _ := rdb.HGet(ctx, id, "quiet").Result()
		return q == "true"
	})

	// Quiet: a job pushed now is not fetched.
	idle, idlePayload := payload(t, v, "SleepJob", 0.1)
	push(ctx, t, rdb, idlePayload)

	// TERM through Redis: the running job goes back, byte for byte, to the tail of its queue.
	signal(ctx, t, rdb, id, "TERM")
	state := sk.Wait(v.BeatInterval() + 3*time.Second + 30*time.Second)
	if state == nil {
		t.Fatalf("sidekiq %s still running %s after TERM", v, v.BeatInterval()+33*time.Second)
	}
	if state.ExitCode() != 0 {
		t.Errorf("exit after TERM: %v, want 0", state)
	}
	if log := readLog(t, sk); !strings.Contains(log, "Pushed 1 jobs back to Redis") {
		t.Errorf("log has no %q", "Pushed 1 jobs back to Redis")
	}
	if got, err := rdb.LRange(ctx, "queue:default", 0, -1).Result(); err != nil || len(got) != 2 || got[0] != idlePayload || got[1] != longPayload {
		t.Errorf("queue:default = %q (%v), want [the quiet-time job, the requeued job] exactly as pushed:\n%s\n%s", got, err, idlePayload, longPayload)
	}
	for _, j := range []string{idle, long} {
		if listed(ctx, t, rdb, DoneList, j) {
			t.Errorf("job %s done, want it not run to completion", j)
		}
	}
	if listed(ctx, t, rdb, StartedList, idle) {
		t.Errorf("job %s pushed while quiet was started", idle)
	}

	// A clean stop: out of processes at once, its work hash gone, its heartbeat hash left to expire.
	if ok, _ := rdb.SIsMember(ctx, "processes", id).Result(); ok {
		t.Errorf("%s still in processes after a clean stop", id)
	}
	if n, _ := rdb.Exists(ctx, id+":work", id+":workers").Result(); n != 0 {
		t.Errorf("%s's work hash still exists after a clean stop", id)
	}
	if n, _ := rdb.Exists(ctx, id).Result(); n != 1 {
		t.Errorf("%s's heartbeat hash gone at once, want it left to expire", id)
	}
}

// TestMissingSidekiqFailsWhenRequired: with integration tests required, a release missing from
// the cache fails the test rather than skipping it; otherwise it skips.
func TestMissingSidekiqFailsWhenRequired(t *testing.T) {
	t.Setenv("DRAINCTL_CACHE", t.TempDir())
	for _, v := range []SidekiqVersion{Sidekiq7, Sidekiq8} {
		_, _, err := SidekiqCommand(SidekiqOptions{Version: v})
		if err == nil || !strings.Contains(err.Error(), "sidekiq"+string(v[0])+".env missing") {
			t.Fatalf("SidekiqCommand(%s) with an empty cache: %v, want the missing env file named", v, err)
		}
		if _, _, err := RubyCommand(v); err == nil {
			t.Errorf("RubyCommand(%s) with an empty cache: no error", v)
		}
		for _, required := range []string{"1", ""} {
			t.Setenv("DRAINCTL_REQUIRE_INTEGRATION", required)
			rec := &recordTB{TB: t}
			done := make(chan struct{})
			go func() { defer close(done); Missing(rec, "%v", err) }()
			<-done
			if required == "1" && (rec.fatal == "" || rec.skip != "") {
				t.Errorf("%s required: fatal %q, skip %q; want a failure", v, rec.fatal, rec.skip)
			}
			if required == "" && (rec.skip == "" || rec.fatal != "") {
				t.Errorf("%s not required: fatal %q, skip %q; want a skip", v, rec.fatal, rec.skip)
			}
		}
	}
}

// TestSidekiqCommand8 checks the shape of the 8.1.7 command: Ruby 3.3 started through the
// private root's own loader, with the root's Ruby and gems on RUBYLIB.
func TestSidekiqCommand8(t *testing.T) {
	t.Parallel()
	argv, env, err := SidekiqCommand(SidekiqOptions{Version: Sidekiq8, RedisURL: "redis://127.0.0.1:1/0", Tag: "x"})
	if err != nil {
		Missing(t, "%v", err)
	}
	if len(argv) < 6 || !strings.Contains(argv[0], "ld-linux") || argv[1] != "--library-path" ||
		!strings.HasSuffix(argv[3], "/ruby3.3") || !strings.HasSuffix(argv[4], "/bin/sidekiq") || argv[5] != "-r" {
		t.Errorf("argv = %q, want loader --library-path DIR ruby3.3 sidekiq -r …", argv)
	}
	var rubylib string
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "RUBYLIB="); ok {
			rubylib = v
		}
	}
	for _, want := range []string{"/usr/lib/ruby/3.3.0", "/sidekiq-8.1.7/lib", "/redis-client-", "/connection_pool-"} {
		if !strings.Contains(rubylib, want) {
			t.Errorf("RUBYLIB %q has no %s", rubylib, want)
		}
	}
}

// recordTB records Missing's verdict instead of ending the test; like testing's, its Fatalf
// and Skipf end the calling goroutine.
type recordTB struct {
	testing.TB
	fatal, skip string
}

func (r *recordTB) Helper() {}
func (r *recordTB) Fatalf(format string, a ...any) {
	r.fatal = fmt.Sprintf(format, a...)
	runtime.Goexit()
}
func (r *recordTB) Skipf(format string, a ...any) {
	r.skip = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

// payload builds a job as release v's client writes it (timestamps in float seconds before 8,
// integer milliseconds from 8) and returns its jid and JSON.
func payload(t *testing.T, v SidekiqVersion, class string, args ...any) (jid, js string) {
	t.Helper()
	jid = NewJID()
	var now any = float64(time.Now().UnixNano()) / 1e9
	if v == Sidekiq8 {
		now = time.Now().UnixMilli()
	}
	b, err := json.Marshal(map[string]any{"class": class, "args": args, "queue": "default", "jid": jid,
		"retry": true, "created_at": now, "enqueued_at": now})
	if err != nil {
		t.Fatal(err)
	}
	return jid, string(b)
}

// push enqueues a payload on queue:default the way Sidekiq's client does.
func push(ctx context.Context, t *testing.T, rdb *redis.Client, payload string) {
	t.Helper()
	if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, "queues", "default")
		p.LPush(ctx, "queue:default", payload)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// signal pushes sig the way Sidekiq's Web UI does (Process#quiet! / #stop!).
func signal(ctx context.Context, t *testing.T, rdb *redis.Client, id, sig string) {
	t.Helper()
	if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, id+"-signals", sig)
		p.Expire(ctx, id+"-signals", 60*time.Second)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func heartbeat(ctx context.Context, t *testing.T, rdb *redis.Client, id string) map[string]string {
	t.Helper()
	h, err := rdb.HGetAll(ctx, id).Result()
	if err != nil || h["info"] == "" {
		t.Fatalf("heartbeat hash %s: %v %q", id, err, h)
	}
	return h
}

func listed(ctx context.Context, t *testing.T, rdb *redis.Client, list, jid string) bool {
	t.Helper()
	ids, err := rdb.LRange(ctx, list, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if id == jid {
			return true
		}
	}
	return false
}

func readLog(t *testing.T, sk *Sidekiq) string {
	t.Helper()
	b, err := os.ReadFile(sk.Log)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor polls cond every 100 ms until it holds; it fails the test when within passes or the
// process exits first.
func waitFor(t *testing.T, sk *Sidekiq, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-sk.Exited():
			if cond() {
				return
			}
			t.Fatalf("sidekiq %s exited while waiting for %s", sk.Opts.Version, what)
		case <-deadline.C:
			t.Fatalf("sidekiq %s: no %s within %s", sk.Opts.Version, what, within)
		case <-tick.C:
		}
	}
}
