package ecssim_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/drainctl/drainctl/internal/ecs/ecssim"
	"github.com/drainctl/drainctl/internal/testenv"
)

// TestSidekiqTask runs a real Sidekiq as a task: it must register in Redis under the task's
// hostname and stop cleanly on the SIGTERM of StopTask (Sidekiq exits 0), unless the signal
// path is broken: then only the SIGKILL after the stop timeout ends it (137).
func TestSidekiqTask(t *testing.T) {
	t.Parallel()
	type tcase struct {
		name        string
		v           testenv.SidekiqVersion
		broken      bool
		stopTimeout time.Duration
		wantExit    int32
	}
	var tests []tcase
	for _, v := range testenv.Versions {
		tests = append(tests, tcase{string(v) + " exec form", v, false, 10 * time.Second, 0})
	}
	tests = append(tests, tcase{"7.3.2 broken signal path", testenv.Sidekiq7, true, 2 * time.Second, 137})
	for _, tc := range tests {
		v := tc.v
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := testenv.StartRedis(t)
			argv, env, err := testenv.SidekiqCommand(testenv.SidekiqOptions{Version: v, RedisURL: r.URL(), Timeout: 3})
			if err != nil {
				testenv.Missing(t, "%v", err)
			}
			logDir := t.TempDir()
			s := startSim(t, ecssim.Options{})
			setup(t, s, ecssim.ServiceSpec{DesiredCount: 1, Process: &ecssim.ProcessTemplate{
				Argv: argv, Env: env, Dir: testenv.RepoRoot(), HostnameEnv: "DYNO",
				StopTimeout: tc.stopTimeout, LogDir: logDir, BrokenSignalPath: tc.broken,
			}})
			api := client(s, 3)
			ti := runningTask(t, s)
			t.Cleanup(func() {
				if t.Failed() {
					b, _ := os.ReadFile(filepath.Join(logDir, ti.ID+".log"))
					t.Logf("task log:\n%s", b)
				}
			})
			rdb := r.Client(t)
			var identity string
			waitFor(t, 30*time.Second, "Sidekiq to register", func() bool {
				ids, _ := rdb.SMembers(context.Background(), "processes").Result()
				for _, id := range ids {
					if strings.HasPrefix(id, ti.Hostname+":") {
						identity = id
						return true
					}
				}
				return false
			})
			if !strings.HasPrefix(ti.Hostname, "ip-10-0-") {
				t.Errorf("hostname %q is not ip-10-0-x-y", ti.Hostname)
			}
			t.Logf("sidekiq %s registered as %s in task %s (%s)", v, identity, ti.ID, ti.PrivateIPv4)
			if _, err := api.StopTask(ctxT(t), &awsecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(ti.ARN), Reason: aws.String("deploy")}); err != nil {
				t.Fatalf("stop task: %v", err)
			}
			tk := stoppedTask(t, api, ti.ARN, 15*time.Second)
			if code := tk.Containers[0].ExitCode; code == nil || *code != tc.wantExit {
				t.Errorf("sidekiq exit code = %v, want %d", code, tc.wantExit)
			}
			took := tk.StoppedAt.Sub(*tk.StoppingAt)
			if !tc.broken && took >= tc.stopTimeout {
				t.Errorf("sidekiq took %s to stop: it was SIGKILLed", took)
			}
			if tc.broken && took < tc.stopTimeout-10*time.Millisecond {
				t.Errorf("sidekiq stopped after %s, before the SIGKILL at %s: it heard the SIGTERM", took, tc.stopTimeout)
			}
			if !gone(ti.PID) {
				t.Errorf("process group %d survived", ti.PID)
			}
			// A clean stop unregisters; a SIGKILL leaves the entry for its heartbeat to expire.
			if n, _ := rdb.SIsMember(context.Background(), "processes", identity).Result(); n != tc.broken {
				t.Errorf("%s registered after the stop: %v, want %v", identity, n, tc.broken)
			}
		})
	}
}
