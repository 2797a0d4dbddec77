package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/drainctl/drainctl/internal/exitcode"
)

// Exit codes, from internal/exitcode: the one table the code, --help and README.md read.
const (
	exitOK             = int(exitcode.OK)
	exitFailure        = int(exitcode.Failure)
	exitUsage          = int(exitcode.Usage)
	exitDrainTimeout   = int(exitcode.DrainTimeout)
	exitRolloutFailed  = int(exitcode.RolloutFailed)
	exitRolloutTimeout = int(exitcode.RolloutTimeout)
	exitLocked         = int(exitcode.Locked)
	exitCheckFindings  = int(exitcode.CheckFindings)
	exitInterrupted    = int(exitcode.Interrupted)
)

// exitError carries an exit code with the error that caused it.
type exitError struct {
	code int
	err  error
	hint string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr marks bad input: exit 2, nothing changed.
func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// codeOf maps an error to its exit code.
func codeOf(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.Is(err, context.Canceled) {
		return exitInterrupted
	}
	return exitFailure
}

// hintOf returns the hint attached to err, if any.
func hintOf(err error) string {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.hint
	}
	return ""
}
