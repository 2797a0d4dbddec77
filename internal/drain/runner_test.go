package drain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/finding"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// recObserver records the events it receives as short strings.
type recObserver struct {
	events []string
	polls  []RolloutPoll
}

func (o *recObserver) PhaseStarted(p Phase, _ time.Time) {
	o.events = append(o.events, "start "+string(p))
}
func (o *recObserver) PhaseEnded(p Phase, _ time.Time, err error) {
	s := "end " + string(p)
	if err != nil {
		s += " error"
	}
	o.events = append(o.events, s)
}
func (o *recObserver) DrainProgress(p DrainProgress) {
	o.events = append(o.events, fmt.Sprintf("progress %s %d/%d", p.Phase, p.Remaining, p.Total))
}
func (o *recObserver) RolloutPoll(p RolloutPoll) {
	o.polls = append(o.polls, p)
	o.events = append(o.events, fmt.Sprintf("poll %s %d/%d", p.DeploymentID, p.Running, p.Desired))
}
func (o *recObserver) Warning(m string) { o.events = append(o.events, "warn "+m) }

func (o *recObserver) phases() []string {
	var out []string
	for _, e := range o.events {
		if strings.HasPrefix(e, "start ") {
			out = append(out, strings.TrimPrefix(e, "start "))
		}
	}
	return out
}

func (o *recObserver) warnings() string {
	var out []string
	for _, e := range o.events {
		if strings.HasPrefix(e, "warn ") {
			out = append(out, e)
		}
	}
	return strings.Join(out, "\n")
}

// ecsCalls are the names of the fake ECS's calls.
var ecsCalls = []string{"CheckClusters", "Describe", "TaskDefinition", "Deploy", "Tasks", "StoppedTasksOf", "StopTasks", "ServiceDeploymentOf"}

// fixture is two worker processes in the service's two tasks (p1 runs j1, p2 runs j2), a
// third process in no task of the service, and a new-task process that appears after
// preflight with the same tag.
type fixture struct {
	clock  *fakeClock
	calls  *calls
	fleet  *fakeFleet
	ecs    *fakeECS
	svc    *fakeService
	obs    *recObserver
	cfg    Config
	p1, p2 sidekiq.Process
	j1, j2 sidekiq.Job
}

func newFixture() *fixture {
	f := &fixture{clock: newClock(), calls: &calls{}, obs: &recObserver{}}
	f.j1 = job("j1", "", t0.Add(-30*time.Second))
	f.j2 = job("j2", "", t0.Add(-90*time.Second))
	f.p1 = proc(1, f.j1)
	f.p2 = proc(2, f.j2)
	f.j1.Process, f.j2.Process = f.p1.Identity, f.p2.Identity
	other := proc(9)
	newcomer := proc(3) // a worker of the new deployment, same tag
	f.fleet = newFakeFleet(f.calls, f.clock)
	f.fleet.snapshots = []*sidekiq.Snapshot{
		{At: t0, Processes: []sidekiq.Process{f.p1, f.p2, other}},
		{At: t0, Processes: []sidekiq.Process{f.p1, f.p2, other, newcomer}},
	}
	f.svc = &fakeService{ref: ecs.ServiceRef{Cluster: "prod", Service: "worker"}, state: serviceState("worker", 7),
		running:      []ecs.Task{task(1), task(2)},
		runningAfter: []ecs.Task{task(3), task(4)},
	}
	f.ecs = &fakeECS{calls: f.calls, clock: f.clock, svcs: []*fakeService{f.svc},
		tds: []*ecs.TaskDefinitionInfo{taskDef("worker", 7, true), taskDef("worker", 8, true)}}
	// The happy script: quiet acknowledged, j1 then j2 finish, both processes leave cleanly.
	f.script(
		[]sidekiq.Observation{obs(f.p1, stQuiet, f.j1), obs(f.p2, stQuiet, f.j2)},
		[]sidekiq.Observation{obs(f.p1, stDrained), obs(f.p2, stQuiet, f.j2)},
		[]sidekiq.Observation{obs(f.p1, stDrained), obs(f.p2, stDrained)},
		[]sidekiq.Observation{obs(f.p1, stGone), obs(f.p2, stGone)},
	)
	f.cfg = Config{Services: []ecs.ServiceRef{f.svc.ref}, Now: f.clock.Now, After: f.clock.After, PollInterval: time.Second,
		LockOwner: sidekiq.LockOwner{Owner: "ci", Host: "runner", PID: 7}}
	return f
}

// script sets the fleet's observations poll by poll; the last one repeats.
func (f *fixture) script(steps ...[]sidekiq.Observation) {
	f.fleet.script = func(n int, _ []string) []sidekiq.Observation { return steps[min(n, len(steps)-1)] }
}

func (f *fixture) runner() *Runner {
	return &Runner{Config: f.cfg, Fleet: f.fleet, ECS: f.ecs, Observer: f.obs, Watch: f.fleet.watch}
}

func (f *fixture) run(t *testing.T, ctx context.Context) (Result, error) {
	t.Helper()
	requireLockServer(t)
	if ctx == nil {
		ctx = context.Background()
	}
	return f.runner().Run(ctx)
}

// noWrites fails the test when the run made any write.
func noWrites(t *testing.T, c *calls) {
	t.Helper()
	if w := c.writes(); len(w) != 0 {
		t.Errorf("writes: %v", w)
	}
}

func TestRunSucceeds(t *testing.T) {
	f := newFixture()
	res, err := f.run(t, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Outcome != OutcomeSucceeded || ExitCode(err) != 0 || res.ExitCode != 0 || res.Command != "deploy" ||
		res.Strategy.Name != StrategyDrainFirst {
		t.Errorf("outcome %s exit %d command %s strategy %s, want succeeded 0 deploy drain-first", res.Outcome, ExitCode(err),
			res.Command, res.Strategy.Name)
	}
	wantPhases := []string{"preflight", "lock", "quiet", "drain", "deploy", "rollout", "exits"}
	if got := f.obs.phases(); !slices.Equal(got, wantPhases) {
		t.Errorf("phases = %v, want %v", got, wantPhases)
	}
	var recorded []string
	for _, p := range res.Phases {
		recorded = append(recorded, string(p.Phase))
	}
	if !slices.Equal(recorded, wantPhases) {
		t.Errorf("Result.Phases = %v, want %v", recorded, wantPhases)
	}
	// The writes, in order: lock, quiet of exactly the selection, one deploy, release.
	wantWrites := []string{"AcquireLock deploy:prod/worker", "Quiet ip-10-0-0-1:1:abc1,ip-10-0-0-2:1:abc2",
		"Deploy prod/worker ", "Release"}
	var gotWrites []string
	for _, w := range f.calls.writes() {
		if w != "Refresh" {
			gotWrites = append(gotWrites, w)
		}
	}
	if !slices.Equal(gotWrites, wantWrites) {
		t.Errorf("writes = %q, want %q", gotWrites, wantWrites)
	}
	if got := f.calls.named("Watch"); len(got) != 1 || got[0] != "Watch ip-10-0-0-1:1:abc1,ip-10-0-0-2:1:abc2" {
		t.Errorf("watched %q, want exactly the selection", got)
	}
	if got := res.Unplaced; !slices.Equal(got, []string{"ip-10-0-0-9:1:abc9"}) {
		t.Errorf("Unplaced = %v, want the process in no task", got)
	}
	if want := (JobCounts{Finished: 2}); res.Jobs != want {
		t.Errorf("Jobs = %+v, want %+v", res.Jobs, want)
	}
	for _, p := range res.Processes {
		if p.State != stGone || p.Exit != ExitClean {
			t.Errorf("process %s ended %s (exit %s), want gone, clean", p.Identity, p.State, p.Exit)
		}
	}
	if !res.Lock.Acquired || !res.Lock.Released {
		t.Errorf("lock = %+v, want acquired and released", res.Lock)
	}
	s := res.Services[0]
	if !s.Deployed || s.Rollout.DeploymentID != "ecs-svc/2" || len(s.Polls) != 2 || s.Outcome == nil ||
		s.Outcome.Result != RolloutSucceeded || s.Outcome.Polls != 2 {
		t.Errorf("service result = %+v, want deployed ecs-svc/2 with 2 polls and a succeeded outcome", s)
	}
	if got := s.PreviousTaskDefinition(); !strings.HasSuffix(got, "worker:7") {
		t.Errorf("previous task definition = %q, want worker:7", got)
	}
	if s.Target == nil || s.Target.Revision != 7 || len(s.TasksAtStart) != 2 {
		t.Errorf("target %+v, tasks at start %d; want the running worker:7 and 2 tasks", s.Target, len(s.TasksAtStart))
	}
	if res.APICalls["ecs.Deploy"] != 1 || res.APICalls["redis.Quiet"] != 1 || res.APICalls["redis.LockRelease"] != 1 {
		t.Errorf("APICalls = %v, want one deploy, one quiet, one release", res.APICalls)
	}
	// Progress is emitted with the remaining jobs.
	if !slices.Contains(f.obs.events, "progress drain 1/2") || !slices.Contains(f.obs.events, "poll ecs-svc/2 2/2") {
		t.Errorf("events lack drain progress or rollout polls: %v", f.obs.events)
	}
	if len(res.Findings) != 0 || len(res.Warnings) != 0 {
		t.Errorf("findings %v warnings %v, want none for a clean service", res.Findings, res.Warnings)
	}
}

func TestRunSelectionFixedAtPreflight(t *testing.T) {
	// With --on-timeout stop the Runner signals twice; the newcomer that appears after the
	// quiet is never quieted nor stopped, even with a selector that matches it.
	f := newFixture()
	f.cfg.OnTimeout = OnTimeoutStop
	f.cfg.DrainTimeout = 3 * time.Second
	f.cfg.Selector = &sidekiq.Selector{Tags: []string{"worker"}}
	f.fleet.snapshots = f.fleet.snapshots[:1]
	f.fleet.snapshots[0].Processes = []sidekiq.Process{f.p1, f.p2}
	f.script(
		[]sidekiq.Observation{obs(f.p1, stQuiet, f.j1), obs(f.p2, stQuiet, f.j2)},
		[]sidekiq.Observation{obs(f.p1, stQuiet, f.j1), obs(f.p2, stQuiet, f.j2)},
	)
	newcomer := proc(3)
	f.calls.hook = func(c string) {
		if strings.HasPrefix(c, "Quiet") {
			f.fleet.snapshots[0].Processes = append(f.fleet.snapshots[0].Processes, newcomer)
		}
	}
	_, _ = f.run(t, nil)
	for _, c := range f.calls.all() {
		if strings.Contains(c, newcomer.Identity) {
			t.Errorf("call %q names the process that appeared after preflight", c)
		}
	}
	// The selection comes from the one Snapshot before the quiet; later ones only sample the
	// metrics.
	before := 0
	for _, c := range f.calls.all() {
		if strings.HasPrefix(c, "Quiet") {
			break
		}
		if c == "Snapshot" {
			before++
		}
	}
	if len(f.calls.named("Stop")) != 1 || len(f.calls.named("Quiet")) != 1 || before != 1 {
		t.Errorf("calls = %v, want one Snapshot before one Quiet, and one Stop", f.calls.all())
	}
}

func TestRunDrainTimeoutPolicies(t *testing.T) {
	tests := []struct {
		name       string
		policy     OnTimeout
		wantErr    error
		wantStop   bool
		wantDeploy bool
		wantOut    Outcome
	}{
		{name: "deploy", policy: OnTimeoutDeploy, wantDeploy: true, wantOut: OutcomeSucceeded},
		{name: "stop", policy: OnTimeoutStop, wantStop: true, wantDeploy: true, wantOut: OutcomeSucceeded},
		{name: "fail", policy: OnTimeoutFail, wantErr: ErrDrainTimeout, wantOut: OutcomeDrainTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			f.cfg.OnTimeout = tt.policy
			f.cfg.DrainTimeout = 10 * time.Second
			// j2 never finishes during the drain; after the deploy p2 leaves cleanly (Sidekiq
			// requeues j2) and p1 leaves drained.
			stuck := []sidekiq.Observation{obs(f.p1, stDrained), obs(f.p2, stQuiet, f.j2)}
			f.fleet.script = func(n int, _ []string) []sidekiq.Observation {
				if f.svc.deployed {
					return []sidekiq.Observation{obs(f.p1, stGone), obs(f.p2, stGone)}
				}
				return stuck
			}
			res, err := f.run(t, nil)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if res.Outcome != tt.wantOut {
				t.Errorf("outcome = %s, want %s", res.Outcome, tt.wantOut)
			}
			stops := f.calls.named("Stop")
			if tt.wantStop != (len(stops) == 1) || (tt.wantStop && stops[0] != "Stop "+f.p2.Identity) {
				t.Errorf("Stop calls = %v, want stop=%v of the busy process only", stops, tt.wantStop)
			}
			if got := len(f.calls.named("Deploy")) == 1; got != tt.wantDeploy {
				t.Errorf("deployed = %v, want %v", got, tt.wantDeploy)
			}
			// Bounded by the timeout: the fake clock moved DrainTimeout during the drain.
			drain := res.Phases[3]
			if drain.Phase != PhaseDrain || drain.Duration() != 10*time.Second {
				t.Errorf("drain phase %+v lasted %v, want 10s", drain, drain.Duration())
			}
			if tt.policy == OnTimeoutStop {
				if i, j := slices.Index(f.calls.all(), stops[0]), slices.Index(f.calls.all(), "Deploy prod/worker "); i > j {
					t.Errorf("Stop came after Deploy: %v", f.calls.all())
				}
			}
			switch tt.policy {
			case OnTimeoutFail:
				if ExitCode(err) != 3 || res.ExitCode != 3 {
					t.Errorf("exit = %d, want 3", ExitCode(err))
				}
				if res.Left == nil || len(res.Left.QuietProcesses) != 2 || res.Left.DeploymentStarted {
					t.Errorf("Left = %+v, want both processes quiet and no deployment", res.Left)
				}
				if !strings.Contains(err.Error(), f.p2.Identity) || !strings.Contains(err.Error(), "1 job(s)") {
					t.Errorf("error %q does not name the busy process and its job", err)
				}
				if !res.Lock.Released {
					t.Errorf("lock not released after fail")
				}
				if res.Jobs != (JobCounts{Finished: 1, StillRunning: 1}) {
					t.Errorf("jobs = %+v, want j1 finished and j2 still running", res.Jobs)
				}
			default:
				if res.Jobs.Requeued != 1 || res.Jobs.Finished != 1 {
					t.Errorf("jobs = %+v, want j1 finished and j2 requeued", res.Jobs)
				}
				w := f.obs.warnings()
				if !strings.Contains(w, "drain timed out") {
					t.Errorf("no drain-timeout warning: %s", w)
				}
				if tt.policy == OnTimeoutDeploy && !strings.Contains(w, "drainctl rescues the jobs of any process that is killed") {
					t.Errorf("deploy-anyway warning does not say killed processes' jobs are rescued: %s", w)
				}
			}
		})
	}
}

func TestRunLeftListsOnlyProcessesStillQuiet(t *testing.T) {
	f := newFixture()
	f.cfg.OnTimeout = OnTimeoutFail
	f.cfg.DrainTimeout = 4 * time.Second
	f.script([]sidekiq.Observation{obs(f.p1, stQuiet, f.j1), obs(f.p2, stQuiet, f.j2)})
	// p1 was restarted by someone while drainctl gave up: the re-read must not list it.
	f.fleet.gone = map[string]bool{f.p1.Identity: true}
	res, err := f.run(t, nil)
	if !errors.Is(err, ErrDrainTimeout) {
		t.Fatalf("err = %v, want ErrDrainTimeout", err)
	}
	if res.Left == nil || !slices.Equal(res.Left.QuietProcesses, []string{f.p2.Identity}) {
		t.Fatalf("Left = %+v, want only p2 quiet", res.Left)
	}
	if !strings.Contains(res.Left.Hint, "--on-timeout deploy") {
		t.Errorf("hint %q does not say how to finish", res.Left.Hint)
	}
}

func TestRunDryRunWritesNothing(t *testing.T) {
	f := newFixture()
	f.cfg.DryRun = true
	f.cfg.TaskDefinition = "worker:8"
	res, err := f.run(t, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	noWrites(t, f.calls)
	if len(f.calls.named("Watch")) != 0 || len(f.calls.named("Poll")) != 0 {
		t.Errorf("dry run watched: %v", f.calls.all())
	}
	// Every read happened: the clusters, the service, its target, its tasks, the fleet and the lock.
	for _, read := range []string{"CheckClusters", "Describe", "TaskDefinition worker:8", "Tasks", "Ping", "Snapshot", "LockHolder"} {
		if len(f.calls.named(read)) == 0 {
			t.Errorf("dry run did not %s", read)
		}
	}
	if res.Outcome != OutcomeDryRun || ExitCode(err) != 0 || res.ExitCode != 0 || !res.DryRun {
		t.Errorf("outcome %s exit %d, want dry_run 0", res.Outcome, ExitCode(err))
	}
	plan := strings.Join(res.Plan, "\n")
	for _, want := range []string{`would take the deploy lock "deploy:prod/worker"`, "would quiet 2 process(es)",
		"would deploy worker:8 on prod/worker (now worker:7)", "for 2 in-flight job(s)", "would rescue the jobs of killed processes"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	if len(res.Queues) != 1 || res.Queues[0].Name != "default" || res.Queues[0].Size != 10 {
		t.Errorf("dry run queues = %+v, want the selection's queue with its size", res.Queues)
	}
	if res.Jobs.StillRunning != 2 || len(res.Processes) != 2 {
		t.Errorf("dry run result: jobs %+v, %d processes; want 2 in flight on 2 processes", res.Jobs, len(res.Processes))
	}
	if res.Lock.Acquired || res.Left != nil {
		t.Errorf("dry run lock %+v left %+v, want neither", res.Lock, res.Left)
	}
}

func TestRunInterruptAtEachPhase(t *testing.T) {
	tests := []struct {
		name string
		// at is the call during which the context is cancelled; afterDeploy restricts it to
		// calls made once the deployment started.
		at             string
		afterDeploy    bool
		wantPhase      Phase
		wantQuiet      bool // Left lists quiet processes
		wantDeployment bool
		wantNot        []string // calls that must not happen
		wantReleased   bool
		wantHint       string // default for a started deployment: how to watch it
	}{
		{name: "preflight", at: "Snapshot", wantPhase: PhasePreflight, wantNot: []string{"AcquireLock", "Quiet"}},
		{name: "lock", at: "AcquireLock", wantPhase: PhaseLock, wantNot: []string{"Quiet"}, wantReleased: true},
		{name: "quiet", at: "Quiet", wantPhase: PhaseQuiet, wantQuiet: true, wantNot: []string{"Deploy"}, wantReleased: true},
		{name: "drain", at: "Poll 1", wantPhase: PhaseDrain, wantQuiet: true, wantNot: []string{"Deploy"}, wantReleased: true},
		{name: "deploy", at: "Deploy", wantPhase: PhaseDeploy, wantQuiet: true, wantDeployment: true, wantNot: []string{"Describe prod/worker"},
			wantReleased: true},
		{name: "rollout", at: "Describe prod/worker", afterDeploy: true, wantPhase: PhaseRollout, wantQuiet: true, wantDeployment: true,
			wantNot: []string{"Tasks prod/worker STOPPED"}, wantReleased: true},
		{name: "exits", at: "Tasks prod/worker STOPPED", wantPhase: PhaseExits, wantQuiet: true, wantDeployment: true,
			wantNot: []string{"Rescue"}, wantReleased: true, wantHint: "drainctl rescue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			// The processes never leave, so the exits phase waits and can be interrupted.
			f.script(
				[]sidekiq.Observation{obs(f.p1, stQuiet, f.j1), obs(f.p2, stQuiet, f.j2)},
				[]sidekiq.Observation{obs(f.p1, stDrained), obs(f.p2, stQuiet, f.j2)},
				[]sidekiq.Observation{obs(f.p1, stDrained), obs(f.p2, stDrained)},
			)
			rec := &progressRec{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var after []string // calls after the cancel
			cancelled := false
			f.calls.hook = func(c string) {
				if cancelled {
					after = append(after, c)
					return
				}
				if (c == tt.at || strings.HasPrefix(c, tt.at+" ")) && (!tt.afterDeploy || f.svc.deployed) {
					cancel()
					cancelled = true
				}
			}
			r := f.runner()
			r.Observer = rec
			res, err := r.Run(ctx)
			if !cancelled {
				t.Fatalf("the run never made the call %q: %v", tt.at, f.calls.all())
			}
			if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want ErrInterrupted wrapping context.Canceled", err)
			}
			if !strings.Contains(err.Error(), "during "+string(tt.wantPhase)) {
				t.Errorf("err = %v, want it to name the phase %s", err, tt.wantPhase)
			}
			if res.Outcome != OutcomeInterrupted || ExitCode(err) != 130 || res.ExitCode != 130 {
				t.Errorf("outcome %s exit %d, want interrupted 130", res.Outcome, ExitCode(err))
			}
			for _, c := range tt.wantNot {
				for _, a := range after {
					if a == c || strings.HasPrefix(a, c+" ") {
						t.Errorf("%s called after the interrupt: %v", c, after)
					}
				}
			}
			if got := res.Left != nil && len(res.Left.QuietProcesses) == 2; got != tt.wantQuiet {
				t.Errorf("Left = %+v, want quiet processes listed = %v", res.Left, tt.wantQuiet)
			}
			if tt.wantQuiet && len(f.calls.named("SnapshotOf")) != 1 {
				t.Errorf("the state left was not re-read from Redis: %v", f.calls.all())
			}
			gotDep := res.Left != nil && res.Left.DeploymentStarted && res.Left.DeploymentIDs["prod/worker"] == "ecs-svc/2"
			if gotDep != tt.wantDeployment {
				t.Errorf("Left = %+v, want deployment started = %v with its ID", res.Left, tt.wantDeployment)
			}
			if tt.wantHint == "" {
				tt.wantHint = "describe-services"
			}
			if tt.wantDeployment && !strings.Contains(res.Left.Hint, tt.wantHint) {
				t.Errorf("hint %q does not say %q", res.Left.Hint, tt.wantHint)
			}
			if res.Lock.Released != tt.wantReleased {
				t.Errorf("lock released = %v, want %v", res.Lock.Released, tt.wantReleased)
			}
			// The counts stay those of the jobs known at preflight: never "2 of 0 jobs".
			if n := res.Jobs.Total(); n != 2 || len(res.JobList) != 2 {
				t.Errorf("jobs = %+v (%d listed), want the 2 jobs in flight at preflight", res.Jobs, len(res.JobList))
			}
			if res.Jobs.Lost != 0 || res.Jobs.Rescued != 0 {
				t.Errorf("jobs = %+v, want none lost or rescued by an interrupt", res.Jobs)
			}
			for _, dp := range rec.dps {
				if dp.Total != 2 || dp.Remaining > dp.Total {
					t.Errorf("progress %+v, want %d remaining of the 2 jobs", dp, dp.Remaining)
				}
			}
		})
	}
}

func TestRunRollbackHandling(t *testing.T) {
	tests := []struct {
		name       string
		result     RolloutResult
		noRollback bool // the service's circuit breaker has rollback off
		policy     string
		wantStop   bool
		wantOut    Outcome
		wantReason string
		sdStatus   string // the Service Deployments API's verdict at the end
	}{
		{name: "rolled back, replace", result: RolloutRolledBack, wantStop: true, wantOut: OutcomeRolledBack, sdStatus: "ROLLBACK_SUCCESSFUL",
			wantReason: "deployment ecs-svc/2 failed and ECS rolled back to deployment ecs-svc/1 (worker:7): circuit breaker: 3 tasks failed"},
		{name: "rolled back, leave", result: RolloutRolledBack, policy: OnRolloutFailureLeave, wantOut: OutcomeRolledBack, sdStatus: "ROLLBACK_SUCCESSFUL",
			wantReason: "rolled back to deployment ecs-svc/1"},
		{name: "failed, replace", result: RolloutFailed, noRollback: true, wantStop: true, wantOut: OutcomeFailed, sdStatus: "STOPPED",
			wantReason: "deployment ecs-svc/2 FAILED: circuit breaker: 3 tasks failed"},
		{name: "failed, no rollback seen", result: RolloutFailed, wantStop: true, wantOut: OutcomeFailed, sdStatus: "IN_PROGRESS",
			wantReason: "circuit breaker: 3 tasks failed; no rollback seen within 5 polls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			f.cfg.OnRolloutFailure = tt.policy
			f.svc.state.BreakerRollback = !tt.noRollback
			f.svc.rollout = rollout{result: tt.result, reason: "circuit breaker: 3 tasks failed"}
			f.svc.sd = &ecs.ServiceDeploymentInfo{ARN: "arn:sd/2", Status: tt.sdStatus, FailureCount: 3, Threshold: 3}
			f.svc.stoppedOfDeployment = []ecs.Task{killedTask(11)}
			// The rollback kept task 1 (its process is quiet and alive); task 2 was stopped.
			f.svc.runningAfter = []ecs.Task{task(1), task(5)}
			f.script(
				[]sidekiq.Observation{obs(f.p1, stQuiet, f.j1), obs(f.p2, stQuiet, f.j2)},
				[]sidekiq.Observation{obs(f.p1, stDrained), obs(f.p2, stDrained)},
				[]sidekiq.Observation{obs(f.p1, stDrained), obs(f.p2, stGone)},
			)
			res, err := f.run(t, nil)
			if !errors.Is(err, ErrRolloutFailed) || ExitCode(err) != 4 || res.ExitCode != 4 {
				t.Fatalf("err = %v (exit %d), want ErrRolloutFailed, exit 4", err, ExitCode(err))
			}
			if res.Outcome != tt.wantOut {
				t.Errorf("outcome = %s, want %s", res.Outcome, tt.wantOut)
			}
			stops := f.calls.named("StopTasks")
			if tt.wantStop {
				if want := "StopTasks prod " + task(1).ARN; !slices.Equal(stops, []string{want}) {
					t.Errorf("StopTasks = %v, want [%s]", stops, want)
				}
				if !slices.Equal(res.Services[0].ReplacedTasks, []string{task(1).ARN}) {
					t.Errorf("ReplacedTasks = %v", res.Services[0].ReplacedTasks)
				}
			} else {
				if len(stops) != 0 {
					t.Errorf("StopTasks called with leave: %v", stops)
				}
				if !slices.Equal(res.Services[0].KeptQuietTasks, []string{task(1).ARN}) {
					t.Errorf("KeptQuietTasks = %v, want task 1", res.Services[0].KeptQuietTasks)
				}
			}
			if !strings.Contains(err.Error(), "circuit breaker") {
				t.Errorf("error %q lacks the reason", err)
			}
			out := res.Services[0].Outcome
			if out == nil || !strings.Contains(out.Reason, tt.wantReason) {
				t.Fatalf("outcome = %+v, want reason %q", out, tt.wantReason)
			}
			// The outcome is explained: our stopped tasks and the Service Deployments API's view.
			if len(out.StoppedTasks) != 1 || out.ServiceDeployment == nil || !strings.Contains(out.Reason, "circuit breaker 3/3 failed tasks") {
				t.Errorf("outcome = %+v, want our stopped task and the service deployment", out)
			}
			if len(f.calls.named("Tasks prod/worker STOPPED")) != 0 {
				t.Errorf("exits were watched after a failed rollout")
			}
			if p := res.Phases[len(res.Phases)-1]; p.Phase != PhaseRecover {
				t.Errorf("last phase = %s, want recover", p.Phase)
			}
		})
	}
}

func TestRunRolloutTimeout(t *testing.T) {
	f := newFixture()
	f.cfg.RolloutTimeout = 30 * time.Second
	f.svc.rollout = rollout{never: true}
	res, err := f.run(t, nil)
	if !errors.Is(err, ErrRolloutTimeout) || ExitCode(err) != 5 || res.Outcome != OutcomeRolloutTimeout {
		t.Fatalf("err = %v outcome %s exit %d, want rollout timeout, exit 5", err, res.Outcome, ExitCode(err))
	}
	if res.Left == nil || !res.Left.DeploymentStarted || !strings.Contains(res.Left.Hint, "describe-services") {
		t.Errorf("Left = %+v, want the deployment recorded as started with how to watch it", res.Left)
	}
	if len(f.calls.named("StopTasks")) != 0 {
		t.Errorf("a timed-out rollout stopped tasks")
	}
	out := res.Services[0].Outcome
	if out == nil || out.Result != RolloutTimedOut || out.Polls != 31 ||
		!strings.Contains(out.Reason, "no outcome after 30s: deployment ecs-svc/2 had 1/2 tasks running, 1 pending, IN_PROGRESS") {
		t.Errorf("outcome = %+v, want timed out after 31 polls with the last progress", out)
	}
}

func TestRunLockHeld(t *testing.T) {
	holder := sidekiq.LockOwner{Owner: "ci-other", Host: "runner-2", PID: 99, StartedAt: t0.Add(-time.Minute)}
	tests := []struct {
		name  string
		setup func(f *fixture)
	}{
		// Preflight sees the holder; the lock phase, before any write, refuses with the expiry.
		{name: "seen at preflight", setup: func(f *fixture) { f.fleet.holder, f.fleet.heldOnAcquire = &holder, &holder }},
		{name: "taken between preflight and lock", setup: func(f *fixture) { f.fleet.heldOnAcquire = &holder }},
		// A dry run takes no lock: preflight's read is the answer.
		{name: "dry run", setup: func(f *fixture) { f.fleet.holder = &holder; f.cfg.DryRun = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			tt.setup(f)
			res, err := f.run(t, nil)
			var le *LockedError
			if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || ExitCode(err) != 6 || res.ExitCode != 6 {
				t.Fatalf("err = %v (exit %d), want *LockedError, exit 6", err, ExitCode(err))
			}
			if res.Outcome != OutcomeLocked {
				t.Errorf("outcome = %s, want locked", res.Outcome)
			}
			if le.Holder.Owner != "ci-other" || !strings.Contains(err.Error(), "runner-2") {
				t.Errorf("error %q does not name the holder", err)
			}
			if res.Lock.Holder == nil || res.Lock.Holder.PID != 99 {
				t.Errorf("Result.Lock.Holder = %+v", res.Lock.Holder)
			}
			if w := f.calls.named("Quiet"); len(w) != 0 {
				t.Errorf("quieted with the lock held: %v", w)
			}
			if len(f.calls.named("Release")) != 0 || res.Lock.Acquired {
				t.Errorf("released a lock it did not hold")
			}
		})
	}
}

func TestRunStaleLockTakeover(t *testing.T) {
	f := newFixture()
	requireLockServer(t)
	// A run that was killed: its lock lapsed (1 ms TTL), the record of its holder stays.
	stale := sidekiq.LockOwner{Owner: "ci-killed", Host: "runner-3", PID: 5, StartedAt: t0.Add(-time.Hour), Token: "dead"}
	if _, err := f.fleet.locker.AcquireLock(context.Background(), LockName(f.cfg.Services), stale, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		h, err := f.fleet.locker.LockHolder(context.Background(), LockName(f.cfg.Services))
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stale lock did not lapse")
		}
	}
	res, err := f.run(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Lock.TookOver == nil || res.Lock.TookOver.Owner != "ci-killed" || !strings.Contains(f.obs.warnings(), "took over the stale deploy lock") ||
		!strings.Contains(f.obs.warnings(), "ci-killed on runner-3 (pid 5") {
		t.Errorf("no takeover warning naming the stale holder: %+v %s", res.Lock, f.obs.warnings())
	}
	if !res.Lock.Released {
		t.Errorf("lock not released")
	}
}

func TestRunLockRefreshedWhileRunning(t *testing.T) {
	f := newFixture()
	f.cfg.LockTTL = 6 * time.Second // refresh every 2 s of fake time, poll every 1 s
	f.cfg.DrainTimeout = 20 * time.Second
	f.fleet.script = func(n int, _ []string) []sidekiq.Observation {
		if f.svc.deployed {
			return []sidekiq.Observation{obs(f.p1, stGone), obs(f.p2, stGone)}
		}
		return []sidekiq.Observation{obs(f.p1, stQuiet, f.j1), obs(f.p2, stQuiet, f.j2)}
	}
	res, err := f.run(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.calls.named("Refresh")); n < 9 || n > 11 {
		t.Errorf("Refresh called %d times during a 20 s drain with a 6 s TTL, want about 10", n)
	}
	if res.APICalls["redis.LockRefresh"] != len(f.calls.named("Refresh")) {
		t.Errorf("APICalls %v disagree with %d refreshes", res.APICalls, len(f.calls.named("Refresh")))
	}
}

func TestRunEmptySelection(t *testing.T) {
	f := newFixture()
	f.svc.running = []ecs.Task{task(7)} // no process runs in it
	res, err := f.run(t, nil)
	var ee *EmptySelectionError
	if !errors.As(err, &ee) || ExitCode(err) != 2 || res.Outcome != OutcomeRefused {
		t.Fatalf("err = %v (exit %d, outcome %s), want *EmptySelectionError, exit 2, refused", err, ExitCode(err), res.Outcome)
	}
	if len(ee.Fleet) != 3 || !slices.Equal(ee.Tasks, []string{"t7 10.0.0.7"}) {
		t.Errorf("error lists fleet %v and tasks %v, want 3 processes and task t7", ee.Fleet, ee.Tasks)
	}
	if !strings.Contains(err.Error(), "ip-10-0-0-1:1:abc1 (tag worker)") {
		t.Errorf("error %q does not list the fleet", err)
	}
	if len(res.Findings) != 1 || res.Findings[0].Code != CodeEmptySelection {
		t.Errorf("findings = %+v, want one %s", res.Findings, CodeEmptySelection)
	}
	noWrites(t, f.calls)
}

func TestRunPreflightRefusals(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(f *fixture)
		want     []string // in the error
		wantCode string   // a blocking finding's code
	}{
		{name: "service refused", setup: func(f *fixture) { f.svc.state.Controller = "CODE_DEPLOY" },
			want: []string{"CODE_DEPLOY"}, wantCode: CodeControllerNotECS},
		{name: "service missing", setup: func(f *fixture) { f.svc.ref.Service = "other" },
			want: []string{"not found"}, wantCode: CodeServiceNotFound},
		{name: "rollout in progress", setup: func(f *fixture) {
			f.svc.state.Deployments = nil
			f.svc.deployed, f.svc.target = true, f.svc.state.TaskDefinition // Describe shows a second deployment
			f.svc.rollout.never = true
		}, want: []string{"a rollout is already in progress (2 deployments)"}, wantCode: CodeRolloutInProgress},
		{name: "stale heartbeat", setup: func(f *fixture) {
			f.fleet.snapshots[0].Processes[1].Beat = t0.Add(-45 * time.Second)
		}, want: []string{"no heartbeat in 30s: ip-10-0-0-2:1:abc2 (45s ago)"}, wantCode: CodeStaleHeartbeat},
		{name: "strict warning", setup: func(f *fixture) {
			f.cfg.Strict = true
			f.svc.state.BreakerEnabled = false
		}, want: []string{"circuit breaker is off"}, wantCode: CodeBreakerOff},
		{name: "redis not writable", setup: func(f *fixture) {
			f.fleet.pingErr = errors.New("write drainctl:ping:ab on redis://:xxxxx@h:6379/0: READONLY You can't write against a read only replica")
		}, want: []string{"READONLY"}, wantCode: CodeRedis},
		{name: "bad policy", setup: func(f *fixture) { f.cfg.OnTimeout = "wait" }, want: []string{`on-timeout "wait"`}, wantCode: CodeBadConfig},
		{name: "target revision missing", setup: func(f *fixture) { f.cfg.TaskDefinition = "worker:9" },
			want:     []string{"PF007 task definition worker:9 does not exist; the latest ACTIVE revision of worker is worker:8"},
			wantCode: CodeTaskDefNotFound},
		{name: "target of another family", setup: func(f *fixture) {
			f.ecs.tds = append(f.ecs.tds, taskDef("mailer", 3, true))
			f.cfg.TaskDefinition = "mailer:3"
		}, want: []string{`PF008 task definition mailer:3 is of family "mailer", the service runs family "worker"`}, wantCode: CodeTaskDefOtherFamily},
		{name: "target revision inactive", setup: func(f *fixture) {
			td := taskDef("worker", 6, true)
			td.Status = "INACTIVE"
			f.ecs.tds = append(f.ecs.tds, td)
			f.cfg.TaskDefinition = td.ARN
		}, want: []string{"PF007 task definition worker:6 is INACTIVE", "worker is worker:8"}, wantCode: CodeTaskDefNotFound},
		{name: "target signal path under strict", setup: func(f *fixture) {
			f.cfg.Strict = true
			f.ecs.tds[1] = taskDef("worker", 8, false)
			f.cfg.TaskDefinition = "worker:8"
		}, want: []string{"SP001 signal path of worker:8"}, wantCode: "SP001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			tt.setup(f)
			res, err := f.run(t, nil)
			if !errors.Is(err, ErrPreflight) || ExitCode(err) != 2 || res.ExitCode != 2 || res.Outcome != OutcomeRefused {
				t.Fatalf("err = %v (exit %d, outcome %s), want a preflight error, exit 2", err, ExitCode(err), res.Outcome)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			var pe *PreflightError
			if errors.As(err, &pe) && !slices.ContainsFunc(pe.Findings, func(f finding.Finding) bool { return f.Code == tt.wantCode }) {
				t.Errorf("blocking findings %+v lack %s", pe.Findings, tt.wantCode)
			}
			noWrites(t, f.calls)
			if res.Lock.Acquired || len(f.calls.named("Watch")) != 0 {
				t.Errorf("a refused run took the lock or watched: %v", f.calls.all())
			}
		})
	}
}

// TestRunSignalPathJudgedOnTarget: the signal-path checks lint the revision being deployed,
// not the one running: under --strict a target that fixes the running revision's finding
// deploys, and the running revision is not even read.
func TestRunSignalPathJudgedOnTarget(t *testing.T) {
	tests := []struct {
		name          string
		runningGood   bool
		targetGood    bool
		strict        bool
		wantErr       bool
		wantSPWarning bool
	}{
		{name: "target fixes the running revision, strict", targetGood: true, strict: true},
		{name: "target breaks it, not strict: a warning", runningGood: true, strict: false, wantSPWarning: true},
		{name: "target breaks it, strict", runningGood: true, strict: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			f.ecs.tds = []*ecs.TaskDefinitionInfo{taskDef("worker", 7, tt.runningGood), taskDef("worker", 8, tt.targetGood)}
			f.cfg.Strict = tt.strict
			f.cfg.TaskDefinition = "worker:8"
			res, err := f.run(t, nil)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if len(f.calls.named("TaskDefinition "+tdARN+"worker:7")) != 0 || len(f.calls.named("TaskDefinition worker:7")) != 0 {
				t.Errorf("the running revision was read: %v", f.calls.named("TaskDefinition"))
			}
			if s := res.Services[0]; s.Target == nil || s.Target.Revision != 8 {
				t.Errorf("target = %+v, want worker:8", s.Target)
			}
			if tt.wantErr {
				noWrites(t, f.calls)
				return
			}
			if got := f.calls.named("Deploy"); !slices.Equal(got, []string{"Deploy prod/worker worker:8"}) {
				t.Errorf("Deploy calls = %v, want one of worker:8", got)
			}
			if got := strings.Contains(f.obs.warnings(), "warn SP001 worker:8 / sidekiq: signal path of worker:8: the `sh -c` script"); got != tt.wantSPWarning {
				t.Errorf("SP001 warning = %v, want %v:\n%s", got, tt.wantSPWarning, f.obs.warnings())
			}
		})
	}
}

func TestRunRescuesOnlyDeadProcesses(t *testing.T) {
	tests := []struct {
		name        string
		noRescue    bool
		wantRescue  []string
		wantCounts  JobCounts
		wantWarning string
	}{
		{name: "rescue", wantRescue: []string{"Rescue j2"}, wantCounts: JobCounts{StillRunning: 1, Rescued: 1},
			wantWarning: "rescued 1 job(s)"},
		{name: "no rescue", noRescue: true, wantCounts: JobCounts{StillRunning: 1, Lost: 1},
			wantWarning: "not rescued (--rescue=false)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			f.cfg.NoRescue = tt.noRescue
			f.cfg.DrainTimeout = 2 * time.Second
			f.cfg.ExitTimeout = 10 * time.Second
			// Both jobs outlast the drain; after the deploy p1 keeps running j1 (it is alive:
			// its jobs are never rescued) while p2 keeps beating until ECS reports its
			// container killed.
			f.script([]sidekiq.Observation{obs(f.p1, stQuiet, f.j1), obs(f.p2, stQuiet, f.j2)})
			f.svc.stopped = []ecs.Task{killedTask(2)}
			res, err := f.run(t, nil)
			if err != nil || ExitCode(err) != 0 {
				t.Fatalf("err = %v exit %d, want success (rescued jobs are not a failure)", err, ExitCode(err))
			}
			if got := f.calls.named("Rescue"); !slices.Equal(got, tt.wantRescue) {
				t.Errorf("Rescue calls = %v, want %v", got, tt.wantRescue)
			}
			if !slices.Equal(f.calls.named("MarkDead"), []string{"MarkDead " + f.p2.Identity}) {
				t.Errorf("MarkDead calls = %v, want p2 only", f.calls.named("MarkDead"))
			}
			if res.Jobs != tt.wantCounts {
				t.Errorf("jobs = %+v, want %+v", res.Jobs, tt.wantCounts)
			}
			if p := res.Processes[1]; p.State != stDead || p.Exit != ExitKilled || !strings.Contains(p.Evidence, "exited 137") {
				t.Errorf("p2 = %+v, want dead, killed, with the exit-137 evidence", p)
			}
			if p := res.Processes[0]; p.State != stQuiet || p.Exit != ExitUnknown {
				t.Errorf("p1 = %+v, want quiet, exit unknown", p)
			}
			// The old task that was killed is recorded with its exit code for the report.
			if got := res.Services[0].OldTasksStopped; len(got) != 1 || got[0].ARN != killedTask(2).ARN {
				t.Errorf("old tasks stopped = %+v, want p2's killed task", got)
			}
			w := f.obs.warnings()
			if !strings.Contains(w, tt.wantWarning) || !strings.Contains(w, "signal path") {
				t.Errorf("warnings lack %q and the signal-path cause:\n%s", tt.wantWarning, w)
			}
		})
	}
}

// TestRunRescueOutcomes: each job's rescue answer decides its fate; only pushed jobs count as
// rescued.
func TestRunRescueOutcomes(t *testing.T) {
	f := newFixture()
	f.cfg.DrainTimeout = 2 * time.Second
	f.cfg.ExitTimeout = 2 * time.Second
	f.script([]sidekiq.Observation{obs(f.p1, stQuiet, f.j1), obs(f.p2, stQuiet, f.j2)})
	f.svc.stopped = []ecs.Task{killedTask(1), killedTask(2)}
	f.fleet.rescue = func(jobs []sidekiq.Job) sidekiq.RescueResult {
		return sidekiq.RescueResult{Jobs: []sidekiq.JobRescue{
			{Job: jobs[0], Outcome: sidekiq.OutcomeAlreadyRescued, Reason: "rescued by ci-1 at 04:00"},
			{Job: jobs[1], Outcome: sidekiq.OutcomeRetry},
		}}
	}
	res, err := f.run(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (JobCounts{AlreadyRescued: 1, Safe: 1}); res.Jobs != want {
		t.Errorf("jobs = %+v, want %+v", res.Jobs, want)
	}
	if n := res.JobList[0].Note; n != "rescued by ci-1 at 04:00" {
		t.Errorf("j1 note = %q", n)
	}
	if strings.Contains(f.obs.warnings(), "rescued 1 job") || strings.Contains(f.obs.warnings(), "rescued 2 job") {
		t.Errorf("a rescue that pushed nothing warned of rescued jobs:\n%s", f.obs.warnings())
	}
}

func TestRunExitTimeoutWarnsStillRunning(t *testing.T) {
	f := newFixture()
	f.cfg.ExitTimeout = 5 * time.Second
	f.script(
		[]sidekiq.Observation{obs(f.p1, stQuiet, f.j1), obs(f.p2, stQuiet, f.j2)},
		[]sidekiq.Observation{obs(f.p1, stDrained), obs(f.p2, stDrained)},
		[]sidekiq.Observation{obs(f.p1, stGone), obs(f.p2, stDrained)},
	)
	res, err := f.run(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.obs.warnings(), f.p2.Identity+" still running 5s after the rollout") {
		t.Errorf("no still-running warning: %s", f.obs.warnings())
	}
	if exits := res.Phases[len(res.Phases)-1]; exits.Phase != PhaseExits || exits.Duration() != 5*time.Second {
		t.Errorf("exits phase %+v lasted %v, want bounded by ExitTimeout", exits, exits.Duration())
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{fmt.Errorf("%w: 1 process(es)", ErrNotAcknowledged), 1},
		{fmt.Errorf("%w: 1 process(es)", ErrStillRunning), 1},
		{&PreflightError{Findings: []finding.Finding{{Code: "PF003", Severity: finding.Error, Message: "x"}}}, 2},
		{usageError(errors.New("bad")), 2},
		{&EmptySelectionError{}, 2},
		{fmt.Errorf("%w after 10m", ErrDrainTimeout), 3},
		{fmt.Errorf("%w: rolled back", ErrRolloutFailed), 4},
		{ErrRolloutTimeout, 5},
		{&LockedError{Name: "x"}, 6},
		{fmt.Errorf("%w during drain: %w", ErrInterrupted, context.Canceled), 130},
		{context.Canceled, 130},
	}
	for _, tt := range tests {
		if got := int(ExitCode(tt.err)); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// twoServices is the fixture with a second service, prod/mailer, whose two tasks (5 and 6)
// run p5 (busy with j5) and p6 (busy with j6). The fleet lists the four processes
// interleaved, so that placing each in its own service's task cannot rely on the order.
type twoServices struct {
	*fixture
	mailer *fakeService
	p5, p6 sidekiq.Process
	j5, j6 sidekiq.Job
}

func newTwoServices() *twoServices {
	f := newFixture()
	ts := &twoServices{fixture: f}
	ts.j5 = job("j5", "", t0.Add(-20*time.Second))
	ts.j6 = job("j6", "", t0.Add(-50*time.Second))
	ts.p5, ts.p6 = proc(5, ts.j5), proc(6, ts.j6)
	ts.j5.Process, ts.j6.Process = ts.p5.Identity, ts.p6.Identity
	f.fleet.snapshots = []*sidekiq.Snapshot{{At: t0, Processes: []sidekiq.Process{f.p1, ts.p5, f.p2, ts.p6, proc(9)}}}
	ts.mailer = &fakeService{ref: ecs.ServiceRef{Cluster: "prod", Service: "mailer"}, state: serviceState("mailer", 3),
		running:      []ecs.Task{task(5), task(6)},
		runningAfter: []ecs.Task{task(7), task(8)},
		deploymentID: "ecs-svc/mailer-2",
	}
	f.ecs.svcs = append(f.ecs.svcs, ts.mailer)
	f.ecs.tds = append(f.ecs.tds, taskDef("mailer", 3, true))
	f.cfg.Services = []ecs.ServiceRef{f.svc.ref, ts.mailer.ref}
	return ts
}

// script plays a two-service run: every process acknowledges quiet with its job at the first
// poll; then each drains, except killed, which keeps its job (the drain times out) until
// ECS's exit-137 evidence marks it dead. Once both services are deployed every process has
// left, except kept, which stays alive and quiet in a task the rollback kept.
func (ts *twoServices) script(killed, kept string) {
	procs := map[string]sidekiq.Process{ts.p1.Identity: ts.p1, ts.p2.Identity: ts.p2, ts.p5.Identity: ts.p5, ts.p6.Identity: ts.p6}
	jobs := map[string]sidekiq.Job{ts.p1.Identity: ts.j1, ts.p2.Identity: ts.j2, ts.p5.Identity: ts.j5, ts.p6.Identity: ts.j6}
	ts.fleet.script = func(n int, ids []string) []sidekiq.Observation {
		out := make([]sidekiq.Observation, 0, len(ids))
		for _, id := range ids {
			p := procs[id]
			switch {
			case n == 0 || id == killed:
				out = append(out, obs(p, stQuiet, jobs[id]))
			case !ts.svc.deployed || !ts.mailer.deployed || id == kept:
				out = append(out, obs(p, stDrained))
			default:
				out = append(out, obs(p, stGone))
			}
		}
		return out
	}
}

// describesAfterDeploy are the Describe calls made once a deployment started.
func (ts *twoServices) describes() []string {
	var out []string
	deployed := false
	for _, c := range ts.calls.all() {
		if strings.HasPrefix(c, "Deploy ") {
			deployed = true
		}
		if deployed && strings.HasPrefix(c, "Describe ") {
			out = append(out, c)
		}
	}
	return out
}

// TestRunTwoServices: one run deploys two services. Each gets exactly one Deploy and is
// watched to the end whatever the other's rollout did, with one Describe per poll for both;
// the selection is the union of both services' task processes, each placed in its own
// service's task; a rollback of one service makes the run's outcome rolled back (exit 4) and
// replaces only that service's kept quiet tasks, while the old processes of the service that
// succeeded are still watched leaving and the jobs of a killed one rescued.
func TestRunTwoServices(t *testing.T) {
	tests := []struct {
		name string
		// failed is the service whose rollout rolls back ("" for none); its rollback keeps
		// the task of process kept (1 or 5) running.
		failed    string
		kept      int
		killed    int // the process (2 or 6) of the succeeding service whose task is killed
		wantOut   Outcome
		wantExit  int
		wantStop  []string
		wantFates map[string]JobFate
	}{
		{name: "both succeed", wantOut: OutcomeSucceeded, wantExit: 0,
			wantFates: map[string]JobFate{"j1": JobFinished, "j2": JobFinished, "j5": JobFinished, "j6": JobFinished}},
		{name: "worker succeeds, mailer rolls back", failed: "mailer", kept: 5, killed: 2,
			wantOut: OutcomeRolledBack, wantExit: 4, wantStop: []string{"StopTasks prod " + task(5).ARN},
			wantFates: map[string]JobFate{"j1": JobFinished, "j2": JobRescued, "j5": JobFinished, "j6": JobFinished}},
		{name: "worker rolls back, mailer succeeds", failed: "worker", kept: 1, killed: 6,
			wantOut: OutcomeRolledBack, wantExit: 4, wantStop: []string{"StopTasks prod " + task(1).ARN},
			wantFates: map[string]JobFate{"j1": JobFinished, "j2": JobFinished, "j5": JobFinished, "j6": JobRescued}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTwoServices()
			ts.cfg.DrainTimeout = 3 * time.Second
			ident := map[int]string{1: ts.p1.Identity, 2: ts.p2.Identity, 5: ts.p5.Identity, 6: ts.p6.Identity}
			svcOf := map[string]*fakeService{"worker": ts.svc, "mailer": ts.mailer}
			if tt.failed != "" {
				bad := svcOf[tt.failed]
				bad.rollout = rollout{result: RolloutRolledBack, reason: "circuit breaker: 2 tasks failed"}
				bad.runningAfter = []ecs.Task{task(tt.kept), task(10)}
			}
			if tt.killed != 0 {
				owner := ts.svc
				if tt.killed == 6 {
					owner = ts.mailer
				}
				owner.stopped = []ecs.Task{killedTask(tt.killed)}
			}
			ts.script(ident[tt.killed], ident[tt.kept])

			res, err := ts.runner().Run(context.Background())
			if got := int(ExitCode(err)); got != tt.wantExit || res.ExitCode != tt.wantExit || res.Outcome != tt.wantOut {
				t.Fatalf("outcome %s exit %d (err %v), want %s exit %d", res.Outcome, got, err, tt.wantOut, tt.wantExit)
			}
			if tt.wantExit == 4 && (!errors.Is(err, ErrRolloutFailed) || !strings.Contains(err.Error(), "prod/"+tt.failed) ||
				!strings.Contains(err.Error(), "circuit breaker")) {
				t.Errorf("err = %v, want ErrRolloutFailed naming prod/%s and the reason", err, tt.failed)
			}

			// Exactly one Deploy per service, and both rollouts polled together to their end.
			if got, want := ts.calls.named("Deploy"), []string{"Deploy prod/worker ", "Deploy prod/mailer "}; !slices.Equal(got, want) {
				t.Errorf("Deploy calls = %q, want %q", got, want)
			}
			if got, want := ts.describes(), []string{"Describe prod/worker,prod/mailer", "Describe prod/worker,prod/mailer"}; !slices.Equal(got, want) {
				t.Errorf("rollout reads = %q, want %q", got, want)
			}
			if res.APICalls["ecs.Deploy"] != 2 {
				t.Errorf("APICalls = %v, want 2 deploys", res.APICalls)
			}

			// The selection is the union of both services' task processes, quieted at once,
			// each placed in its own service's task.
			wantQuiet := "Quiet " + strings.Join([]string{ts.p1.Identity, ts.p5.Identity, ts.p2.Identity, ts.p6.Identity}, ",")
			if got := ts.calls.named("Quiet"); !slices.Equal(got, []string{wantQuiet}) {
				t.Errorf("Quiet calls = %q, want [%q]", got, wantQuiet)
			}
			placed := map[string]string{}
			for _, p := range res.Processes {
				placed[p.Identity] = p.Service + " " + p.TaskARN
			}
			wantPlaced := map[string]string{
				ts.p1.Identity: "prod/worker " + task(1).ARN, ts.p2.Identity: "prod/worker " + task(2).ARN,
				ts.p5.Identity: "prod/mailer " + task(5).ARN, ts.p6.Identity: "prod/mailer " + task(6).ARN,
			}
			if fmt.Sprint(placed) != fmt.Sprint(wantPlaced) {
				t.Errorf("placement = %v, want %v", placed, wantPlaced)
			}
			if !slices.Equal(res.Unplaced, []string{proc(9).Identity}) {
				t.Errorf("Unplaced = %v, want the process in no task", res.Unplaced)
			}
			if res.Lock.Name != "deploy:prod/mailer,prod/worker" {
				t.Errorf("lock name = %q, want one lock for the set of services", res.Lock.Name)
			}

			// Both per-service sections are filled.
			if len(res.Services) != 2 {
				t.Fatalf("Services = %d, want 2", len(res.Services))
			}
			for i, want := range []struct {
				ref, dep, prev string
			}{
				{"prod/worker", "ecs-svc/2", "worker:7"},
				{"prod/mailer", "ecs-svc/mailer-2", "mailer:3"},
			} {
				s := res.Services[i]
				wantResult := RolloutSucceeded
				if s.Ref.Service == tt.failed {
					wantResult = RolloutRolledBack
				}
				if s.Ref.String() != want.ref || !s.Deployed || s.Rollout.DeploymentID != want.dep ||
					!strings.HasSuffix(s.PreviousTaskDefinition(), want.prev) || len(s.TasksAtStart) != 2 ||
					len(s.Polls) != 2 || s.Outcome == nil || s.Outcome.Result != wantResult {
					t.Errorf("Services[%d] = %+v (outcome %+v), want %s deployed as %s from %s, 2 tasks at start, 2 polls, %s",
						i, s, s.Outcome, want.ref, want.dep, want.prev, wantResult)
				}
			}

			// Recover touches only the service that rolled back.
			if got := ts.calls.named("StopTasks"); !slices.Equal(got, tt.wantStop) {
				t.Errorf("StopTasks calls = %q, want %q", got, tt.wantStop)
			}
			for _, s := range res.Services {
				wantReplaced := []string(nil)
				if s.Ref.Service == tt.failed {
					wantReplaced = []string{task(tt.kept).ARN}
				}
				if !slices.Equal(s.ReplacedTasks, wantReplaced) || len(s.KeptQuietTasks) != 0 {
					t.Errorf("%s: replaced %v kept %v, want replaced %v", s.Ref, s.ReplacedTasks, s.KeptQuietTasks, wantReplaced)
				}
			}

			// The succeeding service's old processes were watched leaving: the killed one is
			// dead on the ECS evidence and its job rescued exactly once.
			wantMark, wantRescue := []string(nil), []string(nil)
			if tt.killed != 0 {
				wantMark = []string{"MarkDead " + ident[tt.killed]}
				wantRescue = []string{fmt.Sprintf("Rescue j%d", tt.killed)}
			}
			if got := ts.calls.named("MarkDead"); !slices.Equal(got, wantMark) {
				t.Errorf("MarkDead calls = %q, want %q", got, wantMark)
			}
			if got := ts.calls.named("Rescue"); !slices.Equal(got, wantRescue) {
				t.Errorf("Rescue calls = %q, want %q", got, wantRescue)
			}
			for _, p := range res.Processes {
				want := stGone
				switch p.Identity {
				case ident[tt.killed]:
					want = stDead
				case ident[tt.kept]:
					want = stDrained
				}
				if p.State != want {
					t.Errorf("process %s ended %s, want %s", p.Identity, p.State, want)
				}
			}
			fates := map[string]JobFate{}
			for _, j := range res.JobList {
				fates[j.JID] = j.Fate
			}
			if fmt.Sprint(fates) != fmt.Sprint(tt.wantFates) {
				t.Errorf("job fates = %v, want %v", fates, tt.wantFates)
			}
			if res.Jobs.Lost != 0 || res.Jobs.StillRunning != 0 {
				t.Errorf("jobs = %+v, want none lost or still running", res.Jobs)
			}
			if !res.Lock.Released {
				t.Errorf("lock not released")
			}
		})
	}
}

// TestRunTwoServicesShareRolloutDeadline: both deployments start before either is watched,
// so ECS rolls them out at the same time, and one watch polls both within one
// RolloutTimeout counted from the start of the rollout phase; a service whose rollout ended
// is not read again.
func TestRunTwoServicesShareRolloutDeadline(t *testing.T) {
	tests := []struct {
		name                       string
		workerTook, mailerTook     time.Duration
		wantWorkerRes, wantMailRes RolloutResult
		wantOut                    Outcome
		wantExit                   int
		wantPhase                  time.Duration // the rollout phase's length
		wantPolls                  [2]int        // each service's polls
	}{
		{name: "both end in time", workerTook: 4 * time.Minute, mailerTook: time.Minute,
			wantWorkerRes: RolloutSucceeded, wantMailRes: RolloutSucceeded, wantOut: OutcomeSucceeded, wantPhase: 4 * time.Minute,
			wantPolls: [2]int{25, 7}},
		{name: "one times out, the other succeeded meanwhile", workerTook: 20 * time.Minute, mailerTook: time.Minute,
			wantWorkerRes: RolloutTimedOut, wantMailRes: RolloutSucceeded, wantOut: OutcomeRolloutTimeout, wantExit: 5,
			wantPhase: 15 * time.Minute, wantPolls: [2]int{91, 7}},
		{name: "both time out", workerTook: 20 * time.Minute, mailerTook: 16 * time.Minute,
			wantWorkerRes: RolloutTimedOut, wantMailRes: RolloutTimedOut, wantOut: OutcomeRolloutTimeout, wantExit: 5,
			wantPhase: 15 * time.Minute, wantPolls: [2]int{91, 91}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTwoServices()
			ts.cfg.RolloutTimeout = 15 * time.Minute
			ts.cfg.PollInterval = 10 * time.Second
			ts.script("", "")
			ts.svc.rollout.took, ts.mailer.rollout.took = tt.workerTook, tt.mailerTook

			res, err := ts.runner().Run(context.Background())
			if got := int(ExitCode(err)); got != tt.wantExit || res.Outcome != tt.wantOut {
				t.Fatalf("outcome %s exit %d (err %v), want %s exit %d", res.Outcome, got, err, tt.wantOut, tt.wantExit)
			}
			for i, want := range []RolloutResult{tt.wantWorkerRes, tt.wantMailRes} {
				o := res.Services[i].Outcome
				if o == nil || o.Result != want || o.Polls != tt.wantPolls[i] || len(res.Services[i].Polls) != tt.wantPolls[i] {
					t.Errorf("%s outcome = %+v, want %s after %d polls", res.Services[i].Ref, o, want, tt.wantPolls[i])
				}
				if want == RolloutTimedOut && !strings.Contains(o.Reason, "no outcome after 15m0s") {
					t.Errorf("%s reason = %q", res.Services[i].Ref, o.Reason)
				}
			}
			for _, p := range res.Phases {
				if p.Phase == PhaseRollout && p.Duration() != tt.wantPhase {
					t.Errorf("rollout phase lasted %v, want %v", p.Duration(), tt.wantPhase)
				}
			}
			// One read per poll for both services while both run, then only the other.
			both, one := 0, 0
			for _, d := range ts.describes() {
				switch d {
				case "Describe prod/worker,prod/mailer":
					both++
				case "Describe prod/worker", "Describe prod/mailer":
					one++
				}
			}
			if both != min(tt.wantPolls[0], tt.wantPolls[1]) || both+one != max(tt.wantPolls[0], tt.wantPolls[1]) {
				t.Errorf("rollout reads: %d of both, %d of one; want %v polls", both, one, tt.wantPolls)
			}
			if tt.wantExit == 5 {
				want := map[string]string{"prod/worker": "ecs-svc/2", "prod/mailer": "ecs-svc/mailer-2"}
				if res.Left == nil || fmt.Sprint(res.Left.DeploymentIDs) != fmt.Sprint(want) {
					t.Errorf("Left = %+v, want both deployments %v", res.Left, want)
				}
			}
			if tt.wantMailRes == RolloutSucceeded && tt.wantWorkerRes != RolloutSucceeded {
				// The mailer's old processes were still watched leaving.
				for _, p := range res.Processes {
					if p.Service == "prod/mailer" && p.State != stGone {
						t.Errorf("mailer process %s ended %s, want gone", p.Identity, p.State)
					}
				}
			}
		})
	}
}

// progressRec keeps every DrainProgress as emitted.
type progressRec struct {
	recObserver
	dps []DrainProgress
}

func (o *progressRec) DrainProgress(p DrainProgress) {
	o.dps = append(o.dps, p)
	o.recObserver.DrainProgress(p)
}

// TestRunFirstQuietProgressIsTheFirstPoll: the quiet phase's first progress event carries the
// first poll (every selected process counted by state, TSTP not read yet) and the jobs known
// from preflight, even when the heartbeats show no work yet; report renders it as the
// processes still to acknowledge, never as an empty "0 of 0".
func TestRunFirstQuietProgressIsTheFirstPoll(t *testing.T) {
	f := newFixture()
	f.script(
		[]sidekiq.Observation{obs(f.p1, stRunning), obs(f.p2, stRunning)},
		[]sidekiq.Observation{obs(f.p1, stQuiet, f.j1), obs(f.p2, stQuiet, f.j2)},
		[]sidekiq.Observation{obs(f.p1, stDrained), obs(f.p2, stDrained)},
		[]sidekiq.Observation{obs(f.p1, stGone), obs(f.p2, stGone)},
	)
	rec := &progressRec{}
	r := f.runner()
	r.Observer = rec
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rec.dps) == 0 {
		t.Fatal("no progress emitted")
	}
	first := rec.dps[0]
	if first.Phase != PhaseQuiet || first.Processes[stRunning] != 2 || len(first.Processes) != 1 ||
		first.Total != 2 || first.Remaining != 0 {
		t.Errorf("first progress = %+v, want quiet with running 2, 0 of the 2 preflight jobs in the heartbeats", first)
	}
	for i, dp := range rec.dps {
		n := 0
		for _, c := range dp.Processes {
			n += c
		}
		if n != 2 {
			t.Errorf("progress %d (%s) counts %d processes, want the 2 selected", i, dp.Phase, n)
		}
	}
}

// TestRunDrainStrategy: `drainctl drain` runs the same Runner without any ECS call and
// without the deploy lock.
func TestRunDrainStrategy(t *testing.T) {
	tests := []struct {
		name      string
		onTimeout OnTimeout
		stuck     bool // j2 never finishes
		wantErr   error
		wantExit  int
		wantOut   Outcome
		wantStop  string
		wantHint  string
		phases    []string
	}{
		{name: "drains", wantOut: OutcomeSucceeded, phases: []string{"preflight", "quiet", "drain"}},
		{name: "timeout fails by default", stuck: true, wantErr: ErrDrainTimeout, wantExit: 3, wantOut: OutcomeDrainTimeout,
			wantHint: "finish with: drainctl drain --on-timeout stop --identity ip-10-0-0-1:1:abc1 --identity ip-10-0-0-2:1:abc2",
			phases:   []string{"preflight", "quiet", "drain"}},
		{name: "timeout stop", onTimeout: OnTimeoutStop, stuck: true, wantOut: OutcomeSucceeded,
			wantStop: "Stop ip-10-0-0-1:1:abc1,ip-10-0-0-2:1:abc2", phases: []string{"preflight", "quiet", "drain", "exits"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			f.cfg.Services = nil
			f.cfg.Strategy = StrategyDrainOnly
			f.cfg.OnTimeout = tt.onTimeout
			f.cfg.DrainTimeout = 5 * time.Second
			f.cfg.Selector = &sidekiq.Selector{Tags: []string{"worker"}}
			f.fleet.snapshots = f.fleet.snapshots[:1]
			f.fleet.snapshots[0].Processes = []sidekiq.Process{f.p1, f.p2}
			if tt.stuck {
				f.fleet.script = func(n int, _ []string) []sidekiq.Observation {
					if len(f.calls.named("Stop")) > 0 {
						return []sidekiq.Observation{obs(f.p1, stGone), obs(f.p2, stGone)}
					}
					return []sidekiq.Observation{obs(f.p1, stQuiet, f.j1), obs(f.p2, stQuiet, f.j2)}
				}
			}
			res, err := f.run(t, nil)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) || int(ExitCode(err)) != tt.wantExit || res.Outcome != tt.wantOut {
				t.Fatalf("err = %v (exit %d, outcome %s), want %v exit %d %s", err, ExitCode(err), res.Outcome, tt.wantErr, tt.wantExit, tt.wantOut)
			}
			if res.Command != "drain" || res.Strategy.Name != StrategyDrainOnly || len(res.Services) != 0 {
				t.Errorf("command %s strategy %s services %d, want drain with no service", res.Command, res.Strategy.Name, len(res.Services))
			}
			for _, c := range ecsCalls {
				if got := f.calls.named(c); len(got) != 0 {
					t.Errorf("ECS call in a drain: %v", got)
				}
			}
			if got := f.calls.named("AcquireLock"); len(got) != 0 || res.Lock.Name != "" {
				t.Errorf("drain took a deploy lock: %v %+v", got, res.Lock)
			}
			if got := f.obs.phases(); !slices.Equal(got, tt.phases) {
				t.Errorf("phases = %v, want %v", got, tt.phases)
			}
			if got := f.calls.named("Stop"); (tt.wantStop == "") != (len(got) == 0) || (tt.wantStop != "" && got[0] != tt.wantStop) {
				t.Errorf("Stop calls = %v, want %q", got, tt.wantStop)
			}
			if tt.wantHint != "" && (res.Left == nil || !strings.Contains(res.Left.Hint, tt.wantHint)) {
				t.Errorf("Left = %+v, want hint %q", res.Left, tt.wantHint)
			}
			if res.Jobs.Total() != 2 {
				t.Errorf("jobs = %+v, want the 2 in flight", res.Jobs)
			}
		})
	}
}

// TestRunQuietStrategy: `drainctl quiet` sends TSTP and, unless NoWait, waits for the
// acknowledgement; no ECS call, no lock.
func TestRunQuietStrategy(t *testing.T) {
	tests := []struct {
		name     string
		noWait   bool
		ack      bool
		wantErr  error
		wantExit int
		wantPoll bool
	}{
		{name: "no wait", noWait: true},
		{name: "acknowledged", ack: true, wantPoll: true},
		{name: "not acknowledged", wantErr: ErrNotAcknowledged, wantExit: 1, wantPoll: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			f.cfg.Services = nil
			f.cfg.Strategy = StrategyQuietOnly
			f.cfg.NoWait = tt.noWait
			f.cfg.AckTimeout = 5 * time.Second
			f.cfg.Selector = &sidekiq.Selector{All: true}
			f.fleet.snapshots = f.fleet.snapshots[:1]
			f.fleet.snapshots[0].Processes = []sidekiq.Process{f.p1, f.p2}
			st := stRunning
			if tt.ack {
				st = stQuiet
			}
			f.script([]sidekiq.Observation{obs(f.p1, st, f.j1), obs(f.p2, stQuiet, f.j2)})
			res, err := f.run(t, nil)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) || int(ExitCode(err)) != tt.wantExit {
				t.Fatalf("err = %v (exit %d), want %v exit %d", err, ExitCode(err), tt.wantErr, tt.wantExit)
			}
			if got := f.calls.named("Quiet"); !slices.Equal(got, []string{"Quiet ip-10-0-0-1:1:abc1,ip-10-0-0-2:1:abc2"}) {
				t.Errorf("Quiet calls = %v", got)
			}
			if got := len(f.calls.named("Poll")) > 0; got != tt.wantPoll {
				t.Errorf("polled = %v, want %v", got, tt.wantPoll)
			}
			for _, c := range append(ecsCalls, "AcquireLock", "Stop", "Rescue") {
				if got := f.calls.named(c); len(got) != 0 {
					t.Errorf("unexpected call in quiet: %v", got)
				}
			}
			if res.Command != "quiet" || !slices.Equal(f.obs.phases(), []string{"preflight", "quiet"}) {
				t.Errorf("command %s phases %v, want quiet: preflight, quiet", res.Command, f.obs.phases())
			}
			if tt.noWait && !strings.Contains(res.Processes[0].Evidence, "--no-wait") {
				t.Errorf("process %+v, want the no-wait evidence", res.Processes[0])
			}
			if tt.wantErr != nil {
				if !strings.Contains(err.Error(), "1 process(es) did not acknowledge quiet within 5s: "+f.p1.Identity) {
					t.Errorf("err = %v, want it to name p1", err)
				}
				if d := res.Phases[1].Duration(); d != 5*time.Second {
					t.Errorf("quiet phase lasted %v, want the 5s ack timeout", d)
				}
			}
		})
	}
}

// TestRunConfigRefusals: configurations that cannot run are refused before any call.
func TestRunConfigRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(c *Config)
		want  string
	}{
		{"drain without selector", func(c *Config) { c.Services, c.Strategy = nil, StrategyDrainOnly }, "no processes selected"},
		{"drain with deploy policy", func(c *Config) {
			c.Services, c.Strategy, c.OnTimeout = nil, StrategyDrainOnly, OnTimeoutDeploy
			c.Selector = &sidekiq.Selector{All: true}
		}, "drain has no deploy step"},
		{"deploy without service", func(c *Config) { c.Services, c.Strategy = nil, StrategyDrainFirst }, "no service given"},
		{"lock ttl", func(c *Config) { c.LockTTL = 2 * time.Second }, "lock ttl 2s: must be at least three poll intervals (3s)"},
		{"rollout failure policy", func(c *Config) { c.OnRolloutFailure = "ignore" }, `on-rollout-failure "ignore"`},
		{"strategy", func(c *Config) { c.Strategy = "zigzag" }, `strategy "zigzag"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			tt.setup(&f.cfg)
			res, err := f.run(t, nil)
			if !errors.Is(err, ErrPreflight) || ExitCode(err) != 2 || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v (exit %d), want a refusal containing %q", err, ExitCode(err), tt.want)
			}
			if res.Outcome != OutcomeRefused || len(f.calls.all()) != 0 {
				t.Errorf("outcome %s, calls %v; want refused before any call", res.Outcome, f.calls.all())
			}
		})
	}
}
