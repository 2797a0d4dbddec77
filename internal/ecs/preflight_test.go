package ecs_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/ecs/ecssim"
)

// TestPreflightRefusals checks every refusal comes back as one exact line matching its
// sentinel error.
func TestPreflightRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.service(t, "blue", func(s *ecssim.ServiceSpec) { s.DeploymentController = "CODE_DEPLOY" })
	e.service(t, "ext", func(s *ecssim.ServiceSpec) { s.DeploymentController = "EXTERNAL" })
	e.sim.NeverComplete("prod", "busy", true)
	busy := e.service(t, "busy", nil)
	states, err := e.c.Preflight(context.Background(), []ecs.ServiceRef{busy}, ecs.PreflightOptions{AllowInProgress: true})
	if err != nil || len(states) != 1 || len(states[0].Deployments) != 1 {
		t.Fatalf("Preflight(busy, AllowInProgress) = %+v, %v; want one state with one deployment", states, err)
	}
	busyID := states[0].Deployments[0].ID
	if !slices.ContainsFunc(states[0].Warnings, func(w string) bool { return strings.Contains(w, "already in progress") }) {
		t.Errorf("AllowInProgress warnings = %q, want one about the rollout in progress", states[0].Warnings)
	}

	tests := []struct {
		name    string
		ref     ecs.ServiceRef
		kind    error
		message string
	}{
		{"missing cluster", ecs.ServiceRef{Cluster: "nope", Service: "worker"}, ecs.ErrNotFound,
			`cluster "nope" not found (region us-east-1)`},
		{"missing service", ecs.ServiceRef{Cluster: "prod", Service: "ghost"}, ecs.ErrNotFound,
			`service "ghost" not found in cluster "prod" (region us-east-1)`},
		{"code deploy", ecs.ServiceRef{Cluster: "prod", Service: "blue"}, ecs.ErrRefused,
			`service "blue" in cluster "prod" uses the CODE_DEPLOY deployment controller: drainctl forces rolling (ECS controller) deployments only; deploy it through CodeDeploy`},
		{"external", ecs.ServiceRef{Cluster: "prod", Service: "ext"}, ecs.ErrRefused,
			`service "ext" in cluster "prod" uses the EXTERNAL deployment controller: drainctl forces rolling (ECS controller) deployments only; deploy it through its own controller`},
		{"in progress", busy, ecs.ErrInProgress,
			fmt.Sprintf(`service "busy" in cluster "prod" already has a rollout in progress (deployment %s is IN_PROGRESS): wait for it to end, or use --allow-in-progress`, busyID)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.c.Preflight(context.Background(), []ecs.ServiceRef{tt.ref}, ecs.PreflightOptions{})
			if !errors.Is(err, tt.kind) {
				t.Fatalf("Preflight = %v, want %v", err, tt.kind)
			}
			if err.Error() != tt.message {
				t.Errorf("message:\n got %s\nwant %s", err, tt.message)
			}
		})
	}
}

// TestPreflightAccessDenied checks a refused IAM action comes back as one line naming it.
func TestPreflightAccessDenied(t *testing.T) {
	t.Parallel()
	tests := []struct {
		op      string
		message string
	}{
		{"DescribeClusters", `access denied to ecs:DescribeClusters (clusters prod, region us-east-1): the IAM policy must allow ecs:DescribeClusters`},
		{"DescribeServices", `access denied to ecs:DescribeServices (service "worker" in cluster "prod", region us-east-1): the IAM policy must allow ecs:DescribeServices`},
		{"DescribeTaskDefinition", `access denied to ecs:DescribeTaskDefinition (task definition "worker:1" of service "worker", region us-east-1): the IAM policy must allow ecs:DescribeTaskDefinition`},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ref := e.service(t, "worker", nil)
			e.sim.Deny(tt.op)
			_, err := e.c.Preflight(context.Background(), []ecs.ServiceRef{ref}, ecs.PreflightOptions{AllowInProgress: true})
			var ade *ecs.AccessDeniedError
			if !errors.Is(err, ecs.ErrAccessDenied) || !errors.As(err, &ade) {
				t.Fatalf("Preflight = %v, want an *AccessDeniedError", err)
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

// TestPreflightManyServices checks 12 services take two DescribeServices calls, a missing
// one among them is reported without hiding the others, and the deployment configuration
// and task definition are read.
func TestPreflightManyServices(t *testing.T) {
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

	before, beforeTD := e.sim.Calls("DescribeServices"), e.sim.Calls("DescribeTaskDefinition")
	states, err := e.c.Preflight(context.Background(), refs, ecs.PreflightOptions{})
	if n := e.sim.Calls("DescribeServices") - before; n != 2 {
		t.Errorf("DescribeServices calls for 13 services = %d, want 2", n)
	}
	if !errors.Is(err, ecs.ErrNotFound) || err.Error() != `service "ghost" not found in cluster "prod" (region us-east-1)` {
		t.Errorf("Preflight error = %v, want only the missing ghost", err)
	}
	if len(states) != 12 {
		t.Fatalf("states = %d, want 12", len(states))
	}
	w0 := states[0]
	if w0.BreakerEnabled || w0.MinHealthy != 50 || w0.MaxPercent != 200 {
		t.Errorf("w00 config = breaker %v, min %d, max %d; want false, 50, 200", w0.BreakerEnabled, w0.MinHealthy, w0.MaxPercent)
	}
	if !slices.Contains(w0.Warnings, ecs.BreakerOffWarning) {
		t.Errorf("w00 warnings = %q, want %q", w0.Warnings, ecs.BreakerOffWarning)
	}
	w1 := states[1]
	if !w1.BreakerEnabled || !w1.BreakerRollback || len(w1.Warnings) != 0 {
		t.Errorf("w01 = breaker %v rollback %v warnings %q; want true, true, none", w1.BreakerEnabled, w1.BreakerRollback, w1.Warnings)
	}
	if w1.Status != "ACTIVE" || w1.Controller != "ECS" || w1.Desired != 2 || w1.Running != 2 || w1.TaskDefinition != e.td {
		t.Errorf("w01 = %+v", w1)
	}
	td := w1.TaskDef
	if td == nil || td.ARN != e.td || td.Family != "worker" || len(td.Containers) != 1 {
		t.Fatalf("task definition detail = %+v", td)
	}
	if c := td.Containers[0]; c.Name != "sidekiq" || !c.Essential || c.StopTimeout == nil || *c.StopTimeout != 30 || !slices.Equal(c.Command, []string{"bundle", "exec", "sidekiq"}) {
		t.Errorf("container = %+v", c)
	}
	if n := e.sim.Calls("DescribeTaskDefinition") - beforeTD; n != 1 {
		t.Errorf("DescribeTaskDefinition calls = %d, want 1 (12 services share one task definition)", n)
	}
}

// TestPreflightByARN: clusters and services given as ARNs are matched to the responses.
func TestPreflightByARN(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ref := e.service(t, "worker", nil)
	st := e.steady(t, ref)[0]
	arnRef := ecs.ServiceRef{Cluster: "arn:aws:ecs:us-east-1:123456789012:cluster/prod", Service: st.ARN}
	states, err := e.c.Preflight(context.Background(), []ecs.ServiceRef{arnRef}, ecs.PreflightOptions{})
	if err != nil || len(states) != 1 || states[0].ARN != st.ARN || states[0].Ref != arnRef {
		t.Fatalf("Preflight by ARN = %+v, %v", states, err)
	}
	if got := arnRef.String(); got != "prod/worker" {
		t.Errorf("String() = %q", got)
	}
}

// TestPreflightInactive: a DRAINING service is refused through the whole path.
func TestPreflightInactive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ref := e.service(t, "worker", nil)
	e.sim.SetServiceStatus("prod", "worker", "DRAINING")
	_, err := e.c.Preflight(context.Background(), []ecs.ServiceRef{ref}, ecs.PreflightOptions{AllowInProgress: true})
	want := `service "worker" in cluster "prod" is DRAINING, not ACTIVE: only an active service can be deployed`
	if !errors.Is(err, ecs.ErrRefused) || err.Error() != want {
		t.Errorf("Preflight = %v, want %q", err, want)
	}
}

// TestPreflightTaskDefinitionDetail: what the signal-path checks need from the task definition
// (init, dependsOn) is copied out of the SDK's types.
func TestPreflightTaskDefinitionDetail(t *testing.T) {
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
	ref := e.service(t, "w", func(s *ecssim.ServiceSpec) { s.TaskDefinition = arn })
	td := e.steady(t, ref)[0].TaskDef
	if td == nil || len(td.Containers) != 2 {
		t.Fatalf("task definition detail = %+v", td)
	}
	sk := td.Containers[0]
	if sk.InitProcessEnabled == nil || !*sk.InitProcessEnabled {
		t.Errorf("initProcessEnabled = %v, want true", sk.InitProcessEnabled)
	}
	want := []ecs.ContainerDependency{{ContainerName: "proxy", Condition: "START"}}
	if !slices.Equal(sk.DependsOn, want) {
		t.Errorf("dependsOn = %+v, want %+v", sk.DependsOn, want)
	}
	if len(td.Containers[1].DependsOn) != 0 {
		t.Errorf("proxy dependsOn = %+v, want none", td.Containers[1].DependsOn)
	}
}
