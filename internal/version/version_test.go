package version

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func buildInfo(mainVersion string, settings ...string) func() (*debug.BuildInfo, bool) {
	return func() (*debug.BuildInfo, bool) {
		bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/drainctl/drainctl", Version: mainVersion}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi, true
	}
}

func noBuildInfo() (*debug.BuildInfo, bool) { return nil, false }

func TestResolve(t *testing.T) {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name    string
		stamped Info
		read    func() (*debug.BuildInfo, bool)
		want    Info
	}{
		{
			name:    "stamped values win over the build information",
			stamped: Info{Version: "v1.2.3", Commit: sha, Date: "2026-12-01T10:00:00Z"},
			read:    buildInfo("v9.9.9", "vcs.revision", "ffff", "vcs.time", "2020-01-01T00:00:00Z", "vcs.modified", "true"),
			want:    Info{Version: "v1.2.3", Commit: sha, Date: "2026-12-01T10:00:00Z", GoVersion: "go1.26.8"},
		},
		{
			name: "go install module@version: the module version, no VCS information",
			read: buildInfo("v1.4.0"),
			want: Info{Version: "v1.4.0", Commit: Unknown, Date: Unknown, GoVersion: "go1.26.8"},
		},
		{
			name: "go build in a clean work tree: pseudo-version, revision and commit time",
			read: buildInfo("v0.0.0-20261201100000-0123456789ab", "vcs", "git", "vcs.revision", sha, "vcs.time", "2026-12-01T10:00:00Z", "vcs.modified", "false"),
			want: Info{Version: "v0.0.0-20261201100000-0123456789ab", Commit: sha, Date: "2026-12-01T10:00:00Z", GoVersion: "go1.26.8"},
		},
		{
			name: "go build in a modified work tree: dirty revision, (devel) is no version",
			read: buildInfo("(devel)", "vcs.revision", sha, "vcs.time", "2026-12-01T10:00:00Z", "vcs.modified", "true"),
			want: Info{Version: Dev, Commit: sha + "-dirty", Date: "2026-12-01T10:00:00Z", GoVersion: "go1.26.8"},
		},
		{
			name:    "only the version stamped: commit and date from the build information",
			stamped: Info{Version: "v2.0.0"},
			read:    buildInfo("(devel)", "vcs.revision", sha, "vcs.time", "2026-12-01T10:00:00Z"),
			want:    Info{Version: "v2.0.0", Commit: sha, Date: "2026-12-01T10:00:00Z", GoVersion: "go1.26.8"},
		},
		{
			name: "no build information at all",
			read: noBuildInfo,
			want: Info{Version: Dev, Commit: Unknown, Date: Unknown, GoVersion: runtime.Version()},
		},
		{
			name:    "no build information, stamped",
			stamped: Info{Version: "v1.0.0", Commit: sha, Date: "2026-12-01T10:00:00Z"},
			read:    noBuildInfo,
			want:    Info{Version: "v1.0.0", Commit: sha, Date: "2026-12-01T10:00:00Z", GoVersion: runtime.Version()},
		},
		{
			name: "empty main version (a test binary)",
			read: buildInfo(""),
			want: Info{Version: Dev, Commit: Unknown, Date: Unknown, GoVersion: "go1.26.8"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resolve(tt.stamped, tt.read); got != tt.want {
				t.Errorf("resolve() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	i := Info{Version: "v1.2.3", Commit: "abc", Date: "2026-12-01T10:00:00Z", GoVersion: "go1.26.8"}
	want := "v1.2.3 (commit abc, built 2026-12-01T10:00:00Z, go1.26.8)"
	if got := i.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestGetUsesBuildInfo checks the real reader is wired: a test binary has build information,
// so GoVersion is the toolchain's and nothing is left empty.
func TestGetUsesBuildInfo(t *testing.T) {
	got := Get()
	if got.GoVersion != runtime.Version() {
		t.Errorf("GoVersion = %q, want %q", got.GoVersion, runtime.Version())
	}
	if got.Version == "" || got.Commit == "" || got.Date == "" {
		t.Errorf("Get() left a field empty: %+v", got)
	}
}
