package ecs_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/ecs/ecssim"
)

// TestDescribeNotFound checks a missing cluster or service comes back as one exact line
// matching ErrNotFound, without hiding the services that could be read.
func TestDescribeNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ref := e.service(t, "worker", nil)
	tests := []struct {
		name    string
		refs    []ecs.ServiceRef
		states  int
		message string
	}{
		{"missing service", []ecs.ServiceRef{ref, {Cluster: "prod", Service: "ghost"}}, 1,
			`service "ghost" not found in cluster "prod" (region us-east-1)`},
		{"missing cluster", []ecs.ServiceRef{{Cluster: "nope", Service: "worker"}}, 0,
			`cluster "nope" not found (region us-east-1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			states, err := e.c.Describe(context.Background(), tt.refs)
			if tt.name == "missing cluster" {
				err = e.c.CheckClusters(context.Background(), []string{"prod", "nope"})
			}
			if !errors.Is(err, ecs.ErrNotFound) || err.Error() != tt.message {
				t.Fatalf("error = %v, want %q", err, tt.message)
			}
			if tt.name != "missing cluster" && len(states) != tt.states {
				t.Errorf("states = %d, want %d", len(states), tt.states)
			}
		})
	}
}

// TestDescribeFacts checks what the preflight judges is read as ECS reports it: controller,
// status, in-progress deployments, desired count.
func TestDescribeFacts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	blue := e.service(t, "blue", func(s *ecssim.ServiceSpec) { s.DeploymentController = "CODE_DEPLOY" })
	e.sim.NeverComplete("prod", "busy", true)
	busy := e.service(t, "busy", nil)
	gone := e.service(t, "gone", nil)
	e.sim.SetServiceStatus("prod", "gone", "DRAINING")
	states, err := e.c.Describe(context.Background(), []ecs.ServiceRef{blue, busy, gone})
	if err != nil || len(states) != 3 {
		t.Fatalf("Describe = %d states, %v", len(states), err)
	}
	if states[0].Controller != "CODE_DEPLOY" {
		t.Errorf("blue controller = %q, want CODE_DEPLOY", states[0].Controller)
	}
	if p := states[1].Primary(); p == nil || p.RolloutState != "IN_PROGRESS" || states[1].Deployment(p.ID) != p {
		t.Errorf("busy primary = %+v, want an IN_PROGRESS deployment found by its ID", p)
	}
	if states[2].Status != "DRAINING" {
		t.Errorf("gone status = %q, want DRAINING", states[2].Status)
	}
}

// TestAccessDenied checks a refused IAM action comes back as one line naming it.
func TestAccessDenied(t *testing.T) {
	t.Parallel()
	tests := []struct {
		op      string
		call    func(e *env, ref ecs.ServiceRef) error
		message string
	}{
		{"DescribeClusters", func(e *env, ref ecs.ServiceRef) error {
			return e.c.CheckClusters(context.Background(), []string{ref.Cluster})
		}, `access denied to ecs:DescribeClusters (clusters prod, region us-east-1): the IAM policy must allow ecs:DescribeClusters`},
		{"DescribeServices", func(e *env, ref ecs.ServiceRef) error {
			_, err := e.c.Describe(context.Background(), []ecs.ServiceRef{ref})
			return err
		}, `access denied to ecs:DescribeServices (service "worker" in cluster "prod", region us-east-1): the IAM policy must allow ecs:DescribeServices`},
		{"DescribeTaskDefinition", func(e *env, ref ecs.ServiceRef) error {
			_, err := e.c.TaskDefinition(context.Background(), "worker:1")
			return err
		}, `access denied to ecs:DescribeTaskDefinition (task definition "worker:1", region us-east-1): the IAM policy must allow ecs:DescribeTaskDefinition`},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ref := e.service(t, "worker", nil)
			e.sim.Deny(tt.op)
			err := tt.call(e, ref)
			var ade *ecs.AccessDeniedError
			if !errors.Is(err, ecs.ErrAccessDenied) || !errors.As(err, &ade) {
				t.Fatalf("error = %v, want an *AccessDeniedError", err)
			}
			if ade.Action != "ecs:"+tt.op {
				t.Errorf("Action = %q, want ecs:%s", ade.Action, tt.op)
			}
			if err.Error() != tt.message {
				t.Errorf("message:\n got %s\nwant %s", err, tt.message)
			}
		})
	}
}

// TestDescribeManyServices checks 12 services take two DescribeServices calls, a missing
// one among them is reported without hiding the others, and the deployment configuration
// is read.
func TestDescribeManyServices(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var refs []ecs.ServiceRef
	for i := range 12 {
		refs = append(refs, e.service(t, fmt.Sprintf("w%02d", i), func(s *ecssim.ServiceSpec) {
			if i == 0 {
				s.CircuitBreaker = nil
				s.MinimumHealthyPercent = ptr[int32](50)
			}
		}))
	}
	e.steady(t, refs...)
	refs = append(refs, ecs.ServiceRef{Cluster: "prod", Service: "ghost"})

	before := e.sim.Calls("DescribeServices")
	states, err := e.c.Describe(context.Background(), refs)
	if n := e.sim.Calls("DescribeServices") - before; n != 2 {
		t.Errorf("DescribeServices calls for 13 services = %d, want 2", n)
	}
	if !errors.Is(err, ecs.ErrNotFound) || err.Error() != `service "ghost" not found in cluster "prod" (region us-east-1)` {
		t.Errorf("Describe error = %v, want only the missing ghost", err)
	}
	if len(states) != 12 {
		t.Fatalf("states = %d, want 12", len(states))
	}
	w0 := states[0]
	if w0.BreakerEnabled || w0.MinHealthy != 50 || w0.MaxPercent != 200 {
		t.Errorf("w00 config = breaker %v, min %d, max %d; want false, 50, 200", w0.BreakerEnabled, w0.MinHealthy, w0.MaxPercent)
	}
	w1 := states[1]
	if !w1.BreakerEnabled || !w1.BreakerRollback {
		t.Errorf("w01 = breaker %v rollback %v; want true, true", w1.BreakerEnabled, w1.BreakerRollback)
	}
	if w1.Status != "ACTIVE" || w1.Controller != "ECS" || w1.Desired != 2 || w1.Running != 2 || w1.TaskDefinition != e.td {
		t.Errorf("w01 = %+v", w1)
	}
	if len(w1.Events) == 0 {
		t.Errorf("w01 has no events; want the simulator's steady-state events")
	}
}

// TestDescribeByARN: clusters and services given as ARNs are matched to the responses.
func TestDescribeByARN(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ref := e.service(t, "worker", nil)
	st := e.steady(t, ref)[0]
	arnRef := ecs.ServiceRef{Cluster: "arn:aws:ecs:us-east-1:123456789012:cluster/prod", Service: st.ARN}
	states, err := e.c.Describe(context.Background(), []ecs.ServiceRef{arnRef})
	if err != nil || len(states) != 1 || states[0].ARN != st.ARN || states[0].Ref != arnRef {
		t.Fatalf("Describe by ARN = %+v, %v", states, err)
	}
}

// TestTaskDefinition checks a task definition is read by ARN, family:revision and family
// (its latest ACTIVE revision), what the signal-path checks need is copied out of the
// SDK's types, and a missing revision is ErrNotFound.
func TestTaskDefinition(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	arn, err := e.sim.RegisterTaskDefinition(ecssim.TaskDefinition{Raw: []byte(`{
		"family": "withproxy",
		"containerDefinitions": [
			{"name": "sidekiq", "image": "app:1", "command": ["bundle", "exec", "sidekiq"],
			 "linuxParameters": {"initProcessEnabled": true},
			 "dependsOn": [{"containerName": "proxy", "condition": "START"}]},
			{"name": "proxy", "image": "envoy:1", "essential": true}
		]}`)})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{arn, "withproxy:1", "withproxy"} {
		td, err := e.c.TaskDefinition(context.Background(), name)
		if err != nil || td.ARN != arn || td.Family != "withproxy" || td.Revision != 1 || td.Status != "ACTIVE" || len(td.Containers) != 2 {
			t.Fatalf("TaskDefinition(%s) = %+v, %v", name, td, err)
		}
		sk := td.Containers[0]
		if sk.InitProcessEnabled == nil || !*sk.InitProcessEnabled {
			t.Errorf("initProcessEnabled = %v, want true", sk.InitProcessEnabled)
		}
		want := []ecs.ContainerDependency{{ContainerName: "proxy", Condition: "START"}}
		if !slices.Equal(sk.DependsOn, want) || len(td.Containers[1].DependsOn) != 0 {
			t.Errorf("dependsOn = %+v / %+v, want %+v / none", sk.DependsOn, td.Containers[1].DependsOn, want)
		}
	}
	w, err := e.c.TaskDefinition(context.Background(), e.td)
	if err != nil {
		t.Fatal(err)
	}
	if c := w.Containers[0]; c.Name != "sidekiq" || !c.Essential || c.StopTimeout == nil || *c.StopTimeout != 30 || !slices.Equal(c.Command, []string{"bundle", "exec", "sidekiq"}) {
		t.Errorf("container = %+v", c)
	}
	_, err = e.c.TaskDefinition(context.Background(), "withproxy:9")
	if !errors.Is(err, ecs.ErrNotFound) || err.Error() != `task definition "withproxy:9" not found (region us-east-1)` {
		t.Errorf("TaskDefinition(withproxy:9) = %v, want ErrNotFound", err)
	}
}
