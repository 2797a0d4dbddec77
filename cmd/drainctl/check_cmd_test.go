package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckFiles(t *testing.T) {
	t.Parallel()
	entry := func(c, f string) string { return filepath.Join("..", "..", "testdata", "taskdefs", c, "entrypoint", f) }
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
				ExitCode int    `json:"exit_code"`
				Findings []struct {
					Code     string `json:"code"`
					Severity string `json:"severity"`
				} `json:"findings"`
			}
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, out)
			}
			if doc.Schema != "drainctl.check/v1" || doc.ExitCode != tt.wantCode {
				t.Errorf("schema %q exit_code %d, want drainctl.check/v1 and %d", doc.Schema, doc.ExitCode, tt.wantCode)
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
