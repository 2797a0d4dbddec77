package ecssim_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/drainctl/drainctl/internal/ecs/ecssim"
)

func TestRollingUpdateHonoursMinAndMax(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		desired         int32
		minPct, maxPct  int32
		minHealthy, max int // the floor and ceiling they imply
	}{
		{"defaults 100/200", 4, 100, 200, 4, 8},
		{"50/150", 4, 50, 150, 2, 6},
		{"0/100 stops all first", 3, 0, 100, 0, 3},
		{"100/125 one at a time", 4, 100, 125, 4, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, ecssim.Options{})
			setup(t, s, ecssim.ServiceSpec{DesiredCount: tc.desired, MinimumHealthyPercent: i32(tc.minPct), MaximumPercent: i32(tc.maxPct)})
			api := client(s, 3)
			first := aws.ToString(describe(t, api, "svc").Deployments[0].Id)
			waitFor(t, 20*time.Second, "the first deployment to complete", func() bool { return completed(describe(t, api, "svc"), first) })
			var oldTasks []string
			for _, ti := range s.Tasks("c", "svc") {
				oldTasks = append(oldTasks, ti.ARN)
			}

			out, err := api.UpdateService(ctxT(t), &awsecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("svc"), ForceNewDeployment: true})
			if err != nil {
				t.Fatalf("update service: %v", err)
			}
			ours := aws.ToString(out.Service.Deployments[0].Id)
			polls, sawBoth := 0, false
			waitFor(t, 20*time.Second, "our deployment to complete", func() bool {
				polls++
				healthy, live := 0, 0
				for _, ti := range s.Tasks("c", "svc") {
					if ti.Healthy {
						healthy++
					}
					if ti.LastStatus != "STOPPED" {
						live++
					}
				}
				if healthy < tc.minHealthy {
					t.Fatalf("poll %d: %d healthy tasks, below the minimum %d", polls, healthy, tc.minHealthy)
				}
				if live > tc.max {
					t.Fatalf("poll %d: %d live tasks, above the maximum %d", polls, live, tc.max)
				}
				svc := describe(t, api, "svc")
				if len(svc.Deployments) == 2 {
					sawBoth = true
				}
				return completed(svc, ours)
			})
			if !sawBoth {
				t.Errorf("never saw the old and new deployments side by side")
			}
			svc := describe(t, api, "svc")
			if svc.RunningCount != tc.desired || svc.Deployments[0].RunningCount != tc.desired {
				t.Errorf("running %d / deployment running %d, want %d", svc.RunningCount, svc.Deployments[0].RunningCount, tc.desired)
			}
			if msg := aws.ToString(svc.Events[0].Message); msg != "(service svc) has reached a steady state." {
				t.Errorf("newest event = %q", msg)
			}
			dt, err := api.DescribeTasks(ctxT(t), &awsecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: oldTasks})
			if err != nil {
				t.Fatalf("describe old tasks: %v", err)
			}
			for _, tk := range dt.Tasks {
				if aws.ToString(tk.LastStatus) != "STOPPED" || tk.StopCode != ecstypes.TaskStopCodeServiceSchedulerInitiated ||
					aws.ToString(tk.StoppedReason) != "Scaling activity initiated by (deployment "+ours+")" || aws.ToString(tk.StartedBy) != first {
					t.Errorf("old task %s: %s %s %q startedBy %s", aws.ToString(tk.TaskArn), aws.ToString(tk.LastStatus), tk.StopCode, aws.ToString(tk.StoppedReason), aws.ToString(tk.StartedBy))
				}
			}
		})
	}
}

func TestCircuitBreaker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		breaker  *ecssim.CircuitBreaker
		wantSD   ecstypes.ServiceDeploymentStatus
		rollback bool
	}{
		{"rollback", &ecssim.CircuitBreaker{Enable: true, Rollback: true}, ecstypes.ServiceDeploymentStatusRollbackSuccessful, true},
		{"no rollback", &ecssim.CircuitBreaker{Enable: true}, ecstypes.ServiceDeploymentStatusStopped, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, ecssim.Options{})
			setup(t, s, ecssim.ServiceSpec{DesiredCount: 2, CircuitBreaker: tc.breaker})
			api := client(s, 3)
			ctx := ctxT(t)
			first := aws.ToString(describe(t, api, "svc").Deployments[0].Id)
			waitFor(t, 20*time.Second, "the first deployment to complete", func() bool { return completed(describe(t, api, "svc"), first) })
			kept := map[string]bool{}
			for _, ti := range s.Tasks("c", "svc") {
				kept[ti.ARN] = true
			}
			bad, err := s.RegisterTaskDefinition(ecssim.TaskDefinition{Family: "worker", Containers: []ecssim.Container{{Name: "sidekiq", Image: "app:broken"}}})
			if err != nil {
				t.Fatal(err)
			}
			s.FailTaskStarts(bad, true)
			out, err := api.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("svc"), TaskDefinition: aws.String(bad)})
			if err != nil {
				t.Fatalf("update service: %v", err)
			}
			ours := aws.ToString(out.Service.Deployments[0].Id)
			if tc.rollback {
				waitFor(t, 20*time.Second, "the rollback to complete", func() bool { return completed(describe(t, api, "svc"), first) })
				for _, ti := range s.Tasks("c", "svc") {
					if ti.DeploymentID == first && ti.LastStatus == "RUNNING" && !kept[ti.ARN] {
						t.Errorf("rollback started task %s instead of keeping the old ones", ti.ID)
					}
				}
			} else {
				waitFor(t, 20*time.Second, "our deployment to fail", func() bool {
					d := describe(t, api, "svc").Deployments[0]
					return aws.ToString(d.Id) == ours && d.RolloutState == ecstypes.DeploymentRolloutStateFailed
				})
			}
			svc := describe(t, api, "svc")
			var msgs []string
			for _, e := range svc.Events {
				msgs = append(msgs, aws.ToString(e.Message))
			}
			all := strings.Join(msgs, "\n")
			if !strings.Contains(all, "(service svc) (deployment "+ours+") deployment failed: tasks failed to start.") {
				t.Errorf("events lack the failure:\n%s", all)
			}
			if got := strings.Contains(all, "rolling back to deployment "+first); got != tc.rollback {
				t.Errorf("rollback event present = %v, want %v:\n%s", got, tc.rollback, all)
			}

			stopped, err := api.ListTasks(ctx, &awsecs.ListTasksInput{Cluster: aws.String("c"), ServiceName: aws.String("svc"),
				DesiredStatus: ecstypes.DesiredStatusStopped, StartedBy: aws.String(ours)})
			if err != nil || len(stopped.TaskArns) < 3 {
				t.Fatalf("stopped tasks of our deployment: %v, %v", stopped, err)
			}
			dt, err := api.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: stopped.TaskArns})
			if err != nil {
				t.Fatalf("describe stopped tasks: %v", err)
			}
			for _, tk := range dt.Tasks {
				if tk.StopCode != ecstypes.TaskStopCodeEssentialContainerExited || aws.ToInt32(tk.Containers[0].ExitCode) != 1 ||
					aws.ToString(tk.StoppedReason) != "Essential container in task exited" {
					t.Errorf("failed task %s: %s %q exit %s", aws.ToString(tk.TaskArn), tk.StopCode, aws.ToString(tk.StoppedReason), exitText(tk.Containers[0].ExitCode))
				}
			}

			list, err := api.ListServiceDeployments(ctx, &awsecs.ListServiceDeploymentsInput{Cluster: aws.String("c"), Service: aws.String("svc")})
			if err != nil {
				t.Fatalf("list service deployments: %v", err)
			}
			if len(list.ServiceDeployments) != 2 {
				t.Fatalf("service deployments = %+v", list.ServiceDeployments)
			}
			arn := aws.ToString(list.ServiceDeployments[0].ServiceDeploymentArn) // newest first: ours
			waitFor(t, 5*time.Second, "the service deployment to settle", func() bool {
				d, err := api.DescribeServiceDeployments(ctx, &awsecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{arn}})
				return err == nil && len(d.ServiceDeployments) == 1 && d.ServiceDeployments[0].Status == tc.wantSD
			})
			d, err := api.DescribeServiceDeployments(ctx, &awsecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{arn, arn + "0"}})
			if err != nil {
				t.Fatalf("describe service deployments: %v", err)
			}
			sd := d.ServiceDeployments[0]
			cb := sd.DeploymentCircuitBreaker
			if cb == nil || cb.Status != ecstypes.ServiceDeploymentRollbackMonitorsStatusTriggered || cb.Threshold != 3 || cb.FailureCount < 3 {
				t.Errorf("circuit breaker = %+v", cb)
			}
			if (sd.Rollback != nil) != tc.rollback || (tc.rollback && !strings.Contains(aws.ToString(sd.Rollback.Reason), "Circuit breaker")) {
				t.Errorf("rollback = %+v", sd.Rollback)
			}
			if aws.ToString(sd.StatusReason) == "" || sd.TargetServiceRevision == nil || len(sd.SourceServiceRevisions) != 1 || len(d.Failures) != 1 {
				t.Errorf("service deployment = %+v, failures %+v", sd, d.Failures)
			}
		})
	}
}

func TestRolloutsThatDoNotEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		inject func(s *ecssim.Sim, bad string)
	}{
		{"failing tasks without a breaker", func(s *ecssim.Sim, bad string) { s.FailTaskStarts(bad, true) }},
		{"never complete", func(s *ecssim.Sim, bad string) { s.NeverComplete("c", "svc", true) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, ecssim.Options{})
			td := setup(t, s, ecssim.ServiceSpec{DesiredCount: 2})
			api := client(s, 3)
			first := aws.ToString(describe(t, api, "svc").Deployments[0].Id)
			waitFor(t, 20*time.Second, "the first deployment to complete", func() bool { return completed(describe(t, api, "svc"), first) })
			tc.inject(s, td)
			out, err := api.UpdateService(ctxT(t), &awsecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("svc"), ForceNewDeployment: true})
			if err != nil {
				t.Fatalf("update service: %v", err)
			}
			ours := aws.ToString(out.Service.Deployments[0].Id)
			// Five healthy delays (0.4 s each): a working rollout ends within two.
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) {
				svc := describe(t, api, "svc")
				d := svc.Deployments[0]
				if aws.ToString(d.Id) != ours || d.RolloutState != ecstypes.DeploymentRolloutStateInProgress || len(svc.Deployments) != 2 || svc.RunningCount < 2 {
					t.Fatalf("rollout changed: %+v (running %d)", svc.Deployments, svc.RunningCount)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
