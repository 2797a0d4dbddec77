package main

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite docs/drainctl.1")

// TestManPageCurrent fails when docs/drainctl.1 differs from what `drainctl man` prints from
// the command definitions (go test ./cmd/drainctl -run TestManPageCurrent -update rewrites it).
func TestManPageCurrent(t *testing.T) {
	code, out, errs := runCLI(t, nil, "man")
	if code != 0 || !strings.Contains(out, ".TH drainctl 1") || !strings.Contains(out, "deploy") {
		t.Fatalf("man: exit %d, stderr %q, page starts %q", code, errs, out[:min(len(out), 200)])
	}
	path := filepath.Join("..", "..", "docs", "drainctl.1")
	if *updateGolden {
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil || string(want) != out {
		t.Errorf("docs/drainctl.1 is stale (%v): run go test ./cmd/drainctl -run TestManPageCurrent -update", err)
	}
}

// TestCompletion checks each shell's script: bash's parses, and every script names drainctl;
// the binary answers the scripts' completion request with its commands.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, errs := runCLI(t, nil, "completion", shell)
		if code != 0 || !strings.Contains(out, "drainctl") {
			t.Errorf("completion %s: exit %d, stderr %q", shell, code, errs)
			continue
		}
		if shell == "bash" {
			cmd := exec.Command("bash", "-n")
			cmd.Stdin = strings.NewReader(out)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("bash -n on the completion script: %v\n%s", err, b)
			}
		}
		if shell == "fish" && !strings.Contains(out, "complete -c drainctl") {
			t.Errorf("fish completion lacks its complete lines:\n%s", out[:min(len(out), 400)])
		}
	}
	if code, _, errs := runCLI(t, nil, "completion", "tcsh"); code != exitUsage || !strings.Contains(errs, "want bash, zsh or fish") {
		t.Errorf("completion tcsh: exit %d, stderr %q", code, errs)
	}
	// The scripts ask the binary itself.
	b, err := exec.Command(binary(t), "--generate-bash-completion").Output()
	for _, c := range []string{"deploy", "drain", "quiet", "status", "rescue", "check", "unlock", "completion"} {
		if err != nil || !strings.Contains(string(b), c+"\n") {
			t.Errorf("completion request: %v, output %q lacks %s", err, b, c)
		}
	}
}
