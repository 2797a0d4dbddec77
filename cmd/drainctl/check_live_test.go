package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/ecs/ecssim"
	"github.com/drainctl/drainctl/internal/testenv"
)

// TestCheckLiveDependsOn: live mode reads dependsOn from ECS, so a sidecar that Sidekiq
// depends on is not reported as able to stop first (SP009), and one it does not is.
func TestCheckLiveDependsOn(t *testing.T) {
	t.Parallel()
	sim := ecssim.New(ecssim.Options{TimeScale: 20, Tick: 20 * time.Millisecond})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	sim.CreateCluster("prod")
	for _, svc := range []string{"good-sidecar-dependson", "sp009-sidecar"} {
		raw, err := os.ReadFile(corpus(svc))
		if err != nil {
			t.Fatal(err)
		}
		td, err := sim.RegisterTaskDefinition(ecssim.TaskDefinition{Raw: raw})
		if err != nil {
			t.Fatal(err)
		}
		if err := sim.CreateService(ecssim.ServiceSpec{Cluster: "prod", Name: svc, TaskDefinition: td, DesiredCount: 1,
			CircuitBreaker: &ecssim.CircuitBreaker{Enable: true, Rollback: true}}); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := runBinary(t, sim.URL(), nil, "check", "--cluster", "prod", "--service", "good-sidecar-dependson", "--strict")
	if code != exitOK || strings.Contains(out, "SP009") {
		t.Errorf("good sidecar: exit %d, want 0 without SP009; stderr %q\n%s", code, errs, out)
	}
	code, out, errs = runBinary(t, sim.URL(), nil, "check", "--cluster", "prod", "--service", "sp009-sidecar", "--strict")
	if code != exitCheckFindings || !strings.Contains(out, "SP009") {
		t.Errorf("sidecar without dependsOn: exit %d, want 7 with SP009; stderr %q\n%s", code, errs, out)
	}
}

// TestCheckLiveEvidence: live mode reports the service's recent stops that were killed (SP013)
// and, with a Redis URL, Sidekiq processes of its tasks that vanished without leaving
// `processes` (SP014). The task is a real process that ignores SIGTERM, so the simulator
// SIGKILLs it after its stop timeout and reports exit 137; the vanished process is a
// `processes` entry without a heartbeat hash, as a SIGKILLed Sidekiq leaves behind.
func TestCheckLiveEvidence(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	sim := ecssim.New(ecssim.Options{TimeScale: 20, Tick: 20 * time.Millisecond})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	sim.CreateCluster("prod")
	stop := int32(30)
	up := t.TempDir()
	td, err := sim.RegisterTaskDefinition(ecssim.TaskDefinition{Family: "worker", RequiresCompatibilities: []string{"FARGATE"},
		Containers: []ecssim.Container{{Name: "sidekiq", Image: "app:1", Command: []string{"bundle", "exec", "sidekiq", "-t", "3"}, StopTimeout: &stop}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.CreateService(ecssim.ServiceSpec{Cluster: "prod", Name: "worker", TaskDefinition: td, DesiredCount: 1,
		CircuitBreaker: &ecssim.CircuitBreaker{Enable: true, Rollback: true},
		// The task never ends by itself (a replacement must not add stops of its own however
		// slow the test runs) and says it is up once TERM is ignored: a TERM before the trap
		// would end it with 143.
		Process: &ecssim.ProcessTemplate{Argv: []string{"sh", "-c", `trap "" TERM; touch "$OUT/$DYNO"; while :; do sleep 1; done`},
			HostnameEnv: "DYNO", Env: []string{"OUT=" + up}, StopTimeout: 300 * time.Millisecond, LogDir: t.TempDir()}}); err != nil {
		t.Fatal(err)
	}
	var task ecssim.TaskInfo
	deadline := time.Now().Add(20 * time.Second)
	for task.ARN == "" && time.Now().Before(deadline) {
		for _, ti := range sim.Tasks("prod", "worker") {
			if _, err := os.Stat(filepath.Join(up, ti.Hostname)); err == nil && ti.LastStatus == "RUNNING" && ti.PID > 0 {
				task = ti
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if task.ARN == "" {
		t.Fatal("no running task within 20s")
	}
	ctx := context.Background()
	vanished := task.Hostname + ":4242:0123456789ab"
	if err := rdb.SAdd(ctx, "processes", vanished).Err(); err != nil {
		t.Fatal(err)
	}
	ec, err := ecs.New(ctx, ecs.Options{Region: "us-east-1", Endpoint: sim.URL(),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "test", ""), MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := ec.StopTasks(ctx, "prod", []string{task.ARN}, "test: stop"); err != nil {
		t.Fatal(err)
	}
	for deadline = time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ti := stoppedTask(sim, task.ARN); ti != nil && ti.ExitCode != nil {
			if *ti.ExitCode != 137 {
				t.Fatalf("task exit code %d, want 137 (it ignores SIGTERM)", *ti.ExitCode)
			}
			break
		}
	}

	code, out, errs := runBinary(t, sim.URL(), []string{"REDIS_URL=" + r.URL()}, "check", "--cluster", "prod", "--service", "worker")
	if code != exitCheckFindings || !strings.Contains(out, "SP013") || !strings.Contains(out, "1 of the last 1 stops") {
		t.Errorf("check: exit %d, want 7 with SP013 for 1 of the last 1 stops; stderr %q\n%s", code, errs, out)
	}
	if !strings.Contains(out, "SP014") || !strings.Contains(out, vanished) {
		t.Errorf("check does not report the vanished process %s (SP014):\n%s", vanished, out)
	}
}

// stoppedTask returns the simulator's record of the task once it is STOPPED, else nil.
func stoppedTask(sim *ecssim.Sim, arn string) *ecssim.TaskInfo {
	for _, ti := range sim.Tasks("prod", "worker") {
		if ti.ARN == arn && ti.LastStatus == "STOPPED" {
			return &ti
		}
	}
	return nil
}
