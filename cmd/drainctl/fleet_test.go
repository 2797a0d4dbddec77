package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/report"
	"github.com/drainctl/drainctl/internal/sidekiq"
	"github.com/drainctl/drainctl/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// worker is one real Sidekiq process on its own queue, in its own redis-server.
type worker struct {
	redis    *testenv.Redis
	rdb      *redis.Client
	sk       *testenv.Sidekiq
	identity string
	queue    string
}

func startWorker(t *testing.T, v testenv.SidekiqVersion, queue string, redisOpts ...testenv.RedisOption) *worker {
	t.Helper()
	r := testenv.StartRedis(t, redisOpts...)
	rdb := r.Client(t)
	sk := testenv.StartSidekiq(t, testenv.SidekiqOptions{Version: v, RedisURL: r.URL(), Queues: []string{queue}, Tag: "cli-" + queue, Timeout: 3})
	id := sk.WaitRegistered(t, rdb, "", 60*time.Second)
	return &worker{redis: r, rdb: rdb, sk: sk, identity: id, queue: queue}
}

// enqueueRunning enqueues a SleepJob and waits until the worker's heartbeat shows it in
// flight (the work hash is written at each beat, so this takes up to one beat).
func (w *worker) enqueueRunning(t *testing.T, seconds float64) string {
	t.Helper()
	ctx := context.Background()
	jid, err := testenv.Enqueue(ctx, w.rdb, "", w.queue, "SleepJob", seconds)
	if err != nil {
		t.Fatal(err)
	}
	cl := sidekiq.NewClient(w.rdb, "")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		snap, err := cl.SnapshotOf(ctx, []string{w.identity})
		if err == nil && len(snap.Processes) == 1 {
			for _, j := range snap.Processes[0].Jobs {
				if j.JID == jid {
					return jid
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("job %s not seen in flight on %s within 30s", jid, w.identity)
	return ""
}

func (w *worker) env() map[string]string {
	return map[string]string{"REDIS_URL": w.redis.URL()}
}

// TestFleet runs every fleet scenario against real redis-server and real Sidekiq 6.4.1 and
// 7.3.2. The scenarios mostly wait for heartbeats, so they run at once, each in its own
// goroutine (t.Run from several goroutines), rather than under go test's -parallel limit,
// which is GOMAXPROCS.
func TestFleet(t *testing.T) {
	t.Parallel()
	scenarios := []struct {
		name string
		f    func(*testing.T, testenv.SidekiqVersion)
	}{
		{"status", scenarioStatus},
		{"quiet", scenarioQuiet},
		{"drain finishes", scenarioDrainFinishes},
		{"drain timeout fail", scenarioDrainTimeoutFail},
		{"drain timeout stop", scenarioDrainTimeoutStop},
		{"drain interrupted", scenarioDrainInterrupted},
		{"rescue", scenarioRescue},
	}
	var wg sync.WaitGroup
	for _, sc := range scenarios {
		for _, v := range testenv.Versions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t.Run(sc.name+"/"+string(v), func(t *testing.T) { sc.f(t, v) })
			}()
		}
	}
	wg.Wait()
}

func scenarioStatus(t *testing.T, v testenv.SidekiqVersion) {
	const pw = "s3cret-pa55"
	w := startWorker(t, v, "status", testenv.WithPassword(pw))
	jid := w.enqueueRunning(t, 30)

	code, out, errs := runCLI(t, w.env(), "status")
	if code != 0 {
		t.Fatalf("status: exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{w.identity, "SleepJob", jid, "redis://:xxxxx@", "status", "running"} {
		if !strings.Contains(out, want) {
			t.Errorf("status text lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errs, pw) {
		t.Errorf("the password is printed:\n%s\n%s", out, errs)
	}

	code, out, errs = runCLI(t, w.env(), "status", "--output", "json", "--tag", "cli-status")
	if code != 0 {
		t.Fatalf("status json: exit %d, stderr %q", code, errs)
	}
	if strings.Contains(out+errs, pw) {
		t.Errorf("the password is printed in JSON:\n%s", out)
	}
	var st statusReport
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if st.Schema != report.Schema || st.DocKind != "status" || len(st.Processes) != 1 || st.Processes[0].Identity != w.identity || st.Processes[0].Busy != 1 {
		t.Errorf("processes = %+v, want only %s busy 1", st.Processes, w.identity)
	}
	if len(st.Jobs) != 1 || st.Jobs[0].JID != jid || st.Jobs[0].Class != "SleepJob" || st.Jobs[0].Queue != "status" || len(st.Jobs[0].Args) != 0 {
		t.Errorf("jobs = %+v, want %s SleepJob on status without args", st.Jobs, jid)
	}
	if len(st.Queues) != 1 || st.Queues[0].Name != "status" {
		t.Errorf("queues = %+v", st.Queues)
	}

	// A wrong password is bad input: one line, exit 2, neither password printed.
	for _, cmd := range [][]string{{"status"}, {"quiet", "--all"}} {
		code, out, errs = runCLI(t, map[string]string{"REDIS_URL": "redis://:wrong-pa55@" + w.redis.Addr}, cmd...)
		if code != exitUsage {
			t.Errorf("%s with a wrong password: exit %d, want 2; stderr %q", cmd[0], code, errs)
		}
		assertOneLineError(t, out, errs, "redis://:xxxxx@"+w.redis.Addr)
		if strings.Contains(errs, "wrong-pa55") || strings.Contains(errs, pw) {
			t.Errorf("a password is printed: %q", errs)
		}
	}

	code, out, _ = runCLI(t, w.env(), "status", "--output", "markdown", "--show-args")
	if code != 0 || !strings.Contains(out, "| `"+w.identity+"`") {
		t.Errorf("status markdown: exit %d\n%s", code, out)
	}
}

func scenarioQuiet(t *testing.T, v testenv.SidekiqVersion) {
	w := startWorker(t, v, "quiet")
	start := time.Now()
	code, _, errs := runCLI(t, w.env(), "quiet", "--identity", w.identity, "--no-wait")
	if code != 0 || time.Since(start) > 5*time.Second {
		t.Fatalf("quiet --no-wait: exit %d after %v, stderr %q", code, time.Since(start), errs)
	}
	code, out, errs := runCLI(t, w.env(), "quiet", "--identity", w.identity, "--poll-interval", "250ms", "--output", "json")
	if code != 0 {
		t.Fatalf("quiet: exit %d, stderr %q", code, errs)
	}
	q, err := w.rdb.HGet(context.Background(), w.identity, "quiet").Result()
	if err != nil || q != "true" {
		t.Errorf("heartbeat quiet = %q (%v), want true", q, err)
	}
	var rep struct {
		Command   string `json:"command"`
		Outcome   string `json:"outcome"`
		Processes []struct {
			Identity, State string
		} `json:"processes"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if rep.Command != "quiet" || rep.Outcome != "succeeded" || len(rep.Processes) != 1 ||
		(rep.Processes[0].State != "quiet" && rep.Processes[0].State != "drained") {
		t.Errorf("report = %+v, want quiet succeeded with the process quiet", rep)
	}
}

func scenarioDrainFinishes(t *testing.T, v testenv.SidekiqVersion) {
	w := startWorker(t, v, "drainok")
	jid := w.enqueueRunning(t, 15)
	reportFile := filepath.Join(t.TempDir(), "drain.md")
	code, out, errs := runCLI(t, w.env(), "drain", "--identity", w.identity, "--drain-timeout", "60s", "--poll-interval", "250ms",
		"--output", "json", "--report", reportFile)
	if code != 0 {
		t.Fatalf("drain: exit %d, stderr %q", code, errs)
	}
	if md, err := os.ReadFile(reportFile); err != nil || !strings.Contains(string(md), "drainctl drain") || !strings.Contains(string(md), "```mermaid") {
		t.Errorf("--report drain.md = %q (%v), want the Markdown report", md, err)
	}
	var rep struct {
		Outcome string `json:"outcome"`
		Jobs    struct {
			Finished, Lost, StillRunning int
		} `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if rep.Outcome != "succeeded" || rep.Jobs.Finished != 1 || rep.Jobs.Lost != 0 {
		t.Errorf("report = %+v, want succeeded with 1 finished", rep)
	}
	done, err := testenv.DoneCounts(context.Background(), w.rdb)
	if err != nil || done[jid] != 1 {
		t.Errorf("done[%s] = %d (%v), want 1", jid, done[jid], err)
	}
}

func scenarioDrainTimeoutFail(t *testing.T, v testenv.SidekiqVersion) {
	w := startWorker(t, v, "drainfail")
	jid := w.enqueueRunning(t, 120)
	env := w.env()
	summary := filepath.Join(t.TempDir(), "summary.md")
	env["GITHUB_ACTIONS"], env["GITHUB_STEP_SUMMARY"] = "true", summary
	code, out, errs := runCLI(t, env, "drain", "--identity", w.identity, "--drain-timeout", "2s", "--on-timeout", "fail", "--poll-interval", "250ms")
	t.Logf("drain report:\n%s\nstderr:\n%s", out, errs)
	if code != exitDrainTimeout {
		t.Fatalf("drain: exit %d, want 3; stderr %q", code, errs)
	}
	if !strings.Contains(errs, "drainctl: error: drain timed out") || !strings.Contains(errs, "left quiet: "+w.identity) {
		t.Errorf("stderr does not name the process left quiet: %q", errs)
	}
	if !strings.Contains(out, "drain timed out") || !strings.Contains(out, w.identity) || !strings.Contains(out, jid) {
		t.Errorf("report lacks the outcome, process or job:\n%s", out)
	}
	if q, _ := w.rdb.HGet(context.Background(), w.identity, "quiet").Result(); q != "true" {
		t.Errorf("process quiet = %q, want true", q)
	}
	if !strings.Contains(errs, "::error") {
		t.Errorf("stderr lacks the GitHub Actions ::error annotation: %q", errs)
	}
	md, err := os.ReadFile(summary)
	if err != nil || !strings.Contains(string(md), "drain timed out") || !strings.Contains(string(md), w.identity) {
		t.Errorf("step summary = %q (%v), want the Markdown report", md, err)
	}
}

// scenarioDrainTimeoutStop: with --on-timeout stop, the job that outlasts the drain is
// requeued by Sidekiq's own shutdown after the TERM sent through Redis, and the process leaves.
func scenarioDrainTimeoutStop(t *testing.T, v testenv.SidekiqVersion) {
	w := startWorker(t, v, "drainstop")
	jid := w.enqueueRunning(t, 120)
	code, out, errs := runCLI(t, w.env(), "drain", "--identity", w.identity, "--drain-timeout", "2s", "--on-timeout", "stop",
		"--exit-timeout", "60s", "--poll-interval", "250ms", "--output", "json")
	if code != 0 {
		t.Fatalf("drain: exit %d, want 0; stderr %q", code, errs)
	}
	var rep struct {
		Outcome string `json:"outcome"`
		Jobs    struct {
			Requeued, Lost int
		} `json:"jobs"`
		Processes []struct{ State string } `json:"processes"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if rep.Outcome != "succeeded" || rep.Jobs.Requeued != 1 || rep.Jobs.Lost != 0 || len(rep.Processes) != 1 || rep.Processes[0].State != "gone" {
		t.Errorf("report = %+v, want succeeded, 1 requeued, the process gone", rep)
	}
	if w.sk.Wait(10*time.Second) == nil {
		t.Error("sidekiq still runs after the TERM")
	}
	queued, err := w.rdb.LRange(context.Background(), "queue:drainstop", 0, -1).Result()
	if err != nil || len(queued) != 1 || !strings.Contains(queued[0], jid) {
		t.Errorf("queue:drainstop = %q (%v), want the requeued job", queued, err)
	}
}

// scenarioDrainInterrupted cancels drain's context (its SIGINT) once the process is quiet:
// exit 130, and the report says what is left quiet.
func scenarioDrainInterrupted(t *testing.T, v testenv.SidekiqVersion) {
	w := startWorker(t, v, "drainint")
	w.enqueueRunning(t, 120)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if q, _ := w.rdb.HGet(ctx, w.identity, "quiet").Result(); q == "true" {
				time.Sleep(500 * time.Millisecond)
				cancel()
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	code, out, errs := runCLICtx(ctx, t, w.env(), "drain", "--identity", w.identity, "--poll-interval", "250ms", "--output", "json")
	if code != exitInterrupted {
		t.Fatalf("drain: exit %d, want 130; stderr %q", code, errs)
	}
	var rep struct {
		Outcome string `json:"outcome"`
		Left    struct {
			QuietProcesses []string `json:"quiet_processes"`
		} `json:"left"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if rep.Outcome != "interrupted" || len(rep.Left.QuietProcesses) != 1 || rep.Left.QuietProcesses[0] != w.identity {
		t.Errorf("report = %+v, want interrupted with %s left quiet", rep, w.identity)
	}
	if !strings.Contains(errs, "drainctl: error: interrupted") {
		t.Errorf("stderr = %q", errs)
	}
}

// scenarioRescue kills a real Sidekiq process with SIGKILL mid-job and checks what rescue
// says and does: at once (its heartbeat hash not yet expired) it lists the process as not yet
// known dead with the time that becomes certain and requeues nothing, --dry-run lists the job
// as would-push; two `rescue --wait 90s` runs, the second started while the first waits,
// requeue the job exactly once, the other run listing it as already rescued by the run that
// pushed it; a later rescue pushes nothing.
func scenarioRescue(t *testing.T, v testenv.SidekiqVersion) {
	w := startWorker(t, v, "rescue")
	jid := w.enqueueRunning(t, 120)
	ctx := context.Background()
	if err := w.sk.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	w.sk.Wait(10 * time.Second)
	cl := sidekiq.NewClient(w.rdb, "")
	snap, err := cl.SnapshotOf(ctx, []string{w.identity})
	if err != nil || len(snap.Processes) != 1 || !snap.Processes[0].HashExists {
		t.Fatalf("snapshot after the kill: %+v, %v", snap, err)
	}
	p := snap.Processes[0]
	certainAt := p.Beat.Add(sidekiq.HeartbeatTTL)
	// Wait until the last beat is stale by the default rule (two beats + 2 s).
	time.Sleep(time.Until(p.Beat.Add(sidekiq.StaleAfter(p) + 500*time.Millisecond)))

	code, out, errs := runCLI(t, w.env(), "rescue", "--output", "json")
	if code != 0 {
		t.Fatalf("rescue at once: exit %d, stderr %q", code, errs)
	}
	var rep rescueReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if rep.Schema != report.Schema || rep.DocKind != "rescue" || len(rep.Processes) != 1 || rep.Processes[0].Identity != w.identity ||
		rep.Processes[0].State != "not-yet-known-dead" || rep.Processes[0].CertainAt.Sub(certainAt).Abs() > time.Second ||
		!strings.Contains(rep.Processes[0].Evidence, "not yet known dead: last beat ") || !strings.Contains(rep.Processes[0].Evidence, "certain at ") {
		t.Errorf("rescue at once = %+v, want %s not yet known dead, certain at %v", rep.Processes, w.identity, certainAt)
	}
	if len(rep.Jobs) != 1 || rep.Jobs[0].JID != jid || rep.Jobs[0].Outcome != "not-yet-known-dead" || rep.Counts[string(sidekiq.OutcomePushed)] != 0 {
		t.Errorf("jobs = %+v, want %s listed, not pushed", rep.Jobs, jid)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "--wait") {
		t.Errorf("notes %q do not offer --wait", rep.Notes)
	}
	if n, _ := w.rdb.LLen(ctx, "queue:rescue").Result(); n != 0 {
		t.Errorf("rescue without --wait pushed %d job(s)", n)
	}
	code, out, errs = runCLI(t, w.env(), "rescue")
	if code != 0 || !strings.Contains(out, "not yet known dead") || !strings.Contains(out, "certain at "+certainAt.Local().Format("15:04:05")) ||
		strings.Contains(out, "no dead process found") {
		t.Errorf("rescue text: exit %d, stderr %q:\n%s", code, errs, out)
	}

	code, out, errs = runCLI(t, w.env(), "rescue", "--dry-run", "--output", "json")
	if code != 0 {
		t.Fatalf("rescue --dry-run: exit %d, stderr %q", code, errs)
	}
	rep = rescueReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(rep.Processes) != 1 || rep.Processes[0].State != "not-yet-known-dead" || len(rep.Jobs) != 1 ||
		rep.Jobs[0].JID != jid || rep.Jobs[0].Outcome != string(sidekiq.OutcomeWouldPush) {
		t.Errorf("dry run = %+v, want the process not yet known dead and its job would-push", rep)
	}
	if n, _ := w.rdb.LLen(ctx, "queue:rescue").Result(); n != 0 {
		t.Errorf("dry run pushed %d job(s)", n)
	}

	// Two rescues wait for the death at once; the run IDs differ by their start second.
	reps := make([]rescueReport, 2)
	var wg sync.WaitGroup
	for i := range reps {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out, errs := runCLI(t, w.env(), "rescue", "--wait", "90s", "--poll-interval", "250ms", "--output", "json")
			if code != 0 {
				t.Errorf("rescue --wait %d: exit %d, stderr %q", i, code, errs)
				return
			}
			if err := json.Unmarshal([]byte(out), &reps[i]); err != nil {
				t.Errorf("rescue --wait %d: not JSON: %v\n%s", i, err, out)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if time.Now().Before(certainAt.Add(-time.Second)) {
		t.Errorf("rescue --wait returned at %v, before the death was certain (%v)", time.Now(), certainAt)
	}
	var pushedBy, other *rescueReport
	for i := range reps {
		r := &reps[i]
		if len(r.Processes) != 1 || r.Processes[0].State != "dead" || len(r.Jobs) != 1 || r.Jobs[0].JID != jid {
			t.Fatalf("rescue --wait %d = %+v, want %s dead and its job", i, r, w.identity)
		}
		if r.Jobs[0].Outcome == string(sidekiq.OutcomePushed) {
			pushedBy = r
		} else {
			other = r
		}
	}
	if pushedBy == nil || other == nil || pushedBy.RunID == other.RunID {
		t.Fatalf("outcomes %q and %q (runs %q, %q), want one pushed and one already rescued by another run",
			reps[0].Jobs[0].Outcome, reps[1].Jobs[0].Outcome, reps[0].RunID, reps[1].RunID)
	}
	if j := pushedBy.Jobs[0]; j.RescuedBy != pushedBy.RunID || j.RescuedAt.IsZero() {
		t.Errorf("pushed job = %+v, want rescued by this run (%s)", j, pushedBy.RunID)
	}
	if j := other.Jobs[0]; j.Outcome != string(sidekiq.OutcomeAlreadyRescued) || j.RescuedBy != pushedBy.RunID || j.RescuedAt.Sub(pushedBy.Jobs[0].RescuedAt).Abs() > time.Millisecond ||
		!strings.Contains(j.Reason, pushedBy.RunID) {
		t.Errorf("other run's job = %+v, want already rescued by %s at %v", j, pushedBy.RunID, pushedBy.Jobs[0].RescuedAt)
	}
	queued, err := w.rdb.LRange(ctx, "queue:rescue", 0, -1).Result()
	if err != nil || len(queued) != 1 || !strings.Contains(queued[0], jid) {
		t.Fatalf("queue:rescue = %q (%v), want exactly the rescued job", queued, err)
	}

	code, out, errs = runCLI(t, w.env(), "rescue", "--output", "json")
	if code != 0 {
		t.Fatalf("later rescue: exit %d, stderr %q", code, errs)
	}
	rep = rescueReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Counts[string(sidekiq.OutcomePushed)] != 0 {
		t.Errorf("later rescue pushed again: %+v", rep)
	}
	if n, _ := w.rdb.LLen(ctx, "queue:rescue").Result(); n != 1 {
		t.Errorf("queue:rescue has %d jobs after a later rescue, want 1", n)
	}
}
