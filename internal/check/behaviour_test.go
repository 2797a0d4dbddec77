package check_test

// The behaviour proof of `drainctl check` (issue 5): for a few corpus task definitions, run
// the container's command for real as a local-process task of the ECS simulator, with a real
// Sidekiq worker busy on a long job, scale the service to zero (ECS stops the task: SIGTERM,
// then SIGKILL after the stop timeout), and compare what happened with what `check` said.
//
// What is real and what is emulated, precisely:
//   - Real: redis-server, Sidekiq 6.4.1 (and 7.3.2 for two cases), the shells (/bin/sh is
//     Debian's dash 0.5.12, bash 5.2), the corpus's own command/entryPoint/entrypoint script
//     text, the simulator's task lifecycle driven through aws-sdk-go-v2 (UpdateService,
//     DescribeTasks), and the exit code ECS reports.
//   - Substituted: the corpus's `bundle exec sidekiq -t N …` becomes the harness's Sidekiq
//     command (testenv.SidekiqCommand, -t 2) and `/app` becomes the repository folder; the
//     stop timeout is 7 s of real time (>= 2 + 5, so only the signal path decides).
//   - Container PID 1 semantics: the simulator signals a task's process group, which is not
//     what Docker does. So each task's process is this test binary in "pid1" mode: it starts
//     the container's argv as PID 1 of new PID and mount namespaces (with their own /proc)
//     in its own session and passes SIGTERM to that PID 1 only. The kernel then applies the real rules: a PID 1 without a
//     TERM handler (a shell waiting for its child) never sees the signal, and when PID 1 dies
//     every process of the namespace is SIGKILLed. The simulator's SIGKILL of the helper
//     reaches PID 1 through PR_SET_PDEATHSIG, so the namespace dies with it, like a container.
//   - initProcessEnabled (docker --init, i.e. tini without -g) is emulated by this binary in
//     "init" mode as PID 1: TERM/INT go to its one child only, and it exits when the child
//     exits (tini's rule; tini itself is not installed here). With an init, a shell that
//     dies of TERM makes PID 1 exit at once with 128+15 = 143: Sidekiq is killed
//     immediately instead of after the stop timeout, so the exit code is 143, not 137.
//
// Verdicts compared: check "broken" (an error-level signal-path finding) ⇔ the job was not
// pushed back to Redis, the process is still listed in `processes` and the task's exit code
// is 137/143 (which check's live evidence, SP013, then reports); check "ok" ⇔ Sidekiq logged
// "Pushed 1 jobs back", the job is back in queue:default, the process unlisted itself and
// the task exited 0. Warnings (SP002: depends on the shell) are pinned to what this
// machine's shells do.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/drainctl/drainctl/internal/check"
	"github.com/drainctl/drainctl/internal/ecs/ecssim"
	"github.com/drainctl/drainctl/internal/testenv"
)

const (
	envPID1Mode = "DRAINCTL_CHECK_TEST_MODE" // "pid1" or "nsinit": this binary is a helper, not tests
	envWantInit = "DRAINCTL_CHECK_TEST_INIT" // "1": run the argv under the emulated docker --init
)

func TestMain(m *testing.M) {
	switch os.Getenv(envPID1Mode) {
	case "pid1":
		os.Exit(pid1Main(os.Args[1:]))
	case "nsinit":
		os.Exit(nsinitMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// helperEnv is os.Environ without the helper switches, plus extra.
func helperEnv(extra ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, envPID1Mode+"=") || strings.HasPrefix(e, envWantInit+"=") {
			continue
		}
		env = append(env, e)
	}
	return append(env, extra...)
}

// pid1Main runs argv as PID 1 of new PID and mount namespaces (under the emulated init when
// asked) and passes SIGTERM/SIGINT to that PID 1 only, like `docker stop`.
func pid1Main(argv []string) int {
	runtime.LockOSThread() // PDEATHSIG fires when the starting thread exits: keep it
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "pid1: no command")
		return 125
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pid1: %v\n", err)
		return 125
	}
	cmd := exec.Command(self, argv...)
	cmd.Env = append(helperEnv(), envPID1Mode+"=nsinit", envWantInit+"="+os.Getenv(envWantInit))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS, Setsid: true, Pdeathsig: syscall.SIGKILL}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "pid1: start %q in new PID and mount namespaces: %v\n", argv[0], err)
		return 125
	}
	go func() {
		for s := range sigs {
			fmt.Fprintf(os.Stderr, "pid1: %v to PID 1 of the namespace\n", s)
			_ = cmd.Process.Signal(s)
		}
	}()
	_ = cmd.Wait()
	return containerExit(cmd.ProcessState)
}

// nsinitMain runs as PID 1 of the new namespaces: it mounts a /proc of its own (Sidekiq
// reads /proc/<pid>/status in its heartbeat), then either becomes the container's command
// (exec, keeping PID 1) or runs it under the emulated docker --init.
func nsinitMain(argv []string) int {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		fmt.Fprintf(os.Stderr, "nsinit: make / private: %v\n", err)
		return 125
	}
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		fmt.Fprintf(os.Stderr, "nsinit: mount /proc: %v\n", err)
		return 125
	}
	init := os.Getenv(envWantInit) == "1"
	env := helperEnv()
	if init {
		return initMain(argv, env)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "nsinit: %v\n", err)
		return 127
	}
	err = syscall.Exec(path, argv, env)
	fmt.Fprintf(os.Stderr, "nsinit: exec %s: %v\n", path, err)
	return 126
}

// initMain is the emulated docker --init (tini without -g), running as PID 1: it forwards
// TERM/INT to its one child and exits as soon as that child exits.
func initMain(argv, env []string) int {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "init: %v\n", err)
		return 125
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	_ = cmd.Wait()
	return containerExit(cmd.ProcessState)
}

// containerExit is the exit code Docker reports: the status, or 128+signal.
func containerExit(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// shellQuote quotes a word for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// substituteScript replaces the command that runs sidekiq in a shell script (keeping a
// leading exec) with the harness's Sidekiq argv, and /app with dir.
func substituteScript(t *testing.T, src string, sidekiq []string, dir string) string {
	t.Helper()
	src = strings.ReplaceAll(src, "/app", dir)
	s, err := check.ParseShell(src)
	if err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	for _, c := range s.Commands {
		for _, w := range c.Args {
			if filepath.Base(w.Lit) != "sidekiq" {
				continue
			}
			start := c.Args[0].Pos
			if c.Name() == "exec" {
				start = c.Args[1].Pos
			}
			var q []string
			for _, a := range sidekiq {
				q = append(q, shellQuote(a))
			}
			return src[:start] + strings.Join(q, " ") + src[c.End:]
		}
	}
	t.Fatalf("no sidekiq command in %q", src)
	return ""
}

// substituteArgv replaces `[bundle exec] sidekiq …` at the end of an exec-form argv.
func substituteArgv(args, sidekiq []string) []string {
	for i, a := range args {
		if filepath.Base(a) == "sidekiq" {
			if i >= 2 && args[i-2] == "bundle" && args[i-1] == "exec" {
				i -= 2
			}
			return append(append([]string{}, args[:i]...), sidekiq...)
		}
	}
	return args
}

// containerArgv turns the corpus container into a runnable argv: scripts in the shell's
// -c argument and entry point files get the substitutions; entry point files are written to
// dir.
func containerArgv(t *testing.T, in check.Input, c check.Container, sidekiq []string, dir string) []string {
	t.Helper()
	args := append(append([]string{}, c.EntryPoint...), c.Command...)
	if len(c.EntryPoint) > 0 && len(in.EntrypointScripts) > 0 {
		sf := in.EntrypointScripts[0]
		p := filepath.Join(dir, filepath.Base(sf.Path))
		body := sf.Content
		if strings.Contains(body, "sidekiq") {
			body = substituteScript(t, body, sidekiq, testenv.RepoRoot())
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		args = append([]string{p}, args[1:]...)
	}
	for i, a := range args {
		if i > 0 && (args[i-1] == "-c" || args[i-1] == "-lc") && strings.Contains(a, "sidekiq") {
			args[i] = substituteScript(t, a, sidekiq, testenv.RepoRoot())
			return args
		}
	}
	return substituteArgv(args, sidekiq)
}

func TestBehaviourMatchesCheck(t *testing.T) {
	t.Parallel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Refuse to run a meaningless proof where PID namespaces are unavailable.
	probe := exec.Command("/bin/true")
	probe.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS}
	if err := probe.Run(); err != nil {
		testenv.Missing(t, "PID and mount namespaces (CLONE_NEWPID|CLONE_NEWNS) unavailable: %v", err)
	}
	type outcome string
	const (
		clean  outcome = "clean"  // Sidekiq got TERM: job pushed back, exit 0
		killed outcome = "killed" // Sidekiq was killed: job lost, exit 137 (143 under an init)
	)
	tests := []struct {
		corpus  string
		version testenv.SidekiqVersion
		want    outcome
		note    string
	}{
		{"good-exec-form", testenv.Sidekiq6, clean, ""},
		{"sp003-no-init", testenv.Sidekiq6, clean, "sh -c \"exec …\""},
		{"good-init-process-ec2", testenv.Sidekiq6, clean, "init + sh -c \"cd && exec …\""},
		{"good-entrypoint-exec", testenv.Sidekiq6, clean, "entrypoint script with exec \"$@\""},
		{"sp001-cd-semicolon", testenv.Sidekiq6, killed, "sh -c \"cd; sidekiq\": TERM dropped, SIGKILL at the stop timeout"},
		{"sp001-and", testenv.Sidekiq6, killed, "init + sh -c \"cd && sidekiq\": the init does not save it"},
		{"sp005-trap-swallows", testenv.Sidekiq6, killed, "entrypoint script that traps TERM"},
		// Warnings, pinned to this machine's shells: dash does not exec a lone command, bash does.
		{"sp002-lone-sh", testenv.Sidekiq6, killed, "dash keeps a lone command as a child"},
		{"sp002-bash-and", testenv.Sidekiq6, clean, "bash 5.2 execs the last command of `a && b`"},
		{"good-exec-form", testenv.Sidekiq7, clean, ""},
		{"sp001-cd-semicolon", testenv.Sidekiq7, killed, ""},
	}
	for _, tc := range tests {
		t.Run(tc.corpus+"/"+string(tc.version), func(t *testing.T) {
			t.Parallel()
			in := loadCase(t, tc.corpus)
			res, err := check.Run(in)
			if err != nil {
				t.Fatal(err)
			}
			verdict := res.Targets[0].SignalPath
			switch {
			case verdict == "broken" && tc.want != killed, verdict == "ok" && tc.want != clean:
				t.Fatalf("table says %s but check's signal path verdict is %q", tc.want, verdict)
			case verdict != "broken" && verdict != "ok" && verdict != "depends-on-shell":
				t.Fatalf("check's verdict %q is not decidable", verdict)
			}

			r := testenv.StartRedis(t)
			sk, env, err := testenv.SidekiqCommand(testenv.SidekiqOptions{Version: tc.version, RedisURL: r.URL(), Timeout: 2, Concurrency: 1})
			if err != nil {
				testenv.Missing(t, "%v", err)
			}
			c := res.Targets[0].Container
			var ctr check.Container
			for _, x := range in.TaskDefinition.Containers {
				if x.Name == c {
					ctr = x
				}
			}
			argv := containerArgv(t, in, ctr, sk, t.TempDir())
			t.Logf("check: %s; running %q (init: %v)", verdict, argv, ctr.InitProcessEnabled != nil && *ctr.InitProcessEnabled)
			env = append(env, envPID1Mode+"=pid1")
			if ctr.InitProcessEnabled != nil && *ctr.InitProcessEnabled {
				env = append(env, envWantInit+"=1")
			}

			rdb := r.Client(t)
			ctx := context.Background()
			jid, err := testenv.Enqueue(ctx, rdb, "", "default", "SleepJob", 60)
			if err != nil {
				t.Fatal(err)
			}
			logDir := t.TempDir()
			sim := ecssim.New(ecssim.Options{Tick: 20 * time.Millisecond, TimeScale: 100, Logf: t.Logf})
			if err := sim.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sim.Close() })
			sim.CreateCluster("c")
			tdARN, err := sim.RegisterTaskDefinition(ecssim.TaskDefinition{Family: in.TaskDefinition.Family,
				Containers: []ecssim.Container{{Name: c, Image: ctr.Image}}})
			if err != nil {
				t.Fatal(err)
			}
			if err := sim.CreateService(ecssim.ServiceSpec{Cluster: "c", Name: "worker", TaskDefinition: tdARN, DesiredCount: 1,
				Process: &ecssim.ProcessTemplate{Argv: append([]string{self}, argv...), Env: env, Dir: testenv.RepoRoot(),
					HostnameEnv: "DYNO", StopTimeout: 7 * time.Second, LogDir: logDir}}); err != nil {
				t.Fatal(err)
			}
			var taskID string
			t.Cleanup(func() {
				if t.Failed() && taskID != "" {
					b, _ := os.ReadFile(filepath.Join(logDir, taskID+".log"))
					t.Logf("task log:\n%s", b)
				}
			})
			waitUntil(t, 40*time.Second, "the job to start", func() bool {
				for _, ti := range sim.Tasks("c", "worker") {
					taskID = ti.ID
				}
				started, _ := rdb.LRange(ctx, testenv.StartedList, 0, -1).Result()
				return contains(started, jid)
			})

			// Stop it the way a deployment or scale-in does.
			api := simClient(sim)
			if _, err := api.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("worker"),
				DesiredCount: aws.Int32(0)}); err != nil {
				t.Fatalf("scale service to 0: %v", err)
			}
			var exit int32 = -1
			waitUntil(t, 20*time.Second, "the task to stop", func() bool {
				out, err := api.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String("c"),
					Tasks: []string{sim.Tasks("c", "worker")[0].ARN}})
				if err != nil || len(out.Tasks) == 0 || aws.ToString(out.Tasks[0].LastStatus) != "STOPPED" {
					return false
				}
				if len(out.Tasks[0].Containers) > 0 && out.Tasks[0].Containers[0].ExitCode != nil {
					exit = *out.Tasks[0].Containers[0].ExitCode
				}
				return true
			})
			log, _ := os.ReadFile(filepath.Join(logDir, taskID+".log"))
			queued, _ := rdb.LRange(ctx, "queue:default", 0, -1).Result()
			requeued := false
			for _, p := range queued {
				if strings.Contains(p, jid) {
					requeued = true
				}
			}
			pushed := strings.Contains(string(log), "Pushed 1 jobs back")
			// A clean stop removes the process from `processes`; a killed one stays listed
			// (what SP014 vanished-processes counts).
			procs, _ := rdb.SMembers(ctx, "processes").Result()
			listed := len(procs) > 0
			// The live check reads the same exit code ECS reported (SP013).
			code := int(exit)
			live, err := check.Run(check.Input{TaskDefinition: in.TaskDefinition, Container: c,
				Live: &check.Live{StoppedTasks: []check.StoppedTask{{TaskID: taskID, Container: c, ExitCode: &code, StopCode: "ServiceSchedulerInitiated"}}}})
			if err != nil {
				t.Fatal(err)
			}
			sp013 := false
			for _, f := range live.Findings {
				sp013 = sp013 || f.ID == check.IDShutdownsKilled
			}
			t.Logf("%s %s (%s): exit %d, requeued %v, %q logged %v", tc.corpus, tc.version, tc.note, exit, requeued, "Pushed 1 jobs back", pushed)

			switch tc.want {
			case clean:
				if exit != 0 || !requeued || !pushed || listed || sp013 {
					t.Errorf("want a clean stop (exit 0, job pushed back, process unlisted, no SP013); got exit %d, requeued %v, pushed %v, listed %v, SP013 %v",
						exit, requeued, pushed, listed, sp013)
				}
			case killed:
				if exit != 137 && exit != 143 || requeued || pushed || !listed || !sp013 {
					t.Errorf("want Sidekiq killed (exit 137/143, job lost, process still listed, SP013); got exit %d, requeued %v, pushed %v, listed %v, SP013 %v",
						exit, requeued, pushed, listed, sp013)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// simClient is the real SDK client pointed at the simulator through BaseEndpoint.
func simClient(s *ecssim.Sim) *awsecs.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDCHECK", "secret", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 3
				o.MaxBackoff = 20 * time.Millisecond
				o.RateLimiter = ratelimit.None
			})
		},
	}
	return awsecs.NewFromConfig(cfg, func(o *awsecs.Options) { o.BaseEndpoint = aws.String(s.URL()) })
}
