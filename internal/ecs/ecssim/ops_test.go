package ecssim_test

import (
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/drainctl/drainctl/internal/ecs/ecssim"
)

func TestOpsLog(t *testing.T) {
	t.Parallel()
	s := startSim(t, ecssim.Options{})
	setup(t, s, ecssim.ServiceSpec{DesiredCount: 1})
	api := client(s, 3)
	ctx := ctxT(t)
	describe(t, api, "svc")
	s.Throttle("ListTasks", 1)
	if _, err := api.ListTasks(ctx, &awsecs.ListTasksInput{Cluster: aws.String("c"), ServiceName: aws.String("svc")}); err != nil {
		t.Fatalf("list tasks: %v", err)
	}
	if _, err := api.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("svc"), ForceNewDeployment: true}); err != nil {
		t.Fatalf("update service: %v", err)
	}
	want := []string{"DescribeServices", "ListTasks", "ListTasks", "UpdateService"}
	if got := s.Ops(); !slices.Equal(got, want) {
		t.Errorf("Ops() = %q, want %q", got, want)
	}
}

func TestAdvanceMovesTheClock(t *testing.T) {
	t.Parallel()
	// At real speed the first deployment would need 45 s; Advance gets it there without waiting.
	s := startSim(t, ecssim.Options{TimeScale: 1})
	setup(t, s, ecssim.ServiceSpec{DesiredCount: 2})
	api := client(s, 3)
	first := aws.ToString(describe(t, api, "svc").Deployments[0].Id)
	start := time.Now()
	waitFor(t, 10*time.Second, "the first deployment to complete", func() bool {
		s.Advance(10 * time.Second)
		return completed(describe(t, api, "svc"), first)
	})
	svc := describe(t, api, "svc")
	if got := svc.Deployments[0].UpdatedAt.Sub(start); got < 40*time.Second {
		t.Errorf("deployment updatedAt is %s after the start, want the advanced clock (>= 40s)", got)
	}
}
