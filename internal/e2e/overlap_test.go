package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/ecs/ecssim"
	"github.com/drainctl/drainctl/internal/stack"
)

// overlapArgs are deploy's arguments for the overlap strategy. The protection drainctl sets
// lasts drain + rollout + exit timeouts in ECS's minutes, which the simulator runs 20 times
// faster than drainctl's clock: a long drain budget keeps it from expiring mid-test (in ECS
// the budgets bound the run, so it never does).
func overlapArgs(s *stack.Stack, extra ...string) []string {
	return deployArgs(s, append([]string{"--strategy", "overlap", "--drain-timeout", "1000m"}, extra...)...)
}

// noneProtected fails when a task of the stack is still scale-in protected.
func noneProtected(t *testing.T, s *stack.Stack) {
	t.Helper()
	for _, ti := range s.Tasks() {
		if ti.Protected {
			t.Errorf("task %s (%s) is still protected after the run", ti.ID, ti.LastStatus)
		}
	}
}

// opIndex is the position of the first op in the simulator's log, -1 when absent.
func opIndex(ops []string, op string) int { return slices.Index(ops, op) }

// noKill fails when a task of the stack exited 137.
func noKill(t *testing.T, s *stack.Stack) {
	t.Helper()
	for _, ti := range s.Tasks() {
		if ti.ExitCode != nil && *ti.ExitCode == 137 {
			t.Errorf("task %s exited 137 (killed)", ti.ID)
		}
	}
}

// TestOverlapLongJobsFinishInPlace: jobs far longer than the tasks' stop timeout finish once,
// on the worker where they started; no task is killed; the service keeps working through
// the deploy (no processing gap); exactly one UpdateService, the protection set before it and
// cleared after.
func TestOverlapLongJobsFinishInPlace(t *testing.T) {
	t.Parallel()
	s := startStack(t, stack.Options{Tasks: 2, Concurrency: 2, SidekiqTimeout: 2})
	ctx := ctxFor(t, 30*time.Second)
	long, err := s.EnqueueRerun(ctx, 2, 20, shortRerun) // 20 s: five times the stop timeout
	must(t, err)
	must(t, s.WaitStarted(ctx, long))
	short, err := s.Enqueue(ctx, 4, 0.2)
	must(t, err)

	// A steady stream of short jobs through the whole deploy: its queue must never wait long.
	stop := make(chan struct{})
	streamed := make(chan []string, 1)
	go func() {
		var jids []string
		defer func() { streamed <- jids }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
				if j, err := s.Enqueue(context.Background(), 1, 0.1); err == nil {
					jids = append(jids, j...)
				}
			}
		}
	}()
	p := run(t, s, overlapArgs(s)...)
	close(stop)
	short = append(short, <-streamed...)
	r := p.report(t)
	if p.code != 0 || r.Outcome != "succeeded" || r.Strategy.Name != "overlap" {
		t.Fatalf("exit %d outcome %q strategy %q (%s), want 0 succeeded overlap", p.code, r.Outcome, r.Strategy.Name, r.Error)
	}
	nothingLost(t, s, append(long, short...))
	if got := runs(t, s, long); !allEqual(got, 1) {
		t.Errorf("long jobs ran %v times, want once each: they must finish where they started", got)
	}
	noKill(t, s)
	noneProtected(t, s)
	if n := s.Sim.Calls("UpdateService"); n != 1 {
		t.Errorf("UpdateService called %d times, want 1", n)
	}
	ops := s.Sim.Ops()
	protect, update := opIndex(ops, "UpdateTaskProtection"), opIndex(ops, "UpdateService")
	if protect < 0 || update < 0 || protect > update {
		t.Errorf("UpdateTaskProtection at %d, UpdateService at %d: protection must come first", protect, update)
	}
	if r.Jobs.Requeued != 0 || r.Jobs.Rescued != 0 || r.Metrics.InterruptedJobs != 0 {
		t.Errorf("jobs = %+v, interrupted %d; want none requeued or rescued", r.Jobs, r.Metrics.InterruptedJobs)
	}
	if r.Metrics.Samples == 0 || r.Metrics.ProcessingGap > 1 || r.Metrics.LongestQueueWait > 5 {
		t.Errorf("metrics = %+v, want samples, no processing gap (≤ 1 s) and a queue wait of a few seconds at most", r.Metrics)
	}
	for _, pr := range r.Protection {
		if pr.ReleasedAt == "" {
			t.Errorf("protection of %s never released: %+v", pr.Task, pr)
		}
	}
}

// TestOverlapOneForOne: maximumPercent 150 with 4 tasks lets 2 new tasks start at a time; the
// one-for-one quiet keeps the service working, and every job runs once.
func TestOverlapOneForOne(t *testing.T) {
	t.Parallel()
	s := startStack(t, stack.Options{Tasks: 4, Concurrency: 1, SidekiqTimeout: 2, MaximumPercent: 150})
	ctx := ctxFor(t, 30*time.Second)
	jids, err := s.EnqueueRerun(ctx, 4, 6, shortRerun)
	must(t, err)
	must(t, s.WaitStarted(ctx, jids))
	p := run(t, s, overlapArgs(s)...)
	r := p.report(t)
	if p.code != 0 || r.Strategy.Name != "overlap" {
		t.Fatalf("exit %d strategy %q (%s), want 0 overlap", p.code, r.Strategy.Name, r.Error)
	}
	nothingLost(t, s, jids)
	if got := runs(t, s, jids); !allEqual(got, 1) {
		t.Errorf("jobs ran %v times, want once each", got)
	}
	noKill(t, s)
	noneProtected(t, s)
	if r.Metrics.ProcessingGap > 1 {
		t.Errorf("processing gap %.1fs, want none", r.Metrics.ProcessingGap)
	}
}

// TestOverlapFailedRolloutCostsNothing: new tasks that crash make ECS roll back; no old
// process was ever quieted, the protection is cleared, exit 4.
func TestOverlapFailedRolloutCostsNothing(t *testing.T) {
	t.Parallel()
	s := startStack(t, stack.Options{Tasks: 2, CircuitBreaker: true})
	bad, err := s.RegisterRevision()
	must(t, err)
	s.Sim.FailTaskStarts(bad, true)
	p := run(t, s, overlapArgs(s, "--task-definition", bad)...)
	r := p.report(t)
	if p.code != 4 || !strings.Contains(r.Error, "no process was quieted") {
		t.Fatalf("exit %d error %q, want 4 saying no process was quieted", p.code, r.Error)
	}
	noneProtected(t, s)
	procs, err := s.Processes(ctxFor(t, 5*time.Second))
	must(t, err)
	for _, pr := range procs {
		if pr.Quiet {
			t.Errorf("process %s is quiet after a failed overlap deploy", pr.Identity)
		}
	}
}

// TestOverlapInterrupted: Ctrl-C in the middle clears the protection, writes the report and
// exits 130.
func TestOverlapInterrupted(t *testing.T) {
	t.Parallel()
	// After the interrupt the deployment goes on without drainctl: ECS stops the old task and
	// only Sidekiq's own shutdown requeues its long jobs. One old task: with two, a second
	// stopping worker could fetch the jobs the first pushed back and lose them in its own
	// shutdown (Sidekiq's BasicFetch; seen 2 in 9 runs under load). A stop timeout of 20 s
	// (not the stack's 6 s) gives the shutdown room on a loaded machine.
	s := startStack(t, stack.Options{Tasks: 1, Concurrency: 2, StopTimeout: 20 * time.Second})
	ctx := ctxFor(t, 30*time.Second)
	long, err := s.EnqueueRerun(ctx, 2, 40, shortRerun)
	must(t, err)
	must(t, s.WaitStarted(ctx, long))
	path := filepath.Join(t.TempDir(), "report.json")
	p := start(t, s, overlapArgs(s, "--report", path)...)
	wctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for wctx.Err() == nil && !slices.ContainsFunc(s.Tasks(), func(ti ecssim.TaskInfo) bool { return ti.Protected }) {
		time.Sleep(50 * time.Millisecond)
	}
	if wctx.Err() != nil {
		t.Fatal("no task was protected within 60 s")
	}
	must(t, p.cmd.Process.Signal(syscall.SIGINT))
	p.wait(t, 60*time.Second)
	if p.code != 130 {
		t.Errorf("exit %d, want 130", p.code)
	}
	noneProtected(t, s)
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), `"outcome": "interrupted"`) {
		t.Errorf("report %s: %v\n%s", path, err, b)
	}
	nothingLost(t, s, long)
}

// TestOverlapAutoWithoutRoom: auto on a service with maximumPercent 100 chooses drain-first
// and says why.
func TestOverlapAutoWithoutRoom(t *testing.T) {
	t.Parallel()
	s := startStack(t, stack.Options{Tasks: 2, MaximumPercent: 100, MinimumHealthyPercent: 50})
	p := run(t, s, deployArgs(s, "--strategy", "auto", "--dry-run")...)
	r := p.report(t)
	if p.code != 0 || r.Strategy.Name != "drain-first" || r.Strategy.Requested != "auto" ||
		!strings.Contains(r.Strategy.Reason, "maximumPercent 100 leaves no room") {
		t.Errorf("exit %d strategy %+v, want drain-first chosen by auto because of maximumPercent 100", p.code, r.Strategy)
	}
}
