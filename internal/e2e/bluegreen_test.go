package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/ecs/ecssim"
	"github.com/drainctl/drainctl/internal/stack"
)

func i32(v int32) *int32 { return &v }

// blueGreen is a BLUE_GREEN deployment configuration; with hook a PAUSE hook at
// POST_SCALE_UP that rolls back after an hour (simulated).
func blueGreen(hook bool) *ecssim.ServiceSpec {
	d := &ecssim.ServiceSpec{Strategy: "BLUE_GREEN", BakeTimeInMinutes: i32(0)}
	if hook {
		d.LifecycleHooks = []ecssim.LifecycleHook{{TargetType: "PAUSE", LifecycleStages: []string{"POST_SCALE_UP"},
			TimeoutConfiguration: &ecssim.HookTimeout{TimeoutInMinutes: i32(600), Action: "ROLLBACK"}}}
	}
	return d
}

// TestPauseHookBlueGreen: auto picks pause-hook for a blue/green service with a PAUSE hook at
// POST_SCALE_UP; long blue jobs finish on blue before CONTINUE, green takes new jobs meanwhile
// (no gap), no task is killed; one UpdateService, one ContinueServiceDeployment.
func TestPauseHookBlueGreen(t *testing.T) {
	t.Parallel()
	s := startStack(t, stack.Options{Tasks: 2, Concurrency: 2, Deployment: blueGreen(true)})
	ctx := ctxFor(t, 30*time.Second)
	long, err := s.EnqueueRerun(ctx, 2, 12, shortRerun)
	must(t, err)
	must(t, s.WaitStarted(ctx, long))
	p := run(t, s, deployArgs(s, "--strategy", "auto", "--drain-timeout", "120s")...)
	r := p.report(t)
	if p.code != 0 || r.Strategy.Name != "pause-hook" {
		t.Fatalf("exit %d strategy %q (%s), want 0 pause-hook", p.code, r.Strategy.Name, r.Error)
	}
	nothingLost(t, s, long)
	if got := runs(t, s, long); !allEqual(got, 1) {
		t.Errorf("long jobs ran %v times, want once each: they must finish on blue before CONTINUE", got)
	}
	noKill(t, s)
	if n, c := s.Sim.Calls("UpdateService"), s.Sim.Calls("ContinueServiceDeployment"); n != 1 || c != 1 {
		t.Errorf("UpdateService %d, ContinueServiceDeployment %d; want 1 each", n, c)
	}
	if r.Metrics.ProcessingGap > 1 {
		t.Errorf("processing gap %.1fs, want none: green works while blue drains", r.Metrics.ProcessingGap)
	}
}

// TestPauseHookGreenCrashes: green failing before the hook rolls back; blue is never quieted;
// exit 4.
func TestPauseHookGreenCrashes(t *testing.T) {
	t.Parallel()
	s := startStack(t, stack.Options{Tasks: 2, CircuitBreaker: true, Deployment: blueGreen(true)})
	bad, err := s.RegisterRevision()
	must(t, err)
	s.Sim.FailTaskStarts(bad, true)
	p := run(t, s, deployArgs(s, "--strategy", "pause-hook", "--task-definition", bad)...)
	r := p.report(t)
	if p.code != 4 || !strings.Contains(r.Error, "no process was quieted") {
		t.Fatalf("exit %d error %q, want 4 saying no process was quieted", p.code, r.Error)
	}
	procs, err := s.Processes(ctxFor(t, 5*time.Second))
	must(t, err)
	for _, pr := range procs {
		if pr.Quiet {
			t.Errorf("blue process %s was quieted", pr.Identity)
		}
	}
}

// TestBlueGreenWithoutHookDryRun: a blue/green service without a hook gets the blue-green
// strategy, and the dry run warns that the bake is shorter than the drain budget, with the
// hook configuration that fixes it.
func TestBlueGreenWithoutHookDryRun(t *testing.T) {
	t.Parallel()
	s := startStack(t, stack.Options{Tasks: 2, Deployment: blueGreen(false)})
	p := run(t, s, deployArgs(s, "--strategy", "auto", "--dry-run")...)
	r := p.report(t)
	if p.code != 0 || r.Strategy.Name != "blue-green" {
		t.Fatalf("exit %d strategy %+v, want 0 blue-green", p.code, r.Strategy)
	}
	w := strings.Join(r.Warnings, "\n")
	if !strings.Contains(w, "PF032") || !strings.Contains(w, `"targetType": "PAUSE"`) {
		t.Errorf("warnings = %q, want PF032 with the PAUSE hook fragment", w)
	}
}

// TestBlueGreenWithoutHookRequeuesCutJob: without a hook, a job longer than the bake is cut
// at CLEAN_UP: the dry run names it, and the real run (a working signal path) sees Sidekiq
// requeue it; it runs again on green and is not lost. Blue is quieted as green heartbeats.
func TestBlueGreenWithoutHookRequeuesCutJob(t *testing.T) {
	t.Parallel()
	s := startStack(t, stack.Options{Tasks: 1, Concurrency: 1, SidekiqTimeout: 1, Deployment: blueGreen(false)})
	ctx := ctxFor(t, 30*time.Second)
	long, err := s.EnqueueRerun(ctx, 1, longJob, shortRerun)
	must(t, err)
	must(t, s.WaitBusy(ctx, 1)) // the heartbeat shows it: what drainctl reads
	dry := run(t, s, deployArgs(s, "--strategy", "auto", "--dry-run")...)
	if plan := strings.Join(dry.report(t).Plan, "\n"); !strings.Contains(plan, "may be cut at CLEAN_UP") || !strings.Contains(plan, long[0]) {
		t.Errorf("dry-run plan does not name the job that may be cut:\n%s", plan)
	}
	p := run(t, s, deployArgs(s, "--strategy", "auto")...)
	r := p.report(t)
	if p.code != 0 || r.Strategy.Name != "blue-green" {
		t.Fatalf("exit %d strategy %q (%s), want 0 blue-green", p.code, r.Strategy.Name, r.Error)
	}
	nothingLost(t, s, long)
	if got := runs(t, s, long); got[0] != 2 {
		t.Errorf("the long job ran %d times, want 2 (cut at CLEAN_UP, requeued, run again)", got[0])
	}
	if r.Jobs.Requeued != 1 || r.Jobs.Lost != 0 {
		t.Errorf("jobs %+v, want the job requeued by Sidekiq's shutdown", r.Jobs)
	}
}

// TestEarlySuccessDeferred: a rolling deployment that succeeds early with DEFERRED clean-up;
// the exits phase still waits for the old processes after COMPLETED, and says so.
func TestEarlySuccessDeferred(t *testing.T) {
	t.Parallel()
	d := &ecssim.ServiceSpec{EarlySuccessCriteria: &ecssim.EarlySuccessCriteria{Enable: true, HealthyPercent: i32(50), SourceServiceRevisionCleanup: "DEFERRED"}}
	s := startStack(t, stack.Options{Tasks: 2, MinimumHealthyPercent: 50, Deployment: d})
	p := run(t, s, deployArgs(s)...)
	r := p.report(t)
	if p.code != 0 {
		t.Fatalf("exit %d (%s)", p.code, r.Error)
	}
	if w := strings.Join(r.Warnings, "\n"); !strings.Contains(w, "DEFERRED clean-up") {
		t.Errorf("warnings = %q, want the DEFERRED clean-up note", w)
	}
	for st, n := range r.states() {
		if st != "gone" && st != "dead" {
			t.Errorf("%d process(es) %s at the end: the exits phase must wait for the old tasks", n, st)
		}
	}
}
