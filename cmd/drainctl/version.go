package main

import (
	"fmt"

	buildinfo "github.com/drainctl/drainctl/internal/version"
	"github.com/urfave/cli/v2"
)

// versionCommand is `drainctl version`: one line with the version, commit, build date and Go
// release (internal/version: stamped by the release build, else the binary's build
// information).
func versionCommand() *cli.Command {
	return &cli.Command{
		Name:      "version",
		Usage:     "print drainctl's version, commit, build date and Go version",
		UsageText: "drainctl version",
		Action: func(c *cli.Context) error {
			fmt.Fprintf(c.App.Writer, "drainctl %s\n", versionLine())
			return nil
		},
	}
}

// versionLine is the one-line version (internal/version's Info.String), also the app's
// Version for the global --version flag.
func versionLine() string {
	return buildinfo.Get().String()
}
