package main

import (
	"context"
	"errors"
	"fmt"
)

// Exit codes: the one table, documented in README.md and in `drainctl --help`.
const (
	exitOK             = 0   // succeeded (also when jobs had to be rescued: nothing was lost)
	exitFailure        = 1   // unexpected failure
	exitUsage          = 2   // usage or bad input; nothing was changed
	exitDrainTimeout   = 3   // drain timed out with --on-timeout fail
	exitRolloutFailed  = 4   // rollout failed or was rolled back
	exitRolloutTimeout = 5   // rollout timed out (it may still be running)
	exitLocked         = 6   // another run holds the lock
	exitCheckFindings  = 7   // drainctl check found errors (or warnings with --strict)
	exitInterrupted    = 130 // interrupted (SIGINT/SIGTERM)
)

// exitCodesHelp is printed by --help.
const exitCodesHelp = `EXIT CODES:
   0    succeeded (also when jobs had to be rescued: nothing was lost)
   1    unexpected failure
   2    usage or bad input (nothing was changed)
   3    drain timed out with --on-timeout fail
   4    rollout failed or was rolled back
   5    rollout timed out (it may still be running)
   6    another run holds the lock
   7    check found errors (or warnings with --strict)
   130  interrupted`

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

// withCode wraps err with an exit code and an optional hint line.
func withCode(code int, err error, hint string) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err, hint: hint}
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
