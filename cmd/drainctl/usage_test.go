package main

import (
	"bytes"
	"context"
	"github.com/drainctl/drainctl/internal/exitcode"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs drainctl in-process with only the given environment and returns the exit
// code, stdout and stderr.
func runCLI(t *testing.T, envs map[string]string, args ...string) (int, string, string) {
	t.Helper()
	return runCLICtx(context.Background(), t, envs, args...)
}

// runCLICtx is runCLI with a context, cancelled to play drainctl's own SIGINT.
func runCLICtx(ctx context.Context, t *testing.T, envs map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return envs[k] }
	code := run(ctx, append([]string{"drainctl"}, args...), &out, &errb, getenv)
	return code, out.String(), errb.String()
}

// assertOneLineError checks the CLI's error contract: nothing on stdout, one error line
// containing want, at most one hint line, nothing else.
func assertOneLineError(t *testing.T, stdout, stderr, want string) {
	t.Helper()
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "drainctl: error: ") {
		t.Fatalf("stderr = %q, want a first line starting with 'drainctl: error: '", stderr)
	}
	if !strings.Contains(lines[0], want) {
		t.Errorf("error line = %q, want it to contain %q", lines[0], want)
	}
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "drainctl: hint: ") {
			t.Errorf("unexpected stderr line %q", l)
		}
	}
	if len(lines) > 2 {
		t.Errorf("stderr has %d lines, want at most 2: %q", len(lines), stderr)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	url := map[string]string{"DRAINCTL_REDIS_URL": "redis://127.0.0.1:1"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown command", nil, []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", url, []string{"status", "--frob"}, "unknown flag --frob"},
		{"positional argument", url, []string{"status", "extra"}, `unexpected argument "extra"`},
		{"all with selector", url, []string{"quiet", "--all", "--tag", "a"}, "--all cannot be combined"},
		{"no selector", url, []string{"drain"}, "no processes selected"},
		{"bad hostname regexp", url, []string{"quiet", "--hostname", "(", "--all"}, "--hostname \"(\": not a regular expression"},
		{"bad output", url, []string{"status", "--output", "yaml"}, `--output: unknown format "yaml": use text, json or markdown`},
		{"bad output from env", map[string]string{"DRAINCTL_REDIS_URL": "redis://127.0.0.1:1", "DRAINCTL_OUTPUT": "yaml"}, []string{"status"}, `unknown format "yaml"`},
		{"bad report extension", url, []string{"status", "--report", "out.pdf"}, `--report "out.pdf": unknown extension`},
		{"bad log format", url, []string{"status", "--log-format", "xml"}, `--log-format "xml"`},
		{"drain on-timeout deploy", url, []string{"drain", "--all", "--on-timeout", "deploy"}, "drain has no deploy step"},
		{"drain on-timeout bad", url, []string{"drain", "--all", "--on-timeout", "later"}, `--on-timeout "later"`},
		{"drain zero timeout", url, []string{"drain", "--all", "--drain-timeout", "0s"}, "--drain-timeout must be positive"},
		{"duration from env", map[string]string{"DRAINCTL_REDIS_URL": "redis://127.0.0.1:1", "DRAINCTL_DRAIN_TIMEOUT": "soon"}, []string{"drain", "--all"}, `DRAINCTL_DRAIN_TIMEOUT="soon": not a duration`},
		{"deploy without service", url, []string{"deploy"}, "--cluster and --service are required"},
		{"deploy without cluster", url, []string{"deploy", "--service", "worker"}, "--cluster is required with --service"},
		{"deploy without service flag", url, []string{"deploy", "--cluster", "prod"}, "--service is required with --cluster"},
		{"deploy on-timeout bad", url, []string{"deploy", "--cluster", "c", "--service", "s", "--on-timeout", "maybe"}, `--on-timeout "maybe": must be one of deploy, stop, fail`},
		{"deploy rollout failure bad", url, []string{"deploy", "--cluster", "c", "--service", "s", "--on-rollout-failure", "retry"}, `--on-rollout-failure "retry"`},
		{"deploy service twice", url, []string{"deploy", "--cluster", "c", "--service", "s", "--service", "s"}, `--service "s" given twice`},
		{"missing redis url", nil, []string{"status"}, "no Redis URL"},
		{"redis url scheme", nil, []string{"status", "--redis-url", "http://localhost"}, "scheme"},
		{"redis url port", nil, []string{"status", "--redis-url", "redis://:pw@localhost:99999"}, "port"},
		{"redis url db", nil, []string{"status", "--redis-url", "redis://localhost/abc"}, "database"},
		{"sentinel without master", nil, []string{"status", "--redis-sentinel", "h:26379"}, "--redis-sentinel needs --redis-sentinel-master"},
		{"master without sentinel", nil, []string{"status", "--redis-sentinel-master", "mymaster"}, "needs at least one --redis-sentinel"},
		{"redis unreachable", nil, []string{"status", "--redis-url", "redis://:s3cret@127.0.0.1:1"}, "redis://:xxxxx@127.0.0.1:1"},
		{"redis unreachable quiet", nil, []string{"quiet", "--all", "--redis-url", "redis://:s3cret@127.0.0.1:1"}, "connection refused"},
		{"rescue negative wait", url, []string{"rescue", "--wait", "-1s"}, "--wait must not be negative"},
		{"check nothing", nil, []string{"check"}, "nothing to check"},
		{"check missing file", nil, []string{"check", "--task-definition-file", "/nonexistent/td.json"}, "no such file"},
		{"check launch type", nil, []string{"check", "--task-definition-file", "x.json", "--launch-type", "LAMBDA"}, `--launch-type "LAMBDA"`},
		{"check not json", nil, []string{"check", "--task-definition-file", "usage_test.go"}, "usage_test.go: not a JSON object"},
		{"check unknown container", nil, []string{"check", "--task-definition-file", corpus("good-exec-form"), "--container", "nope"}, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, tt.env, tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr %q", code, exitUsage, stderr)
			}
			assertOneLineError(t, stdout, stderr, tt.want)
			if strings.Contains(stderr, "s3cret") {
				t.Errorf("stderr shows the password: %q", stderr)
			}
		})
	}
}

func corpus(name string) string {
	return filepath.Join("..", "..", "testdata", "taskdefs", name, "taskdef.json")
}

func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	code, out, errs := runCLI(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "drainctl ") || errs != "" {
		t.Errorf("version: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, _ = runCLI(t, nil, "--help")
	// The help text prints the one exit-code table (README.md's is tested in internal/exitcode).
	if code != 0 || !strings.Contains(out, exitcode.Help()) || !strings.Contains(out, "rescue") {
		t.Errorf("--help: exit %d, stdout %q", code, out)
	}
	code, out, _ = runCLI(t, nil, "rescue", "--help")
	if code != 0 || !strings.Contains(out, "What it cannot find") {
		t.Errorf("rescue --help: exit %d, stdout %q", code, out)
	}
}

// TestBinary builds the real binary (as the e2e tests do) and checks that flags after the
// command name and DRAINCTL_ variables work there, with the process's own environment.
func TestBinary(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "drainctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "status", "--output", "yaml")
	cmd.Env = append(os.Environ(), "DRAINCTL_REDIS_URL=redis://127.0.0.1:1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitUsage {
		t.Fatalf("exit = %v, want %d; stderr %q", err, exitUsage, errb.String())
	}
	assertOneLineError(t, out.String(), errb.String(), `unknown format "yaml"`)

	cmd = exec.Command(bin, "check", "--task-definition-file", corpus("sp001-and"), "--output", "json")
	cmd.Stdout, cmd.Stderr = &out, &errb
	out.Reset()
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitCheckFindings {
		t.Fatalf("check sp001-and: exit = %v, want %d; stderr %q", err, exitCheckFindings, errb.String())
	}
	if !strings.Contains(out.String(), `"schema": "drainctl/v2"`) || !strings.Contains(out.String(), `"kind": "check"`) {
		t.Errorf("check JSON output lacks the schema: %s", out.String())
	}
}
