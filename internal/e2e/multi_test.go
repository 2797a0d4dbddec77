package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/stack"
)

// Two services of one cluster, sharing one Redis and one simulator, deployed by one run
// (`drainctl deploy --cluster demo --service worker --service mailer`): both services'
// processes are drained, each service gets exactly one UpdateService, both rollouts succeed,
// the report has a section per service, and nothing is lost.
func TestDeployTwoServices(t *testing.T) {
	t.Parallel()
	s := startStack(t, stack.Options{Tasks: 2, ExtraServices: []string{"mailer"}})
	ctx := ctxFor(t, 2*time.Minute)
	services := s.Services()
	old := map[string][]string{} // service → task ARNs running before the deploy
	hostSvc := map[string]string{}
	for _, name := range services {
		for _, ti := range s.ServiceTasks(name) {
			old[name] = append(old[name], ti.ARN)
			hostSvc[ti.Hostname] = s.Opts.Cluster + "/" + name
		}
	}
	// Eight jobs fill 2 services × 2 tasks × 2 threads: every process of both services has
	// work in flight when drainctl quiets it. They finish well inside the drain budget.
	inFlight, err := s.EnqueueRerun(ctx, 8, 10, shortRerun)
	must(t, err)
	must(t, s.WaitBusy(ctx, 8))
	queued, err := s.Enqueue(ctx, 2, 0.1)
	must(t, err)

	args := deployArgs(s, "--drain-timeout", "60s")
	if got := strings.Join(args, " "); !strings.Contains(got, "--service worker --service mailer") {
		t.Fatalf("deploy args %q do not name both services", got)
	}
	p := run(t, s, args...)
	r := p.report(t)
	if p.code != 0 || r.Outcome != "succeeded" {
		t.Errorf("exit %d outcome %q (error %q), want 0 succeeded", p.code, r.Outcome, r.Error)
	}
	if n := s.Sim.Calls("UpdateService"); n != len(services) {
		t.Errorf("UpdateService called %d times, want exactly one per service (%d)", n, len(services))
	}
	if len(r.Services) != len(services) {
		t.Fatalf("report lists %d services, want %d: %+v", len(r.Services), len(services), r.Services)
	}
	deployments := map[string]bool{}
	for i, svc := range r.Services {
		if svc.Cluster != s.Opts.Cluster || svc.Service != services[i] || !svc.Deployed ||
			!strings.HasPrefix(svc.DeploymentID, "ecs-svc/") || svc.Result != "succeeded" {
			t.Errorf("service section %d: %+v, want %s deployed and succeeded", i, svc, services[i])
		}
		deployments[svc.DeploymentID] = true
	}
	if len(deployments) != len(services) {
		t.Errorf("deployment IDs %v, want one per service", deployments)
	}

	// The selection is both services' processes, each placed in its own service's task.
	perService, busy := map[string]int{}, map[string]int{}
	for _, pr := range r.Processes {
		perService[pr.Service]++
		busy[pr.Service] += pr.BusyAtQuiet
		if want := hostSvc[pr.Hostname]; pr.Service != want {
			t.Errorf("process %s placed in service %q, want %q", pr.Identity, pr.Service, want)
		}
		if pr.State != "gone" {
			t.Errorf("process %s ended %s, want gone", pr.Identity, pr.State)
		}
	}
	if perService["demo/worker"] != 2 || perService["demo/mailer"] != 2 {
		t.Errorf("processes per service %v, want 2 each", perService)
	}
	if busy["demo/worker"] == 0 || busy["demo/mailer"] == 0 {
		t.Errorf("jobs in flight at quiet per service %v, want some on both", busy)
	}
	if r.Jobs.Finished != 8 || r.Jobs.Lost != 0 || r.Jobs.StillRunning != 0 || r.Jobs.Rescued != 0 {
		t.Errorf("report jobs %+v, want 8 finished, none lost", r.Jobs)
	}
	if !r.Lock.Acquired || !r.Lock.Released {
		t.Errorf("lock acquired %v released %v, want both", r.Lock.Acquired, r.Lock.Released)
	}

	// Each service's old tasks were replaced by new ones.
	for _, name := range services {
		var running []string
		for _, ti := range s.ServiceTasks(name) {
			if ti.LastStatus == "RUNNING" && ti.DesiredStatus == "RUNNING" {
				running = append(running, ti.ARN)
			}
		}
		if len(running) != 2 {
			t.Errorf("service %s runs %d tasks, want 2", name, len(running))
		}
		for _, arn := range running {
			if slices.Contains(old[name], arn) {
				t.Errorf("service %s still runs its old task %s", name, arn)
			}
		}
	}
	nothingLost(t, s, append(inFlight, queued...))
	if n := runs(t, s, inFlight); !allEqual(n, 1) {
		t.Errorf("in-flight jobs ran %v times, want once each", n)
	}
}
