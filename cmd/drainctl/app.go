package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/drainctl/drainctl/internal/exitcode"
	"github.com/drainctl/drainctl/internal/sidekiq"
	"github.com/drainctl/drainctl/internal/suggest"
	buildinfo "github.com/drainctl/drainctl/internal/version"
	"io"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"
)

// versionString is drainctl's version for reports (internal/version).
func versionString() string { return buildinfo.Get().Version }

// env is how the CLI reads the environment, injectable for tests.
type env func(string) string

// run builds the app, runs it and returns the process exit code. It never panics on bad
// input and never lets urfave/cli call os.Exit.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	sidekiq.QuietLogs()
	// urfave/cli v2 mutates package globals (its help flag and help command) while it parses;
	// runs in one process (the tests) take turns until their command's action starts.
	cliMu.Lock()
	unlock := sync.OnceFunc(cliMu.Unlock)
	defer unlock()
	app := newApp(stdout, stderr, getenv)
	for _, c := range app.Commands {
		if act := c.Action; act != nil {
			c.Action = func(cc *cli.Context) error {
				unlock()
				return act(cc)
			}
		}
	}
	if len(args) == 2 && (args[1] == "--version" || args[1] == "-version" || args[1] == "-v") {
		args = []string{args[0], "version"}
	}
	err := checkCommandName(app, args)
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	if err == nil {
		return exitOK
	}
	code := codeOf(err)
	if ctx.Err() != nil && code == exitFailure {
		code = exitInterrupted
	}
	var rep reportedError
	if !errors.As(err, &rep) {
		fmt.Fprintf(stderr, "drainctl: error: %s\n", oneLine(err.Error()))
	}
	if h := hintOf(err); h != "" {
		fmt.Fprintf(stderr, "drainctl: hint: %s\n", h)
	}
	return code
}

// checkCommandName turns an unknown subcommand into a usage error (urfave/cli would print a help
// error with its own exit code).
func checkCommandName(app *cli.App, args []string) error {
	if len(args) < 2 || strings.HasPrefix(args[1], "-") {
		return nil
	}
	name := args[1]
	if name == "help" || name == "h" {
		if len(args) < 3 || strings.HasPrefix(args[2], "-") {
			return nil
		}
		name = args[2]
	}
	for _, c := range app.Commands {
		if c.HasName(name) {
			return nil
		}
	}
	return &exitError{code: exitUsage, err: fmt.Errorf("unknown command %q: the commands are %s", name, commandNames(app)),
		hint: "run 'drainctl --help' for what each does"}
}

// cliMu serialises urfave/cli's parsing between concurrent runs.
var cliMu sync.Mutex

// reportedError marks an error whose message the command already printed (in its report),
// so run only sets the exit code.
type reportedError interface{ alreadyReported() }

// oneLine keeps error output to one line, as the README promises.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

func newApp(stdout, stderr io.Writer, getenv env) *cli.App {
	app := &cli.App{
		Name:                 "drainctl",
		Usage:                "deploy Sidekiq workers on AWS ECS without losing jobs",
		Version:              versionLine(),
		Writer:               stdout,
		ErrWriter:            stderr,
		HideVersion:          true,
		EnableBashCompletion: true,
		// Exit codes are mapped in one place (exit.go); urfave/cli must not call os.Exit.
		ExitErrHandler:        func(*cli.Context, error) {},
		CustomAppHelpTemplate: cli.AppHelpTemplate + "\n" + exitcode.Help() + "\n",
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &exitError{code: exitUsage, err: err, hint: "see 'drainctl --help'"}
		},
		Commands: commands(getenv),
	}
	for _, c := range app.Commands {
		c.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return flagError(c, err) }
	}
	return app
}

// flagError turns urfave/cli's flag errors into one line that names the fix: the closest
// flag of the command for a misspelt one, and the command's usage line as the hint.
func flagError(c *cli.Command, err error) error {
	usage, _, _ := strings.Cut(c.UsageText, "\n")
	hint := fmt.Sprintf("usage: %s (see 'drainctl %s --help')", strings.TrimSpace(usage), c.Name)
	if c.UsageText == "" {
		hint = fmt.Sprintf("see 'drainctl %s --help'", c.Name)
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		msg = fmt.Sprintf("unknown flag --%s", name)
		var names []string
		for _, f := range c.Flags {
			names = append(names, f.Names()...)
		}
		if best := suggest.Closest(name, names); best != "" {
			msg += fmt.Sprintf(": did you mean --%s?", best)
		}
	}
	return &exitError{code: exitUsage, err: errors.New(msg), hint: hint}
}

// commandNames lists the commands for an error naming them.
func commandNames(app *cli.App) string {
	var names []string
	for _, c := range app.Commands {
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}

func commands(getenv env) []*cli.Command {
	return []*cli.Command{
		deployCommand(getenv),
		drainCommand(getenv),
		quietCommand(getenv),
		statusCommand(getenv),
		rescueCommand(getenv),
		checkCommand(getenv),
		unlockCommand(getenv),
		completionCommand(),
		manCommand(),
		versionCommand(),
	}
}

// flags concatenates flag groups.
func flags(groups ...[]cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}
