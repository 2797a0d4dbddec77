package ecs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/ecs/ecssim"
)

// Test timing: the simulator runs 200 simulated seconds per real second, so a task is healthy
// 0.2 s after it runs; the watcher polls every 20 ms.
const (
	testScale    = 200
	testInterval = 20 * time.Millisecond
)

var testCreds = credentials.NewStaticCredentialsProvider("AKIDTEST", "test-secret", "")

// env is a simulator with cluster "prod", task definition family "worker", and a client
// reaching it through the SDK's BaseEndpoint.
type env struct {
	sim *ecssim.Sim
	c   *ecs.Client
	td  string // worker's first revision
}

func newEnv(t *testing.T) *env {
	t.Helper()
	sim := ecssim.New(ecssim.Options{TimeScale: testScale, Tick: 10 * time.Millisecond})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	sim.CreateCluster("prod")
	e := &env{sim: sim, c: newClient(t, sim.URL())}
	e.td = e.register(t, "worker")
	return e
}

func newClient(t *testing.T, url string) *ecs.Client {
	t.Helper()
	c, err := ecs.New(context.Background(), ecs.Options{
		Region: "us-east-1", Endpoint: url, Credentials: testCreds,
		MaxAttempts: 3, MaxBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) register(t *testing.T, family string) string {
	t.Helper()
	arn, err := e.sim.RegisterTaskDefinition(ecssim.TaskDefinition{
		Family: family,
		Containers: []ecssim.Container{{
			Name: "sidekiq", Image: "example/worker:1",
			Command: []string{"bundle", "exec", "sidekiq"}, StopTimeout: ptr[int32](30),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

// service creates a service (breaker with rollback, desired 2 unless mod changes it).
func (e *env) service(t *testing.T, name string, mod func(*ecssim.ServiceSpec)) ecs.ServiceRef {
	t.Helper()
	spec := ecssim.ServiceSpec{
		Cluster: "prod", Name: name, TaskDefinition: e.td, DesiredCount: 2,
		CircuitBreaker: &ecssim.CircuitBreaker{Enable: true, Rollback: true},
	}
	if mod != nil {
		mod(&spec)
	}
	if err := e.sim.CreateService(spec); err != nil {
		t.Fatal(err)
	}
	return ecs.ServiceRef{Cluster: spec.Cluster, Service: name}
}

// steady waits until no rollout is in progress on refs and returns their states.
func (e *env) steady(t *testing.T, refs ...ecs.ServiceRef) []ecs.ServiceState {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		states, err := e.c.Describe(context.Background(), refs)
		if err != nil {
			t.Fatalf("Describe %v: %v", refs, err)
		}
		steady := true
		for _, st := range states {
			steady = steady && len(st.Deployments) == 1 && st.Deployments[0].RolloutState == "COMPLETED" && st.Running == st.Desired
		}
		if steady {
			return states
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %v to be steady: %+v", refs, states)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deploy makes one deployment per ref and checks the simulator saw one UpdateService each.
func (e *env) deploy(t *testing.T, td string, refs ...ecs.ServiceRef) []ecs.DeployResult {
	t.Helper()
	before := e.sim.Calls("UpdateService")
	var deps []ecs.DeployResult
	for _, r := range refs {
		d, err := e.c.Deploy(context.Background(), r, td)
		if err != nil {
			t.Fatalf("Deploy %v: %v", r, err)
		}
		deps = append(deps, d)
	}
	if n := e.sim.Calls("UpdateService") - before; n != len(refs) {
		t.Errorf("UpdateService calls = %d for %d services, want exactly one each", n, len(refs))
	}
	return deps
}

func ptr[T any](v T) *T { return &v }

// TestNewEndpointFromEnvironment checks the SDK itself honours AWS_ENDPOINT_URL_ECS (New is
// given no endpoint and still reaches the simulator), and that the tuned retryer outlasts the
// SDK's default 3 attempts.
func TestNewEndpointFromEnvironment(t *testing.T) {
	e := newEnv(t)
	ref := e.service(t, "worker", nil)
	t.Setenv("AWS_ENDPOINT_URL_ECS", e.sim.URL())
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_REGION", "us-east-1")
	c, err := ecs.New(context.Background(), ecs.Options{MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	before := e.sim.Calls("DescribeServices")
	e.sim.Throttle("DescribeClusters", 4) // more than the SDK's default 3 attempts
	if err := c.CheckClusters(context.Background(), []string{ref.Cluster}); err != nil {
		t.Fatalf("CheckClusters through AWS_ENDPOINT_URL_ECS (retries): %v", err)
	}
	if _, err := c.Describe(context.Background(), []ecs.ServiceRef{ref}); err != nil {
		t.Fatalf("Describe through AWS_ENDPOINT_URL_ECS: %v", err)
	}
	if n := e.sim.Calls("DescribeClusters"); n != 5 {
		t.Errorf("DescribeClusters calls = %d, want 5 (4 throttled, then through)", n)
	}
	if e.sim.Calls("DescribeServices") == before {
		t.Error("the simulator saw no DescribeServices: the environment's endpoint was not used")
	}
	if c.Region() != "us-east-1" {
		t.Errorf("Region() = %q, want us-east-1", c.Region())
	}
}

// TestNewNoRegion checks the missing-region error is explicit instead of surfacing at the
// first call.
func TestNewNoRegion(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_PROFILE", "")
	_, err := ecs.New(context.Background(), ecs.Options{Credentials: testCreds})
	if err == nil || err.Error() != "load AWS configuration: no region: set --region, AWS_REGION or a profile's region" {
		t.Fatalf("New without a region = %v", err)
	}
}

func TestServiceRefString(t *testing.T) {
	tests := []struct {
		name string
		ref  ecs.ServiceRef
		want string
	}{
		{"names", ecs.ServiceRef{Cluster: "prod", Service: "worker"}, "prod/worker"},
		{"arns", ecs.ServiceRef{Cluster: "arn:aws:ecs:us-east-1:1:cluster/prod", Service: "arn:aws:ecs:us-east-1:1:service/prod/worker"}, "prod/worker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ref.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestNoHiddenRetries checks every call the client makes reaches the server exactly once:
// without plainBodyClient, net/http drops connections under responses and the SDK silently
// sends the call again (see client.go).
func TestNoHiddenRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var refs []ecs.ServiceRef
	for i := range 10 {
		refs = append(refs, e.service(t, fmt.Sprintf("w%d", i), nil))
	}
	e.steady(t, refs...)
	e.deploy(t, "", refs...)
	before := e.sim.Calls("")
	const rounds = 100
	for range rounds {
		if err := e.c.CheckClusters(context.Background(), []string{"prod"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.Describe(context.Background(), refs); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.TaskDefinition(context.Background(), e.td); err != nil {
			t.Fatal(err)
		}
	}
	// Each round: DescribeClusters, DescribeServices (10 services: one call), DescribeTaskDefinition.
	if got := e.sim.Calls("") - before; got != 3*rounds {
		t.Errorf("the simulator saw %d calls for %d made", got, 3*rounds)
	}
}
