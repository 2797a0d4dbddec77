package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/ecs/ecssim"
	"github.com/drainctl/drainctl/internal/stack"
)

// (h) Bad input is refused before anything changes: one error line on stderr, exit 2, no
// process quieted (no quiet flag, no signal waiting), no deployment, and no password printed.
func TestDeployBadInputs(t *testing.T) {
	t.Parallel()
	const password = "s3cret-pw-4e2e"
	const wrongPassword = "wr0ng-pw-4e2e"
	s := startStack(t, stack.Options{Tasks: 1, RedisPassword: password})
	// A service under CodeDeploy: drainctl must refuse to force a deployment of it.
	if err := s.Sim.CreateService(ecssim.ServiceSpec{
		Cluster: s.Opts.Cluster, Name: "bluegreen", TaskDefinition: s.TaskDefinitionARN,
		DesiredCount: 1, DeploymentController: "CODE_DEPLOY",
	}); err != nil {
		t.Fatalf("create CODE_DEPLOY service: %v", err)
	}
	closedPort, err := freeClosedPort()
	must(t, err)
	addr := s.Redis.Addr
	cluster, service := s.Opts.Cluster, s.Opts.Service

	redisArgs := func(url string) []string {
		return []string{"--redis-url", url, "--cluster", cluster, "--service", service}
	}
	tests := []struct {
		name string
		args []string
		// want: the error line names the problem (any of these, case-insensitive).
		want []string
	}{
		{"malformed Redis URL", redisArgs("redis//" + addr), []string{"redis"}},
		{"unsupported Redis URL scheme", redisArgs("http://" + addr), []string{"redis", "scheme"}},
		{"unreachable Redis", redisArgs(fmt.Sprintf("redis://:%s@127.0.0.1:%d/0", password, closedPort)), []string{"redis", "connect", "refused"}},
		{"wrong Redis password", redisArgs(fmt.Sprintf("redis://:%s@%s/0", wrongPassword, addr)), []string{"password", "auth"}},
		{"unknown cluster", []string{"--cluster", "no-such-cluster", "--service", service}, []string{"no-such-cluster"}},
		{"unknown service", []string{"--cluster", cluster, "--service", "no-such-service"}, []string{"no-such-service"}},
		{"CODE_DEPLOY service", []string{"--cluster", cluster, "--service", "bluegreen"}, []string{"code_deploy", "codedeploy"}},
		{"empty selection", []string{"--cluster", cluster, "--service", service, "--tag", "no-such-tag"}, []string{"select", "no process", "no sidekiq"}},
		{"bad drain timeout", []string{"--cluster", cluster, "--service", service, "--drain-timeout", "soon"}, []string{"drain-timeout", "soon"}},
		{"bad on-timeout policy", []string{"--cluster", cluster, "--service", service, "--on-timeout", "pray"}, []string{"on-timeout", "pray"}},
	}
	// The control: the same stack and flags with good input pass preflight (a dry run changes
	// nothing either), so the refusals above are about their input, not about the setup.
	t.Run("control: valid dry run", func(t *testing.T) {
		t.Parallel()
		p := run(t, s, "deploy", "--poll-interval", "200ms", "--no-color", "--dry-run", "--output", "json", "--cluster", cluster, "--service", service)
		r := p.report(t)
		if p.code != 0 || r.Outcome != "dry_run" || !r.DryRun {
			t.Errorf("dry run: exit %d outcome %q dry_run %v (error %q), want 0 dry_run", p.code, r.Outcome, r.DryRun, r.Error)
		}
		if len(r.Processes) != 1 {
			t.Errorf("dry run selected %d processes, want the task's 1", len(r.Processes))
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"deploy", "--poll-interval", "200ms", "--no-color"}, tc.args...)
			p := run(t, s, args...)
			if p.code != 2 {
				t.Errorf("exit %d, want 2", p.code)
			}
			var errLines []string
			for _, l := range strings.Split(p.stderr.String(), "\n") {
				if strings.HasPrefix(l, "drainctl: error:") {
					errLines = append(errLines, l)
				}
			}
			if len(errLines) != 1 {
				t.Errorf("stderr has %d 'drainctl: error:' lines, want 1:\n%s", len(errLines), p.stderr.String())
			} else if !containsAny(strings.ToLower(errLines[0]), tc.want) {
				t.Errorf("error line %q names none of %q", errLines[0], tc.want)
			}
			for _, pw := range []string{password, wrongPassword} {
				if strings.Contains(p.stderr.String()+p.stdout.String(), pw) {
					t.Errorf("a Redis password appears in the output:\n%s\n%s", p.stderr.String(), p.stdout.String())
				}
			}
		})
	}
	// After every run (the subtests above are parallel: this runs once they all ended).
	t.Cleanup(func() {
		ctx := ctxFor(t, 10*time.Second)
		touched, err := s.Touched(ctx)
		if err != nil || len(touched) != 0 {
			t.Errorf("processes quiet or signalled after refused runs: %v (%v)", touched, err)
		}
		if n := s.Sim.Calls("UpdateService"); n != 0 {
			t.Errorf("UpdateService called %d times", n)
		}
		if n := s.Sim.Calls("StopTask"); n != 0 {
			t.Errorf("StopTask called %d times", n)
		}
		locks, err := s.RDB.Keys(ctx, "*lock*").Result()
		if err != nil || len(locks) != 0 {
			t.Errorf("lock keys left behind: %v (%v)", locks, err)
		}
	})
}

// freeClosedPort is a loopback port nothing listens on (free a moment ago).
func freeClosedPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, strings.ToLower(sub)) {
			return true
		}
	}
	return false
}
