package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/stack"
	"github.com/drainctl/drainctl/internal/testenv"
)

// drainctlBin is the binary TestMain built.
var drainctlBin string

// parallel is how many stacks run at once unless -test.parallel is given: the tests mostly
// wait for Sidekiq heartbeats, so more than GOMAXPROCS of them fit on a small machine.
const parallel = "4"

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", parallel)
	}
	dir, err := os.MkdirTemp("", "drainctl-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	drainctlBin = filepath.Join(dir, "drainctl")
	if err := build(drainctlBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build ./cmd/drainctl:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles ./cmd/drainctl to out, with the race detector when the tests have it.
func build(out string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(gobin, append(args, "./cmd/drainctl")...)
	cmd.Dir = testenv.RepoRoot()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, stderr.String())
	}
	return nil
}

// startStack starts a stack for the test; it is closed at cleanup, after the test's own
// cleanups have logged what they need.
func startStack(t *testing.T, o stack.Options) *stack.Stack {
	t.Helper()
	testenv.TouchSources() // the binary's sources are part of these tests' cache key
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
		if t.Failed() {
			for _, ti := range s.Tasks() {
				t.Logf("task %s %s/%s exit %v pid %d hostname %s deployment %s", ti.ID, ti.LastStatus, ti.DesiredStatus,
					deref(ti.ExitCode), ti.PID, ti.Hostname, ti.DeploymentID)
				if log := s.TaskLog(ti.ID); log != "" {
					t.Logf("task %s log:\n%s", ti.ID, tail(log, 1500))
				}
			}
		}
		if err := s.Close(); err != nil {
			t.Errorf("close stack: %v", err)
		}
	})
	return s
}

func deref(p *int32) any {
	if p == nil {
		return nil
	}
	return *p
}

// ctxFor is a context for the test's waits, cancelled at cleanup.
func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// must fails the test on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// proc is one drainctl run.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	code           int
}

// start starts the binary against the stack with args (the subcommand first) and logs its
// output at cleanup when the test failed.
func start(t *testing.T, s *stack.Stack, args ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(drainctlBin, args...)
	p.cmd.Env = append(s.Env(), "NO_COLOR=1")
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start drainctl: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if dir := os.Getenv("DRAINCTL_E2E_ARTIFACTS"); dir != "" {
			// Full output of every run, for reading after the tests.
			name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
			_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.stdout", name, p.cmd.Process.Pid)), p.stdout.Bytes(), 0o644)
			_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.stderr", name, p.cmd.Process.Pid)), p.stderr.Bytes(), 0o644)
		}
		if t.Failed() {
			t.Logf("drainctl %s: exit %d\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), p.code,
				tail(p.stderr.String(), 6000), tail(p.stdout.String(), 6000))
		}
	})
	return p
}

// wait waits for the run to end, at most d.
func (p *proc) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		_ = p.cmd.Process.Signal(syscall.SIGQUIT) // goroutine dump on stderr for the log
		select {
		case <-p.done:
		case <-time.After(2 * time.Second):
		}
		t.Fatalf("drainctl did not end within %s", d)
	}
}

// run runs the binary to its end (at most 3 minutes).
func run(t *testing.T, s *stack.Stack, args ...string) *proc {
	t.Helper()
	p := start(t, s, args...)
	p.wait(t, 3*time.Minute)
	return p
}

// report decodes the JSON report on stdout.
func (p *proc) report(t *testing.T) *Report {
	t.Helper()
	var r Report
	dec := json.NewDecoder(bytes.NewReader(p.stdout.Bytes()))
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("decode the JSON report on stdout (exit %d): %v\nstdout: %s", p.code, err, tail(p.stdout.String(), 2000))
	}
	if r.Schema != "drainctl/v2" || r.Kind != "deploy" {
		t.Errorf("report schema, kind = %q, %q; want drainctl/v2, deploy", r.Schema, r.Kind)
	}
	if r.ExitCode != p.code {
		t.Errorf("report exit_code = %d, process exit code %d", r.ExitCode, p.code)
	}
	return &r
}

// deployArgs are the flags every deploy in these tests shares: the stack's service, JSON on
// stdout and fast polling; extra flags follow.
// deployArgs are deploy's arguments against the stack; the strategy is drain-first unless
// extra names one (the tests of drain-first's behaviour predate auto).
func deployArgs(s *stack.Stack, extra ...string) []string {
	args := append([]string{"deploy"}, s.Args()...)
	args = append(args, "--output", "json", "--poll-interval", "200ms", "--rollout-timeout", "90s", "--exit-timeout", "60s")
	if !slices.Contains(extra, "--strategy") {
		args = append(args, "--strategy", "drain-first")
	}
	return append(args, extra...)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Report is the part of the drainctl/v2 JSON schema (kind deploy) (docs/report-schema.md) the
// tests check, spelled from the document rather than from internal/report so that a
// renamed field fails here.
type Report struct {
	Schema   string `json:"schema"`
	Kind     string `json:"kind"`
	Command  string `json:"command"`
	Outcome  string `json:"outcome"`
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error"`
	DryRun   bool   `json:"dry_run"`
	Jobs     struct {
		Finished     int `json:"finished"`
		Requeued     int `json:"requeued"`
		Rescued      int `json:"rescued"`
		StillRunning int `json:"still_running"`
		Lost         int `json:"lost"`
	} `json:"jobs"`
	JobList []struct {
		JID     string `json:"jid"`
		Class   string `json:"class"`
		Process string `json:"process"`
		Fate    string `json:"fate"`
		Note    string `json:"note"`
	} `json:"job_list"`
	Processes []struct {
		Identity    string `json:"identity"`
		Hostname    string `json:"hostname"`
		Task        string `json:"task"`
		Service     string `json:"service"`
		State       string `json:"state"`
		Evidence    string `json:"evidence"`
		BusyAtQuiet int    `json:"busy_at_quiet"`
	} `json:"processes"`
	Services []struct {
		Cluster                string `json:"cluster"`
		Service                string `json:"service"`
		Deployed               bool   `json:"deployed"`
		DeploymentID           string `json:"deployment_id"`
		PreviousTaskDefinition string `json:"previous_task_definition"`
		TaskDefinition         string `json:"task_definition"`
		Result                 string `json:"result"`
		Reason                 string `json:"reason"`
		StoppedTasks           []struct {
			ARN        string `json:"arn"`
			ID         string `json:"id"`
			StopCode   string `json:"stop_code"`
			Containers []struct {
				Name     string `json:"name"`
				ExitCode *int32 `json:"exit_code"`
			} `json:"containers"`
		} `json:"stopped_tasks"`
		ReplacedTasks  []string `json:"replaced_tasks"`
		KeptQuietTasks []string `json:"kept_quiet_tasks"`
	} `json:"services"`
	Phases []struct {
		Name string `json:"name"`
	} `json:"phases"`
	Lock struct {
		Name     string      `json:"name"`
		Acquired bool        `json:"acquired"`
		Released bool        `json:"released"`
		Holder   *LockHolder `json:"holder"`
		TookOver *LockHolder `json:"took_over"`
	} `json:"lock"`
	Left *struct {
		QuietProcesses    []string          `json:"quiet_processes"`
		DeploymentStarted bool              `json:"deployment_started"`
		DeploymentIDs     map[string]string `json:"deployment_ids"`
		Hint              string            `json:"hint"`
	} `json:"left"`
	Warnings []string `json:"warnings"`
	Plan     []string `json:"plan"`
	Strategy struct {
		Name      string `json:"name"`
		Reason    string `json:"reason"`
		Requested string `json:"requested"`
	} `json:"strategy"`
	Metrics struct {
		LongestQueueWait float64 `json:"longest_queue_wait_seconds"`
		ProcessingGap    float64 `json:"processing_gap_seconds"`
		InterruptedJobs  int     `json:"interrupted_jobs"`
		Samples          int     `json:"samples"`
	} `json:"metrics"`
	Protection []struct {
		Task       string `json:"task"`
		Foreign    bool   `json:"foreign"`
		ReleasedAt string `json:"released_at"`
		Note       string `json:"note"`
	} `json:"protection"`
}

// LockHolder is the run holding the deploy lock.
type LockHolder struct {
	Owner string `json:"owner"`
	Host  string `json:"host"`
	PID   int    `json:"pid"`
}

// fates counts job_list entries by fate.
func (r *Report) fates() map[string]int {
	m := map[string]int{}
	for _, j := range r.JobList {
		m[j.Fate]++
	}
	return m
}

// states counts processes by end state.
func (r *Report) states() map[string]int {
	m := map[string]int{}
	for _, p := range r.Processes {
		m[p.State]++
	}
	return m
}

// phase reports whether the phase ran.
func (r *Report) phase(name string) bool {
	for _, p := range r.Phases {
		if p.Name == name {
			return true
		}
	}
	return false
}
