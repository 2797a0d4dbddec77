package drain

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/ecs/ecssim"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// The rollout phase against the project's ECS simulator, through the real SDK client: the
// simulator runs 200 simulated seconds per real second (a task is healthy 0.2 s after it
// runs) and the rollout is polled every 20 ms of real time.
const (
	simScale    = 200
	simInterval = 20 * time.Millisecond
)

// simEnv is a simulator with the cluster "prod", task definition family "worker", and an
// ecs.Client reaching it through the SDK's BaseEndpoint.
type simEnv struct {
	sim *ecssim.Sim
	c   *ecs.Client
	td  string // worker's first revision
}

func newSimEnv(t *testing.T) *simEnv {
	t.Helper()
	sim := ecssim.New(ecssim.Options{TimeScale: simScale, Tick: 10 * time.Millisecond})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	sim.CreateCluster("prod")
	c, err := ecs.New(context.Background(), ecs.Options{
		Region: "us-east-1", Endpoint: sim.URL(),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "test-secret", ""),
		MaxAttempts: 3, MaxBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &simEnv{sim: sim, c: c}
	e.td = e.register(t, "worker")
	return e
}

func (e *simEnv) register(t *testing.T, family string) string {
	t.Helper()
	stop := int32(30)
	arn, err := e.sim.RegisterTaskDefinition(ecssim.TaskDefinition{
		Family: family,
		Containers: []ecssim.Container{{
			Name: "sidekiq", Image: "example/" + family + ":1",
			Command: []string{"bundle", "exec", "sidekiq"}, StopTimeout: &stop,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

// service creates a service of td (breaker with rollback, desired 2, unless mod changes it)
// and waits until its first deployment completed.
func (e *simEnv) service(t *testing.T, cluster, name, td string, mod func(*ecssim.ServiceSpec)) ecs.ServiceRef {
	t.Helper()
	e.sim.CreateCluster(cluster)
	spec := ecssim.ServiceSpec{
		Cluster: cluster, Name: name, TaskDefinition: td, DesiredCount: 2,
		CircuitBreaker: &ecssim.CircuitBreaker{Enable: true, Rollback: true},
	}
	if mod != nil {
		mod(&spec)
	}
	if err := e.sim.CreateService(spec); err != nil {
		t.Fatal(err)
	}
	ref := ecs.ServiceRef{Cluster: cluster, Service: name}
	deadline := time.Now().Add(20 * time.Second)
	for {
		states, err := e.c.Describe(context.Background(), []ecs.ServiceRef{ref})
		if err != nil {
			t.Fatalf("Describe %v: %v", ref, err)
		}
		st := states[0]
		if len(st.Deployments) == 1 && st.Deployments[0].RolloutState == "COMPLETED" && st.Running == st.Desired {
			return ref
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %v to be steady: %+v", ref, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newRun builds the state of one run the way Runner.Run does, for tests of single phases.
func newRun(t *testing.T, cfg Config, fleet Fleet, e ECS, obs Observer) *run {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	x := &run{cfg: cfg, fleet: fleet, ecs: e, obs: obs, jobs: newLedger(), taskOf: map[string]string{},
		last: map[string]sidekiq.Observation{}, rescued: map[string]rescueFate{}}
	x.res = Result{Command: CommandOf(cfg.Strategy), Strategy: Strategy{Name: cfg.Strategy}, StartedAt: cfg.Now(), APICalls: map[string]int{}}
	for _, ref := range cfg.Services {
		x.res.Services = append(x.res.Services, ServiceResult{Ref: ref})
	}
	return x
}

// simRollout deploys refs (td "" forces a new deployment of the current one) and watches the
// rollout phase to its end, returning the run, its worst result and the observer.
func simRollout(t *testing.T, e *simEnv, td string, timeout time.Duration, refs ...ecs.ServiceRef) (*run, RolloutResult, *recObserver) {
	t.Helper()
	obs := &recObserver{}
	x := newRun(t, Config{Services: refs, TaskDefinition: td, PollInterval: simInterval, RolloutTimeout: timeout},
		nil, e.c, obs)
	before := e.sim.Calls("UpdateService")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := x.deploy(ctx); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	worst, err := x.rollout(ctx)
	if err != nil {
		t.Fatalf("rollout: %v", err)
	}
	if n := e.sim.Calls("UpdateService") - before; n != len(refs) {
		t.Errorf("UpdateService calls = %d for %d services, want exactly one each", n, len(refs))
	}
	if got := obs.phases(); strings.Join(got, ",") != "deploy,rollout" {
		t.Errorf("phases = %v, want deploy, rollout", got)
	}
	for i, s := range x.res.Services {
		if !s.Deployed || s.Outcome == nil || s.Outcome.Polls == 0 || len(s.Polls) != s.Outcome.Polls {
			t.Errorf("service %d = %+v (outcome %+v), want deployed with an outcome and its polls", i, s, s.Outcome)
		}
	}
	return x, worst, obs
}

// pollsOf are the observer's polls of ref.
func pollsOf(obs *recObserver, ref ecs.ServiceRef) []RolloutPoll {
	var out []RolloutPoll
	for _, p := range obs.polls {
		if p.Ref == ref {
			out = append(out, p)
		}
	}
	return out
}

func eventText(ps []RolloutPoll) string {
	var out []string
	for _, p := range ps {
		for _, e := range p.Events {
			out = append(out, e.Message)
		}
	}
	return strings.Join(out, "\n")
}

func TestSimRolloutSucceeds(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	ref := e.service(t, "prod", "worker", e.td, nil)
	x, worst, obs := simRollout(t, e, "", 20*time.Second, ref)
	if worst != RolloutSucceeded {
		t.Fatalf("worst = %s (%+v), want succeeded", worst, x.res.Services[0].Outcome)
	}
	s := x.res.Services[0]
	if !strings.HasPrefix(s.Outcome.Reason, "deployment "+s.Rollout.DeploymentID+" completed: 2/2 tasks running") {
		t.Errorf("reason = %q", s.Outcome.Reason)
	}
	if s.Rollout.TaskDefinition != e.td || len(s.Rollout.Previous) != 1 || s.PreviousTaskDefinition() != e.td {
		t.Errorf("rollout = %+v, want a forced deployment of %s replacing one deployment", s.Rollout, e.td)
	}
	// The verdict is the service deployment's SUCCESSFUL: the deployments list may still show
	// the old deployment draining in that same poll.
	ps := pollsOf(obs, ref)
	last := ps[len(ps)-1]
	if last.DeploymentID != s.Rollout.DeploymentID || last.Running != 2 || last.Desired != 2 || last.Status != "SUCCESSFUL" {
		t.Errorf("last poll = %+v, want ours SUCCESSFUL with 2/2 running", last)
	}
	if ev := eventText(ps); !strings.Contains(ev, "has started 2 tasks") {
		t.Errorf("events seen:\n%s\nwant our tasks started", ev)
	}
	// The Service Deployments API is the verdict: found once by ListServiceDeployments, then
	// described at every poll; a success is not enriched further.
	if s.Outcome.ServiceDeployment != nil || x.res.APICalls["ecs.ServiceDeploymentOf"] != 1 ||
		!strings.Contains(s.Outcome.Reason, "service deployment SUCCESSFUL") {
		t.Errorf("outcome %+v, calls %v: want the SUCCESSFUL verdict, one lookup, no enrichment", s.Outcome, x.res.APICalls)
	}
	if len(x.res.Warnings) != 0 {
		t.Errorf("warnings: %v", x.res.Warnings)
	}
}

func TestSimRolloutRolledBack(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	ref := e.service(t, "prod", "worker", e.td, nil)
	first := x0(t, e, ref)
	bad := e.register(t, "worker")
	e.sim.FailTaskStarts(bad, true)
	x, worst, obs := simRollout(t, e, bad, 20*time.Second, ref)
	s := x.res.Services[0]
	if worst != RolloutRolledBack {
		t.Fatalf("worst = %s (%+v), want rolled back", worst, s.Outcome)
	}
	if want := "deployment " + s.Rollout.DeploymentID + " failed and ECS rolled back to deployment " + first; !strings.HasPrefix(s.Outcome.Reason, want) {
		t.Errorf("reason = %q, want it to start with %q", s.Outcome.Reason, want)
	}
	if len(s.Outcome.StoppedTasks) < 3 {
		t.Errorf("stopped tasks = %d, want the breaker's 3 at least", len(s.Outcome.StoppedTasks))
	}
	for _, tk := range s.Outcome.StoppedTasks {
		if tk.DeploymentID != s.Rollout.DeploymentID || tk.StopCode != "EssentialContainerExited" {
			t.Errorf("stopped task %+v, want one of ours that exited", tk)
		}
	}
	if sd := s.Outcome.ServiceDeployment; sd == nil || !strings.HasPrefix(sd.Status, "ROLLBACK_") {
		t.Errorf("service deployment = %+v, want a rollback", sd)
	}
	// The failed tasks are counted: by the warning of a poll that saw our deployment's
	// failedTasks rise, or, when the rollback completed between two polls (a loaded machine:
	// failed 1 in 3 runs of flake-hunt), by the Service Deployments API's circuit breaker count
	// in the reason.
	if !strings.Contains(strings.Join(x.res.Warnings, "\n"), "failed tasks 0 →") &&
		!regexp.MustCompile(`circuit breaker [1-9][0-9]*/[0-9]+ failed tasks`).MatchString(s.Outcome.Reason) {
		t.Errorf("warnings %v and reason %q lack the failed-task count", x.res.Warnings, s.Outcome.Reason)
	}
	// The rollback is explained: by ECS's event when a poll saw it before the Service
	// Deployments API's verdict, else by that API's rollback reason.
	ev := eventText(pollsOf(obs, ref))
	if sd := s.Outcome.ServiceDeployment; !strings.Contains(ev, "rolling back to deployment "+first) &&
		(sd == nil || !strings.Contains(sd.RollbackReason, "Rolling back to "+first)) {
		t.Errorf("events seen:\n%s\nservice deployment %+v; want the rollback to %s", ev, sd, first)
	}
}

// x0 is the service's current (only) deployment.
func x0(t *testing.T, e *simEnv, ref ecs.ServiceRef) string {
	t.Helper()
	states, err := e.c.Describe(context.Background(), []ecs.ServiceRef{ref})
	if err != nil || len(states) != 1 || len(states[0].Deployments) != 1 {
		t.Fatalf("Describe: %+v, %v", states, err)
	}
	return states[0].Deployments[0].ID
}

func TestSimRolloutFailedWithoutRollback(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	ref := e.service(t, "prod", "worker", e.td, func(s *ecssim.ServiceSpec) {
		s.CircuitBreaker = &ecssim.CircuitBreaker{Enable: true}
	})
	bad := e.register(t, "worker")
	e.sim.FailTaskStarts(bad, true)
	x, worst, _ := simRollout(t, e, bad, 20*time.Second, ref)
	s := x.res.Services[0]
	if worst != RolloutFailed {
		t.Fatalf("worst = %s (%+v), want failed", worst, s.Outcome)
	}
	// The Service Deployments API says STOPPED as soon as the breaker trips, which may be
	// before the deployments list shows FAILED: either way the reason names the breaker.
	if !strings.HasPrefix(s.Outcome.Reason, "deployment "+s.Rollout.DeploymentID) || !strings.Contains(s.Outcome.Reason, "circuit breaker") {
		t.Errorf("reason = %q, want our deployment and the breaker named", s.Outcome.Reason)
	}
	if len(s.Outcome.StoppedTasks) < 3 {
		t.Errorf("stopped tasks = %d, want the breaker's 3 at least", len(s.Outcome.StoppedTasks))
	}
}

func TestSimRolloutTimeout(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	ref := e.service(t, "prod", "worker", e.td, nil)
	e.sim.NeverComplete("prod", "worker", true)
	start := time.Now()
	x, worst, _ := simRollout(t, e, "", time.Second, ref)
	s := x.res.Services[0]
	if worst != RolloutTimedOut {
		t.Fatalf("worst = %s (%+v), want timed out", worst, s.Outcome)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the watch took %v, want about the 1s timeout", d)
	}
	if want := "no outcome after 1s: deployment " + s.Rollout.DeploymentID + " had 0/2 tasks running"; !strings.HasPrefix(s.Outcome.Reason, want) ||
		!strings.Contains(s.Outcome.Reason, "IN_PROGRESS") || !strings.Contains(s.Outcome.Reason, "the rollout may still be running in ECS") {
		t.Errorf("reason = %q, want it to start with %q", s.Outcome.Reason, want)
	}
	if sd := s.Outcome.ServiceDeployment; sd == nil || sd.Status != "IN_PROGRESS" {
		t.Errorf("service deployment = %+v, want IN_PROGRESS", sd)
	}
}

// TestSimRolloutTwoClusters: two services in two clusters are deployed before either is
// watched, and watched together; one rolling back does not stop the watch of the other.
func TestSimRolloutTwoClusters(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	mailerTD := e.register(t, "mailer")
	worker := e.service(t, "prod", "worker", e.td, nil)
	mailer := e.service(t, "staging", "mailer", mailerTD, nil)
	e.sim.FailTaskStarts(mailerTD, true) // the forced deployment of the mailer fails
	x, worst, obs := simRollout(t, e, "", 20*time.Second, worker, mailer)
	if worst != RolloutRolledBack {
		t.Fatalf("worst = %s, want rolled back", worst)
	}
	for i, want := range []RolloutResult{RolloutSucceeded, RolloutRolledBack} {
		if got := x.res.Services[i].Outcome.Result; got != want {
			t.Errorf("%s = %s (%s), want %s", x.res.Services[i].Ref, got, x.res.Services[i].Outcome.Reason, want)
		}
		if len(pollsOf(obs, x.res.Services[i].Ref)) == 0 {
			t.Errorf("no poll of %s", x.res.Services[i].Ref)
		}
	}
	if x.res.Services[0].Rollout.Ref != worker || x.res.Services[1].Rollout.Ref != mailer {
		t.Errorf("rollouts = %+v, %+v", x.res.Services[0].Rollout, x.res.Services[1].Rollout)
	}
}

// TestSimRolloutThrottlingStorm: DescribeServices throttled beyond the client's retries makes
// skipped ticks, not a failed watch.
func TestSimRolloutThrottlingStorm(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t)
	ref := e.service(t, "prod", "worker", e.td, nil)
	e.sim.Throttle("DescribeServices", 12) // four polls' worth of the client's 3 attempts
	x, worst, obs := simRollout(t, e, "", 20*time.Second, ref)
	if worst != RolloutSucceeded {
		t.Fatalf("worst = %s (%+v), want succeeded", worst, x.res.Services[0].Outcome)
	}
	skipped := 0
	for _, p := range pollsOf(obs, ref) {
		if p.Err != "" {
			skipped++
			if !strings.Contains(p.Err, "Throttl") {
				t.Errorf("skipped poll error %q, want throttling", p.Err)
			}
		}
	}
	if skipped != 4 {
		t.Errorf("skipped polls = %d, want 4", skipped)
	}
}
