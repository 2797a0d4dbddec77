package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/report"
)

// ui is where a command writes: the result on stdout (and --report), everything else on
// stderr, as plain lines or slog records.
type ui struct {
	stdout, stderr io.Writer
	getenv         env
	out            report.Format
	reportPath     string
	showArgs       bool
	color          bool
	tty            bool
	log            *slog.Logger
	jsonLogs       bool
}

// newUI reads the output flags; it fails only on bad input.
func newUI(o opts, stdout, stderr io.Writer) (*ui, error) {
	out, err := o.outputFormat()
	if err != nil {
		return nil, err
	}
	path, err := o.reportPath()
	if err != nil {
		return nil, err
	}
	lf, err := o.oneOf("log-format", "text", "json")
	if err != nil {
		return nil, err
	}
	noColor, err := o.boolean("no-color")
	if err != nil {
		return nil, err
	}
	showArgs, err := o.boolean("show-args")
	if err != nil {
		return nil, err
	}
	u := &ui{stdout: stdout, stderr: stderr, getenv: o.getenv, out: out, reportPath: path, showArgs: showArgs}
	u.tty = isTerminal(stderr)
	u.color = u.tty && !noColor && o.getenv("NO_COLOR") == "" && o.getenv("TERM") != "dumb"
	if lf == "json" {
		u.jsonLogs = true
		u.log = slog.New(slog.NewJSONHandler(stderr, nil))
	} else {
		u.log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	return u, nil
}

// isTerminal reports whether w is a character device (a terminal), without x/term.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// warn prints a warning line on stderr (or a slog record with --log-format json).
func (u *ui) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if u.jsonLogs {
		u.log.Warn(msg)
		return
	}
	fmt.Fprintf(u.stderr, "drainctl: warning: %s\n", oneLine(msg))
}

// info prints a progress line on stderr.
func (u *ui) info(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if u.jsonLogs {
		u.log.Info(msg)
		return
	}
	fmt.Fprintf(u.stderr, "drainctl: %s\n", msg)
}

// observer is the live progress of a drain.Runner (or of drain/quiet): report.Progress
// on stderr, or slog records with --log-format json.
func (u *ui) observer() drain.Observer {
	if u.jsonLogs {
		return report.LogObserver{Log: u.log}
	}
	return report.NewProgress(u.stderr, report.ProgressOptions{TTY: u.tty, JSONOutput: u.out == report.JSON, Color: u.color})
}

// checkReportPath makes sure --report can be written before anything else happens.
func (u *ui) checkReportPath() error {
	if u.reportPath == "" {
		return nil
	}
	if err := report.CheckPath(u.reportPath); err != nil {
		return usageErr("--report: %w", err)
	}
	return nil
}

// runReport renders a drain.Result (deploy, drain and quiet): on stdout unless toStdout is
// false, to --report always, and the CI extras (step summary, annotations).
func (u *ui) runReport(res drain.Result, command string, toStdout bool) error {
	ro := report.Options{Command: command, Version: versionString(), ShowArgs: u.showArgs}
	rep := report.FromResult(res, ro)
	var errs []error
	if toStdout {
		so := ro
		so.Color = u.color && isTerminal(u.stdout)
		if err := report.Write(u.stdout, u.out, &rep, so); err != nil {
			errs = append(errs, fmt.Errorf("write the result: %w", err))
		}
	}
	if u.reportPath != "" {
		if err := report.WriteFile(u.reportPath, &rep, ro); err != nil {
			errs = append(errs, err)
		}
	}
	if serr := report.AppendStepSummary(u.getenv, rep); serr != nil {
		u.warn("append to $%s: %v", report.StepSummaryEnv, serr)
	}
	if aerr := report.WriteAnnotations(u.stderr, u.getenv, rep); aerr != nil {
		u.warn("write annotations: %v", aerr)
	}
	return errors.Join(errs...)
}
