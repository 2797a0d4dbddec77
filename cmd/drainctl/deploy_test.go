package main

import (
	"os/signal"
	"syscall"

	"bytes"
	"context"
	"encoding/json"
	"github.com/rogpeppe/go-internal/testscript"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/ecs/ecssim"
	"github.com/drainctl/drainctl/internal/testenv"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds drainctl once per test run, as the e2e tests do.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "drainctl-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "drainctl")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = &buildError{err, string(out)}
		}
	})
	if binErr != nil {
		t.Fatalf("go build: %v", binErr)
	}
	return binPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// TestMain also makes the test binary the `drainctl` command of the testscript files
// (testdata/script), run as a process of its own.
func TestMain(m *testing.M) {
	testscript.Main(cleanupM{m}, map[string]func(){
		"drainctl": func() {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			code := run(ctx, os.Args, os.Stdout, os.Stderr, os.Getenv)
			stop()
			os.Exit(code)
		},
	})
}

// cleanupM removes the built binary once the tests ran.
type cleanupM struct{ m *testing.M }

func (c cleanupM) Run() int {
	code := c.m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	return code
}

// runBinary runs the built drainctl with the SDK's environment pointing at the simulator.
func runBinary(t *testing.T, simURL string, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL_ECS="+simURL, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true",
		"GITHUB_ACTIONS=", "GITHUB_STEP_SUMMARY=")
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run drainctl: %v", err)
	}
	return code, out.String(), errb.String()
}

// TestDeploySim drives `drainctl deploy` (the built binary) against the ECS simulator and a
// real Sidekiq 6.4.1 running as the service's task: the refusals before anything changes,
// a dry run, and a whole deploy through the adapters.
func TestDeploySim(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	argv, senv, err := testenv.SidekiqCommand(testenv.SidekiqOptions{Version: testenv.Sidekiq6, RedisURL: r.URL(), Timeout: 3})
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	sim := ecssim.New(ecssim.Options{TimeScale: 20, Tick: 20 * time.Millisecond})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	sim.CreateCluster("prod")
	stop := int32(30)
	td, err := sim.RegisterTaskDefinition(ecssim.TaskDefinition{Family: "worker", RequiresCompatibilities: []string{"FARGATE"},
		Containers: []ecssim.Container{{Name: "sidekiq", Image: "app:1", Command: []string{"bundle", "exec", "sidekiq", "-t", "3"}, StopTimeout: &stop}}})
	if err != nil {
		t.Fatal(err)
	}
	shellTD, err := sim.RegisterTaskDefinition(ecssim.TaskDefinition{Family: "shell-worker", RequiresCompatibilities: []string{"FARGATE"},
		Containers: []ecssim.Container{{Name: "sidekiq", Image: "app:1", Command: []string{"sh", "-c", "cd /app && bundle exec sidekiq -t 3"}, StopTimeout: &stop}}})
	if err != nil {
		t.Fatal(err)
	}
	breaker := &ecssim.CircuitBreaker{Enable: true, Rollback: true}
	for _, spec := range []ecssim.ServiceSpec{
		{Cluster: "prod", Name: "worker", TaskDefinition: td, DesiredCount: 1, CircuitBreaker: breaker,
			Process: &ecssim.ProcessTemplate{Argv: argv, Env: senv, Dir: testenv.RepoRoot(), HostnameEnv: "DYNO", StopTimeout: 10 * time.Second, LogDir: t.TempDir()}},
		{Cluster: "prod", Name: "empty", TaskDefinition: td, DesiredCount: 1, CircuitBreaker: breaker},
		{Cluster: "prod", Name: "shell", TaskDefinition: shellTD, DesiredCount: 1, CircuitBreaker: breaker},
		{Cluster: "prod", Name: "legacy", TaskDefinition: td, DesiredCount: 1, DeploymentController: "CODE_DEPLOY"},
	} {
		if err := sim.CreateService(spec); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for the worker task's Sidekiq to register.
	var identity string
	deadline := time.Now().Add(60 * time.Second)
	for identity == "" && time.Now().Before(deadline) {
		ids, _ := rdb.SMembers(context.Background(), "processes").Result()
		for _, id := range ids {
			if strings.HasPrefix(id, "ip-10-0-") {
				identity = id
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if identity == "" {
		t.Fatal("the worker task's Sidekiq did not register within 60s")
	}
	redisEnv := []string{"REDIS_URL=" + r.URL()}
	// Wait for the services' first rollouts to complete (status reads them through the SDK).
	for steady := false; !steady; {
		if time.Now().After(deadline) {
			t.Fatal("the services' first rollouts did not complete within 60s")
		}
		code, out, errs := runBinary(t, sim.URL(), redisEnv, "status", "--cluster", "prod", "--service", "worker", "--service", "empty", "--service", "shell", "--output", "json")
		if code != 0 {
			t.Fatalf("status: exit %d, stderr %q", code, errs)
		}
		var st statusReport
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status output: %v", err)
		}
		steady = len(st.Services) == 3
		for _, s := range st.Services {
			steady = steady && len(s.Deployments) == 1 && s.Deployments[0].RolloutState == "COMPLETED"
		}
		if !steady {
			time.Sleep(250 * time.Millisecond)
		}
	}
	base := []string{"deploy", "--cluster", "prod", "--poll-interval", "250ms"}

	refusals := []struct {
		name, service, want string
	}{
		{"unknown service", "ghost", "ghost"},
		{"code deploy", "legacy", "CODE_DEPLOY"},
		{"empty selection", "empty", "no process"},
	}
	for _, rc := range refusals {
		code, out, errs := runBinary(t, sim.URL(), redisEnv, append(base, "--service", rc.service)...)
		if code != exitUsage {
			t.Errorf("%s: exit %d, want 2; stderr %q", rc.name, code, errs)
			continue
		}
		assertOneLineError(t, out, errs[strings.Index(errs, "drainctl: error:"):], "")
		if !strings.Contains(strings.ToLower(errs), strings.ToLower(rc.want)) {
			t.Errorf("%s: stderr %q lacks %q", rc.name, errs, rc.want)
		}
	}
	// The signal-path checks run in the preflight: printed as warnings, refusals with --strict.
	code, out, errs := runBinary(t, sim.URL(), redisEnv, append(base, "--service", "shell", "--strict", "--dry-run")...)
	if code != exitUsage || !strings.Contains(errs, "drainctl: error: ") || !strings.Contains(errs, "SP001") || out != "" {
		t.Errorf("--strict with a shell wrapper: exit %d, want 2 naming SP001; stderr %q", code, errs)
	}
	code, _, errs = runBinary(t, sim.URL(), redisEnv, append(base, "--service", "shell", "--dry-run", "--all")...)
	if code != 0 || !strings.Contains(errs, "SP001") {
		t.Errorf("dry run with a shell wrapper: exit %d, want 0 with an SP001 warning; stderr %q", code, errs)
	}
	code, _, errs = runBinary(t, sim.URL(), redisEnv, append(base, "--service", "shell", "--dry-run", "--all", "--log-format", "json")...)
	for _, line := range strings.Split(strings.TrimSpace(errs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["msg"] == nil {
			t.Errorf("--log-format json: stderr line %q is not a slog JSON record", line)
		}
	}
	if code != 0 || !strings.Contains(errs, "SP001") {
		t.Errorf("--log-format json dry run: exit %d; stderr %q", code, errs)
	}
	if n := sim.Calls("UpdateService"); n != 0 {
		t.Fatalf("UpdateService called %d times by refused runs", n)
	}
	code, out, errs = runBinary(t, sim.URL(), redisEnv, "status", "--cluster", "prod", "--service", "worker")
	if code != 0 || !strings.Contains(out, "ECS service prod/worker") || !strings.Contains(out, "COMPLETED") {
		t.Errorf("status with the service: exit %d, stderr %q\n%s", code, errs, out)
	}
	_, out, _ = runBinary(t, sim.URL(), redisEnv, "status", "--cluster", "prod", "--service", "worker", "--output", "json")
	var st statusReport
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status output: %v", err)
	}
	placed := false
	for _, p := range st.Processes {
		placed = placed || p.Identity == identity && p.Task != "" && len(st.Services) == 1 && len(st.Services[0].Tasks) == 1 &&
			st.Services[0].Tasks[0].ID == p.Task && len(st.Services[0].Tasks[0].Processes) == 1
	}
	if !placed {
		t.Errorf("status does not place %s in the worker's task: %+v", identity, st)
	}
	code, out, errs = runBinary(t, sim.URL(), redisEnv, append(base, "--service", "worker", "--dry-run", "--output", "json")...)
	if code != 0 {
		t.Fatalf("dry run: exit %d; stderr %q", code, errs)
	}
	var rep struct {
		Outcome   string   `json:"outcome"`
		Plan      []string `json:"plan"`
		Processes []struct {
			Identity string `json:"identity"`
			Task     string `json:"task"`
		} `json:"processes"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("dry run output is not JSON: %v\n%s", err, out)
	}
	if rep.Outcome != "dry_run" || len(rep.Processes) != 1 || rep.Processes[0].Identity != identity || rep.Processes[0].Task == "" || len(rep.Plan) == 0 {
		t.Errorf("dry run report = %+v, want the worker's process placed in its task and a plan", rep)
	}
	if n := sim.Calls("UpdateService"); n != 0 {
		t.Fatalf("dry run called UpdateService %d times", n)
	}

	code, out, errs = runBinary(t, sim.URL(), redisEnv, append(base, "--service", "worker", "--output", "json", "--exit-timeout", "60s")...)
	t.Logf("deploy stderr:\n%s", errs)
	if code != 0 {
		t.Fatalf("deploy: exit %d; stderr %s\nstdout %s", code, errs, out)
	}
	var done struct {
		Outcome  string `json:"outcome"`
		Services []struct {
			DeploymentID string `json:"deployment_id"`
			Result       string `json:"result"`
		} `json:"services"`
		Processes []struct {
			State string `json:"state"`
		} `json:"processes"`
	}
	if err := json.Unmarshal([]byte(out), &done); err != nil {
		t.Fatalf("deploy output is not JSON: %v\n%s", err, out)
	}
	if done.Outcome != "succeeded" || len(done.Services) != 1 || done.Services[0].Result != "succeeded" || done.Services[0].DeploymentID == "" ||
		len(done.Processes) != 1 || done.Processes[0].State != "gone" {
		t.Errorf("deploy report = %+v, want succeeded with the old process gone", done)
	}
	if n := sim.Calls("UpdateService"); n != 1 {
		t.Errorf("UpdateService called %d times, want 1", n)
	}

	// check, live: the current task definitions through the SDK, the stopped tasks' exit codes
	// (the worker's old task stopped cleanly above) and the fleet in Redis.
	code, out, errs = runBinary(t, sim.URL(), redisEnv, "check", "--cluster", "prod", "--service", "worker", "--output", "json")
	if code != 0 {
		t.Errorf("check worker: exit %d, want 0; stderr %q\n%s", code, errs, out)
	}
	var chk struct {
		Targets []struct {
			TaskDefinition string `json:"task_definition"`
			SignalPath     string `json:"signal_path"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(out), &chk); err != nil || len(chk.Targets) != 1 || chk.Targets[0].TaskDefinition != "worker:1" || chk.Targets[0].SignalPath != "ok" {
		t.Errorf("check worker targets = %+v (%v), want worker:1 with an ok signal path", chk.Targets, err)
	}
	code, out, errs = runBinary(t, sim.URL(), nil, "check", "--cluster", "prod", "--service", "shell")
	if code != exitCheckFindings || !strings.Contains(out, "SP001") {
		t.Errorf("check shell: exit %d, want 7 with SP001; stderr %q\n%s", code, errs, out)
	}
	code, _, errs = runBinary(t, sim.URL(), nil, "check", "--cluster", "prod", "--service", "ghost")
	if code != exitUsage {
		t.Errorf("check ghost: exit %d, want 2; stderr %q", code, errs)
	}
}
