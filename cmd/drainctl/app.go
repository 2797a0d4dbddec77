package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise the module's.
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// env is how the CLI reads the environment, injectable for tests.
type env func(string) string

// run builds the app, runs it and returns the process exit code. It never panics on bad
// input and never lets urfave/cli call os.Exit.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	quietRedisLogs()
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
	if len(args) < 2 || strings.HasPrefix(args[1], "-") || args[1] == "help" {
		return nil
	}
	for _, c := range app.Commands {
		if c.HasName(args[1]) {
			return nil
		}
	}
	return &exitError{code: exitUsage, err: fmt.Errorf("unknown command %q", args[1]), hint: "run 'drainctl --help' for the commands"}
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
		Version:              versionString(),
		Writer:               stdout,
		ErrWriter:            stderr,
		HideVersion:          true,
		EnableBashCompletion: false,
		// Exit codes are mapped in one place (exit.go); urfave/cli must not call os.Exit.
		ExitErrHandler:        func(*cli.Context, error) {},
		CustomAppHelpTemplate: cli.AppHelpTemplate + "\n" + exitCodesHelp + "\n",
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &exitError{code: exitUsage, err: err, hint: "see 'drainctl --help'"}
		},
		Commands: commands(getenv),
	}
	for _, c := range app.Commands {
		c.OnUsageError = app.OnUsageError
	}
	return app
}

func commands(getenv env) []*cli.Command {
	return []*cli.Command{
		deployCommand(getenv),
		drainCommand(getenv),
		quietCommand(getenv),
		statusCommand(getenv),
		rescueCommand(getenv),
		checkCommand(getenv),
		{
			Name:  "version",
			Usage: "print drainctl's version",
			Action: func(c *cli.Context) error {
				fmt.Fprintf(c.App.Writer, "drainctl %s\n", versionString())
				return nil
			},
		},
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
