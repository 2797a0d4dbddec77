package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/ecs/ecssim"
	"github.com/drainctl/drainctl/internal/sidekiq"
	"github.com/drainctl/drainctl/internal/testenv"
	"github.com/redis/go-redis/v9"
	"github.com/rogpeppe/go-internal/testscript"
)

// TestScripts runs the CLI contract (testdata/script/*.txtar): every command's bad input and
// the documented exit codes, each with its one-line message, against a real Redis and the ECS
// simulator through the SDK. The exit codes that need running Sidekiq jobs (3, 4, 5, 130) are
// held by TestFleet and internal/e2e.
func TestScripts(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
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
	if _, err := sim.RegisterTaskDefinition(ecssim.TaskDefinition{Family: "other", RequiresCompatibilities: []string{"FARGATE"},
		Containers: []ecssim.Container{{Name: "sidekiq", Image: "app:1", Command: []string{"bundle", "exec", "sidekiq"}, StopTimeout: &stop}}}); err != nil {
		t.Fatal(err)
	}
	badTD, err := sim.RegisterTaskDefinition(ecssim.TaskDefinition{Family: "badfam", RequiresCompatibilities: []string{"FARGATE"},
		Containers: []ecssim.Container{{Name: "sidekiq", Image: "app:1", Command: []string{"bundle", "exec", "sidekiq", "-t", "3"}, StopTimeout: &stop}}})
	if err != nil {
		t.Fatal(err)
	}
	breaker := &ecssim.CircuitBreaker{Enable: true, Rollback: true}
	for _, spec := range []ecssim.ServiceSpec{
		{Cluster: "prod", Name: "ov", TaskDefinition: td, DesiredCount: 1, CircuitBreaker: breaker},
		{Cluster: "prod", Name: "bad", TaskDefinition: badTD, DesiredCount: 1, CircuitBreaker: breaker},
		{Cluster: "prod", Name: "worker", TaskDefinition: td, DesiredCount: 1, CircuitBreaker: breaker},
		{Cluster: "prod", Name: "locked", TaskDefinition: td, DesiredCount: 1, CircuitBreaker: breaker},
		{Cluster: "prod", Name: "legacy", TaskDefinition: td, DesiredCount: 1, DeploymentController: "CODE_DEPLOY"},
		{Cluster: "prod", Name: "idle", TaskDefinition: td, DesiredCount: 0, CircuitBreaker: breaker},
	} {
		if err := sim.CreateService(spec); err != nil {
			t.Fatal(err)
		}
	}
	rdb := r.Client(t)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			e.Setenv("DRAINCTL_TEST_REDIS_URL", r.URL())
			e.Setenv("AWS_ENDPOINT_URL_ECS", sim.URL())
			e.Setenv("AWS_REGION", "us-east-1")
			e.Setenv("AWS_ACCESS_KEY_ID", "test")
			e.Setenv("AWS_SECRET_ACCESS_KEY", "test")
			e.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			e.Setenv("NO_COLOR", "1")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// exits N args...: run drainctl and require exit code N; stdout and stderr are
			// kept for the next assertions.
			"exits": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 1 {
					ts.Fatalf("usage: exits CODE [drainctl args...]")
				}
				want, err := strconv.Atoi(args[0])
				if err != nil {
					ts.Fatalf("exits: %v", err)
				}
				err = ts.Exec("drainctl", args[1:]...)
				got := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					got = ee.ExitCode()
				} else if err != nil {
					ts.Fatalf("drainctl: %v", err)
				}
				if got != want {
					ts.Fatalf("drainctl exited %d, want %d", got, want)
				}
			},
			// hold-lock NAME: another live run holds the deploy lock NAME (this test process
			// plays it, so the holder's PID is alive).
			"hold-lock": func(ts *testscript.TestScript, neg bool, args []string) {
				cl := sidekiq.NewClient(rdb, "")
				owner := sidekiq.LockOwner{Owner: "ci/run/41", Host: "build-host-7", PID: os.Getpid(), StartedAt: time.Now()}
				if _, err := cl.AcquireLock(context.Background(), args[0], owner, time.Minute); err != nil {
					ts.Fatalf("hold-lock: %v", err)
				}
			},
			// sidekiq-beat HOST [VERSION]: an idle Sidekiq process (7.3.2 unless told) on HOST
			// heartbeats once, as Sidekiq writes it; it never acknowledges a signal.
			"sidekiq-beat": func(ts *testscript.TestScript, neg bool, args []string) {
				beat(ts, rdb, args...)
			},
			// task-process SERVICE: a Sidekiq process heartbeats from the service's running task
			// (its hostname is the task's ip-a-b-c-d), so the default selection holds it.
			"task-process": func(ts *testscript.TestScript, neg bool, args []string) {
				deadline := time.Now().Add(20 * time.Second)
				for {
					for _, ti := range sim.Tasks("prod", args[0]) {
						if ti.LastStatus == "RUNNING" && ti.PrivateIPv4 != "" {
							beat(ts, rdb, "ip-"+strings.ReplaceAll(ti.PrivateIPv4, ".", "-"))
							return
						}
					}
					if time.Now().After(deadline) {
						ts.Fatalf("task-process: no running task of %s", args[0])
					}
					time.Sleep(50 * time.Millisecond)
				}
			},
			// fail-revision: registers badfam's next revision, whose tasks fail to start, as $BAD_TD.
			"fail-revision": func(ts *testscript.TestScript, neg bool, args []string) {
				arn, err := sim.RegisterTaskDefinition(ecssim.TaskDefinition{Family: "badfam", RequiresCompatibilities: []string{"FARGATE"},
					Containers: []ecssim.Container{{Name: "sidekiq", Image: "app:2", Command: []string{"bundle", "exec", "sidekiq", "-t", "3"}, StopTimeout: &stop}}})
				if err != nil {
					ts.Fatalf("fail-revision: %v", err)
				}
				sim.FailTaskStarts(arn, true)
				ts.Setenv("BAD_TD", arn)
			},
			// no-protection SERVICE: fails when a task of the service is scale-in protected.
			"no-protection": func(ts *testscript.TestScript, neg bool, args []string) {
				for _, ti := range sim.Tasks("prod", args[0]) {
					if ti.Protected {
						ts.Fatalf("task %s of %s is still protected", ti.ID, args[0])
					}
				}
			},
			// interrupted CODE PATTERN args...: run drainctl, send it SIGINT once a line of its
			// stderr matches PATTERN (a fixed delay raced its start-up under load), and require
			// exit code CODE; stdout and stderr are kept for the next assertions.
			"interrupted": func(ts *testscript.TestScript, neg bool, args []string) {
				want, err := strconv.Atoi(args[0])
				if err != nil {
					ts.Fatalf("interrupted: %v", err)
				}
				ready, err := regexp.Compile(args[1])
				if err != nil {
					ts.Fatalf("interrupted: %v", err)
				}
				cmd := exec.Command("drainctl", args[2:]...)
				cmd.Dir = ts.Getenv("WORK")
				for _, kv := range []string{"PATH", "REDIS_URL", "HOME", "NO_COLOR", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
					"AWS_ENDPOINT_URL_ECS", "AWS_EC2_METADATA_DISABLED"} {
					cmd.Env = append(cmd.Env, kv+"="+ts.Getenv(kv))
				}
				var out, errb strings.Builder
				cmd.Stdout = &out
				pr, pw := io.Pipe()
				cmd.Stderr = pw
				if err := cmd.Start(); err != nil {
					ts.Fatalf("interrupted: %v", err)
				}
				seen := make(chan struct{})
				copied := make(chan struct{})
				go func() {
					defer close(copied)
					sc := bufio.NewScanner(pr)
					matched := false
					for sc.Scan() {
						errb.WriteString(sc.Text() + "\n")
						if !matched && ready.MatchString(sc.Text()) {
							matched = true
							close(seen)
						}
					}
					_, _ = io.Copy(io.Discard, pr)
				}()
				select {
				case <-seen:
					_ = cmd.Process.Signal(os.Interrupt)
				case <-time.After(time.Minute):
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
					pw.Close()
					<-copied
					ts.Fatalf("interrupted: no stderr line matched %q within a minute:\n%s", args[1], errb.String())
				}
				err = cmd.Wait()
				pw.Close()
				<-copied
				got := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					got = ee.ExitCode()
				}
				ts.Logf("[stderr]\n%s", errb.String())
				// Hand the output to the next stdout/stderr assertions.
				_ = ts.Exec("sh", "-c", `printf '%s' "$1"; printf '%s' "$2" >&2`, "sh", out.String(), errb.String())
				if got != want {
					ts.Fatalf("drainctl exited %d after SIGINT, want %d", got, want)
				}
			},
			// sleep DURATION: let a background drainctl get going.
			"sleep": func(ts *testscript.TestScript, neg bool, args []string) {
				d, err := time.ParseDuration(args[0])
				if err != nil {
					ts.Fatalf("sleep: %v", err)
				}
				time.Sleep(d)
			},
			// redis-sadd KEY MEMBER: add to a set (a foreign namespace's Sidekiq process set).
			"redis-sadd": func(ts *testscript.TestScript, neg bool, args []string) {
				if err := rdb.SAdd(context.Background(), args[0], args[1]).Err(); err != nil {
					ts.Fatalf("redis-sadd: %v", err)
				}
			},
		},
	})
}

// beat writes one heartbeat of an idle Sidekiq process on host (identity host:1:0123456789ab)
// as Sidekiq does: registry, heartbeat hash, TTL.
func beat(ts *testscript.TestScript, rdb *redis.Client, args ...string) {
	host, version := args[0], "7.3.2"
	if len(args) > 1 {
		version = args[1]
	}
	id := host + ":1:0123456789ab"
	info := fmt.Sprintf(`{"hostname":%q,"started_at":%d,"pid":1,"tag":"app","concurrency":5,"queues":["default"],"weights":[{"default":0}],"labels":[],"identity":%q,"version":%q,"embedded":false}`,
		host, time.Now().Unix(), id, version)
	ctx := context.Background()
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, "processes", id)
		p.HSet(ctx, id, "info", info, "busy", 0, "beat", fmt.Sprintf("%.3f", float64(time.Now().UnixMilli())/1000), "quiet", "false", "rss", 0, "rtt_us", 0)
		p.Expire(ctx, id, time.Minute)
		return nil
	})
	if err != nil {
		ts.Fatalf("beat: %v", err)
	}
}
