package version

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestLinkerStamping builds a program with the -X flags .goreleaser.yaml passes and checks
// they reach Get: a renamed variable would otherwise be ignored by the linker in silence.
func TestLinkerStamping(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	const pkg = "github.com/drainctl/drainctl/internal/version"
	out := filepath.Join(t.TempDir(), "printversion")
	ldflags := "-X " + pkg + ".version=v1.2.3 -X " + pkg + ".commit=0123abcd -X " + pkg + ".date=2026-12-01T10:00:00Z"
	build := exec.Command("go", "build", "-ldflags", ldflags, "-o", out, "./testdata/printversion")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	b, err := exec.Command(out).Output()
	if err != nil {
		t.Fatalf("run printversion: %v", err)
	}
	var got Info
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	want := Info{Version: "v1.2.3", Commit: "0123abcd", Date: "2026-12-01T10:00:00Z", GoVersion: runtime.Version()}
	if got != want {
		t.Errorf("stamped binary reports %+v, want %+v", got, want)
	}
}
