package ecs_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/ecs/ecssim"
)

// TestTasks checks the tasks' identities the Sidekiq matcher needs (IPs, DNS names, runtime
// IDs, deployment) against the simulator's own records, and StopTasks' effect.
func TestTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ref := e.service(t, "worker", func(s *ecssim.ServiceSpec) { s.DesiredCount = 3 })
	st := e.steady(t, ref)[0]
	ctx := context.Background()
	tasks, err := e.c.Tasks(ctx, ref, "RUNNING")
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 3 {
		t.Fatalf("Tasks(RUNNING) = %d tasks, want 3", len(tasks))
	}
	simTasks := e.sim.Tasks("prod", "worker")
	for _, task := range tasks {
		i := slices.IndexFunc(simTasks, func(ti ecssim.TaskInfo) bool { return ti.ARN == task.ARN })
		if i < 0 {
			t.Fatalf("task %s unknown to the simulator", task.ARN)
		}
		want := simTasks[i]
		if task.ID != want.ID || !strings.HasSuffix(task.ARN, "/"+task.ID) {
			t.Errorf("ID = %q, want %q (the ARN's last segment)", task.ID, want.ID)
		}
		if task.PrivateIPv4 == "" || task.PrivateIPv4 != want.PrivateIPv4 {
			t.Errorf("PrivateIPv4 = %q, want %q", task.PrivateIPv4, want.PrivateIPv4)
		}
		wantDNS := "ip-" + strings.ReplaceAll(want.PrivateIPv4, ".", "-") + ".ec2.internal"
		if task.PrivateDNS != wantDNS {
			t.Errorf("PrivateDNS = %q, want %q", task.PrivateDNS, wantDNS)
		}
		if task.DeploymentID != st.Deployments[0].ID || task.DeploymentID != want.DeploymentID {
			t.Errorf("DeploymentID = %q, want %q", task.DeploymentID, st.Deployments[0].ID)
		}
		if task.LastStatus != "RUNNING" || task.DesiredStatus != "RUNNING" || task.StartedAt.IsZero() || task.TaskDefinition != e.td {
			t.Errorf("task = %+v", task)
		}
		if len(task.Containers) != 1 || task.Containers[0].Name != "sidekiq" || task.Containers[0].RuntimeID == "" || task.Containers[0].RuntimeID != want.RuntimeID || task.Containers[0].ExitCode != nil {
			t.Errorf("containers = %+v, want sidekiq with runtime ID %q and no exit code", task.Containers, want.RuntimeID)
		}
	}

	victim := tasks[0]
	const reason = "drainctl: replace a quieted task"
	if err := e.c.StopTasks(ctx, "prod", []string{victim.ARN}, reason); err != nil {
		t.Fatal(err)
	}
	stopped := waitTask(t, e.c, ref, victim.ARN, func(task ecs.Task) bool { return task.LastStatus == "STOPPED" })
	if stopped.DesiredStatus != "STOPPED" || stopped.StoppedReason != reason || stopped.StopCode != "UserInitiated" || stopped.StoppedAt.IsZero() || stopped.StoppingAt.IsZero() {
		t.Errorf("stopped task = %+v, want STOPPED, UserInitiated, reason %q, stop times", stopped, reason)
	}
	all, err := e.c.Tasks(ctx, ref, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(all, func(task ecs.Task) bool { return task.ARN == victim.ARN }) || len(all) < 4 {
		t.Errorf("Tasks(\"\") = %d tasks, want the 3 running (one a replacement) and the stopped one", len(all))
	}

	err = e.c.StopTasks(ctx, "nope", []string{victim.ARN}, reason)
	if want := `cluster "nope" not found (region us-east-1)`; err == nil || err.Error() != want {
		t.Errorf("StopTasks in a missing cluster = %v, want %q", err, want)
	}
}

// TestTasksExitCodes runs tasks as real processes and checks the exit codes Tasks reports
// after StopTasks: 137 for a process that ignores SIGTERM (SIGKILLed after the stop timeout),
// 0 for one that handles it and exits, as a draining Sidekiq does. (A process without a
// handler would not do: as a container's PID 1, which the simulator reproduces when it can,
// it never receives SIGTERM.)
func TestTasksExitCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name string
		argv []string
		exit int32
	}{
		{"ignores-sigterm", []string{"sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"}, 137},
		{"exits-on-sigterm", []string{"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"}, 0},
	}
	var refs []ecs.ServiceRef
	for _, tt := range tests {
		refs = append(refs, e.service(t, tt.name, func(s *ecssim.ServiceSpec) {
			s.DesiredCount = 1
			s.Process = &ecssim.ProcessTemplate{Argv: tt.argv, StopTimeout: 300 * time.Millisecond}
		}))
	}
	e.steady(t, refs...)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tasks, err := e.c.Tasks(context.Background(), refs[i], "RUNNING")
			if err != nil || len(tasks) != 1 {
				t.Fatalf("Tasks = %d, %v; want 1", len(tasks), err)
			}
			start := time.Now()
			if err := e.c.StopTasks(context.Background(), "prod", []string{tasks[0].ARN}, "test"); err != nil {
				t.Fatal(err)
			}
			got := waitTask(t, e.c, refs[i], tasks[0].ARN, func(task ecs.Task) bool {
				return len(task.Containers) > 0 && task.Containers[0].ExitCode != nil
			})
			if code := *got.Containers[0].ExitCode; code != tt.exit {
				t.Errorf("exit code = %d, want %d", code, tt.exit)
			}
			if tt.exit == 137 && time.Since(start) < 300*time.Millisecond {
				t.Errorf("SIGKILL came after %s, before the 300ms stop timeout", time.Since(start))
			}
			if !strings.Contains(got.Summary(), "exit "+strconv.Itoa(int(tt.exit))) {
				t.Errorf("Summary() = %q, want the exit code", got.Summary())
			}
		})
	}
}

// waitTask polls Tasks until the task with arn satisfies ok.
func waitTask(t *testing.T, c *ecs.Client, ref ecs.ServiceRef, arn string, ok func(ecs.Task) bool) ecs.Task {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tasks, err := c.Tasks(context.Background(), ref, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			if task.ARN == arn && ok(task) {
				return task
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s did not reach the awaited state within 10s: %+v", arn, tasks)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTaskSummary pins the one-line description of a stopped task.
func TestTaskSummary(t *testing.T) {
	tests := []struct {
		name string
		task ecs.Task
		want string
	}{
		{"killed", ecs.Task{ID: "abc", StopCode: "ServiceSchedulerInitiated", StoppedReason: "Scaling activity initiated by (deployment ecs-svc/1)",
			Containers: []ecs.Container{{Name: "sidekiq", ExitCode: ptr[int32](137)}}},
			"task abc ServiceSchedulerInitiated: Scaling activity initiated by (deployment ecs-svc/1) [sidekiq exit 137]"},
		{"failed start", ecs.Task{ID: "def", StopCode: "TaskFailedToStart", StoppedReason: "CannotPullContainerError",
			Containers: []ecs.Container{{Name: "app", Reason: "pull access denied"}, {Name: "log", ExitCode: ptr[int32](1), Reason: "dependency"}}},
			"task def TaskFailedToStart: CannotPullContainerError [app: pull access denied; log exit 1 (dependency)]"},
		{"bare", ecs.Task{ID: "ghi"}, "task ghi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.task.Summary(); got != tt.want {
				t.Errorf("Summary() =\n %q\nwant\n %q", got, tt.want)
			}
		})
	}
}
