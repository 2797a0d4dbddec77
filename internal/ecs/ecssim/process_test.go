package ecssim_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/drainctl/drainctl/internal/ecs/ecssim"
	"github.com/drainctl/drainctl/internal/testenv"
)

// runningTask waits for the service's first task to run and returns it.
func runningTask(t *testing.T, s *ecssim.Sim) ecssim.TaskInfo {
	t.Helper()
	var ti ecssim.TaskInfo
	waitFor(t, 10*time.Second, "a running task", func() bool {
		for _, x := range s.Tasks("c", "svc") {
			if x.LastStatus == "RUNNING" && x.PID > 0 {
				ti = x
				return true
			}
		}
		return false
	})
	return ti
}

// stoppedTask waits until DescribeTasks reports the task STOPPED and returns it.
func stoppedTask(t *testing.T, api *awsecs.Client, arn string, within time.Duration) ecstypes.Task {
	t.Helper()
	var tk ecstypes.Task
	waitFor(t, within, "task "+arn+" STOPPED", func() bool {
		out, err := api.DescribeTasks(ctxT(t), &awsecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: []string{arn}})
		if err != nil || len(out.Tasks) != 1 {
			return false
		}
		tk = out.Tasks[0]
		return aws.ToString(tk.LastStatus) == "STOPPED"
	})
	return tk
}

// gone reports whether no live process is left in the process group pgid, waiting up to 3 s.
// Zombies do not count: a killed child orphaned by its shell stays in the group until init
// reaps it, which is not the simulator's doing.
func gone(pgid int) bool {
	deadline := time.Now().Add(3 * time.Second)
	for {
		if !liveInGroup(pgid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// liveInGroup scans /proc for a process of group pgid that is not a zombie.
func liveInGroup(pgid int) bool {
	if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
		return false
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			return true
		}
	}
	return false
}

func TestProcessTasksStop(t *testing.T) {
	t.Parallel()
	const stopTimeout = 1500 * time.Millisecond
	// worker stands in for Sidekiq: it handles SIGTERM by exiting 0. Every command says it is
	// up once its TERM handling is in place ($OUT/up), and the test stops the task only then: a
	// TERM that came before the trap would test the shell's start-up, not the signal path.
	const worker = `trap "exit 0" TERM; touch "$OUT/up"; while :; do sleep 0.05; done`
	pid1 := ecssim.PID1Semantics()
	tests := []struct {
		name     string
		argv     []string
		broken   bool
		wantExit int32
		killed   bool // SIGKILL after the stop timeout
		needPID1 bool // the case is about PID 1 semantics (a PID namespace per task)
	}{
		{"ignores SIGTERM", []string{"sh", "-c", `trap "" TERM; touch "$OUT/up"; sleep 60`}, false, 137, true, false},
		{"handles SIGTERM and exits 0", []string{"sh", "-c", worker}, false, 0, false, false},
		{"broken signal path", []string{"sh", "-c", worker}, true, 137, true, false},
		// As PID 1 a process without a TERM handler ignores SIGTERM (Docker's `sleep` gotcha).
		{"PID 1 without a TERM handler", []string{"sh", "-c", `touch "$OUT/up"; exec sleep 60`}, false, 137, true, true},
		// A shell as PID 1 running a compound command does not pass SIGTERM on; one that execs
		// the worker does. A lone simple command: bash execs it itself, Debian's dash 0.5.12
		// (/bin/sh of Debian-based images) forks it and so breaks the signal path.
		{"shell compound command", []string{"sh", "-c", "sh -c '" + worker + "' && true"}, false, 137, true, true},
		{"shell exec", []string{"sh", "-c", "cd / && exec sh -c '" + worker + "'"}, false, 0, false, true},
		{"bash lone command", []string{"bash", "-c", "sh -c '" + worker + "'"}, false, 0, false, true},
		{"dash lone command", []string{"dash", "-c", "sh -c '" + worker + "'"}, false, 137, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.needPID1 && !pid1 {
				testenv.Missing(t, "PID namespaces for task processes (root and util-linux unshare)")
			}
			s := startSim(t, ecssim.Options{})
			out := t.TempDir()
			setup(t, s, ecssim.ServiceSpec{DesiredCount: 1, Process: &ecssim.ProcessTemplate{
				Argv: tc.argv, BrokenSignalPath: tc.broken, StopTimeout: stopTimeout, HostnameEnv: "DYNO", LogDir: t.TempDir(),
				Env: []string{"OUT=" + out},
			}})
			api := client(s, 3)
			ti := runningTask(t, s)
			waitFor(t, 10*time.Second, "the task's command to be up", func() bool {
				_, err := os.Stat(filepath.Join(out, "up"))
				return err == nil
			})
			if _, err := api.StopTask(ctxT(t), &awsecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(ti.ARN), Reason: aws.String("test stop")}); err != nil {
				t.Fatalf("stop task: %v", err)
			}
			tk := stoppedTask(t, api, ti.ARN, 10*time.Second)
			if c := tk.Containers[0]; c.ExitCode == nil || *c.ExitCode != tc.wantExit {
				t.Errorf("exit code = %s, want %d", exitText(c.ExitCode), tc.wantExit)
			}
			if tk.StopCode != ecstypes.TaskStopCodeUserInitiated || aws.ToString(tk.StoppedReason) != "test stop" {
				t.Errorf("stop code %s reason %q", tk.StopCode, aws.ToString(tk.StoppedReason))
			}
			took := tk.StoppedAt.Sub(*tk.StoppingAt)
			if tc.killed && took < stopTimeout-10*time.Millisecond {
				t.Errorf("stopped after %s, before the %s stop timeout", took, stopTimeout)
			}
			if !tc.killed && took >= stopTimeout {
				t.Errorf("stopped after %s: SIGTERM did not end it", took)
			}
			if !gone(ti.PID) {
				t.Errorf("process group %d still has processes", ti.PID)
			}
		})
	}
}

func TestProcessTaskEnvironmentAndExit(t *testing.T) {
	t.Parallel()
	s := startSim(t, ecssim.Options{})
	dir := t.TempDir()
	setup(t, s, ecssim.ServiceSpec{DesiredCount: 1, MinimumHealthyPercent: i32(0), MaximumPercent: i32(100), Process: &ecssim.ProcessTemplate{
		Argv:        []string{"sh", "-c", `echo "$DYNO $GREETING" > "$OUT/$DYNO"; read x; exit 3`},
		Env:         []string{"GREETING=hello", "OUT=" + dir},
		HostnameEnv: "DYNO",
	}})
	api := client(s, 3)
	ti := runningTask(t, s)
	var b []byte
	waitFor(t, 5*time.Second, "the process to write its environment", func() bool {
		b, _ = os.ReadFile(filepath.Join(dir, ti.Hostname))
		return len(b) > 0
	})
	if got := strings.TrimSpace(string(b)); got != ti.Hostname+" hello" {
		t.Errorf("process saw %q, want %q", got, ti.Hostname+" hello")
	}
	// stdin is /dev/null: read fails at once and the shell exits 3 by itself.
	tk := stoppedTask(t, api, ti.ARN, 10*time.Second)
	if tk.StopCode != ecstypes.TaskStopCodeEssentialContainerExited || aws.ToInt32(tk.Containers[0].ExitCode) != 3 {
		t.Errorf("stop code %s exit %s", tk.StopCode, exitText(tk.Containers[0].ExitCode))
	}
}

func TestCloseKillsProcesses(t *testing.T) {
	t.Parallel()
	s := ecssim.New(ecssim.Options{TimeScale: fast, Tick: 10 * time.Millisecond})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			s.Close()
		}
	})
	// Each task says it is up only once its TERM is ignored: a TERM that reached the shell
	// before its trap would end it with 143, which is what ECS reports too.
	out := t.TempDir()
	setup(t, s, ecssim.ServiceSpec{DesiredCount: 2, Process: &ecssim.ProcessTemplate{
		Argv: []string{"sh", "-c", `trap "" TERM; mktemp "$OUT/up.XXXXXX" >/dev/null; sleep 60`}, Env: []string{"OUT=" + out},
		StopTimeout: 200 * time.Millisecond,
	}})
	waitFor(t, 10*time.Second, "two processes ignoring TERM", func() bool {
		up, _ := filepath.Glob(filepath.Join(out, "up.*"))
		n := 0
		for _, ti := range s.Tasks("c", "svc") {
			if ti.PID > 0 {
				n++
			}
		}
		return n == 2 && len(up) == 2
	})
	tasks := s.Tasks("c", "svc")
	if err := s.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	closed = true
	for _, ti := range tasks {
		if !gone(ti.PID) {
			t.Errorf("task %s: process group %d survived Close", ti.ID, ti.PID)
		}
	}
	for _, ti := range s.Tasks("c", "svc") {
		if ti.LastStatus != "STOPPED" || ti.ExitCode == nil || *ti.ExitCode != 137 {
			t.Errorf("after Close task %s: %s exit %s, want STOPPED exit 137", ti.ID, ti.LastStatus, exitText(ti.ExitCode))
		}
	}
}

// setupContainer is setup with the task definition's container given by the test.
func setupContainer(t *testing.T, s *ecssim.Sim, spec ecssim.ServiceSpec, c ecssim.Container) {
	t.Helper()
	s.CreateCluster("c")
	arn, err := s.RegisterTaskDefinition(ecssim.TaskDefinition{Family: "worker", Containers: []ecssim.Container{c}})
	if err != nil {
		t.Fatal(err)
	}
	spec.Cluster, spec.TaskDefinition, spec.Name = "c", arn, "svc"
	if err := s.CreateService(spec); err != nil {
		t.Fatalf("create service: %v", err)
	}
}

// taskProcs lists the live processes (host PIDs, with their command line) that carry the
// task's ECSSIM_TASK_ARN in their environment, whatever their process group: tini and
// dumb-init move their child to a group of its own. A zombie has no environment left.
func taskProcs(arn string) []string {
	var out []string
	envs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range envs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("\x00ECSSIM_TASK_ARN="+arn+"\x00")) && !bytes.HasPrefix(b, []byte("ECSSIM_TASK_ARN="+arn+"\x00")) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
		out = append(out, filepath.Base(filepath.Dir(p))+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return out
}

// TestInitProcessEnabled runs tasks whose container sets initProcessEnabled: the
// simulator starts them under the real tini (docker --init) as PID 1 of the task's PID
// namespace, and measures what each command does with the TERM that tini forwards to its
// child. The worker stands in for Sidekiq: it handles TERM by recording it and exiting 0.
func TestInitProcessEnabled(t *testing.T) {
	t.Parallel()
	if !ecssim.PID1Semantics() {
		testenv.Missing(t, "PID namespaces for task processes (root and util-linux unshare)")
	}
	if _, err := exec.LookPath("tini"); err != nil {
		testenv.Missing(t, "tini (scripts/deps.sh installs it): %v", err)
	}
	const stopTimeout = 3 * time.Second
	const worker = `trap "echo TERM >$OUT/term; exit 0" TERM; echo up >"$OUT/up"; while :; do sleep 0.05; done`
	tests := []struct {
		name       string
		argv       []string
		wantExit   int32
		workerTERM bool // the worker ran its TERM handler (else it was killed without hearing TERM)
		killed     bool // the task ended only by the SIGKILL at the stop timeout
	}{
		// tini hands TERM to its child, the worker itself: a clean stop.
		{"exec form", []string{"sh", "-c", worker}, 0, true, false},
		// tini hands TERM to its child, the outer shell. Not PID 1, without a handler, that
		// shell dies of it at once; tini exits with 128+15 and, PID 1 gone, the kernel
		// SIGKILLs the worker before it hears anything: the init makes the loss faster, not
		// rarer (143 at once instead of 137 at the stop timeout).
		{"shell compound command", []string{"sh", "-c", "sh -c '" + worker + "' && true"}, 143, false, false},
		// PID 1 without a TERM handler ignores TERM (137 at the stop timeout without an init,
		// see TestProcessTasksStop); under tini it is an ordinary process and dies of it.
		{"no TERM handler", []string{"sh", "-c", `echo up >"$OUT/up"; exec sleep 60`}, 143, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			s := startSim(t, ecssim.Options{})
			setupContainer(t, s, ecssim.ServiceSpec{DesiredCount: 1, Process: &ecssim.ProcessTemplate{
				Argv: tc.argv, Env: []string{"OUT=" + out}, StopTimeout: stopTimeout, LogDir: t.TempDir(),
			}}, ecssim.Container{Name: "sidekiq", Image: "app:1", InitProcessEnabled: aws.Bool(true)})
			api := client(s, 3)
			ti := runningTask(t, s)
			waitFor(t, 5*time.Second, "the command to start", func() bool {
				_, err := os.Stat(filepath.Join(out, "up"))
				return err == nil
			})
			procs := taskProcs(ti.ARN)
			if !strings.Contains(strings.Join(procs, "\n"), "tini -- ") {
				t.Fatalf("no tini among the task's processes:\n%s", strings.Join(procs, "\n"))
			}
			if _, err := api.StopTask(ctxT(t), &awsecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(ti.ARN), Reason: aws.String("test stop")}); err != nil {
				t.Fatalf("stop task: %v", err)
			}
			tk := stoppedTask(t, api, ti.ARN, 10*time.Second)
			took := tk.StoppedAt.Sub(*tk.StoppingAt)
			_, err := os.Stat(filepath.Join(out, "term"))
			heard := err == nil
			t.Logf("exit %v after %s; worker heard TERM: %v", aws.ToInt32(tk.Containers[0].ExitCode), took, heard)
			if c := tk.Containers[0]; c.ExitCode == nil || *c.ExitCode != tc.wantExit {
				t.Errorf("exit code = %s, want %d", exitText(c.ExitCode), tc.wantExit)
			}
			if heard != tc.workerTERM {
				t.Errorf("worker heard TERM = %v, want %v", heard, tc.workerTERM)
			}
			if tc.killed != (took >= stopTimeout) {
				t.Errorf("stopped after %s (stop timeout %s), want killed at the timeout = %v", took, stopTimeout, tc.killed)
			}
			if left := taskProcs(ti.ARN); len(left) > 0 {
				t.Errorf("processes of the task still alive:\n%s", strings.Join(left, "\n"))
			}
		})
	}
}

// TestInitProcessEnabledWithoutTini: a task that asks for an init the host does not have
// fails to start with a reason that says so, rather than running without one.
func TestInitProcessEnabledWithoutTini(t *testing.T) {
	defer ecssim.SetInitLookup(func() (string, error) { return "", exec.ErrNotFound })()
	s := startSim(t, ecssim.Options{})
	setupContainer(t, s, ecssim.ServiceSpec{DesiredCount: 1, Process: &ecssim.ProcessTemplate{Argv: []string{"sleep", "60"}}},
		ecssim.Container{Name: "sidekiq", Image: "app:1", InitProcessEnabled: aws.Bool(true)})
	api := client(s, 3)
	var tk ecstypes.Task
	waitFor(t, 10*time.Second, "a stopped task", func() bool {
		out, err := api.ListTasks(ctxT(t), &awsecs.ListTasksInput{Cluster: aws.String("c"), DesiredStatus: ecstypes.DesiredStatusStopped})
		if err != nil || len(out.TaskArns) == 0 {
			return false
		}
		d, err := api.DescribeTasks(ctxT(t), &awsecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: out.TaskArns[:1]})
		if err != nil || len(d.Tasks) != 1 {
			return false
		}
		tk = d.Tasks[0]
		return true
	})
	reason := aws.ToString(tk.StoppedReason)
	if tk.StopCode != ecstypes.TaskStopCodeTaskFailedToStart || !strings.Contains(reason, "initProcessEnabled") || !strings.Contains(reason, "tini") {
		t.Errorf("stop code %s, reason %q; want TaskFailedToStart naming initProcessEnabled and tini", tk.StopCode, reason)
	}
	for _, ti := range s.Tasks("c", "svc") {
		if ti.PID != 0 {
			t.Errorf("task %s got a process (%d) without its init", ti.ID, ti.PID)
		}
	}
}
