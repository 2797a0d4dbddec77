// Command drainctl-demo is the README's demo (`make demo`): on throwaway local stacks — a
// redis-server, the ECS simulator and a service of 3 tasks running real Sidekiq workers whose
// signal path is broken (a shell wrapper as the container's command, so ECS's SIGTERM never
// reaches Sidekiq) — it runs the same workload three times: the naive forced deployment,
// `drainctl deploy --strategy drain-first` and `drainctl deploy --strategy overlap`, each on a
// fresh copy of the stack, and compares the jobs lost, the jobs interrupted, the processing gap
// and the longest queue wait. Everything it starts is stopped when it ends or on Ctrl-C.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/drainctl/drainctl/internal/stack"
	"github.com/drainctl/drainctl/internal/testenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// demo is one run's settings.
type demo struct {
	bin     string
	version testenv.SidekiqVersion
	tasks   int
	out     io.Writer
	errOut  io.Writer
	verbose bool
}

// The job mix: with 3 tasks × 2 threads, 6 jobs run at once.
const (
	shortJobs   = 3  // running when the deploy starts, finish within the drain budget
	longJobs    = 3  // running, and outlast any drain budget
	queuedJobs  = 6  // waiting in the queue behind them
	shortSecs   = 8  // a short job's run time
	longSecs    = 45 // a long job's run time (the first time; see againSecs)
	againSecs   = 2  // a long job's run time when it runs again (keeps the demo short)
	drainBudget = "15s"
	// overlapBudget lets the long jobs finish where they started.
	overlapBudget = "120s"
	// timeScale keeps the simulator's minutes (task protection expiry) close enough to
	// drainctl's for a deploy that waits out 45 s jobs.
	timeScale = 5
)

// outcome is one run's figures.
type outcome struct {
	name           string
	jobs, lost     int
	interrupted    int
	gap, queueWait string
	exit           int
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("drainctl-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("drainctl", "", "the drainctl binary to demonstrate (default: build ./cmd/drainctl)")
	version := fs.String("sidekiq", string(testenv.Sidekiq6), "Sidekiq version the tasks run: 6.4.1 or 7.3.2")
	tasks := fs.Int("tasks", 3, "tasks in the service")
	verbose := fs.Bool("v", false, "print the ECS simulator's events")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	d := &demo{bin: *bin, version: testenv.SidekiqVersion(*version), tasks: *tasks, out: stdout, errOut: stderr, verbose: *verbose}
	if err := d.run(ctx); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "drainctl-demo: interrupted; everything it started is stopped")
			return 130
		}
		fmt.Fprintf(stderr, "drainctl-demo: error: %v\n", err)
		if errors.Is(err, stack.ErrMissing) {
			fmt.Fprintln(stderr, "drainctl-demo: hint: run scripts/deps.sh (make demo does)")
		}
		return 1
	}
	return 0
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

func (d *demo) heading(s string) {
	d.say("\n%s\n%s", s, strings.Repeat("=", len(s)))
}

func (d *demo) run(ctx context.Context) error {
	began := time.Now()
	if d.bin == "" {
		dir, err := os.MkdirTemp("", "drainctl-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		d.bin = filepath.Join(dir, "drainctl")
		d.say("building drainctl …")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", d.bin, "./cmd/drainctl")
		cmd.Dir, cmd.Stdout, cmd.Stderr = testenv.RepoRoot(), d.errOut, d.errOut
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build drainctl: %w", err)
		}
	}
	if abs, err := filepath.Abs(d.bin); err == nil {
		d.bin = abs
	}

	d.heading("1. The naive deploy: aws ecs update-service --force-new-deployment")
	naive, err := d.naive(ctx)
	if err != nil {
		return err
	}
	d.heading("2. drainctl deploy --strategy drain-first")
	first, err := d.withDrainctl(ctx, "drain-first", drainBudget)
	if err != nil {
		return err
	}
	d.heading("3. drainctl deploy --strategy overlap")
	overlap, err := d.withDrainctl(ctx, "overlap", overlapBudget)
	if err != nil {
		return err
	}

	d.heading("Result")
	d.say("%-26s %5s %5s %5s %12s %15s %18s", "", "jobs", "done", "lost", "interrupted", "processing gap", "longest queue wait")
	for _, o := range []outcome{naive, first, overlap} {
		d.say("%-26s %5d %5d %5d %12d %15s %18s", o.name, o.jobs, o.jobs-o.lost, o.lost, o.interrupted, o.gap, o.queueWait)
	}
	d.say("(same service, same jobs, same broken signal path; \"lost\" = never finished, from the jobs' own done list;")
	d.say(" \"interrupted\" = cut mid-run: lost, or run again from the start; gap and queue wait as drainctl's report measured them)")
	d.say("demo took %s", time.Since(began).Round(time.Second))
	if first.lost != 0 || overlap.lost != 0 {
		return fmt.Errorf("drainctl lost jobs: drain-first %d, overlap %d", first.lost, overlap.lost)
	}
	return nil
}

// start starts a stack and describes it.
func (d *demo) start(ctx context.Context) (*stack.Stack, error) {
	o := stack.Options{Tasks: d.tasks, SidekiqVersion: d.version, BrokenSignalPath: true, TimeScale: timeScale}
	if d.verbose {
		o.Logf = func(format string, args ...any) { fmt.Fprintf(d.errOut, "  "+format+"\n", args...) }
	}
	s, err := stack.Start(ctx, o)
	if err != nil {
		return nil, err
	}
	d.say("redis-server      %s (pid %d)", s.Redis.Addr, s.Redis.PID())
	d.say("ECS simulator     %s (time ×%g)", s.Sim.URL(), s.Opts.TimeScale)
	d.say("service           %s/%s: %d tasks, each a real Sidekiq %s (-c %d -t %d)", s.Opts.Cluster, s.Opts.Service,
		s.Opts.Tasks, s.Opts.SidekiqVersion, s.Opts.Concurrency, s.Opts.SidekiqTimeout)
	d.say("task command      sh -c \"cd /app && bundle exec sidekiq …\": ECS's SIGTERM stops at the shell,")
	d.say("                  Sidekiq is SIGKILLed %s later (stopTimeout) with its jobs in flight", s.Opts.StopTimeout)
	return s, nil
}

// enqueue pushes the job mix: the running ones first (it waits until they started), then the
// queued ones.
func (d *demo) enqueue(ctx context.Context, s *stack.Stack) ([]string, error) {
	short, err := s.EnqueueRerun(ctx, shortJobs, shortSecs, shortSecs)
	if err != nil {
		return nil, err
	}
	long, err := s.EnqueueRerun(ctx, longJobs, longSecs, againSecs)
	if err != nil {
		return nil, err
	}
	jids := append(short, long...)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.WaitStarted(wctx, jids); err != nil {
		return nil, err
	}
	queued, err := s.EnqueueRerun(ctx, queuedJobs, 1, 1)
	if err != nil {
		return nil, err
	}
	d.say("jobs              %d short (%ds) and %d long (%ds; %ds if run again) running, %d short (1s) queued",
		shortJobs, shortSecs, longJobs, longSecs, againSecs, queuedJobs)
	return append(jids, queued...), nil
}

// withDrainctl deploys the service with drainctl's strategy and returns its figures.
func (d *demo) withDrainctl(ctx context.Context, strategy, budget string) (outcome, error) {
	o := outcome{name: "drainctl " + strategy, gap: "-", queueWait: "-"}
	s, err := d.start(ctx)
	if err != nil {
		return o, err
	}
	defer s.Close()
	jids, err := d.enqueue(ctx, s)
	if err != nil {
		return o, err
	}
	o.jobs = len(jids)
	reportPath := filepath.Join(s.LogDir, "report.json")
	args := append([]string{"deploy"}, s.Args()...)
	args = append(args, "--strategy", strategy, "--drain-timeout", budget, "--poll-interval", "500ms", "--report", reportPath)
	d.say("\n$ drainctl %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Env = s.Env()
	cmd.Stdout, cmd.Stderr = d.out, d.errOut
	// On Ctrl-C drainctl stops at its next safe point and reports what it leaves.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		return o, ctx.Err()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		o.exit = ee.ExitCode()
	} else if err != nil {
		return o, fmt.Errorf("run drainctl: %w", err)
	}
	d.say("\ndrainctl exited with %d", o.exit)
	if m, err := readMetrics(reportPath); err == nil {
		o.gap = fmt.Sprintf("%.1fs", m.ProcessingGap)
		o.queueWait = fmt.Sprintf("%.1fs", m.LongestQueueWait)
	}
	sctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	lost, err := s.Settle(sctx, jids)
	if err != nil {
		return o, fmt.Errorf("wait for the jobs to settle: %w", err)
	}
	o.lost = len(lost)
	if o.interrupted, err = interrupted(sctx, s, jids); err != nil {
		return o, err
	}
	d.say("jobs done: %d of %d, lost: %d, started more than once: %d", len(jids)-len(lost), len(jids), len(lost), o.interrupted)
	if o.exit != 0 {
		return o, fmt.Errorf("drainctl deploy --strategy %s exited with %d", strategy, o.exit)
	}
	return o, nil
}

// interrupted counts the jobs that started more than once: cut, then run again.
func interrupted(ctx context.Context, s *stack.Stack, jids []string) (int, error) {
	n := 0
	for _, j := range jids {
		runs, err := s.Runs(ctx, j)
		if err != nil {
			return 0, err
		}
		if runs > 1 {
			n++
		}
	}
	return n, nil
}

// reportMetrics is the part of drainctl's JSON report the demo shows.
type reportMetrics struct {
	LongestQueueWait float64 `json:"longest_queue_wait_seconds"`
	ProcessingGap    float64 `json:"processing_gap_seconds"`
}

func readMetrics(path string) (reportMetrics, error) {
	var doc struct {
		Metrics reportMetrics `json:"metrics"`
	}
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &doc)
	}
	return doc.Metrics, err
}

// naive does the plain forced deployment on a fresh stack and returns its figures.
func (d *demo) naive(ctx context.Context) (outcome, error) {
	o := outcome{name: "naive forced deployment", gap: "-", queueWait: "-"}
	s, err := d.start(ctx)
	if err != nil {
		return o, err
	}
	defer s.Close()
	jids, err := d.enqueue(ctx, s)
	if err != nil {
		return o, err
	}
	o.jobs = len(jids)
	old := s.RunningTasks()
	began := time.Now()
	id, err := s.ForceNewDeployment(ctx)
	if err != nil {
		return o, err
	}
	d.say("\nUpdateService --force-new-deployment → deployment %s", id)
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := s.WaitRolloutCompleted(wctx, id); err != nil {
		return o, err
	}
	d.say("rollout COMPLETED after %s", time.Since(began).Round(100*time.Millisecond))
	var arns []string
	for _, t := range old {
		arns = append(arns, t.ARN)
	}
	exits, err := s.WaitTasksStopped(wctx, arns)
	if err != nil {
		return o, err
	}
	for _, e := range exits {
		code := "?"
		if e.ExitCode != nil {
			code = fmt.Sprint(*e.ExitCode)
		}
		d.say("old task %s stopped: exit code %s%s", e.ID[:12], code, map[bool]string{true: " (SIGKILL)"}[code == "137"])
	}
	lost, err := s.Settle(wctx, jids)
	if err != nil {
		return o, fmt.Errorf("wait for the jobs to settle: %w", err)
	}
	d.say("jobs done: %d of %d, lost: %d (killed mid-run, in no queue: nothing will run them again)",
		len(jids)-len(lost), len(jids), len(lost))
	o.lost = len(lost)
	o.interrupted = len(lost)
	return o, nil
}
