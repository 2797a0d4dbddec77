package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/drainctl/drainctl/internal/report"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckFiles(t *testing.T) {
	t.Parallel()
	entry := entryFile
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantIDs  []string // finding IDs expected in the JSON output
	}{
		{"exec form passes", []string{"--task-definition-file", corpus("good-exec-form")}, 0, nil},
		{"tini passes", []string{"--task-definition-file", corpus("good-tini-g")}, 0, nil},
		{"shell and-list fails", []string{"--task-definition-file", corpus("sp001-and")}, 7, []string{"SP001"}},
		{"short stopTimeout fails", []string{"--task-definition-file", corpus("sp006-fargate-short")}, 7, []string{"SP006"}},
		{"lone sh -c command fails", []string{"--task-definition-file", corpus("sp002-lone-sh")}, 7, []string{"SP002"}},
		{"bash and-list warns", []string{"--task-definition-file", corpus("sp002-bash-and")}, 0, []string{"SP002"}},
		{"bash and-list strict", []string{"--task-definition-file", corpus("sp002-bash-and"), "--strict"}, 7, []string{"SP002"}},
		{"entrypoint without exec", []string{"--task-definition-file", corpus("sp004-entrypoint-no-exec"),
			"--entrypoint-file", entry("sp004-entrypoint-no-exec", "docker-entrypoint.sh")}, 7, []string{"SP004"}},
		{"entrypoint with exec", []string{"--task-definition-file", corpus("good-entrypoint-exec"),
			"--entrypoint-file", entry("good-entrypoint-exec", "docker-entrypoint")}, 0, nil},
		{"EC2 without stopTimeout, agent default", []string{"--task-definition-file", corpus("sp006-ec2-agent-default")}, 7, []string{"SP006"}},
		{"EC2 without stopTimeout, agent raised", []string{"--task-definition-file", corpus("sp006-ec2-agent-default"), "--agent-stop-timeout", "2m"}, 0, nil},
		{"several files", []string{"--task-definition-file", corpus("good-exec-form"), "--task-definition-file", corpus("sp001-and")}, 7, []string{"SP001"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errs := runCLI(t, nil, append([]string{"check", "--output", "json"}, tt.args...)...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.wantCode, errs)
			}
			var doc struct {
				Schema   string `json:"schema"`
				Kind     string `json:"kind"`
				ExitCode int    `json:"exit_code"`
				Findings []struct {
					Code     string `json:"code"`
					Severity string `json:"severity"`
				} `json:"findings"`
			}
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, out)
			}
			if doc.Schema != report.Schema || doc.Kind != "check" || doc.ExitCode != tt.wantCode {
				t.Errorf("schema %q kind %q exit_code %d, want %s, check and %d", doc.Schema, doc.Kind, doc.ExitCode, report.Schema, tt.wantCode)
			}
			got := map[string]bool{}
			for _, f := range doc.Findings {
				if f.Severity != "info" {
					got[f.Code] = true
				}
			}
			for _, id := range tt.wantIDs {
				if !got[id] {
					t.Errorf("finding %s missing; got %v", id, got)
				}
			}
			if tt.wantIDs == nil && len(got) > 0 {
				t.Errorf("want no error or warning finding, got %v", got)
			}
			if code == exitCheckFindings {
				assertOneLineError(t, "", errs, "check found")
			} else if errs != "" {
				t.Errorf("stderr = %q, want nothing", errs)
			}
		})
	}
}

// TestCheckCIOutputs checks the GitHub Actions extras and --report: annotations on stderr,
// the Markdown appended to $GITHUB_STEP_SUMMARY, the report file in its extension's format.
func TestCheckCIOutputs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	summary := filepath.Join(dir, "summary.md")
	rep := filepath.Join(dir, "check.md")
	env := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": summary}
	code, out, errs := runCLI(t, env, "check", "--task-definition-file", corpus("sp001-and"), "--report", rep)
	if code != exitCheckFindings {
		t.Fatalf("exit %d, want 7; stderr %q", code, errs)
	}
	if !strings.Contains(out, "SP001") || strings.HasPrefix(out, "#") {
		t.Errorf("stdout should be the text rendering with SP001: %q", out)
	}
	if !strings.Contains(errs, "::error::SP001") {
		t.Errorf("stderr lacks the ::error:: annotation: %q", errs)
	}
	for _, p := range []string{summary, rep} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "SP001") || !strings.Contains(string(data), "|") {
			t.Errorf("%s is not the Markdown findings: %q", p, data)
		}
	}
}

// TestCheckAgentStopTimeout: --agent-stop-timeout (and DRAINCTL_AGENT_STOP_TIMEOUT) sets the
// budget of EC2 containers without stopTimeout, and the report says so; a bad value is a
// usage error.
func TestCheckAgentStopTimeout(t *testing.T) {
	t.Parallel()
	code, out, errs := runCLI(t, map[string]string{"DRAINCTL_AGENT_STOP_TIMEOUT": "45s"}, "check", "--task-definition-file", corpus("sp006-ec2-agent-default"))
	if code != exitOK || !strings.Contains(out, "45 s (unset: the EC2 agent's ECS_CONTAINER_STOP_TIMEOUT from --agent-stop-timeout)") {
		t.Errorf("DRAINCTL_AGENT_STOP_TIMEOUT=45s: exit %d, stderr %q\n%s", code, errs, out)
	}
	for _, bad := range []string{"-5s", "500ms", "soon"} {
		code, out, errs := runCLI(t, nil, "check", "--task-definition-file", corpus("sp006-ec2-agent-default"), "--agent-stop-timeout", bad)
		if code != exitUsage {
			t.Errorf("--agent-stop-timeout %s: exit %d, want %d; stderr %q", bad, code, exitUsage, errs)
		}
		assertOneLineError(t, out, errs, "agent-stop-timeout")
	}
}

// TestCheckBadInput: files that are not task definitions end in exit 2 with one error line
// in the document's terms, after reading at most 1 MiB.
func TestCheckBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	typed := filepath.Join(dir, "typed.json")
	if err := os.WriteFile(typed, []byte(`{"family": "w", "containerDefinitions": [{"name": "w", "command": ["bundle", 1]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	binary := filepath.Join(dir, "entrypoint")
	if err := os.WriteFile(binary, []byte("\x7fELF\x02\x01\x01\x00\x00"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"random bytes", []string{"--task-definition-file", "/dev/urandom"}, "task definition /dev/urandom: larger than 1 MiB"},
		{"a field of the wrong type", []string{"--task-definition-file", typed}, "containerDefinitions[0].command: want a list of strings, item 1 is a number"},
		{"not JSON", []string{"--task-definition-file", entryFile("sp004-entrypoint-no-exec", "docker-entrypoint.sh")}, "not a JSON object"},
		{"a binary entry point", []string{"--task-definition-file", corpus("good-exec-form"), "--entrypoint-file", binary}, "not UTF-8 text"},
		{"stdin twice", []string{"--task-definition-file", "-", "--task-definition-file", "-"}, "stdin can be read only once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errs := runCLI(t, nil, append([]string{"check"}, tt.args...)...)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr %q", code, exitUsage, errs)
			}
			assertOneLineError(t, out, errs, tt.want)
			if strings.Contains(errs, "Go struct") || strings.Contains(errs, "of type") {
				t.Errorf("stderr shows Go types: %q", errs)
			}
		})
	}
}

// TestCheckStdin: --task-definition-file - reads the task definition from stdin.
func TestCheckStdin(t *testing.T) {
	data, err := os.ReadFile(corpus("sp001-and"))
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	cliMu.Lock() // urfave/cli's parsing touches package globals; run() takes the same lock
	app := newApp(&out, &errb, func(string) string { return "" })
	app.Reader = bytes.NewReader(data)
	err = app.RunContext(context.Background(), []string{"drainctl", "check", "--task-definition-file", "-", "--output", "json"})
	cliMu.Unlock()
	if code := codeOf(err); code != exitCheckFindings {
		t.Fatalf("exit %d (%v), want %d; stderr %q", code, err, exitCheckFindings, errb.String())
	}
	var doc struct {
		Targets []struct {
			Source string `json:"source"`
		} `json:"targets"`
		Findings []struct {
			Code string `json:"code"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || len(doc.Targets) != 1 || doc.Targets[0].Source != "(stdin)" || doc.Findings[0].Code != "SP001" {
		t.Errorf("stdout = %s (%v), want the findings of sp001-and from (stdin)", out.String(), err)
	}
}

func entryFile(c, f string) string {
	return filepath.Join("..", "..", "testdata", "taskdefs", c, "entrypoint", f)
}
