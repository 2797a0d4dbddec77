// Package exitcode is drainctl's one exit-code table: the code computes codes from it, the
// help text prints it and a test holds README.md's table to it, so the three cannot drift.
package exitcode

import (
	"fmt"
	"strings"
)

// Code is a process exit code of drainctl.
type Code int

// The exit codes.
const (
	OK             Code = 0
	Failure        Code = 1
	Usage          Code = 2
	DrainTimeout   Code = 3
	RolloutFailed  Code = 4
	RolloutTimeout Code = 5
	Locked         Code = 6
	CheckFindings  Code = 7
	Interrupted    Code = 130
)

// Entry documents one code.
type Entry struct {
	Code Code
	// Meaning is the one line the help text and README print.
	Meaning string
}

// Table lists every code drainctl exits with, in order.
var Table = []Entry{
	{OK, "succeeded (also when jobs had to be rescued: nothing was lost; a warning says so), or a dry run"},
	{Failure, "unexpected failure (also: `quiet` when a process did not acknowledge in time); the report says what was done and what is left"},
	{Usage, "usage or bad input, or a refused preflight; nothing was changed (bad flags, an unparsable or unreachable Redis URL, an unknown cluster, service or task definition, a CODE_DEPLOY/EXTERNAL service, an empty selection; with `--strict`, any preflight warning or signal-path finding)"},
	{DrainTimeout, "jobs outlasted `--drain-timeout` with `--on-timeout fail`; the report lists the processes left quiet"},
	{RolloutFailed, "the rollout failed or was rolled back"},
	{RolloutTimeout, "the rollout did not finish within `--rollout-timeout` (it may still be running)"},
	{Locked, "another run holds the deploy lock"},
	{CheckFindings, "`check` found errors (or warnings with `--strict`)"},
	{Interrupted, "interrupted (SIGINT/SIGTERM); the report says what is left quiet and what to run next"},
}

// Meaning returns the table's line for c, or "" for a code not in the table.
func Meaning(c Code) string {
	for _, e := range Table {
		if e.Code == c {
			return e.Meaning
		}
	}
	return ""
}

// Help renders the table for --help.
func Help() string {
	var b strings.Builder
	b.WriteString("EXIT CODES:\n")
	for _, e := range Table {
		fmt.Fprintf(&b, "   %-4d %s\n", int(e.Code), e.Meaning)
	}
	return strings.TrimRight(b.String(), "\n")
}

// Markdown renders the table as README.md carries it.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| Code | Meaning |\n|---|---|\n")
	for _, e := range Table {
		fmt.Fprintf(&b, "| %d | %s |\n", int(e.Code), e.Meaning)
	}
	return b.String()
}
