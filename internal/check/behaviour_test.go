package check_test

// The behaviour proof of `drainctl check` (issue 5): for a few corpus task definitions, run
// the container's command for real as a local-process task of the ECS simulator, with a real
// Sidekiq worker busy on a long job, scale the service to zero (ECS stops the task: SIGTERM,
// then SIGKILL after the stop timeout), and compare what happened with what `check` said.
//
// What is real and what is substituted, precisely:
//   - Real: redis-server, Sidekiq 6.4.1 (and 7.3.2 for two cases), the shells (/bin/sh is
//     Debian's dash 0.5.12, bash 5.2), tini 0.19.0 and dumb-init 1.2.5 (Debian's), the corpus's
//     own command/entryPoint/entrypoint script text and its linuxParameters.initProcessEnabled,
//     the simulator's task lifecycle driven through aws-sdk-go-v2 (UpdateService,
//     DescribeTasks), and the exit code ECS reports.
//   - Container PID 1: the simulator's own (ecssim.PID1Semantics): the task's command runs as
//     PID 1 of a PID namespace of its own with its own /proc, SIGTERM goes to that PID 1
//     only (as `docker stop` does) and SIGKILL to everything after the stop timeout. The
//     kernel then applies the real rules: a PID 1 without a TERM handler (a shell waiting for
//     its child) never sees the signal, and when PID 1 dies every process of the namespace is
//     SIGKILLed.
//   - initProcessEnabled: the simulator runs the command as `tini -- <command>` (what
//     docker --init runs, tini without -g) with the real tini as PID 1. With an init, a shell
//     that does not exec dies of the TERM tini hands it and tini exits at once with 128+15 =
//     143: Sidekiq is killed immediately instead of after the stop timeout, so the exit
//     code is 143, not 137 (unless a TERM trap keeps the shell alive: then 137). tini -g and
//     dumb-init in entryPoint run as given (the real programs as PID 1): with exec they stop
//     cleanly; in front of `sh -c "cd … && sidekiq"` (two cases built from the corpus's
//     good-tini-g and good-dumb-init-sh-exec by replacing their command) they signal Sidekiq
//     too, but exit with the shell at once and the kernel kills Sidekiq before it has
//     requeued its job.
//   - Nothing is emulated any more: the earlier stand-in (this binary re-executed as PID 1 of
//     new PID and mount namespaces, emulating docker --init) is gone; everything it showed
//     (PID 1's signal rules, a /proc of the namespace's own, the namespace dying with its
//     PID 1, tini's forward-then-exit) the simulator and the real tini now do.
//   - Substituted: the corpus's `bundle exec sidekiq [-C …] -t N …` becomes the harness's
//     Sidekiq command (testenv.SidekiqCommand, -t 2), `/app` becomes the repository folder
//     and an init given by absolute path in entryPoint (`/sbin/tini`) the one installed in
//     PATH; the stop timeout is 7 s of real time (>= 2 + 5, so only the signal path decides).
//
// Verdicts compared: check "broken" (an error-level signal-path finding) ⇔ the job was not
// pushed back to Redis, the process is still listed in `processes` and the task's exit code
// is the one in the table, 137 or 143 (which check's live evidence, SP013, then reports);
// check "ok" ⇔ Sidekiq logged "Pushed 1 jobs back", the job is back in queue:default, the
// process unlisted itself and the task exited 0. The SP002 warning (bash's last command of an
// and-list) is pinned to what this machine's bash does.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"mvdan.cc/sh/v3/syntax"

	"github.com/drainctl/drainctl/internal/check"
	"github.com/drainctl/drainctl/internal/ecs/ecssim"
	"github.com/drainctl/drainctl/internal/testenv"
)

// inits are the init programs the corpus names in entryPoint, by base name.
var inits = map[string]bool{"tini": true, "dumb-init": true}

// resolveInit replaces an init named in argv[0] by the one installed in PATH (the corpus
// says /sbin/tini, Debian installs /usr/bin/tini); the test is skipped when it is missing.
func resolveInit(t *testing.T, argv []string) []string {
	t.Helper()
	if len(argv) == 0 || !inits[filepath.Base(argv[0])] {
		return argv
	}
	p, err := exec.LookPath(filepath.Base(argv[0]))
	if err != nil {
		testenv.Missing(t, "%s: %v", filepath.Base(argv[0]), err)
	}
	return append([]string{p}, argv[1:]...)
}

// shellQuote quotes a word for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// substituteScript replaces the command that runs sidekiq in a shell script (keeping a
// leading exec) with the harness's Sidekiq argv, and /app with dir.
func substituteScript(t *testing.T, src string, sidekiq []string, dir string) string {
	t.Helper()
	src = strings.ReplaceAll(src, "/app", dir)
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(src), "")
	if err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	var found *syntax.CallExpr
	syntax.Walk(f, func(n syntax.Node) bool {
		if c, ok := n.(*syntax.CallExpr); ok && found == nil {
			for _, w := range c.Args {
				if filepath.Base(w.Lit()) == "sidekiq" {
					found = c
				}
			}
		}
		return found == nil
	})
	if found == nil {
		t.Fatalf("no sidekiq command in %q", src)
	}
	start := found.Args[0].Pos().Offset()
	if found.Args[0].Lit() == "exec" {
		start = found.Args[1].Pos().Offset()
	}
	var q []string
	for _, a := range sidekiq {
		q = append(q, shellQuote(a))
	}
	return src[:start] + strings.Join(q, " ") + src[found.End().Offset():]
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
			// The script starts Sidekiq itself: substitute there, and keep the command
			// (a script may dispatch on its first word).
			body = substituteScript(t, body, sidekiq, testenv.RepoRoot())
			if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
				t.Fatal(err)
			}
			return append([]string{p}, args[1:]...)
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
	// Refuse to run a meaningless proof where a task's command cannot be a container's PID 1.
	if !ecssim.PID1Semantics() {
		testenv.Missing(t, "PID namespaces for the simulator's task processes (root and util-linux unshare)")
	}
	type outcome string
	const (
		clean  outcome = "clean"  // Sidekiq got TERM: job pushed back, exit 0
		killed outcome = "killed" // Sidekiq was killed: job lost, exit 137 or 143 (see exit)
	)
	tests := []struct {
		corpus  string
		version testenv.SidekiqVersion
		want    outcome
		exit    int32 // the container's exit code ECS reports
		note    string
		// shell, when set, replaces the container's command with `sh -c shell` (a case built
		// from a corpus one, to run an init in front of a shell without exec).
		shell string
	}{
		{"good-exec-form", testenv.Sidekiq6, clean, 0, "", ""},
		{"sp003-no-init", testenv.Sidekiq6, clean, 0, "sh -c \"exec …\"", ""},
		{"good-init-process-ec2", testenv.Sidekiq6, clean, 0, "initProcessEnabled (tini) + sh -c \"cd && exec …\"", ""},
		{"good-tini-g", testenv.Sidekiq6, clean, 0, "entryPoint tini -g -- + exec form", ""},
		{"good-dumb-init-sh-exec", testenv.Sidekiq6, clean, 0, "entryPoint dumb-init -- + sh -c \"exec …\"", ""},
		{"good-entrypoint-exec", testenv.Sidekiq6, clean, 0, "entrypoint script with exec \"$@\"", ""},
		{"sp001-cd-semicolon", testenv.Sidekiq6, killed, 137, "sh -c \"cd; sidekiq\": TERM dropped, SIGKILL at the stop timeout", ""},
		{"sp001-and", testenv.Sidekiq6, killed, 143, "initProcessEnabled (tini) + sh -c \"cd && sidekiq\": the init does not save it", ""},
		// tini -g and dumb-init do signal Sidekiq too, but the shell dies of the same TERM,
		// the init exits with it and the kernel kills Sidekiq before it requeues its job.
		{"good-tini-g", testenv.Sidekiq6, killed, 143, "tini -g + sh -c \"cd && sidekiq\"", "cd /app && bundle exec sidekiq -t 40"},
		{"good-dumb-init-sh-exec", testenv.Sidekiq6, killed, 143, "dumb-init + sh -c \"cd && sidekiq\"", "cd /app && bundle exec sidekiq"},
		// Under initProcessEnabled: the script's TERM trap keeps its shell alive, so the
		// SIGKILL at the stop timeout ends it (137), not the init.
		{"sp005-trap-swallows", testenv.Sidekiq6, killed, 137, "initProcessEnabled + entrypoint script that traps TERM", ""},
		// Pinned to this machine's shells: dash does not exec a lone command (SP002 error),
		// bash does (SP002 info), and bash 5.2 execs the last of `a && b` (SP002 warning).
		{"sp002-lone-sh", testenv.Sidekiq6, killed, 143, "initProcessEnabled + dash, which keeps a lone command as a child", ""},
		{"sp002-bash-and", testenv.Sidekiq6, clean, 0, "bash 5.2 execs the last command of `a && b`", ""},
		{"good-bash-lone-command", testenv.Sidekiq6, clean, 0, "bash execs a lone command", ""},
		// An entry point script that dispatches on $1: the branch that runs Sidekiq decides.
		{"sp004-case-dispatch-no-exec", testenv.Sidekiq6, killed, 137, "case \"$1\" in sidekiq) bundle exec sidekiq \"$@\"", ""},
		{"good-case-dispatch-exec", testenv.Sidekiq6, clean, 0, "case \"$1\" in sidekiq) exec bundle exec sidekiq \"$@\"", ""},
		{"good-exec-form", testenv.Sidekiq7, clean, 0, "", ""},
		{"sp001-cd-semicolon", testenv.Sidekiq7, killed, 137, "", ""},
	}
	for _, tc := range tests {
		name := tc.corpus + "/" + string(tc.version)
		if tc.shell != "" {
			name = tc.corpus + "+sh-and/" + string(tc.version)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := loadCase(t, tc.corpus)
			if tc.shell != "" {
				for i := range in.TaskDefinition.Containers {
					in.TaskDefinition.Containers[i].Command = []string{"sh", "-c", tc.shell}
				}
			}
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
			argv := resolveInit(t, containerArgv(t, in, ctr, sk, t.TempDir()))
			initEnabled := ctr.InitProcessEnabled != nil && *ctr.InitProcessEnabled
			if _, err := exec.LookPath("tini"); initEnabled && err != nil {
				testenv.Missing(t, "tini for initProcessEnabled: %v", err)
			}
			t.Logf("check: %s; running %q (initProcessEnabled: %v)", verdict, argv, initEnabled)

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
				Containers: []ecssim.Container{{Name: c, Image: ctr.Image, InitProcessEnabled: ctr.InitProcessEnabled}}})
			if err != nil {
				t.Fatal(err)
			}
			if err := sim.CreateService(ecssim.ServiceSpec{Cluster: "c", Name: "worker", TaskDefinition: tdARN, DesiredCount: 1,
				Process: &ecssim.ProcessTemplate{Argv: argv, Env: env, Dir: testenv.RepoRoot(),
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
				sp013 = sp013 || f.Code == check.CodeShutdownsKilled
			}
			t.Logf("%s %s (%s): exit %d, requeued %v, %q logged %v", tc.corpus, tc.version, tc.note, exit, requeued, "Pushed 1 jobs back", pushed)

			switch tc.want {
			case clean:
				if exit != 0 || !requeued || !pushed || listed || sp013 {
					t.Errorf("want a clean stop (exit 0, job pushed back, process unlisted, no SP013); got exit %d, requeued %v, pushed %v, listed %v, SP013 %v",
						exit, requeued, pushed, listed, sp013)
				}
			case killed:
				if exit != tc.exit || requeued || pushed || !listed || !sp013 {
					t.Errorf("want Sidekiq killed (exit %d, job lost, process still listed, SP013); got exit %d, requeued %v, pushed %v, listed %v, SP013 %v",
						tc.exit, exit, requeued, pushed, listed, sp013)
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
