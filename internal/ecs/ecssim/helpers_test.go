package ecssim_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/drainctl/drainctl/internal/ecs/ecssim"
)

// fast is the time scale of most tests: a 40 s healthy delay takes 0.4 s.
const fast = 100

// startSim starts a simulator that the test closes at cleanup.
func startSim(t *testing.T, o ecssim.Options) *ecssim.Sim {
	t.Helper()
	if o.TimeScale == 0 {
		o.TimeScale = fast
	}
	if o.Tick == 0 {
		o.Tick = 10 * time.Millisecond
	}
	o.Logf = t.Logf
	s := ecssim.New(o)
	if err := s.Start(); err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close simulator: %v", err)
		}
	})
	return s
}

// client is the real SDK client pointed at the simulator, with fast retries.
func client(s *ecssim.Sim, attempts int) *awsecs.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDECSSIM", "secret", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.MaxBackoff = 10 * time.Millisecond
				o.RateLimiter = ratelimit.None
			})
		},
	}
	return awsecs.NewFromConfig(cfg, func(o *awsecs.Options) { o.BaseEndpoint = aws.String(s.URL()) })
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func i32(v int32) *int32 { return &v }

// setup creates cluster "c", a task definition "worker" and service "svc" from spec.
func setup(t *testing.T, s *ecssim.Sim, spec ecssim.ServiceSpec) string {
	t.Helper()
	s.CreateCluster("c")
	arn, err := s.RegisterTaskDefinition(ecssim.TaskDefinition{
		Family:     "worker",
		Containers: []ecssim.Container{{Name: "sidekiq", Image: "app:1", Command: []string{"bundle", "exec", "sidekiq"}, StopTimeout: i32(30)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	spec.Cluster, spec.TaskDefinition = "c", arn
	if spec.Name == "" {
		spec.Name = "svc"
	}
	if err := s.CreateService(spec); err != nil {
		t.Fatalf("create service: %v", err)
	}
	return arn
}

// describe returns the service through the SDK.
func describe(t *testing.T, api *awsecs.Client, svc string) ecstypes.Service {
	t.Helper()
	out, err := api.DescribeServices(ctxT(t), &awsecs.DescribeServicesInput{Cluster: aws.String("c"), Services: []string{svc}})
	if err != nil {
		t.Fatalf("describe services: %v", err)
	}
	if len(out.Services) != 1 {
		t.Fatalf("describe services: %d services, failures %+v", len(out.Services), out.Failures)
	}
	return out.Services[0]
}

// waitFor polls cond every 10ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// completed reports whether the service's only deployment is id, COMPLETED.
func completed(svc ecstypes.Service, id string) bool {
	return len(svc.Deployments) == 1 && aws.ToString(svc.Deployments[0].Id) == id &&
		svc.Deployments[0].RolloutState == ecstypes.DeploymentRolloutStateCompleted
}

// exitText prints an exit code that may be missing, for failure messages.
func exitText(code *int32) string {
	if code == nil {
		return "none"
	}
	return strconv.Itoa(int(*code))
}
