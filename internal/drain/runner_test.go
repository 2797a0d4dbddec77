package drain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/sidekiq"
)

// recObserver records the events it receives as short strings.
type recObserver struct {
	events []string
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

// fixture is two worker processes in the service's two tasks (p1 runs j1, p2 runs j2), a
// third process in no task of the service, and a new-task process that appears after
// preflight with the same tag.
type fixture struct {
	clock  *fakeClock
	calls  *calls
	fleet  *fakeFleet
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
	f.fleet = &fakeFleet{calls: f.calls, clock: f.clock,
		snapshots: []*sidekiq.Snapshot{
			{At: t0, Processes: []sidekiq.Process{f.p1, f.p2, other}},
			{At: t0, Processes: []sidekiq.Process{f.p1, f.p2, other, newcomer}},
		},
	}
	f.svc = &fakeService{calls: f.calls, ref: ServiceRef{Cluster: "prod", Service: "worker"},
		state:        ServiceState{Status: "ACTIVE", TaskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:7", Desired: 2, Running: 2, Controller: "ECS"},
		running:      []Task{task(1), task(2)},
		runningAfter: []Task{task(3), task(4)},
	}
	// The happy script: quiet acknowledged, j1 then j2 finish, both processes leave cleanly.
	f.script(
		[]Observation{obs(f.p1, StateQuiet, f.j1), obs(f.p2, StateQuiet, f.j2)},
		[]Observation{obs(f.p1, StateDrained), obs(f.p2, StateQuiet, f.j2)},
		[]Observation{obs(f.p1, StateDrained), obs(f.p2, StateDrained)},
		[]Observation{obs(f.p1, StateGone), obs(f.p2, StateGone)},
	)
	f.cfg = Config{Now: f.clock.Now, After: f.clock.After, Match: matchIP, PollInterval: time.Second,
		LockOwner: sidekiq.LockOwner{Owner: "ci", Host: "runner", PID: 7}}
	return f
}

// script sets the fleet's observations poll by poll; the last one repeats.
func (f *fixture) script(steps ...[]Observation) {
	f.fleet.script = func(n int, _ []string) []Observation { return steps[min(n, len(steps)-1)] }
}

func (f *fixture) runner() *Runner {
	return &Runner{Config: f.cfg, Fleet: f.fleet, Services: []Service{f.svc}, Observer: f.obs}
}

func (f *fixture) run(t *testing.T, ctx context.Context) (Result, error) {
	t.Helper()
	if ctx == nil {
		ctx = context.Background()
	}
	return f.runner().Run(ctx)
}

func TestRunSucceeds(t *testing.T) {
	f := newFixture()
	res, err := f.run(t, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Outcome != OutcomeSucceeded || ExitCode(res, err) != 0 || res.ExitCode != 0 {
		t.Errorf("outcome %s exit %d, want succeeded 0", res.Outcome, ExitCode(res, err))
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
	for _, c := range f.calls.all() {
		for _, w := range writeCalls {
			if strings.HasPrefix(c, w) && w != "Refresh" {
				gotWrites = append(gotWrites, c)
			}
		}
	}
	if !slices.Equal(gotWrites, wantWrites) {
		t.Errorf("writes = %q, want %q", gotWrites, wantWrites)
	}
	if got := f.calls.named("Watch"); got[0] != "Watch ip-10-0-0-1:1:abc1,ip-10-0-0-2:1:abc2" {
		t.Errorf("watched %q, want exactly the selection", got[0])
	}
	if got := res.Unplaced; !slices.Equal(got, []string{"ip-10-0-0-9:1:abc9"}) {
		t.Errorf("Unplaced = %v, want the process in no task", got)
	}
	if want := (JobCounts{Finished: 2}); res.Jobs != want {
		t.Errorf("Jobs = %+v, want %+v", res.Jobs, want)
	}
	for _, p := range res.Processes {
		if p.State != StateGone {
			t.Errorf("process %s ended %s, want gone", p.Identity, p.State)
		}
	}
	if !res.Lock.Acquired || !res.Lock.Released {
		t.Errorf("lock = %+v, want acquired and released", res.Lock)
	}
	s := res.Services[0]
	if !s.Deployed || s.Rollout.DeploymentID != "ecs-svc/2" || len(s.Polls) != 2 || s.Outcome == nil {
		t.Errorf("service result = %+v, want deployed ecs-svc/2 with 2 polls and an outcome", s)
	}
	if s.Rollout.PreviousTaskDefinition == "" {
		t.Errorf("previous task definition not recorded")
	}
	if res.APICalls["ecs.Deploy"] != 1 || res.APICalls["redis.Quiet"] != 1 {
		t.Errorf("APICalls = %v, want one deploy and one quiet", res.APICalls)
	}
	// Progress is emitted with the remaining jobs.
	if !slices.Contains(f.obs.events, "progress drain 1/2") || !slices.Contains(f.obs.events, "poll ecs-svc/2 2/2") {
		t.Errorf("events lack drain progress or rollout polls: %v", f.obs.events)
	}
}

func TestRunSelectionFixedAtPreflight(t *testing.T) {
	// With --on-timeout stop the Runner signals twice; the newcomer that appeared in the
	// second snapshot is never quieted nor stopped, even with selectors that match it.
	f := newFixture()
	f.cfg.OnTimeout = OnTimeoutStop
	f.cfg.DrainTimeout = 3 * time.Second
	f.cfg.Select = func(s *sidekiq.Snapshot) ([]sidekiq.Process, error) {
		var out []sidekiq.Process
		for _, p := range s.Processes {
			if p.Tag == "worker" {
				out = append(out, p)
			}
		}
		return out, nil
	}
	f.fleet.snapshots = f.fleet.snapshots[:1]
	f.fleet.snapshots[0].Processes = append([]sidekiq.Process{}, f.p1, f.p2)
	f.script(
		[]Observation{obs(f.p1, StateQuiet, f.j1), obs(f.p2, StateQuiet, f.j2)},
		[]Observation{obs(f.p1, StateQuiet, f.j1), obs(f.p2, StateQuiet, f.j2)},
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
	if len(f.calls.named("Stop")) != 1 || len(f.calls.named("Quiet")) != 1 {
		t.Errorf("calls = %v, want one Quiet and one Stop", f.calls.all())
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
			stuck := []Observation{obs(f.p1, StateDrained), obs(f.p2, StateQuiet, f.j2)}
			f.fleet.script = func(n int, _ []string) []Observation {
				if f.svc.deployed {
					return []Observation{obs(f.p1, StateGone), obs(f.p2, StateGone)}
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
			// Bounded by the timeout: the fake clock moved about DrainTimeout during the drain.
			drain := res.Phases[3]
			if drain.Phase != PhaseDrain || drain.Duration() < 10*time.Second || drain.Duration() > 12*time.Second {
				t.Errorf("drain phase %+v lasted %v, want about 10s", drain, drain.Duration())
			}
			if tt.policy == OnTimeoutStop {
				if i, j := slices.Index(f.calls.all(), stops[0]), slices.Index(f.calls.all(), "Deploy prod/worker "); i > j {
					t.Errorf("Stop came after Deploy: %v", f.calls.all())
				}
			}
			switch tt.policy {
			case OnTimeoutFail:
				if ExitCode(res, err) != 3 {
					t.Errorf("exit = %d, want 3", ExitCode(res, err))
				}
				if res.Left == nil || len(res.Left.QuietProcesses) != 2 || res.Left.DeploymentStarted {
					t.Errorf("Left = %+v, want both processes quiet and no deployment", res.Left)
				}
				if !strings.Contains(err.Error(), f.p2.Identity) {
					t.Errorf("error %q does not name the busy process", err)
				}
				if !res.Lock.Released {
					t.Errorf("lock not released after fail")
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
	f.script([]Observation{obs(f.p1, StateQuiet, f.j1), obs(f.p2, StateQuiet, f.j2)})
	// p1 was restarted by someone while drainctl gave up: the re-read must not list it.
	f.fleet.gone = map[string]bool{f.p1.Identity: true}
	res, err := f.run(t, nil)
	if !errors.Is(err, ErrDrainTimeout) {
		t.Fatalf("err = %v, want ErrDrainTimeout", err)
	}
	if res.Left == nil || !slices.Equal(res.Left.QuietProcesses, []string{f.p2.Identity}) {
		t.Errorf("Left = %+v, want only p2 quiet", res.Left)
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
	if w := f.calls.writes(); len(w) != 0 {
		t.Errorf("dry run made writes: %v", w)
	}
	if len(f.calls.named("Watch")) != 0 {
		t.Errorf("dry run watched: %v", f.calls.all())
	}
	// Every read happened: the service, its tasks, the fleet and the lock.
	for _, read := range []string{"Ping", "Preflight", "Tasks", "Snapshot", "LockHolder"} {
		if len(f.calls.named(read)) == 0 {
			t.Errorf("dry run did not %s", read)
		}
	}
	if res.Outcome != OutcomeDryRun || ExitCode(res, err) != 0 {
		t.Errorf("outcome %s exit %d, want dry_run 0", res.Outcome, ExitCode(res, err))
	}
	plan := strings.Join(res.Plan, "\n")
	for _, want := range []string{"would quiet 2 process(es)", "would deploy worker:8 on prod/worker (now worker:7)",
		"for 2 in-flight job(s)"} {
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
}

func TestRunInterruptAtEachPhase(t *testing.T) {
	tests := []struct {
		name string
		// at is the call after which the context is cancelled.
		at             string
		wantQuiet      bool // Left lists quiet processes
		wantDeployment bool
		wantNot        []string // calls that must not happen
		wantReleased   bool
		wantHint       string // default for a started deployment: how to watch it
	}{
		{name: "preflight", at: "Snapshot", wantNot: []string{"AcquireLock", "Quiet"}},
		{name: "lock", at: "AcquireLock", wantNot: []string{"Quiet"}, wantReleased: true},
		{name: "quiet", at: "Quiet", wantQuiet: true, wantNot: []string{"Deploy"}, wantReleased: true},
		{name: "drain", at: "Poll 1", wantQuiet: true, wantNot: []string{"Deploy"}, wantReleased: true},
		{name: "deploy", at: "Deploy", wantQuiet: true, wantDeployment: true, wantNot: []string{"Watch prod"}, wantReleased: true},
		{name: "rollout", at: "Watch prod/worker", wantQuiet: true, wantDeployment: true, wantNot: []string{"Tasks prod/worker STOPPED"}, wantReleased: true},
		{name: "exits", at: "Tasks prod/worker STOPPED", wantQuiet: true, wantDeployment: true, wantNot: []string{"Rescue"}, wantReleased: true,
			wantHint: "drainctl rescue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			// The processes never leave, so the exits phase waits and can be interrupted.
			f.script(
				[]Observation{obs(f.p1, StateQuiet, f.j1), obs(f.p2, StateQuiet, f.j2)},
				[]Observation{obs(f.p1, StateDrained), obs(f.p2, StateQuiet, f.j2)},
				[]Observation{obs(f.p1, StateDrained), obs(f.p2, StateDrained)},
			)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f.calls.hook = func(c string) {
				if c == tt.at || strings.HasPrefix(c, tt.at+" ") {
					cancel()
				}
			}
			res, err := f.run(t, ctx)
			if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want ErrInterrupted wrapping context.Canceled", err)
			}
			if res.Outcome != OutcomeInterrupted || ExitCode(res, err) != 130 || res.ExitCode != 130 {
				t.Errorf("outcome %s exit %d, want interrupted 130", res.Outcome, ExitCode(res, err))
			}
			for _, c := range tt.wantNot {
				if got := f.calls.named(c); len(got) != 0 {
					t.Errorf("%s called after the interrupt: %v", c, got)
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
				t.Errorf("hint %q does not say how to watch the deployment", res.Left.Hint)
			}
			if res.Lock.Released != tt.wantReleased {
				t.Errorf("lock released = %v, want %v", res.Lock.Released, tt.wantReleased)
			}
		})
	}
}

func TestRunRollbackHandling(t *testing.T) {
	tests := []struct {
		name      string
		result    RolloutResult
		policy    string
		wantStop  bool
		wantOut   Outcome
		wantTasks []string
	}{
		{name: "rolled back, replace", result: RolloutRolledBack, wantStop: true, wantOut: OutcomeRolledBack},
		{name: "rolled back, leave", result: RolloutRolledBack, policy: OnRolloutFailureLeave, wantOut: OutcomeRolledBack},
		{name: "failed, replace", result: RolloutFailed, wantStop: true, wantOut: OutcomeFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			f.cfg.OnRolloutFailure = tt.policy
			f.svc.outcome = RolloutOutcome{Result: tt.result, Reason: "circuit breaker: 3 tasks failed"}
			// The rollback kept task 1 (its process is quiet and alive); task 2 was stopped.
			f.svc.runningAfter = []Task{task(1), task(5)}
			f.script(
				[]Observation{obs(f.p1, StateQuiet, f.j1), obs(f.p2, StateQuiet, f.j2)},
				[]Observation{obs(f.p1, StateDrained), obs(f.p2, StateDrained)},
				[]Observation{obs(f.p1, StateDrained), obs(f.p2, StateGone)},
			)
			res, err := f.run(t, nil)
			if !errors.Is(err, ErrRolloutFailed) || ExitCode(res, err) != 4 {
				t.Fatalf("err = %v (exit %d), want ErrRolloutFailed, exit 4", err, ExitCode(res, err))
			}
			if res.Outcome != tt.wantOut {
				t.Errorf("outcome = %s, want %s", res.Outcome, tt.wantOut)
			}
			stops := f.calls.named("StopTasks")
			if tt.wantStop {
				if want := "StopTasks prod/worker " + task(1).ARN; !slices.Equal(stops, []string{want}) {
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
			if len(f.calls.named("Tasks prod/worker STOPPED")) != 0 {
				t.Errorf("exits were watched after a failed rollout")
			}
		})
	}
}

func TestRunRolloutTimeout(t *testing.T) {
	f := newFixture()
	f.svc.outcome = RolloutOutcome{Result: RolloutTimedOut}
	res, err := f.run(t, nil)
	if !errors.Is(err, ErrRolloutTimeout) || ExitCode(res, err) != 5 || res.Outcome != OutcomeRolloutTimeout {
		t.Fatalf("err = %v outcome %s exit %d, want rollout timeout, exit 5", err, res.Outcome, ExitCode(res, err))
	}
	if res.Left == nil || !res.Left.DeploymentStarted {
		t.Errorf("Left = %+v, want the deployment recorded as started", res.Left)
	}
	if len(f.calls.named("StopTasks")) != 0 {
		t.Errorf("a timed-out rollout stopped tasks")
	}
}

func TestRunLockHeld(t *testing.T) {
	holder := sidekiq.LockOwner{Owner: "ci-other", Host: "runner-2", PID: 99, StartedAt: t0.Add(-time.Minute)}
	tests := []struct {
		name  string
		setup func(f *fixture)
	}{
		{name: "seen at preflight", setup: func(f *fixture) { f.fleet.holder = &holder }},
		{name: "taken between preflight and lock", setup: func(f *fixture) { f.fleet.heldOnAcquire = &holder }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			tt.setup(f)
			res, err := f.run(t, nil)
			var le *LockedError
			if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || ExitCode(res, err) != 6 {
				t.Fatalf("err = %v (exit %d), want *LockedError, exit 6", err, ExitCode(res, err))
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
			if len(f.calls.named("Release")) != 0 {
				t.Errorf("released a lock it did not hold")
			}
		})
	}
}

func TestRunStaleLockTakeover(t *testing.T) {
	f := newFixture()
	f.fleet.tookOver = &sidekiq.LockOwner{Owner: "ci-killed", Host: "runner-3", PID: 5, StartedAt: t0.Add(-time.Hour)}
	res, err := f.run(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Lock.TookOver == nil || !strings.Contains(f.obs.warnings(), "took over the stale deploy lock") ||
		!strings.Contains(f.obs.warnings(), "ci-killed") {
		t.Errorf("no takeover warning naming the stale holder: %s", f.obs.warnings())
	}
}

func TestRunLockRefreshedWhileRunning(t *testing.T) {
	f := newFixture()
	f.cfg.LockTTL = 6 * time.Second // refresh every 2 s of fake time, poll every 1 s
	f.cfg.DrainTimeout = 20 * time.Second
	f.fleet.script = func(n int, _ []string) []Observation {
		if f.svc.deployed {
			return []Observation{obs(f.p1, StateGone), obs(f.p2, StateGone)}
		}
		return []Observation{obs(f.p1, StateQuiet, f.j1), obs(f.p2, StateQuiet, f.j2)}
	}
	if _, err := f.run(t, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(f.calls.named("Refresh")); n < 8 || n > 11 {
		t.Errorf("Refresh called %d times during a 20 s drain with a 6 s TTL, want about 10", n)
	}
}

func TestRunEmptySelection(t *testing.T) {
	f := newFixture()
	f.svc.running = []Task{task(7)} // no process runs in it
	res, err := f.run(t, nil)
	var ee *EmptySelectionError
	if !errors.As(err, &ee) || ExitCode(res, err) != 2 {
		t.Fatalf("err = %v (exit %d), want *EmptySelectionError, exit 2", err, ExitCode(res, err))
	}
	if len(ee.Fleet) != 3 || !slices.Equal(ee.Tasks, []string{"t7 10.0.0.7"}) {
		t.Errorf("error lists fleet %v and tasks %v, want 3 processes and task t7", ee.Fleet, ee.Tasks)
	}
	if !strings.Contains(err.Error(), "ip-10-0-0-1:1:abc1 (tag worker)") {
		t.Errorf("error %q does not list the fleet", err)
	}
	if w := f.calls.writes(); len(w) != 0 {
		t.Errorf("writes after an empty selection: %v", w)
	}
}

func TestRunPreflightRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fixture)
		want  string
	}{
		{name: "service refused", setup: func(f *fixture) {
			f.svc.preflightErr = errors.New(`service "worker" uses the CODE_DEPLOY controller`)
		}, want: "CODE_DEPLOY"},
		{name: "stale heartbeat", setup: func(f *fixture) {
			f.fleet.snapshots[0].Processes[1].Beat = t0.Add(-45 * time.Second)
		}, want: "no heartbeat in 30s: ip-10-0-0-2:1:abc2 (45s ago)"},
		{name: "strict warning", setup: func(f *fixture) {
			f.cfg.Strict = true
			f.svc.state.Warnings = []string{"stopTimeout 10s is below sidekiq -t 25 + 5s"}
		}, want: "stopTimeout 10s"},
		{name: "redis not writable", setup: func(f *fixture) {
			f.fleet.pingErr = errors.New("write drainctl:ping:ab on redis://:xxxxx@h:6379/0: READONLY You can't write against a read only replica")
		}, want: "READONLY"},
		{name: "bad policy", setup: func(f *fixture) { f.cfg.OnTimeout = "wait" }, want: `on-timeout "wait"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			tt.setup(f)
			res, err := f.run(t, nil)
			if !errors.Is(err, ErrPreflight) || ExitCode(res, err) != 2 {
				t.Fatalf("err = %v (exit %d), want a preflight error, exit 2", err, ExitCode(res, err))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
			if w := f.calls.writes(); len(w) != 0 {
				t.Errorf("writes after a refused preflight: %v", w)
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
			f.fleet.script = func(n int, _ []string) []Observation {
				if f.svc.deployed {
					return []Observation{obs(f.p1, StateQuiet, f.j1), obs(f.p2, StateQuiet, f.j2)}
				}
				return []Observation{obs(f.p1, StateQuiet, f.j1), obs(f.p2, StateQuiet, f.j2)}
			}
			f.svc.stopped = []Task{killedTask(2)}
			res, err := f.run(t, nil)
			if err != nil || ExitCode(res, err) != 0 {
				t.Fatalf("err = %v exit %d, want success (rescued jobs are not a failure)", err, ExitCode(res, err))
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
			if p := res.Processes[1]; p.State != StateDead || !strings.Contains(p.Evidence, "exited 137") {
				t.Errorf("p2 = %+v, want dead with the exit-137 evidence", p)
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

func TestRunExitTimeoutWarnsStillRunning(t *testing.T) {
	f := newFixture()
	f.cfg.ExitTimeout = 5 * time.Second
	f.script(
		[]Observation{obs(f.p1, StateQuiet, f.j1), obs(f.p2, StateQuiet, f.j2)},
		[]Observation{obs(f.p1, StateDrained), obs(f.p2, StateDrained)},
		[]Observation{obs(f.p1, StateGone), obs(f.p2, StateDrained)},
	)
	res, err := f.run(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.obs.warnings(), f.p2.Identity+" still running 5s after the rollout") {
		t.Errorf("no still-running warning: %s", f.obs.warnings())
	}
	if exits := res.Phases[len(res.Phases)-1]; exits.Phase != PhaseExits || exits.Duration() > 7*time.Second {
		t.Errorf("exits phase %+v not bounded by ExitTimeout", exits)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{&PreflightError{Findings: []string{"x"}}, 2},
		{&EmptySelectionError{}, 2},
		{fmt.Errorf("%w after 10m", ErrDrainTimeout), 3},
		{fmt.Errorf("%w: rolled back", ErrRolloutFailed), 4},
		{ErrRolloutTimeout, 5},
		{&LockedError{Name: "x"}, 6},
		{fmt.Errorf("%w during drain: %w", ErrInterrupted, context.Canceled), 130},
	}
	for _, tt := range tests {
		if got := ExitCode(Result{}, tt.err); got != tt.want {
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
	ts.mailer = &fakeService{calls: f.calls, ref: ServiceRef{Cluster: "prod", Service: "mailer"},
		state:        ServiceState{Status: "ACTIVE", TaskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/mailer:3", Desired: 2, Running: 2, Controller: "ECS"},
		running:      []Task{task(5), task(6)},
		runningAfter: []Task{task(7), task(8)},
		deploymentID: "ecs-svc/mailer-2",
	}
	return ts
}

func (ts *twoServices) runner() *Runner {
	return &Runner{Config: ts.cfg, Fleet: ts.fleet, Services: []Service{ts.svc, ts.mailer}, Observer: ts.obs}
}

// script plays a two-service run: every process acknowledges quiet with its job at the first
// poll; then each drains, except killed, which keeps its job (the drain times out) until
// ECS's exit-137 evidence marks it dead. Once both services are deployed every process has
// left, except kept, which stays alive and quiet in a task the rollback kept.
func (ts *twoServices) script(killed, kept string) {
	procs := map[string]sidekiq.Process{ts.p1.Identity: ts.p1, ts.p2.Identity: ts.p2, ts.p5.Identity: ts.p5, ts.p6.Identity: ts.p6}
	jobs := map[string]sidekiq.Job{ts.p1.Identity: ts.j1, ts.p2.Identity: ts.j2, ts.p5.Identity: ts.j5, ts.p6.Identity: ts.j6}
	ts.fleet.script = func(n int, ids []string) []Observation {
		out := make([]Observation, 0, len(ids))
		for _, id := range ids {
			p := procs[id]
			switch {
			case n == 0 || id == killed:
				out = append(out, obs(p, StateQuiet, jobs[id]))
			case !ts.svc.deployed || !ts.mailer.deployed || id == kept:
				out = append(out, obs(p, StateDrained))
			default:
				out = append(out, obs(p, StateGone))
			}
		}
		return out
	}
}

// TestRunTwoServices: one run deploys two services. Each gets exactly one Deploy and is
// watched to the end whatever the other's rollout did; the selection is the union of both
// services' task processes, each placed in its own service's task; a rollback of one service
// makes the run's outcome rolled back (exit 4) and replaces only that service's kept quiet
// tasks, while the old processes of the service that succeeded are still watched leaving
// and the jobs of a killed one rescued.
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
			wantOut: OutcomeRolledBack, wantExit: 4, wantStop: []string{"StopTasks prod/mailer " + task(5).ARN},
			wantFates: map[string]JobFate{"j1": JobFinished, "j2": JobRescued, "j5": JobFinished, "j6": JobFinished}},
		{name: "worker rolls back, mailer succeeds", failed: "worker", kept: 1, killed: 6,
			wantOut: OutcomeRolledBack, wantExit: 4, wantStop: []string{"StopTasks prod/worker " + task(1).ARN},
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
				bad.outcome = RolloutOutcome{Result: RolloutRolledBack, Reason: "circuit breaker: 2 tasks failed"}
				bad.runningAfter = []Task{task(tt.kept), task(10)}
			}
			if tt.killed != 0 {
				owner := ts.svc
				if tt.killed == 6 {
					owner = ts.mailer
				}
				owner.stopped = []Task{killedTask(tt.killed)}
			}
			ts.script(ident[tt.killed], ident[tt.kept])

			res, err := ts.runner().Run(context.Background())
			if got := ExitCode(res, err); got != tt.wantExit || res.ExitCode != tt.wantExit || res.Outcome != tt.wantOut {
				t.Fatalf("outcome %s exit %d (err %v), want %s exit %d", res.Outcome, got, err, tt.wantOut, tt.wantExit)
			}
			if tt.wantExit == 4 && (!errors.Is(err, ErrRolloutFailed) || !strings.Contains(err.Error(), "prod/"+tt.failed) ||
				!strings.Contains(err.Error(), "circuit breaker")) {
				t.Errorf("err = %v, want ErrRolloutFailed naming prod/%s and the reason", err, tt.failed)
			}

			// Exactly one Deploy per service, and both rollouts watched to their end.
			if got, want := ts.calls.named("Deploy"), []string{"Deploy prod/worker ", "Deploy prod/mailer "}; !slices.Equal(got, want) {
				t.Errorf("Deploy calls = %q, want %q", got, want)
			}
			var watched []string
			for _, c := range ts.calls.named("Watch") {
				if strings.HasPrefix(c, "Watch prod/") {
					watched = append(watched, c)
				}
			}
			if want := []string{"Watch prod/worker ecs-svc/2", "Watch prod/mailer ecs-svc/mailer-2"}; !slices.Equal(watched, want) {
				t.Errorf("rollout watches = %q, want %q", watched, want)
			}
			if res.APICalls["ecs.Deploy"] != 2 || res.APICalls["ecs.Watch"] != 2 {
				t.Errorf("APICalls = %v, want 2 deploys and 2 watches", res.APICalls)
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
					!strings.HasSuffix(s.Rollout.PreviousTaskDefinition, want.prev) || len(s.TasksAtStart) != 2 ||
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
				want := StateGone
				switch p.Identity {
				case ident[tt.killed]:
					want = StateDead
				case ident[tt.kept]:
					want = StateDrained
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
// so ECS rolls them out at the same time and the watches, one after another, share one
// RolloutTimeout counted from the start of the rollout phase: the second watch gets what the
// first left. When the first used it all, the second service had the whole budget in ECS
// too; it still gets one poll interval, so its outcome is read and reported rather than
// skipped.
func TestRunTwoServicesShareRolloutDeadline(t *testing.T) {
	tests := []struct {
		name                       string
		workerTook, mailerTook     time.Duration
		wantWorker, wantMailer     time.Duration // the Watch timeouts
		wantWorkerRes, wantMailRes RolloutResult
		wantOut                    Outcome
		wantExit                   int
		wantPhase                  time.Duration // the rollout phase's length
	}{
		{name: "first ends early", workerTook: 4 * time.Minute, mailerTook: time.Minute,
			wantWorker: 15 * time.Minute, wantMailer: 11 * time.Minute,
			wantWorkerRes: RolloutSucceeded, wantMailRes: RolloutSucceeded, wantOut: OutcomeSucceeded, wantPhase: 5 * time.Minute},
		{name: "first uses it all, second done meanwhile", workerTook: 20 * time.Minute,
			wantWorker: 15 * time.Minute, wantMailer: time.Second,
			wantWorkerRes: RolloutTimedOut, wantMailRes: RolloutSucceeded, wantOut: OutcomeRolloutTimeout, wantExit: 5,
			wantPhase: 15 * time.Minute},
		{name: "first uses it all, second still rolling", workerTook: 20 * time.Minute, mailerTook: time.Minute,
			wantWorker: 15 * time.Minute, wantMailer: time.Second,
			wantWorkerRes: RolloutTimedOut, wantMailRes: RolloutTimedOut, wantOut: OutcomeRolloutTimeout, wantExit: 5,
			wantPhase: 15*time.Minute + time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTwoServices()
			ts.cfg.RolloutTimeout = 15 * time.Minute
			ts.script("", "")
			ts.svc.clock, ts.svc.watchTook = ts.clock, tt.workerTook
			ts.mailer.clock, ts.mailer.watchTook = ts.clock, tt.mailerTook

			res, err := ts.runner().Run(context.Background())
			if got := ExitCode(res, err); got != tt.wantExit || res.Outcome != tt.wantOut {
				t.Fatalf("outcome %s exit %d (err %v), want %s exit %d", res.Outcome, got, err, tt.wantOut, tt.wantExit)
			}
			if !slices.Equal(ts.svc.timeouts, []time.Duration{tt.wantWorker}) ||
				!slices.Equal(ts.mailer.timeouts, []time.Duration{tt.wantMailer}) {
				t.Errorf("watch timeouts: worker %v mailer %v, want [%v] and [%v]", ts.svc.timeouts, ts.mailer.timeouts,
					tt.wantWorker, tt.wantMailer)
			}
			for i, want := range []RolloutResult{tt.wantWorkerRes, tt.wantMailRes} {
				if o := res.Services[i].Outcome; o == nil || o.Result != want {
					t.Errorf("%s outcome = %+v, want %s", res.Services[i].Ref, o, want)
				}
			}
			for _, p := range res.Phases {
				if p.Phase == PhaseRollout && p.Duration() != tt.wantPhase {
					t.Errorf("rollout phase lasted %v, want %v", p.Duration(), tt.wantPhase)
				}
			}
			if tt.wantExit == 5 {
				want := map[string]string{"prod/worker": "ecs-svc/2", "prod/mailer": "ecs-svc/mailer-2"}
				if res.Left == nil || fmt.Sprint(res.Left.DeploymentIDs) != fmt.Sprint(want) {
					t.Errorf("Left = %+v, want both deployments %v", res.Left, want)
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
		[]Observation{obs(f.p1, StateRunning), obs(f.p2, StateRunning)},
		[]Observation{obs(f.p1, StateQuiet, f.j1), obs(f.p2, StateQuiet, f.j2)},
		[]Observation{obs(f.p1, StateDrained), obs(f.p2, StateDrained)},
		[]Observation{obs(f.p1, StateGone), obs(f.p2, StateGone)},
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
	if first.Phase != PhaseQuiet || first.Processes[StateRunning] != 2 || len(first.Processes) != 1 ||
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
