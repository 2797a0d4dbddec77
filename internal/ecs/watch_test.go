package ecs_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/ecs/ecssim"
)

const watchTimeout = 30 * time.Second // real time; a passing test takes about a second

// TestWatchSucceeded forces a deployment of two services on the same task definition and
// checks both succeed, with progress reported at each poll.
func TestWatchSucceeded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	refs := []ecs.ServiceRef{e.service(t, "a", nil), e.service(t, "b", nil)}
	e.steady(t, refs...)
	deps := e.deploy(t, "", refs...)
	for _, d := range deps {
		if d.DeploymentID == "" || len(d.Previous) != 1 || d.TaskDefinition != e.td || d.StartedAt.IsZero() || d.Desired != 2 {
			t.Fatalf("DeployResult = %+v", d)
		}
		if d.Previous[0].ID == d.DeploymentID {
			t.Fatalf("previous deployment has our ID %s", d.DeploymentID)
		}
	}
	out, polls := e.watch(t, deps, watchTimeout)
	for i, o := range out {
		if o.Result != ecs.Succeeded {
			t.Fatalf("%v: %s (%s)", o.Ref, o.Result, o.Reason)
		}
		want := fmt.Sprintf("deployment %s completed: 2/2 tasks running", deps[i].DeploymentID)
		if o.Reason != want || o.Primary != deps[i].DeploymentID || o.Last == nil || o.Last.Running != 2 {
			t.Errorf("outcome = %+v, want reason %q", o, want)
		}
		if len(o.Events) == 0 {
			t.Errorf("%v: no events since the start", o.Ref)
		}
		for _, ev := range o.Events {
			if ev.At.Before(deps[i].StartedAt.Truncate(time.Second)) {
				t.Errorf("event %q at %v is older than the deployment (%v)", ev.Message, ev.At, deps[i].StartedAt)
			}
		}
		if len(o.StoppedTasks) != 0 || o.ServiceDeployment != nil {
			t.Errorf("a success fetched stopped tasks or service deployments: %+v", o)
		}
		running := 0
		for _, ti := range e.sim.Tasks("prod", o.Ref.Service) {
			if ti.DesiredStatus == "RUNNING" {
				running++
				if ti.DeploymentID != o.DeploymentID {
					t.Errorf("running task %s belongs to %s, not %s", ti.ID, ti.DeploymentID, o.DeploymentID)
				}
			}
		}
		if running != 2 {
			t.Errorf("%v: %d running tasks, want 2", o.Ref, running)
		}
	}
	// Progress: some poll saw old tasks still running next to ours.
	sawOld := slices.ContainsFunc(polls, func(p ecs.Poll) bool {
		return slices.ContainsFunc(p.Services, func(s ecs.ServiceProgress) bool { return s.OldRunning > 0 && s.Result == "" })
	})
	if len(polls) < 2 || !sawOld {
		t.Errorf("%d polls, old tasks seen: %v; want progress reported while old tasks ran", len(polls), sawOld)
	}
	for i, p := range polls {
		if p.N != i+1 || p.Err != nil || len(p.Services) != 2 {
			t.Errorf("poll %d = %+v", i, p)
		}
	}
}

// TestWatchRolledBack deploys a task definition whose tasks fail to start: the circuit
// breaker rolls back to the previous deployment, which Watch must report as a failure even
// though the service ends stable, with the stopped tasks' reasons and exit codes.
func TestWatchRolledBack(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		fault  func(*ecssim.Sim)
		sdAPI  bool // the Service Deployments API answers
		status string
	}{
		{name: "service deployments API", sdAPI: true, status: "ROLLBACK_SUCCESSFUL"},
		{name: "ListServiceDeployments denied", fault: func(s *ecssim.Sim) { s.Deny("ListServiceDeployments") }},
		{name: "DescribeServiceDeployments unimplemented", fault: func(s *ecssim.Sim) { s.Unimplemented("DescribeServiceDeployments") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if tt.fault != nil {
				tt.fault(e.sim)
			}
			ref := e.service(t, "worker", nil)
			e.steady(t, ref)
			bad := e.register(t, "worker")
			e.sim.FailTaskStarts(bad, true)
			deps := e.deploy(t, bad, ref)
			if deps[0].TaskDefinition != bad {
				t.Fatalf("deployment task definition = %s, want %s", deps[0].TaskDefinition, bad)
			}
			out, _ := e.watch(t, deps, watchTimeout)
			o := out[0]
			if o.Result != ecs.RolledBack {
				t.Fatalf("result = %s (%s), want rolled_back", o.Result, o.Reason)
			}
			prev := deps[0].Previous[0].ID
			if o.Primary != prev {
				t.Errorf("PRIMARY after rollback = %s, want the previous deployment %s", o.Primary, prev)
			}
			wantStart := fmt.Sprintf("deployment %s failed and ECS rolled back to deployment %s (worker:1)", deps[0].DeploymentID, prev)
			if !strings.HasPrefix(o.Reason, wantStart) {
				t.Errorf("reason = %q, want it to start with %q", o.Reason, wantStart)
			}
			if len(o.StoppedTasks) < 3 {
				t.Fatalf("stopped tasks = %d, want at least the breaker's threshold of 3", len(o.StoppedTasks))
			}
			for _, st := range o.StoppedTasks {
				if st.DeploymentID != deps[0].DeploymentID || st.StopCode == "" || st.StoppedReason == "" {
					t.Errorf("stopped task = %+v", st)
				}
				if len(st.Containers) == 0 || st.Containers[0].ExitCode == nil || *st.Containers[0].ExitCode != 1 {
					t.Errorf("stopped task %s containers = %+v, want exit code 1", st.ID, st.Containers)
				}
			}
			if !slices.ContainsFunc(o.Warnings, func(w string) bool { return strings.Contains(w, "failed tasks 0 →") }) {
				t.Errorf("warnings = %q, want failed tasks rising", o.Warnings)
			}
			if !slices.ContainsFunc(o.Warnings, func(w string) bool { return strings.HasPrefix(w, "stopped task ") && strings.Contains(w, "exit 1") }) {
				t.Errorf("warnings = %q, want a stopped task with its exit code", o.Warnings)
			}
			switch {
			case tt.sdAPI && (o.ServiceDeployment == nil || o.ServiceDeployment.Status != tt.status):
				t.Errorf("service deployment = %+v, want status %s", o.ServiceDeployment, tt.status)
			case tt.sdAPI && !strings.Contains(o.Reason, "service deployment "+tt.status):
				t.Errorf("reason %q does not carry the service deployment status", o.Reason)
			case !tt.sdAPI && o.ServiceDeployment != nil:
				t.Errorf("service deployment = %+v, want none", o.ServiceDeployment)
			}
		})
	}
}

// TestWatchFailed: with the breaker on and rollback off, the failing deployment stays PRIMARY
// and FAILED.
func TestWatchFailed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ref := e.service(t, "worker", func(s *ecssim.ServiceSpec) { s.CircuitBreaker.Rollback = false })
	e.steady(t, ref)
	bad := e.register(t, "worker")
	e.sim.FailTaskStarts(bad, true)
	deps := e.deploy(t, bad, ref)
	out, _ := e.watch(t, deps, watchTimeout)
	o := out[0]
	want := fmt.Sprintf("deployment %s FAILED: ", deps[0].DeploymentID)
	if o.Result != ecs.Failed || !strings.HasPrefix(o.Reason, want) {
		t.Fatalf("outcome = %s %q, want failed, reason starting %q", o.Result, o.Reason, want)
	}
	if o.Last == nil || o.Last.RolloutState != "FAILED" || len(o.StoppedTasks) < 3 {
		t.Errorf("last = %+v, stopped tasks %d", o.Last, len(o.StoppedTasks))
	}
}

// fakeClock advances by the waited duration at each After, so a long timeout passes at once.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- f.now
	return ch
}

// TestWatchTimeout: a rollout that never completes ends TimedOut after Timeout on the
// injected clock, with a reason that says it may still be running.
func TestWatchTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ref := e.service(t, "worker", nil)
	e.steady(t, ref)
	e.sim.NeverComplete("prod", "worker", true)
	deps := e.deploy(t, "", ref)
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	polls := 0
	out, err := e.c.Watch(context.Background(), deps, ecs.WatchOptions{
		Interval: 6 * time.Second, Timeout: time.Minute, Now: clock.Now, After: clock.After,
		OnPoll: func(ecs.Poll) { polls++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	o := out[0]
	if o.Result != ecs.TimedOut || !strings.HasPrefix(o.Reason, "no outcome after 1m0s: deployment ") || !strings.Contains(o.Reason, "; the rollout may still be running in ECS") {
		t.Fatalf("outcome = %s %q", o.Result, o.Reason)
	}
	if polls != 11 || o.Polls != 11 {
		t.Errorf("polls = %d (outcome %d), want 11: one at 0 s and every 6 s up to 60 s", polls, o.Polls)
	}
	if got := clock.Now().Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); got != time.Minute {
		t.Errorf("waited %s on the clock, want 1m", got)
	}
}

// TestWatchInterrupted: a cancelled context ends the watch with the outcome Interrupted.
func TestWatchInterrupted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ref := e.service(t, "worker", nil)
	e.steady(t, ref)
	e.sim.NeverComplete("prod", "worker", true)
	deps := e.deploy(t, "", ref)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, err := e.c.Watch(ctx, deps, ecs.WatchOptions{Interval: testInterval, OnPoll: func(p ecs.Poll) {
		if p.N == 2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || out[0].Result != ecs.Interrupted || out[0].Polls != 2 {
		t.Fatalf("Watch = %+v, %v; want interrupted after 2 polls with context.Canceled", out, err)
	}
}

// TestWatchThrottlingStorm: DescribeServices throttled beyond the SDK's retries makes skipped
// ticks, not a failure.
func TestWatchThrottlingStorm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ref := e.service(t, "worker", nil)
	e.steady(t, ref)
	deps := e.deploy(t, "", ref)
	e.sim.Throttle("DescribeServices", 10) // the client makes 3 attempts a call
	out, polls := e.watch(t, deps, watchTimeout)
	if out[0].Result != ecs.Succeeded {
		t.Fatalf("outcome = %s %q", out[0].Result, out[0].Reason)
	}
	skipped := 0
	for _, p := range polls {
		if p.Err != nil {
			skipped++
			if !strings.Contains(p.Err.Error(), "ThrottlingException") {
				t.Errorf("skipped poll error = %v, want ThrottlingException", p.Err)
			}
		}
	}
	if skipped != 3 {
		t.Errorf("skipped polls = %d, want 3 (10 throttles, 3 attempts a poll)", skipped)
	}
}

// TestWatchAPIEconomy: a rollout of 10 services costs at most one DescribeServices per poll,
// and no task listing while nothing fails.
func TestWatchAPIEconomy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var refs []ecs.ServiceRef
	for i := range 10 {
		refs = append(refs, e.service(t, fmt.Sprintf("w%d", i), nil))
	}
	e.steady(t, refs...)
	deps := e.deploy(t, "", refs...)
	before := map[string]int{}
	for _, op := range []string{"DescribeServices", "ListTasks", "DescribeTasks", ""} {
		before[op] = e.sim.Calls(op)
	}
	out, polls := e.watch(t, deps, watchTimeout)
	for _, o := range out {
		if o.Result != ecs.Succeeded {
			t.Fatalf("%v: %s %q", o.Ref, o.Result, o.Reason)
		}
	}
	ds := e.sim.Calls("DescribeServices") - before["DescribeServices"]
	if ds > len(polls) || len(polls) < 2 {
		t.Errorf("DescribeServices calls = %d over %d polls, want at most one per poll", ds, len(polls))
	}
	if all := e.sim.Calls("") - before[""]; all != ds {
		t.Errorf("calls other than DescribeServices during a clean rollout: %d", all-ds)
	}
	t.Logf("10 services: %d polls, %d DescribeServices calls", len(polls), ds)
}

// TestDeployServerErrorNotRetried: a 5xx on UpdateService is not retried (a deployment may
// have started) and the error says so.
func TestDeployServerErrorNotRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ref := e.service(t, "worker", nil)
	e.sim.ServerErrors("UpdateService", 1)
	_, err := e.c.Deploy(context.Background(), ref, "")
	if err == nil || !strings.Contains(err.Error(), "a deployment may have started") {
		t.Fatalf("Deploy = %v, want an error saying a deployment may have started", err)
	}
	if n := e.sim.Calls("UpdateService"); n != 1 {
		t.Errorf("UpdateService calls = %d, want 1", n)
	}
	// Throttling is retried: the throttled request was not processed.
	e.sim.Throttle("UpdateService", 2)
	if _, err := e.c.Deploy(context.Background(), ref, ""); err != nil {
		t.Fatalf("Deploy after 2 throttles: %v", err)
	}
}

// TestDeployErrors checks Deploy's own refusals.
func TestDeployErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ref := e.service(t, "worker", nil)
	gone := e.service(t, "gone", nil)
	e.sim.SetServiceStatus("prod", "gone", "DRAINING")
	tests := []struct {
		name    string
		ref     ecs.ServiceRef
		deny    bool
		kind    error
		message string
	}{
		{"missing service", ecs.ServiceRef{Cluster: "prod", Service: "ghost"}, false, ecs.ErrNotFound, `service "ghost" not found in cluster "prod" (region us-east-1)`},
		{"missing cluster", ecs.ServiceRef{Cluster: "nope", Service: "worker"}, false, ecs.ErrNotFound, `cluster "nope" not found (region us-east-1)`},
		{"not active", gone, false, ecs.ErrRefused, `service "gone" in cluster "prod" is not ACTIVE (region us-east-1)`},
		{"access denied", ref, true, ecs.ErrAccessDenied, `access denied to ecs:UpdateService (service "worker" in cluster "prod", region us-east-1): the IAM policy must allow ecs:UpdateService`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.deny {
				e.sim.Deny("UpdateService")
			}
			_, err := e.c.Deploy(context.Background(), tt.ref, "")
			if !errors.Is(err, tt.kind) || err.Error() != tt.message {
				t.Errorf("Deploy = %v, want %q", err, tt.message)
			}
		})
	}
}

// TestWatchRolledBackSameTaskDefinition is drainctl's usual case: forceNewDeployment on the
// unchanged task definition, whose new tasks fail. The breaker rolls back to the previous
// deployment, which keeps its running tasks (100%/200% starts new tasks first), so the service
// ends stable on the same task definition: only our deployment ID tells the failure apart.
func TestWatchRolledBackSameTaskDefinition(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ref := e.service(t, "worker", nil)
	e.steady(t, ref)
	oldTasks, err := e.c.Tasks(context.Background(), ref, "RUNNING")
	if err != nil || len(oldTasks) != 2 {
		t.Fatalf("Tasks = %d, %v; want 2", len(oldTasks), err)
	}
	e.sim.FailTaskStarts(e.td, true) // from now on; the running tasks stay
	deps := e.deploy(t, "", ref)
	if deps[0].TaskDefinition != e.td {
		t.Fatalf("deployment task definition = %s, want the unchanged %s", deps[0].TaskDefinition, e.td)
	}
	out, _ := e.watch(t, deps, watchTimeout)
	o := out[0]
	if o.Result != ecs.RolledBack || o.Primary != deps[0].Previous[0].ID {
		t.Fatalf("outcome = %s %q (primary %s), want rolled_back to %s", o.Result, o.Reason, o.Primary, deps[0].Previous[0].ID)
	}
	// The tasks kept by the rollback are the very ones running before: with Sidekiq, the
	// quieted ones.
	running, err := e.c.Tasks(context.Background(), ref, "RUNNING")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range running {
		if !slices.ContainsFunc(oldTasks, func(old ecs.Task) bool { return old.ARN == task.ARN }) {
			t.Errorf("running task %s (deployment %s) was not running before the deploy", task.ID, task.DeploymentID)
		}
	}
}

// TestWatchSuperseded: another deployment not started by this run (someone else's
// UpdateService) replaces ours: a failure, not a rollback.
func TestWatchSuperseded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ref := e.service(t, "worker", nil)
	e.steady(t, ref)
	e.sim.NeverComplete("prod", "worker", true)
	ours := e.deploy(t, "", ref)
	theirs := e.deploy(t, "", ref)
	e.sim.NeverComplete("prod", "worker", false)
	out, _ := e.watch(t, ours, watchTimeout)
	o := out[0]
	want := fmt.Sprintf("deployment %s was replaced by deployment %s (worker:1), not started by this run", ours[0].DeploymentID, theirs[0].DeploymentID)
	if o.Result != ecs.Failed || !strings.HasPrefix(o.Reason, want) {
		t.Fatalf("outcome = %s %q, want failed: %q", o.Result, o.Reason, want)
	}
}

// TestWatchTwoClusters: services in two clusters cost one DescribeServices per cluster per
// poll.
func TestWatchTwoClusters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.sim.CreateCluster("stage")
	refs := []ecs.ServiceRef{
		e.service(t, "worker", nil),
		e.service(t, "worker", func(s *ecssim.ServiceSpec) { s.Cluster = "stage" }),
	}
	e.steady(t, refs...)
	deps := e.deploy(t, "", refs...)
	before := e.sim.Calls("DescribeServices")
	out, polls := e.watch(t, deps, watchTimeout)
	for _, o := range out {
		if o.Result != ecs.Succeeded {
			t.Fatalf("%v: %s %q", o.Ref, o.Result, o.Reason)
		}
	}
	if got := e.sim.Calls("DescribeServices") - before; got > 2*len(polls) {
		t.Errorf("DescribeServices = %d over %d polls of 2 clusters, want at most %d", got, len(polls), 2*len(polls))
	}
}
