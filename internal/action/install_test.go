package action

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRelease serves GitHub's release download paths for drainctl/drainctl: a goreleaser-
// shaped archive holding a stand-in drainctl (a script printing its version) and
// checksums.txt, with the archive's checksum spoiled when badSum is set. It records the paths
// asked for.
func fakeRelease(t *testing.T, version, asset string, badSum bool) (*httptest.Server, func() []string) {
	t.Helper()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	tw := tar.NewWriter(zw)
	bin := []byte("#!/bin/sh\necho \"drainctl " + version + " (commit fake, built fake, go-fake)\"\n")
	for _, f := range []struct {
		name string
		mode int64
		body []byte
	}{{"README.md", 0o644, []byte("readme\n")}, {"drainctl", 0o755, bin}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(gz.Bytes())
	if badSum {
		sum[0] ^= 0xff
	}
	sums := fmt.Sprintf("%x  %s\n%x  drainctl_other.tar.gz\n", sum, asset, sha256.Sum256(nil))
	var mu sync.Mutex
	var asked []string
	base := "/drainctl/drainctl/releases/download/" + version + "/"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.Path)
		mu.Unlock()
		switch r.URL.Path {
		case base + asset:
			_, _ = w.Write(gz.Bytes())
		case base + "checksums.txt":
			_, _ = w.Write([]byte(sums))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), asked...) }
}

// pathNoGo is pathWithout(dir) behind a folder whose `go` fails, so a go install fallback
// fails at once instead of building from the module proxy.
func pathNoGo(t *testing.T, dir string) string {
	t.Helper()
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "go"), []byte("#!/bin/sh\necho 'go: not in this test' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return fake + string(os.PathListSeparator) + pathWithout(dir)
}

func TestInstallDownloadsTheReleaseAsset(t *testing.T) {
	const version = "v1.2.3"
	tests := []struct {
		name, os, arch, asset string
	}{
		{"linux amd64", "Linux", "X64", "drainctl_1.2.3_linux_amd64.tar.gz"},
		{"macOS arm64", "macOS", "ARM64", "drainctl_1.2.3_darwin_arm64.tar.gz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, asked := fakeRelease(t, version, tt.asset, false)
			files := newRunnerFiles(t)
			cache := filepath.Join(files.dir, "tool-cache")
			// The drainctl on PATH is another version: the release must be downloaded.
			env := append(baseEnv(pathNoGo(t, binDir)), "RUNNER_OS="+tt.os, "RUNNER_ARCH="+tt.arch,
				"INPUT_VERSION="+version, "GITHUB_SERVER_URL="+srv.URL, "GITHUB_PATH="+files.path,
				"RUNNER_TEMP="+filepath.Join(files.dir, "temp"), "RUNNER_TOOL_CACHE="+cache)
			r := runScript(t, env, 30*time.Second, "install")
			if r.code != 0 {
				t.Fatalf("install: exit %d\nstderr:\n%s", r.code, r.stderr)
			}
			dir := filepath.Join(cache, "drainctl", version, tt.arch)
			if b, _ := os.ReadFile(files.path); strings.TrimSpace(string(b)) != dir {
				t.Errorf("GITHUB_PATH = %q, want %q", b, dir)
			}
			if !strings.Contains(r.stderr, "installed "+version+" into "+dir) {
				t.Errorf("stderr does not say %s was installed into %s:\n%s", version, dir, r.stderr)
			}
			want := []string{"/drainctl/drainctl/releases/download/v1.2.3/" + tt.asset, "/drainctl/drainctl/releases/download/v1.2.3/checksums.txt"}
			if got := asked(); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("downloaded %q, want %q", got, want)
			}
		})
	}
}

func TestInstallRefusesABadChecksum(t *testing.T) {
	const version, asset = "v1.2.3", "drainctl_1.2.3_linux_amd64.tar.gz"
	srv, _ := fakeRelease(t, version, asset, true)
	files := newRunnerFiles(t)
	// No drainctl on PATH and a go that fails: after the refused download the go install
	// fallback fails too, and the step must fail saying so.
	env := append(baseEnv(pathNoGo(t, "")), "RUNNER_OS=Linux", "RUNNER_ARCH=X64",
		"INPUT_VERSION="+version, "GITHUB_SERVER_URL="+srv.URL, "GITHUB_PATH="+files.path,
		"RUNNER_TEMP="+filepath.Join(files.dir, "temp"), "RUNNER_TOOL_CACHE="+filepath.Join(files.dir, "tool-cache"))
	r := runScript(t, env, 30*time.Second, "install")
	for _, want := range []string{"checksum mismatch for " + asset, "falling back to go install github.com/drainctl/drainctl/cmd/drainctl@v1.2.3",
		"::error::drainctl-action: go install github.com/drainctl/drainctl/cmd/drainctl@v1.2.3 failed"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if r.code != 2 {
		t.Errorf("exit %d, want 2", r.code)
	}
	if b, _ := os.ReadFile(files.path); len(b) != 0 {
		t.Errorf("GITHUB_PATH = %q after a refused download, want empty", b)
	}
	if _, err := os.Stat(filepath.Join(files.dir, "tool-cache", "drainctl", version, "X64", "drainctl")); err == nil {
		t.Error("a drainctl was unpacked despite the checksum mismatch")
	}
}
