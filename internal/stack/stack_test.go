package stack_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/stack"
	"github.com/drainctl/drainctl/internal/testenv"
)

// start starts a stack for the test and closes it at cleanup.
func start(t *testing.T, o stack.Options) *stack.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := stack.Start(ctx, o)
	if errors.Is(err, stack.ErrMissing) {
		testenv.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close stack: %v", err)
		}
	})
	return s
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestStackRunsJobsAndCloses: the tasks' Sidekiq processes register under the tasks'
// hostnames, run enqueued jobs, and Close leaves no process and no folder behind.
func TestStackRunsJobsAndCloses(t *testing.T) {
	t.Parallel()
	s, err := stack.Start(ctxFor(t, 90*time.Second), stack.Options{Tasks: 2, RedisPassword: "s3cret"})
	if errors.Is(err, stack.ErrMissing) {
		testenv.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			s.Close()
		}
	})
	ctx := ctxFor(t, 60*time.Second)
	ids, err := s.TaskProcesses(ctx)
	if err != nil || len(ids) != 2 {
		t.Fatalf("task processes = %v, %v; want 2", ids, err)
	}
	if !strings.Contains(s.RedisURL(), ":s3cret@") {
		t.Errorf("redis URL %q lacks the password", s.RedisURL())
	}
	jids, err := s.Enqueue(ctx, 4, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitAllDone(ctx, jids); err != nil {
		t.Fatal(err)
	}
	if lost, err := s.Lost(ctx, jids); err != nil || len(lost) != 0 {
		t.Errorf("lost = %v, %v; want none", lost, err)
	}
	if touched, err := s.Touched(ctx); err != nil || len(touched) != 0 {
		t.Errorf("touched = %v, %v; want none", touched, err)
	}
	env := strings.Join(s.Env(), "\n")
	for _, want := range []string{"AWS_ENDPOINT_URL_ECS=" + s.Sim.URL(), "REDIS_URL=" + s.RedisURL(), "AWS_REGION=us-east-1"} {
		if !strings.Contains(env, want) {
			t.Errorf("Env() lacks %q", want)
		}
	}
	var pids []int
	for _, ti := range s.RunningTasks() {
		pids = append(pids, ti.PID)
	}
	redisPID := s.Redis.PID()
	dir := s.LogDir
	if err := s.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	closed = true
	for _, pid := range append(pids, redisPID) {
		if alive(pid) {
			t.Errorf("process %d survived Close", pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("stack folder %s survived Close: %v", dir, err)
	}
}

// TestStackSignalPaths: on the working signal path a stopped task's Sidekiq hears SIGTERM,
// requeues its job and exits 0 before the stop timeout; on the broken one it is SIGKILLed
// (137) and the job it held is lost — the baseline drainctl exists for.
func TestStackSignalPaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		broken   bool
		wantExit int32
		wantLost bool
	}{
		{"working", false, 0, false},
		{"broken", true, 137, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, stack.Options{Tasks: 1, Concurrency: 1, BrokenSignalPath: tc.broken})
			ctx := ctxFor(t, 60*time.Second)
			jids, err := s.EnqueueRerun(ctx, 1, 30, 0.2)
			if err != nil {
				t.Fatal(err)
			}
			// Busy shows in the heartbeat: Sidekiq's heartbeat works in the task (it reads its
			// own /proc entry, so a PID namespace needs its own /proc).
			if err := s.WaitBusy(ctx, 1); err != nil {
				t.Fatal(err)
			}
			old := s.RunningTasks()
			id, err := s.ForceNewDeployment(ctx)
			if err != nil {
				t.Fatal(err)
			}
			exits, err := s.WaitTasksStopped(ctx, []string{old[0].ARN})
			if err != nil {
				t.Fatal(err)
			}
			if c := exits[0].ExitCode; c == nil || *c != tc.wantExit {
				t.Errorf("old task exit code = %v, want %d; log:\n%s", c, tc.wantExit, s.TaskLog(old[0].ID))
			}
			if err := s.WaitRolloutCompleted(ctx, id); err != nil {
				t.Fatal(err)
			}
			lost, err := s.Settle(ctx, jids)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(lost) == 1; got != tc.wantLost {
				t.Fatalf("lost %v, want lost: %v", lost, tc.wantLost)
			}
			if tc.wantLost {
				// The job was running on the killed process and is in no queue: nothing will
				// ever run it again.
				if n, err := s.QueueSize(ctx); err != nil || n != 0 {
					t.Errorf("queue size = %d, %v; want 0", n, err)
				}
				return
			}
			if err := s.WaitAllDone(ctx, jids); err != nil {
				t.Fatalf("requeued job: %v", err)
			}
			if n, err := s.Runs(ctx, jids[0]); err != nil || n != 2 {
				t.Errorf("job ran %d times (%v), want 2: once, then again after the requeue", n, err)
			}
		})
	}
}

// TestStackExtraServices: a second service runs in the same cluster with its own tasks and
// Sidekiq processes, sharing the redis-server and the simulator; Args names both services
// and the task helpers cover both.
func TestStackExtraServices(t *testing.T) {
	t.Parallel()
	s := start(t, stack.Options{Tasks: 1, ExtraServices: []string{"mailer"}})
	if got := strings.Join(s.Services(), ","); got != "worker,mailer" {
		t.Errorf("Services() = %s, want worker,mailer", got)
	}
	if got, want := strings.Join(s.Args(), " "), "--cluster demo --service worker --service mailer"; got != want {
		t.Errorf("Args() = %q, want %q", got, want)
	}
	hosts := map[string]string{} // hostname → service
	for _, name := range s.Services() {
		ts := s.ServiceTasks(name)
		if len(ts) != 1 || ts[0].LastStatus != "RUNNING" {
			t.Fatalf("service %s tasks = %+v, want one running", name, ts)
		}
		hosts[ts[0].Hostname] = name
	}
	if len(hosts) != 2 || len(s.RunningTasks()) != 2 {
		t.Fatalf("tasks %v (running %d), want one task per service with its own hostname", hosts, len(s.RunningTasks()))
	}
	ctx := ctxFor(t, 30*time.Second)
	ids, err := s.TaskProcesses(ctx)
	if err != nil || len(ids) != 2 {
		t.Fatalf("task processes = %v, %v; want one per service", ids, err)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		host, _, _ := strings.Cut(id, ":")
		seen[hosts[host]] = true
	}
	if !seen["worker"] || !seen["mailer"] {
		t.Errorf("processes %v, want one in each service's task (tasks %v)", ids, hosts)
	}
	// One Redis: a job enqueued once runs once, on either service.
	jids, err := s.Enqueue(ctx, 2, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitAllDone(ctx, jids); err != nil {
		t.Fatal(err)
	}
}
