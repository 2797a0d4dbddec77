package action

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/exitcode"
	"github.com/drainctl/drainctl/internal/stack"
	"github.com/drainctl/drainctl/internal/testenv"
)

// testVersion is stamped into the drainctl TestMain builds and asked for by the tests, so the
// script's install step finds it on PATH.
const testVersion = "v0.0.0-actiontest"

// binDir holds the drainctl TestMain built.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "drainctl-action-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "action:", err)
		os.Exit(1)
	}
	binDir = dir
	if err := build(filepath.Join(dir, "drainctl")); err != nil {
		fmt.Fprintln(os.Stderr, "action: build ./cmd/drainctl:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles ./cmd/drainctl with testVersion stamped the way .goreleaser.yaml stamps a
// release (internal/version).
func build(out string) error {
	ldflags := "-X github.com/drainctl/drainctl/internal/version.version=" + testVersion
	cmd := exec.Command("go", "build", "-ldflags", ldflags, "-o", out, "./cmd/drainctl")
	cmd.Dir = testenv.RepoRoot()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, stderr.String())
	}
	return nil
}

func script() string { return filepath.Join(testenv.RepoRoot(), "scripts", "action.sh") }

// pathWithout is PATH without any folder that has a drainctl, with dir first when given.
func pathWithout(dir string) string {
	var keep []string
	if dir != "" {
		keep = append(keep, dir)
	}
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(d, "drainctl")); err == nil {
			continue
		}
		keep = append(keep, d)
	}
	return strings.Join(keep, string(os.PathListSeparator))
}

// baseEnv is the process environment without what could steer the script or drainctl
// (GitHub's, the runner's, drainctl's and the inputs' variables), with PATH replaced.
func baseEnv(path string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "GITHUB_"), strings.HasPrefix(k, "RUNNER_"), strings.HasPrefix(k, "INPUT_"),
			strings.HasPrefix(k, "DRAINCTL_") && k != "DRAINCTL_REQUIRE_INTEGRATION",
			k == "ACTION_REF", k == "PATH", k == "REDIS_URL":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PATH="+path)
}

// result is one run of the script.
type result struct {
	code           int
	stdout, stderr string
}

// runScript runs scripts/action.sh with env (the whole environment) and args.
func runScript(t *testing.T, env []string, timeout time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script()}, args...)...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run action.sh %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("action.sh %v did not end within %s\nstderr:\n%s", args, timeout, r.stderr)
	}
	return r
}

func TestAssetName(t *testing.T) {
	tests := []struct {
		os, arch, version, actionRef string
		want                         string // "" = no release binary: exit 2
	}{
		{os: "Linux", arch: "X64", version: "v1.2.3", want: "drainctl_1.2.3_linux_amd64.tar.gz"},
		{os: "Linux", arch: "ARM64", version: "v1.2.3", want: "drainctl_1.2.3_linux_arm64.tar.gz"},
		{os: "macOS", arch: "X64", version: "v1.2.3", want: "drainctl_1.2.3_darwin_amd64.tar.gz"},
		{os: "macOS", arch: "ARM64", version: "v1.2.3", want: "drainctl_1.2.3_darwin_arm64.tar.gz"},
		{os: "Linux", arch: "X64", actionRef: "v2.0.0-rc.1", want: "drainctl_2.0.0-rc.1_linux_amd64.tar.gz"},
		{os: "Linux", arch: "X64", version: "v1.0.0", actionRef: "v2.0.0", want: "drainctl_1.0.0_linux_amd64.tar.gz"},
		{os: "Windows", arch: "X64", version: "v1.2.3"},
		{os: "Linux", arch: "X86", version: "v1.2.3"},
		{os: "Linux", arch: "ARM", version: "v1.2.3"},
		{os: "", arch: "", version: "v1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.os+"/"+tt.arch+"/"+tt.version+tt.actionRef, func(t *testing.T) {
			env := append(baseEnv(pathWithout("")), "RUNNER_OS="+tt.os, "RUNNER_ARCH="+tt.arch,
				"INPUT_VERSION="+tt.version, "ACTION_REF="+tt.actionRef)
			r := runScript(t, env, 10*time.Second, "asset-name")
			if tt.want == "" {
				if r.code != 2 || !strings.Contains(r.stderr, "no release binary") {
					t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 naming no release binary", r.code, r.stdout, r.stderr)
				}
				return
			}
			if r.code != 0 || strings.TrimSpace(r.stdout) != tt.want {
				t.Errorf("exit %d, asset %q (stderr %q), want %q", r.code, strings.TrimSpace(r.stdout), r.stderr, tt.want)
			}
		})
	}
}

func TestInstallPlan(t *testing.T) {
	const server = "http://127.0.0.1:9"
	tests := []struct {
		name, path, version, actionRef, os, arch string
		want                                     string
	}{
		{name: "the wanted version on PATH", path: binDir, version: testVersion,
			want: "path " + filepath.Join(binDir, "drainctl")},
		{name: "the wanted version without the v", path: binDir, version: strings.TrimPrefix(testVersion, "v"),
			want: "path " + filepath.Join(binDir, "drainctl")},
		{name: "latest takes any drainctl on PATH", path: binDir,
			want: "path " + filepath.Join(binDir, "drainctl")},
		{name: "another version on PATH: the release asset", path: binDir, version: "v1.2.3", os: "macOS", arch: "ARM64",
			want: "download " + server + "/drainctl/drainctl/releases/download/v1.2.3/drainctl_1.2.3_darwin_arm64.tar.gz"},
		{name: "none on PATH, the action's ref", actionRef: "v1.2.3", os: "Linux", arch: "X64",
			want: "download " + server + "/drainctl/drainctl/releases/download/v1.2.3/drainctl_1.2.3_linux_amd64.tar.gz"},
		{name: "no release binary for the platform", version: "v1.2.3", os: "Windows", arch: "X64",
			want: "go-install github.com/drainctl/drainctl/cmd/drainctl@v1.2.3"},
		{name: "a branch", actionRef: "main", os: "Linux", arch: "X64",
			want: "go-install github.com/drainctl/drainctl/cmd/drainctl@main"},
		{name: "nothing at all", os: "Linux", arch: "X64",
			want: "go-install github.com/drainctl/drainctl/cmd/drainctl@latest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := append(baseEnv(pathWithout(tt.path)), "RUNNER_OS="+tt.os, "RUNNER_ARCH="+tt.arch,
				"INPUT_VERSION="+tt.version, "ACTION_REF="+tt.actionRef, "GITHUB_SERVER_URL="+server)
			r := runScript(t, env, 10*time.Second, "install-plan")
			if r.code != 0 || strings.TrimSpace(r.stdout) != tt.want {
				t.Errorf("exit %d, plan %q (stderr %q), want %q", r.code, strings.TrimSpace(r.stdout), r.stderr, tt.want)
			}
		})
	}
}

func TestDeployArgs(t *testing.T) {
	tests := []struct {
		name   string
		inputs []string
		want   []string // nil: exit 2
	}{
		{
			name:   "services newline- and comma-separated, blanks ignored",
			inputs: []string{"INPUT_CLUSTER=prod", "INPUT_SERVICE=worker, mailer\n  low \n\n,"},
			want:   []string{"deploy", "--cluster", "prod", "--service", "worker", "--service", "mailer", "--service", "low"},
		},
		{
			name: "every input",
			inputs: []string{"INPUT_CLUSTER=prod", "INPUT_SERVICE=worker", "INPUT_TASK_DEFINITION=worker:8",
				"INPUT_STRATEGY=overlap", "INPUT_DRAIN_TIMEOUT=5m", "INPUT_EXIT_TIMEOUT=2m", "INPUT_ON_TIMEOUT=stop",
				"INPUT_DRY_RUN=true", "INPUT_EXTRA_ARGS=--strict\n  --rollout-timeout 20m *", "INPUT_REDIS_URL=redis://:pw@r:6379/0"},
			want: []string{"deploy", "--cluster", "prod", "--service", "worker", "--task-definition", "worker:8",
				"--strategy", "overlap", "--drain-timeout", "5m", "--exit-timeout", "2m", "--on-timeout", "stop",
				"--dry-run", "--strict", "--rollout-timeout", "20m", "*"},
		},
		{
			name:   "dry-run false",
			inputs: []string{"INPUT_CLUSTER=prod", "INPUT_SERVICE=worker", "INPUT_DRY_RUN=false"},
			want:   []string{"deploy", "--cluster", "prod", "--service", "worker"},
		},
		{name: "no service", inputs: []string{"INPUT_CLUSTER=prod", "INPUT_SERVICE= ,\n"}},
		{name: "no cluster", inputs: []string{"INPUT_SERVICE=worker"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runScript(t, append(baseEnv(pathWithout("")), tt.inputs...), 10*time.Second, "deploy-args")
			if tt.want == nil {
				if r.code != 2 || !strings.Contains(r.stderr, "::error::") {
					t.Errorf("exit %d, stderr %q; want exit 2 with an ::error:: line", r.code, r.stderr)
				}
				return
			}
			got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
			if r.code != 0 || strings.Join(got, " ") != strings.Join(tt.want, " ") || len(got) != len(tt.want) {
				t.Errorf("exit %d, args %q (stderr %q)\nwant %q", r.code, got, r.stderr, tt.want)
			}
		})
	}
}

// TestExitMeanings holds the script's table to drainctl's exit codes (internal/exitcode).
func TestExitMeanings(t *testing.T) {
	env := baseEnv(pathWithout(""))
	seen := map[string]bool{}
	for _, e := range exitcode.Table {
		r := runScript(t, env, 10*time.Second, "exit-meaning", strconv.Itoa(int(e.Code)))
		m := strings.TrimSpace(r.stdout)
		if r.code != 0 || m == "" || m == "unknown" || seen[m] {
			t.Errorf("exit-meaning %d = %q (exit %d): want a name of its own", e.Code, m, r.code)
		}
		seen[m] = true
	}
	if m := strings.TrimSpace(runScript(t, env, 10*time.Second, "exit-meaning", "99").stdout); m != "unknown" {
		t.Errorf("exit-meaning 99 = %q, want unknown", m)
	}
}

// TestActionYAML checks action.yml against the script: every input reaches it as INPUT_*,
// and every output is one the script writes.
func TestActionYAML(t *testing.T) {
	yml, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	sh, err := os.ReadFile(script())
	if err != nil {
		t.Fatal(err)
	}
	text := string(yml)
	inputsPart, rest, ok := strings.Cut(text, "\noutputs:\n")
	outputsPart, _, ok2 := strings.Cut(rest, "\nruns:\n")
	if !ok || !ok2 {
		t.Fatal("action.yml: no outputs: or runs: section")
	}
	inputs := regexp.MustCompile(`(?m)^  ([a-z-]+):$`).FindAllStringSubmatch(inputsPart, -1)
	if len(inputs) < 11 {
		t.Fatalf("found %d inputs in action.yml, want at least 11", len(inputs))
	}
	for _, in := range inputs {
		envName := "INPUT_" + strings.ToUpper(strings.ReplaceAll(in[1], "-", "_"))
		if !strings.Contains(text, envName+": ${{ inputs."+in[1]+" }}") {
			t.Errorf("input %s is not passed to the script as %s", in[1], envName)
		}
		if !bytes.Contains(sh, []byte(envName)) {
			t.Errorf("input %s: scripts/action.sh never reads %s", in[1], envName)
		}
	}
	outputs := regexp.MustCompile(`(?m)^  ([a-z-]+):\n.*\n    value: \$\{\{ steps\.deploy\.outputs\.([a-z-]+) \}\}$`).FindAllStringSubmatch(outputsPart, -1)
	if len(outputs) < 7 {
		t.Fatalf("found %d outputs in action.yml, want at least 7", len(outputs))
	}
	for _, o := range outputs {
		if o[1] != o[2] || !bytes.Contains(sh, []byte("output "+o[1]+" ")) {
			t.Errorf("output %s (value from %s) is not written by scripts/action.sh", o[1], o[2])
		}
	}
}

// readOutputs parses a GITHUB_OUTPUT file of name=value lines.
func readOutputs(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			t.Errorf("GITHUB_OUTPUT line without '=': %q", sc.Text())
			continue
		}
		out[k] = v
	}
	return out
}

// reportHeading is the first line of a Markdown report of a deploy.
var reportHeading = regexp.MustCompile(`(?m)^### .*drainctl deploy: `)

// runnerFiles are the files a runner gives a step.
type runnerFiles struct {
	dir, output, summary, path string
}

func newRunnerFiles(t *testing.T) runnerFiles {
	dir := t.TempDir()
	f := runnerFiles{dir: dir, output: filepath.Join(dir, "output"), summary: filepath.Join(dir, "summary.md"), path: filepath.Join(dir, "path")}
	for _, p := range []string{f.output, f.summary, f.path} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"temp", "tool-cache"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// TestActionDeploy runs the action's script as a runner would against the local stack: a dry
// run, then a real deploy with jobs in flight.
func TestActionDeploy(t *testing.T) {
	testenv.TouchSources() // the binary's sources are part of this test's cache key
	const password = "actionTestPassw0rd-9f3c"
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s, err := stack.Start(ctx, stack.Options{Tasks: 2, RedisPassword: password})
	if errors.Is(err, stack.ErrMissing) {
		testenv.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close stack: %v", err)
		}
	})
	if !strings.Contains(s.RedisURL(), password) {
		t.Fatalf("stack Redis URL %q has no password", s.RedisURL())
	}

	files := newRunnerFiles(t)
	// The stack's environment (simulator endpoint, region, dummy credentials) without its
	// REDIS_URL: the Redis URL comes in as the redis-url input only.
	var env []string
	for _, kv := range s.Env() {
		if !strings.HasPrefix(kv, "REDIS_URL=") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"PATH="+pathWithout(binDir),
		"NO_COLOR=1",
		"GITHUB_ACTIONS=true",
		"GITHUB_OUTPUT="+files.output,
		"GITHUB_STEP_SUMMARY="+files.summary,
		"GITHUB_PATH="+files.path,
		"GITHUB_SERVER_URL=http://127.0.0.1:9", // a download would fail: the install must be skipped
		"RUNNER_OS=Linux",
		"RUNNER_ARCH=X64",
		"RUNNER_TEMP="+filepath.Join(files.dir, "temp"),
		"RUNNER_TOOL_CACHE="+filepath.Join(files.dir, "tool-cache"),
		"ACTION_REF=v9.9.9", // the version input wins over the action's ref
		"INPUT_VERSION="+testVersion,
		"INPUT_CLUSTER="+s.Opts.Cluster,
		"INPUT_SERVICE="+s.Opts.Service+"\n",
		"INPUT_REDIS_URL="+s.RedisURL(),
		"INPUT_DRAIN_TIMEOUT=60s",
		"INPUT_EXIT_TIMEOUT=60s",
		"INPUT_ON_TIMEOUT=deploy",
		"INPUT_EXTRA_ARGS=--poll-interval 200ms\n--rollout-timeout 90s",
	)
	var logs []string // everything the runs printed, for the password check
	check := func(r result) {
		t.Helper()
		logs = append(logs, r.stdout, r.stderr)
		if !strings.Contains(r.stderr, "using "+filepath.Join(binDir, "drainctl")+" ("+testVersion+") on PATH") {
			t.Errorf("the install step did not take the drainctl on PATH; stderr:\n%s", r.stderr)
		}
		for _, want := range []string{"::add-mask::" + s.RedisURL(), "::add-mask::" + password} {
			if !strings.Contains(r.stdout, want+"\n") {
				t.Errorf("stdout has no %q line", want)
			}
		}
	}

	// 1. Dry run: reads everything, changes nothing.
	dry := runScript(t, append(env, "INPUT_DRY_RUN=true"), 2*time.Minute, "run")
	check(dry)
	out := readOutputs(t, files.output)
	if dry.code != 0 {
		t.Fatalf("dry run: exit %d\nstderr:\n%s", dry.code, dry.stderr)
	}
	wantOut := map[string]string{"exit-code": "0", "exit-meaning": "succeeded", "outcome": "dry_run", "deployment-id": "",
		"jobs-finished": "0", "jobs-requeued": "0", "jobs-rescued": "0"}
	for k, v := range wantOut {
		if got, ok := out[k]; !ok || got != v {
			t.Errorf("dry run: output %s = %q (set %v), want %q", k, got, ok, v)
		}
	}
	dryJSON := out["report-path"]
	var rep struct {
		DryRun   bool   `json:"dry_run"`
		Outcome  string `json:"outcome"`
		ExitCode int    `json:"exit_code"`
	}
	if b, err := os.ReadFile(dryJSON); err != nil || json.Unmarshal(b, &rep) != nil || !rep.DryRun {
		t.Errorf("dry run: report-path %q: %v, report %+v, want a JSON report with dry_run true", dryJSON, err, rep)
	}
	if n := s.Sim.Calls("UpdateService"); n != 0 {
		t.Errorf("dry run called UpdateService %d times", n)
	}
	summary, _ := os.ReadFile(files.summary)
	if c := len(reportHeading.FindAll(summary, -1)); !strings.Contains(string(summary), "drainctl deploy: dry run (exit 0)") ||
		!strings.Contains(string(summary), "would force a new deployment") || c != 1 {
		t.Errorf("dry run: job summary (%d headings) lacks the dry-run report once:\n%s", c, summary)
	}

	// 2. A real deploy with 4 jobs in flight that finish within the drain budget.
	if err := os.WriteFile(files.output, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	jids, err := s.EnqueueRerun(ctx, 4, 8, 0.3) // fills the 2×2 slots
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitBusy(ctx, 4); err != nil {
		t.Fatal(err)
	}
	real := runScript(t, append(env, "INPUT_DRY_RUN=false"), 3*time.Minute, "run")
	check(real)
	out = readOutputs(t, files.output)
	if real.code != 0 {
		t.Fatalf("deploy: exit %d\nstderr:\n%s", real.code, real.stderr)
	}
	wantOut = map[string]string{"exit-code": "0", "exit-meaning": "succeeded", "outcome": "succeeded",
		"jobs-finished": "4", "jobs-requeued": "0", "jobs-rescued": "0"}
	for k, v := range wantOut {
		if got := out[k]; got != v {
			t.Errorf("deploy: output %s = %q, want %q", k, got, v)
		}
	}
	if id := out["deployment-id"]; !strings.HasPrefix(id, "ecs-svc/") || strings.Contains(id, ",") {
		t.Errorf("deploy: output deployment-id = %q, want one ecs-svc/… ID", id)
	}
	if n := s.Sim.Calls("UpdateService"); n != 1 {
		t.Errorf("UpdateService called %d times, want exactly 1", n)
	}
	if out["report-path"] == dryJSON || out["report-markdown-path"] == "" {
		t.Errorf("deploy: report paths %q, %q: want a new report", out["report-path"], out["report-markdown-path"])
	}
	summary, _ = os.ReadFile(files.summary)
	if !strings.Contains(string(summary), "drainctl deploy: succeeded (exit 0)") || len(reportHeading.FindAll(summary, -1)) != 2 {
		t.Errorf("job summary lacks the deploy report after the dry run's:\n%s", summary)
	}
	if err := s.WaitAllDone(ctx, jids); err != nil {
		lost, _ := s.Lost(ctx, jids)
		t.Errorf("jobs lost: %v (%v)", lost, err)
	}
	if b, _ := os.ReadFile(files.path); len(b) != 0 {
		t.Errorf("GITHUB_PATH = %q: nothing was installed, want it untouched", b)
	}

	// The password appears nowhere but in the ::add-mask:: lines the runner consumes.
	places := map[string]string{}
	for i, l := range logs {
		var kept []string
		for _, line := range strings.Split(l, "\n") {
			if !strings.HasPrefix(line, "::add-mask::") {
				kept = append(kept, line)
			}
		}
		places[fmt.Sprintf("log %d", i)] = strings.Join(kept, "\n")
	}
	for _, p := range []string{files.output, files.summary, dryJSON, out["report-path"], out["report-markdown-path"]} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("read %s: %v", p, err)
		}
		places[p] = string(b)
	}
	for where, text := range places {
		if strings.Contains(text, password) {
			t.Errorf("the Redis password appears in %s", where)
		}
	}
	if t.Failed() {
		t.Logf("dry run stderr:\n%s\ndeploy stderr:\n%s", dry.stderr, real.stderr)
	}
}
