// Package version tells which drainctl this is: the version, the commit and the build date
// stamped into the binary by the release build, or, for a plain `go build` or `go install`,
// what the Go toolchain recorded in the binary's build information.
//
// The release build (.goreleaser.yaml) stamps the three variables with the linker:
//
//	-X github.com/drainctl/drainctl/internal/version.version=v1.2.3
//	-X github.com/drainctl/drainctl/internal/version.commit=<full SHA>
//	-X github.com/drainctl/drainctl/internal/version.date=<RFC 3339>
//
// A stamped value always wins over the build information.
package version

import (
	"runtime"
	"runtime/debug"
)

// The values stamped at link time with -ldflags -X; empty when not stamped.
var (
	version = ""
	commit  = ""
	date    = ""
)

// Unknown stands for a value neither stamped nor recorded in the build information.
const Unknown = "unknown"

// Dev is the version of a build that has neither a stamped nor a module version (a
// `go build` in a work tree without VCS information).
const Dev = "dev"

// Info describes the running binary.
type Info struct {
	// Version is the release (v1.2.3), the module version of a `go install …@version` build,
	// or Dev.
	Version string `json:"version"`
	// Commit is the full VCS revision, with "-dirty" when the work tree had local changes,
	// or Unknown.
	Commit string `json:"commit"`
	// Date is the build date (stamped) or the commit's time (build information), RFC 3339,
	// or Unknown.
	Date string `json:"date"`
	// GoVersion is the Go release the binary was built with.
	GoVersion string `json:"go_version"`
}

// Get returns the running binary's Info.
func Get() Info {
	return resolve(Info{Version: version, Commit: commit, Date: date}, debug.ReadBuildInfo)
}

// String is the one-line form: "v1.2.3 (commit 0123abc…, built 2026-01-02T03:04:05Z, go1.26.8)".
func (i Info) String() string {
	return i.Version + " (commit " + i.Commit + ", built " + i.Date + ", " + i.GoVersion + ")"
}

// resolve fills what stamped leaves empty from the build information that read returns
// (debug.ReadBuildInfo, injectable for tests), then from the defaults.
func resolve(stamped Info, read func() (*debug.BuildInfo, bool)) Info {
	out := stamped
	var bi *debug.BuildInfo
	if read != nil {
		if b, ok := read(); ok {
			bi = b
		}
	}
	var revision, vcsTime string
	var modified bool
	if bi != nil {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				vcsTime = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if out.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			out.Version = bi.Main.Version
		}
		if out.Commit == "" && revision != "" {
			out.Commit = revision
			if modified {
				out.Commit += "-dirty"
			}
		}
		if out.Date == "" {
			out.Date = vcsTime
		}
		if out.GoVersion == "" {
			out.GoVersion = bi.GoVersion
		}
	}
	if out.Version == "" {
		out.Version = Dev
	}
	if out.Commit == "" {
		out.Commit = Unknown
	}
	if out.Date == "" {
		out.Date = Unknown
	}
	if out.GoVersion == "" {
		out.GoVersion = runtime.Version()
	}
	return out
}
