package e2e

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/stack"
	"github.com/drainctl/drainctl/internal/testenv"
)

// Timings shared by the tests. Sidekiq 6.4 writes its heartbeat (and with it its work and
// its quiet acknowledgement) every 5 s, so a quiet is acknowledged within about 10 s.
const (
	// longJob outlasts any drain budget below: jobs that must still run when their process is
	// stopped. RerunJob runs it only the first time; a requeued or rescued job runs shortRerun.
	longJob    = 60
	shortRerun = 0.3
	// afterRun bounds the wait for every job to be done once drainctl has ended.
	afterRun = 60 * time.Second
)

// nothingLost waits until every jid has finished at least once and fails the test naming
// the lost ones otherwise: "lost" is counted from the done list, never from drainctl's report.
func nothingLost(t *testing.T, s *stack.Stack, jids []string) {
	t.Helper()
	ctx := ctxFor(t, afterRun)
	if err := s.WaitAllDone(ctx, jids); err != nil {
		lost, _ := s.Lost(ctxFor(t, 5*time.Second), jids)
		t.Fatalf("jobs lost (not done once): %v (%v)", lost, err)
	}
}

// runs returns how many times each RerunJob started.
func runs(t *testing.T, s *stack.Stack, jids []string) []int {
	t.Helper()
	ctx := ctxFor(t, 5*time.Second)
	out := make([]int, len(jids))
	for i, j := range jids {
		n, err := s.Runs(ctx, j)
		must(t, err)
		out[i] = n
	}
	return out
}

func allEqual(xs []int, v int) bool {
	for _, x := range xs {
		if x != v {
			return false
		}
	}
	return len(xs) > 0
}

// checkSucceeded checks what every successful deploy report says.
func checkSucceeded(t *testing.T, p *proc, r *Report, s *stack.Stack) {
	t.Helper()
	if p.code != 0 || r.Outcome != "succeeded" {
		t.Errorf("exit %d outcome %q (error %q), want 0 succeeded", p.code, r.Outcome, r.Error)
	}
	if r.Command != "deploy" {
		t.Errorf("command = %q, want deploy", r.Command)
	}
	if len(r.Services) != 1 {
		t.Fatalf("services = %d, want 1", len(r.Services))
	}
	svc := r.Services[0]
	if svc.Cluster != s.Opts.Cluster || svc.Service != s.Opts.Service || !svc.Deployed ||
		!strings.HasPrefix(svc.DeploymentID, "ecs-svc/") || svc.Result != "succeeded" {
		t.Errorf("service section: %+v", svc)
	}
	if n := s.Sim.Calls("UpdateService"); n != 1 {
		t.Errorf("UpdateService called %d times, want exactly 1", n)
	}
	for _, ph := range []string{"preflight", "quiet", "drain", "deploy", "rollout"} {
		if !r.phase(ph) {
			t.Errorf("phase %q missing from the report", ph)
		}
	}
	if !r.Lock.Acquired || !r.Lock.Released {
		t.Errorf("lock acquired %v released %v, want both", r.Lock.Acquired, r.Lock.Released)
	}
	if r.Jobs.Lost != 0 || r.Jobs.StillRunning != 0 {
		t.Errorf("report jobs %+v: want none lost or still running", r.Jobs)
	}
}

// (a) Jobs that finish inside the drain budget finish on the quiet processes; jobs still
// queued run on the new tasks; nothing is lost.
func TestDeployJobsFinishWithinDrain(t *testing.T) {
	t.Parallel()
	s := startStack(t, stack.Options{Tasks: 2})
	ctx := ctxFor(t, 2*time.Minute)
	inFlight, err := s.EnqueueRerun(ctx, 4, 8, shortRerun) // fills the 2×2 slots
	must(t, err)
	must(t, s.WaitBusy(ctx, 4))
	queued, err := s.Enqueue(ctx, 2, 0.1)
	must(t, err)

	p := run(t, s, deployArgs(s, "--drain-timeout", "60s")...)
	r := p.report(t)
	checkSucceeded(t, p, r, s)
	if r.Jobs.Finished != 4 || r.Jobs.Requeued != 0 || r.Jobs.Rescued != 0 {
		t.Errorf("report jobs %+v, want 4 finished", r.Jobs)
	}
	if f := r.fates(); f["finished"] != 4 || len(r.JobList) != 4 {
		t.Errorf("job_list fates %v, want 4 finished", f)
	}
	if st := r.states(); st["gone"] != 2 || len(r.Processes) != 2 {
		t.Errorf("process states %v, want 2 gone", st)
	}
	nothingLost(t, s, append(inFlight, queued...))
	if n := runs(t, s, inFlight); !allEqual(n, 1) {
		t.Errorf("in-flight jobs ran %v times, want once each", n)
	}
}

// (b) Jobs longer than the drain budget on the working signal path: ECS's SIGTERM reaches
// Sidekiq, which requeues them; the new tasks run them; nothing is lost or rescued. Both
// Sidekiq releases (7 beats every 10 s, 6.4 every 5 s; their work keys differ).
func TestDeployWorkingSignalPathRequeues(t *testing.T) {
	t.Parallel()
	for _, v := range testenv.Versions {
		t.Run(string(v), func(t *testing.T) {
			t.Parallel()
			testWorkingSignalPathRequeues(t, v)
		})
	}
}

func testWorkingSignalPathRequeues(t *testing.T, v testenv.SidekiqVersion) {
	s := startStack(t, stack.Options{Tasks: 2, SidekiqVersion: v})
	ctx := ctxFor(t, 2*time.Minute)
	jids, err := s.EnqueueRerun(ctx, 4, longJob, shortRerun)
	must(t, err)
	must(t, s.WaitBusy(ctx, 4))

	p := run(t, s, deployArgs(s, "--drain-timeout", "1s")...)
	r := p.report(t)
	checkSucceeded(t, p, r, s)
	if r.Jobs.Requeued != 4 || r.Jobs.Rescued != 0 || r.Jobs.Finished != 0 {
		t.Errorf("report jobs %+v, want 4 requeued", r.Jobs)
	}
	if st := r.states(); st["gone"] != 2 {
		t.Errorf("process states %v, want 2 gone (clean exits)", st)
	}
	// Both old tasks are in the report, and their Sidekiq exited 0 (a clean TERM shutdown).
	clean := 0
	for _, tk := range r.Services[0].StoppedTasks {
		for _, c := range tk.Containers {
			switch {
			case c.ExitCode == nil:
			case *c.ExitCode == 0:
				clean++
			default:
				t.Errorf("task %s container %s exited %d on the working signal path", tk.ID, c.Name, *c.ExitCode)
			}
		}
	}
	if clean != 2 {
		t.Errorf("stopped tasks with a clean exit = %d, want the 2 old tasks: %+v", clean, r.Services[0].StoppedTasks)
	}
	nothingLost(t, s, jids)
	if n := runs(t, s, jids); !allEqual(n, 2) {
		t.Errorf("jobs ran %v times, want twice each (killed? requeued twice?)", n)
	}
}

// (c) Broken signal path: the old processes are SIGKILLed with their jobs in flight;
// drainctl reports them dead with the exit-137 evidence and rescues each job exactly once.
// Both Sidekiq releases.
func TestDeployBrokenSignalPathRescues(t *testing.T) {
	t.Parallel()
	for _, v := range testenv.Versions {
		t.Run(string(v), func(t *testing.T) {
			t.Parallel()
			testBrokenSignalPathRescues(t, v)
		})
	}
}

func testBrokenSignalPathRescues(t *testing.T, v testenv.SidekiqVersion) {
	s := startStack(t, stack.Options{Tasks: 2, BrokenSignalPath: true, SidekiqVersion: v})
	ctx := ctxFor(t, 2*time.Minute)
	jids, err := s.EnqueueRerun(ctx, 4, longJob, shortRerun)
	must(t, err)
	must(t, s.WaitBusy(ctx, 4))

	p := run(t, s, deployArgs(s, "--drain-timeout", "1s")...)
	r := p.report(t)
	checkSucceeded(t, p, r, s)
	if r.Jobs.Rescued != 4 || r.Jobs.Lost != 0 {
		t.Errorf("report jobs %+v, want 4 rescued, 0 lost", r.Jobs)
	}
	rescued := map[string]int{}
	for _, j := range r.JobList {
		if j.Fate == "rescued" {
			rescued[j.JID]++
		}
	}
	for _, j := range jids {
		if rescued[j] != 1 {
			t.Errorf("job %s listed rescued %d times, want 1", j, rescued[j])
		}
	}
	if st := r.states(); st["dead"] != 2 {
		t.Errorf("process states %v, want 2 dead", st)
	}
	for _, pr := range r.Processes {
		if !strings.Contains(pr.Evidence, "137") {
			t.Errorf("process %s evidence %q lacks the exit code 137", pr.Identity, pr.Evidence)
		}
	}
	killed := 0
	for _, tk := range r.Services[0].StoppedTasks {
		for _, c := range tk.Containers {
			if c.ExitCode != nil && *c.ExitCode == 137 {
				killed++
			}
		}
	}
	if killed != 2 {
		t.Errorf("stopped_tasks show %d containers with exit code 137, want 2: %+v", killed, r.Services[0].StoppedTasks)
	}
	if len(r.Warnings) == 0 {
		t.Error("no warning about the rescued jobs")
	}
	nothingLost(t, s, jids)
	// Killed once, rescued once: two runs. A second push of the same job would start a third.
	if n := runs(t, s, jids); !allEqual(n, 2) {
		t.Errorf("jobs ran %v times, want twice each", n)
	}
	if q, err := s.QueueSize(ctx); err != nil || q != 0 {
		t.Errorf("queue holds %d jobs (%v) after all were done: pushed twice?", q, err)
	}
}

// (d) The baseline drainctl exists for: the same broken signal path with a plain forced
// deployment (no drain) loses the jobs in flight, and the harness sees it.
func TestNaiveDeployLosesJobs(t *testing.T) {
	t.Parallel()
	s := startStack(t, stack.Options{Tasks: 2, BrokenSignalPath: true})
	ctx := ctxFor(t, 2*time.Minute)
	jids, err := s.EnqueueRerun(ctx, 4, longJob, shortRerun)
	must(t, err)
	must(t, s.WaitStarted(ctx, jids))
	var old []string
	for _, ti := range s.RunningTasks() {
		old = append(old, ti.ARN)
	}
	id, err := s.ForceNewDeployment(ctx)
	must(t, err)
	must(t, s.WaitRolloutCompleted(ctx, id))
	exits, err := s.WaitTasksStopped(ctx, old)
	must(t, err)
	for _, e := range exits {
		if e.ExitCode == nil || *e.ExitCode != 137 {
			t.Errorf("old task %s exit code %v, want 137", e.ID, deref(e.ExitCode))
		}
	}
	// The jobs ran on the killed processes and are in no queue: nothing will run them again.
	if q, err := s.QueueSize(ctx); err != nil || q != 0 {
		t.Fatalf("queue size %d (%v), want 0", q, err)
	}
	lost, err := s.Lost(ctx, jids)
	must(t, err)
	if len(lost) == 0 {
		t.Fatal("naive deploy lost no job: the harness cannot see loss")
	}
	t.Logf("naive forced deployment lost %d of %d jobs", len(lost), len(jids))
}

// (e) The rollout fails (the new revision's tasks do not start), the circuit breaker rolls
// back: exit 4, the quieted tasks the rollback kept are replaced, processing resumes.
func TestDeployRollbackReplacesQuietTasks(t *testing.T) {
	t.Parallel()
	s := startStack(t, stack.Options{Tasks: 2, CircuitBreaker: true})
	ctx := ctxFor(t, 2*time.Minute)
	bad, err := s.RegisterRevision()
	must(t, err)
	s.Sim.FailTaskStarts(bad, true)
	var old []string
	for _, ti := range s.RunningTasks() {
		old = append(old, ti.ARN)
	}
	before, err := s.EnqueueRerun(ctx, 2, 6, shortRerun)
	must(t, err)
	must(t, s.WaitStarted(ctx, before))

	p := run(t, s, deployArgs(s, "--drain-timeout", "60s", "--task-definition", bad)...)
	r := p.report(t)
	if p.code != 4 || r.Outcome != "rolled_back" {
		t.Errorf("exit %d outcome %q (error %q), want 4 rolled_back", p.code, r.Outcome, r.Error)
	}
	if len(r.Services) != 1 || r.Services[0].Result != "rolled_back" {
		t.Fatalf("services %+v, want one rolled_back", r.Services)
	}
	replaced := slices.Clone(r.Services[0].ReplacedTasks)
	slices.Sort(replaced)
	slices.Sort(old)
	if !slices.Equal(replaced, old) {
		t.Errorf("replaced_tasks %v, want the quieted tasks %v", replaced, old)
	}
	if len(r.Services[0].KeptQuietTasks) != 0 {
		t.Errorf("kept_quiet_tasks %v, want none", r.Services[0].KeptQuietTasks)
	}
	if n := s.Sim.Calls("StopTask"); n < len(old) {
		t.Errorf("StopTask called %d times, want one per quieted task (%d)", n, len(old))
	}
	if _, err := s.WaitTasksStopped(ctx, old); err != nil {
		t.Errorf("quieted tasks not stopped: %v", err)
	}
	// Fresh tasks of the old revision start; their Sidekiq is not quiet and runs new work.
	ids, err := s.WaitRegistered(ctx, 2)
	must(t, err)
	after, err := s.Enqueue(ctx, 2, 0.1)
	must(t, err)
	nothingLost(t, s, append(before, after...))
	ps, err := s.Processes(ctx)
	must(t, err)
	for _, pr := range ps {
		if slices.Contains(ids, pr.Identity) && pr.Quiet {
			t.Errorf("replacement process %s is quiet", pr.Identity)
		}
	}
}

// (f) A second run while the first holds the lock exits 6 naming the holder; the first run
// is not disturbed.
func TestDeployConcurrentRunLocked(t *testing.T) {
	t.Parallel()
	s := startStack(t, stack.Options{Tasks: 2})
	ctx := ctxFor(t, 2*time.Minute)
	ids, err := s.TaskProcesses(ctx)
	must(t, err)
	jids, err := s.EnqueueRerun(ctx, 2, 20, shortRerun)
	must(t, err)
	must(t, s.WaitStarted(ctx, jids))

	first := start(t, s, deployArgs(s, "--drain-timeout", "90s")...)
	must(t, s.WaitQuiet(ctx, ids)) // the lock is taken before the quiet

	second := run(t, s, deployArgs(s, "--drain-timeout", "90s")...)
	r := second.report(t)
	if second.code != 6 || r.Outcome != "locked" {
		t.Errorf("second run: exit %d outcome %q, want 6 locked", second.code, r.Outcome)
	}
	pid := strconv.Itoa(first.cmd.Process.Pid)
	host, _ := os.Hostname()
	if h := r.Lock.Holder; h == nil || h.PID != first.cmd.Process.Pid {
		t.Errorf("lock.holder = %+v, want the first run (pid %s)", h, pid)
	}
	errLine := second.stderr.String()
	if !strings.Contains(errLine, pid) && (host == "" || !strings.Contains(errLine, host)) {
		t.Errorf("stderr does not name the holder (pid %s, host %s):\n%s", pid, host, errLine)
	}
	if len(r.Services) > 0 && r.Services[0].Deployed {
		t.Error("second run deployed")
	}

	first.wait(t, 2*time.Minute)
	fr := first.report(t)
	checkSucceeded(t, first, fr, s)
	nothingLost(t, s, jids)
}

// (g) SIGINT mid-drain: drainctl stops at a safe point, exits 130 and reports the quiet
// processes it leaves and that no deployment started; the same command run again finishes
// the job with nothing lost.
func TestDeployInterruptThenRerun(t *testing.T) {
	t.Parallel()
	s := startStack(t, stack.Options{Tasks: 2})
	ctx := ctxFor(t, 2*time.Minute)
	ids, err := s.TaskProcesses(ctx)
	must(t, err)
	jids, err := s.EnqueueRerun(ctx, 4, 20, shortRerun)
	must(t, err)
	must(t, s.WaitBusy(ctx, 4))
	args := deployArgs(s, "--drain-timeout", "90s")

	first := start(t, s, args...)
	must(t, s.WaitQuiet(ctx, ids))
	time.Sleep(time.Second) // a few of drainctl's 200 ms polls: it is in the drain phase now
	must(t, first.cmd.Process.Signal(syscall.SIGINT))
	first.wait(t, 30*time.Second)
	r := first.report(t)
	if first.code != 130 || r.Outcome != "interrupted" {
		t.Errorf("interrupted run: exit %d outcome %q, want 130 interrupted", first.code, r.Outcome)
	}
	if r.Left == nil {
		t.Fatal("interrupted run: no left section")
	}
	left := slices.Clone(r.Left.QuietProcesses)
	slices.Sort(left)
	slices.Sort(ids)
	if !slices.Equal(left, ids) || r.Left.DeploymentStarted {
		t.Errorf("left %+v, want quiet %v and no deployment", r.Left, ids)
	}
	if n := s.Sim.Calls("UpdateService"); n != 0 {
		t.Errorf("UpdateService called %d times before the interrupt's safe point", n)
	}
	if !r.Lock.Released {
		t.Error("interrupted run did not release the lock")
	}

	second := run(t, s, args...)
	r2 := second.report(t)
	checkSucceeded(t, second, r2, s)
	nothingLost(t, s, jids)
	if n := runs(t, s, jids); !allEqual(n, 1) {
		t.Errorf("jobs ran %v times, want once each (finished during the drains)", n)
	}
}

// TestOrphanedTwiceAcrossDeploys: one job killed mid-run by two deploys in a row (a broken
// signal path, each time on another worker) is rescued by both: the exactly-once key is one
// death of one process running the job, not the jid. It runs a third time and finishes; it
// is never lost.
func TestOrphanedTwiceAcrossDeploys(t *testing.T) {
	t.Parallel()
	s := startStack(t, stack.Options{Tasks: 1, Concurrency: 1, BrokenSignalPath: true})
	ctx := ctxFor(t, 3*time.Minute)
	jid, err := s.EnqueueRerunLong(ctx, longJob, shortRerun, 2)
	must(t, err)
	for round := 1; round <= 2; round++ {
		must(t, s.WaitBusy(ctx, 1))
		p := run(t, s, deployArgs(s, "--drain-timeout", "1s")...)
		r := p.report(t)
		if p.code != 0 || r.Outcome != "succeeded" {
			t.Fatalf("deploy %d: exit %d outcome %q (%s)", round, p.code, r.Outcome, r.Error)
		}
		if r.Jobs.Rescued != 1 || r.Jobs.Lost != 0 {
			t.Fatalf("deploy %d: jobs %+v, want the job rescued by this run (not already rescued, not lost)", round, r.Jobs)
		}
	}
	nothingLost(t, s, []string{jid})
	if got := runs(t, s, []string{jid}); got[0] != 3 {
		t.Errorf("the job ran %d times, want 3 (killed twice, then done)", got[0])
	}
	done, err := s.DoneCounts(ctxFor(t, 5*time.Second))
	must(t, err)
	if done[jid] != 1 {
		t.Errorf("the job finished %d times, want once", done[jid])
	}
}
