package ecssim_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/drainctl/drainctl/internal/ecs/ecssim"
)

// protect calls UpdateTaskProtection for tasks; minutes 0 leaves expiresInMinutes unset.
func protect(t *testing.T, api *awsecs.Client, on bool, minutes int32, tasks ...string) *awsecs.UpdateTaskProtectionOutput {
	t.Helper()
	in := &awsecs.UpdateTaskProtectionInput{Cluster: aws.String("c"), Tasks: tasks, ProtectionEnabled: on}
	if minutes != 0 {
		in.ExpiresInMinutes = aws.Int32(minutes)
	}
	out, err := api.UpdateTaskProtection(ctxT(t), in)
	if err != nil {
		t.Fatalf("update task protection: %v", err)
	}
	return out
}

// tasksOf returns the service's tasks of deployment id that are not STOPPED.
func tasksOf(s *ecssim.Sim, id string) []ecssim.TaskInfo {
	var out []ecssim.TaskInfo
	for _, ti := range s.Tasks("c", "svc") {
		if ti.DeploymentID == id && ti.LastStatus != "STOPPED" {
			out = append(out, ti)
		}
	}
	return out
}

func healthyCount(ts []ecssim.TaskInfo) int {
	n := 0
	for _, ti := range ts {
		if ti.Healthy {
			n++
		}
	}
	return n
}

// settled completes the service's first deployment and returns its ID and task ARNs.
func settled(t *testing.T, s *ecssim.Sim, api *awsecs.Client) (string, []string) {
	t.Helper()
	first := aws.ToString(describe(t, api, "svc").Deployments[0].Id)
	waitFor(t, 20*time.Second, "the first deployment to complete", func() bool { return completed(describe(t, api, "svc"), first) })
	var arns []string
	for _, ti := range tasksOf(s, first) {
		arns = append(arns, ti.ARN)
	}
	return first, arns
}

func TestTaskProtectionAPI(t *testing.T) {
	t.Parallel()
	s := startSim(t, ecssim.Options{})
	setup(t, s, ecssim.ServiceSpec{DesiredCount: 3})
	api := client(s, 1)
	ctx := ctxT(t)
	_, old := settled(t, s, api)

	var ipe *ecstypes.InvalidParameterException
	for _, in := range []*awsecs.UpdateTaskProtectionInput{
		{Cluster: aws.String("c"), Tasks: make([]string, 11), ProtectionEnabled: true},
		{Cluster: aws.String("c"), Tasks: old[:1], ProtectionEnabled: true, ExpiresInMinutes: aws.Int32(0)},
		{Cluster: aws.String("c"), Tasks: old[:1], ProtectionEnabled: true, ExpiresInMinutes: aws.Int32(2881)},
	} {
		if _, err := api.UpdateTaskProtection(ctx, in); !errors.As(err, &ipe) {
			t.Errorf("update task protection %d tasks, %v min: err = %v, want InvalidParameterException", len(in.Tasks), in.ExpiresInMinutes, err)
		}
	}
	var cnf *ecstypes.ClusterNotFoundException
	if _, err := api.GetTaskProtection(ctx, &awsecs.GetTaskProtectionInput{Cluster: aws.String("nope"), Tasks: old}); !errors.As(err, &cnf) {
		t.Errorf("get task protection in a missing cluster: err = %v, want ClusterNotFoundException", err)
	}

	// Default expiry 120 min; the stopped task and an unknown one fail with TASK_NOT_VALID.
	if _, err := api.StopTask(ctx, &awsecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(old[2])}); err != nil {
		t.Fatalf("stop task: %v", err)
	}
	before := time.Now()
	out := protect(t, api, true, 0, old[0], old[2], "0123456789abcdef0123456789abcdef")
	if len(out.ProtectedTasks) != 1 || aws.ToString(out.ProtectedTasks[0].TaskArn) != old[0] || !out.ProtectedTasks[0].ProtectionEnabled {
		t.Fatalf("protected tasks = %+v", out.ProtectedTasks)
	}
	// 120 simulated minutes at time scale 100 are 72 s of real time.
	if exp := out.ProtectedTasks[0].ExpirationDate; exp == nil || exp.Before(before.Add(71*time.Second)) || exp.After(time.Now().Add(73*time.Second)) {
		t.Errorf("expirationDate = %v, want about 72 s from now", exp)
	}
	if len(out.Failures) != 2 || aws.ToString(out.Failures[0].Reason) != "TASK_NOT_VALID" || aws.ToString(out.Failures[1].Reason) != "TASK_NOT_VALID" ||
		aws.ToString(out.Failures[0].Arn) != old[2] || !strings.HasSuffix(aws.ToString(out.Failures[1].Arn), ":task/c/0123456789abcdef0123456789abcdef") {
		t.Errorf("failures = %+v", out.Failures)
	}

	// Re-enabling resets the expiry; GetTaskProtection reads it back.
	out = protect(t, api, true, 1, old[0], old[1])
	if len(out.ProtectedTasks) != 2 || out.ProtectedTasks[0].ExpirationDate.After(time.Now().Add(time.Second)) {
		t.Fatalf("protected tasks after refresh = %+v", out.ProtectedTasks)
	}
	got, err := api.GetTaskProtection(ctx, &awsecs.GetTaskProtectionInput{Cluster: aws.String("c"), Tasks: old[:2]})
	if err != nil || len(got.ProtectedTasks) != 2 || !got.ProtectedTasks[0].ProtectionEnabled || !got.ProtectedTasks[1].ProtectionEnabled {
		t.Fatalf("get task protection = %+v, %v", got, err)
	}
	if ti := tasksOf(s, s.Tasks("c", "svc")[0].DeploymentID)[0]; !ti.Protected || ti.ProtectionExpiresAt.IsZero() {
		t.Errorf("TaskInfo = %+v, want protected", ti)
	}

	// Clearing one; the other expires when the clock passes its minute.
	protect(t, api, false, 0, old[1])
	s.Advance(61 * time.Second)
	got, err = api.GetTaskProtection(ctx, &awsecs.GetTaskProtectionInput{Cluster: aws.String("c"), Tasks: old[:2]})
	if err != nil || len(got.ProtectedTasks) != 2 || got.ProtectedTasks[0].ProtectionEnabled || got.ProtectedTasks[1].ProtectionEnabled ||
		got.ProtectedTasks[0].ExpirationDate != nil {
		t.Fatalf("get task protection after clear and expiry = %+v, %v", got, err)
	}
	if calls := s.Calls("UpdateTaskProtection"); calls != 6 {
		t.Errorf("UpdateTaskProtection calls = %d, want 6", calls)
	}
}

func TestDeploymentWaitsForProtectedTasks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		desired        int32
		minPct, maxPct int32
		newBeside      int // new tasks that start while every old task is protected
	}{
		{"maximumPercent 200 starts all new tasks", 2, 100, 200, 2},
		{"maximumPercent 150 starts one of two", 2, 100, 150, 1},
		{"maximumPercent 100 starts none", 2, 50, 100, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, ecssim.Options{})
			setup(t, s, ecssim.ServiceSpec{DesiredCount: tc.desired, MinimumHealthyPercent: i32(tc.minPct), MaximumPercent: i32(tc.maxPct)})
			api := client(s, 3)
			first, old := settled(t, s, api)
			if out := protect(t, api, true, 60, old...); len(out.ProtectedTasks) != len(old) || len(out.Failures) != 0 {
				t.Fatalf("protect old tasks: %+v", out)
			}
			up, err := api.UpdateService(ctxT(t), &awsecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("svc"), ForceNewDeployment: true})
			if err != nil {
				t.Fatalf("update service: %v", err)
			}
			ours := aws.ToString(up.Service.Deployments[0].Id)
			waitFor(t, 20*time.Second, "the new tasks beside the old ones to be healthy", func() bool {
				return healthyCount(tasksOf(s, ours)) == tc.newBeside
			})
			s.Step() // one more full scheduler pass with the new tasks healthy
			s.Step()
			if n := len(tasksOf(s, ours)); n != tc.newBeside {
				t.Errorf("%d new tasks, want %d", n, tc.newBeside)
			}
			for _, ti := range tasksOf(s, first) {
				if ti.LastStatus != "RUNNING" || ti.DesiredStatus != "RUNNING" || !ti.Protected {
					t.Errorf("protected old task %s: %s/%s protected %v", ti.ID, ti.LastStatus, ti.DesiredStatus, ti.Protected)
				}
			}
			if n := len(tasksOf(s, first)); n != int(tc.desired) {
				t.Errorf("%d old tasks left, want all %d", n, tc.desired)
			}
			svc := describe(t, api, "svc")
			if len(svc.Deployments) != 2 || svc.Deployments[0].RolloutState != ecstypes.DeploymentRolloutStateInProgress {
				t.Errorf("deployments = %+v", svc.Deployments)
			}

			// Clearing one and letting the other expire lets the deployment finish.
			protect(t, api, false, 0, old[0])
			waitFor(t, 20*time.Second, "the unprotected old task to stop", func() bool {
				for _, ti := range s.Tasks("c", "svc") {
					if ti.ARN == old[0] {
						return ti.LastStatus == "STOPPED"
					}
				}
				return false
			})
			if ti := tasksOf(s, first); len(ti) != 1 || ti[0].ARN != old[1] {
				t.Errorf("old tasks after clearing one = %+v", ti)
			}
			s.Advance(61 * time.Minute)
			waitFor(t, 20*time.Second, "our deployment to complete", func() bool { return completed(describe(t, api, "svc"), ours) })
			for _, ti := range s.Tasks("c", "svc") {
				if ti.DeploymentID == first && ti.StopCode != "ServiceSchedulerInitiated" {
					t.Errorf("old task %s stop code %q", ti.ID, ti.StopCode)
				}
			}
		})
	}
}

func TestProtectionDeploymentBlocked(t *testing.T) {
	t.Parallel()
	s := startSim(t, ecssim.Options{})
	setup(t, s, ecssim.ServiceSpec{DesiredCount: 2})
	api := client(s, 3)
	first, old := settled(t, s, api)
	protect(t, api, true, 60, old[0])
	up, err := api.UpdateService(ctxT(t), &awsecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("svc"), ForceNewDeployment: true})
	if err != nil {
		t.Fatalf("update service: %v", err)
	}
	ours := aws.ToString(up.Service.Deployments[0].Id)
	waitFor(t, 20*time.Second, "the new tasks and only the protected old task", func() bool {
		return healthyCount(tasksOf(s, ours)) == 2 && len(tasksOf(s, first)) == 1
	})
	var fresh []string
	for _, ti := range tasksOf(s, ours) {
		fresh = append(fresh, ti.ARN)
	}
	// One protected old task plus one new one is the desired count; a second new one is one too many.
	out := protect(t, api, true, 60, fresh[0], fresh[1], old[1])
	if len(out.ProtectedTasks) != 1 || aws.ToString(out.ProtectedTasks[0].TaskArn) != fresh[0] {
		t.Errorf("protected = %+v", out.ProtectedTasks)
	}
	if len(out.Failures) != 2 || aws.ToString(out.Failures[0].Reason) != "DEPLOYMENT_BLOCKED" || aws.ToString(out.Failures[0].Arn) != fresh[1] ||
		aws.ToString(out.Failures[1].Reason) != "TASK_NOT_VALID" || aws.ToString(out.Failures[1].Arn) != old[1] {
		t.Errorf("failures = %+v", out.Failures)
	}
	// Refreshing a task that is already protected is never blocked.
	if out := protect(t, api, true, 30, fresh[0], old[0]); len(out.ProtectedTasks) != 2 || len(out.Failures) != 0 {
		t.Errorf("refresh = %+v", out)
	}
	var msgs []string
	for _, e := range describe(t, api, "svc").Events {
		msgs = append(msgs, aws.ToString(e.Message))
	}
	if !strings.Contains(strings.Join(msgs, "\n"), "scale-in protection") {
		t.Errorf("no event says protected tasks hold the deployment:\n%s", strings.Join(msgs, "\n"))
	}
}
