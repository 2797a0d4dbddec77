package drain

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drainctl/drainctl/internal/exitcode"
	"github.com/drainctl/drainctl/internal/finding"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// Sentinel errors callers branch on with errors.Is; ExitCode maps them.
var (
	// ErrPreflight: a preflight check refused the run; nothing was changed (exit 2).
	ErrPreflight = errors.New("preflight failed")
	// ErrLocked: another run holds the deploy lock (exit 6).
	ErrLocked = errors.New("deploy lock held")
	// ErrDrainTimeout: jobs outlasted the drain timeout with OnTimeoutFail (exit 3).
	ErrDrainTimeout = errors.New("drain timed out")
	// ErrRolloutFailed: the rollout failed or was rolled back (exit 4).
	ErrRolloutFailed = errors.New("rollout failed")
	// ErrRolloutTimeout: the rollout did not finish in time; it may still be running (exit 5).
	ErrRolloutTimeout = errors.New("rollout timed out")
	// ErrInterrupted: the run's context was cancelled; Result.Left says what is left (exit 130).
	ErrInterrupted = errors.New("interrupted")
	// ErrNotAcknowledged: a quieted process did not acknowledge in time (exit 1).
	ErrNotAcknowledged = errors.New("quiet not acknowledged")
	// ErrStillRunning: processes sent TERM had not left by the exit timeout (exit 1).
	ErrStillRunning = errors.New("processes still running")
)

// PreflightError lists the findings that refused the run.
type PreflightError struct {
	Findings []finding.Finding
}

func (e *PreflightError) Error() string {
	var msgs []string
	for _, f := range e.Findings {
		if f.Severity == finding.Error || len(msgs) == 0 && f.Severity == "" {
			msgs = append(msgs, codeMessage(f))
		}
	}
	if len(msgs) == 0 {
		for _, f := range e.Findings {
			msgs = append(msgs, codeMessage(f))
		}
	}
	return "preflight: " + strings.Join(msgs, "; ")
}

// codeMessage is a finding as the one error line shows it: its code first, so it can be
// looked up in README.md.
func codeMessage(f finding.Finding) string {
	if f.Code == "" || f.Code == CodeBadConfig {
		return f.Message
	}
	return f.Code + " " + f.Message
}

// Is makes errors.Is(err, ErrPreflight) true.
func (e *PreflightError) Is(target error) bool { return target == ErrPreflight }

// usageError is a configuration that cannot run; nothing was changed.
func usageError(err error) error {
	pe := &PreflightError{}
	for _, line := range strings.Split(err.Error(), "\n") {
		pe.Findings = append(pe.Findings, finding.Finding{Code: CodeBadConfig, Name: "bad-config", Severity: finding.Error,
			Subject: "configuration", Message: line})
	}
	return pe
}

// EmptySelectionError says the selection matched no process, and lists what there was.
type EmptySelectionError struct {
	// Fleet lists every process of the fleet ("identity (tag)").
	Fleet []string
	// Tasks lists the services' running tasks ("task-id ip").
	Tasks []string
	// Hint names a likely fix (another Redis namespace, a selector).
	Hint string
}

func (e *EmptySelectionError) Error() string {
	var b strings.Builder
	b.WriteString("no process selected")
	fmt.Fprintf(&b, "; fleet has %d process(es)", len(e.Fleet))
	if len(e.Fleet) > 0 {
		b.WriteString(": " + strings.Join(e.Fleet, ", "))
	}
	if e.Tasks != nil {
		fmt.Fprintf(&b, "; services have %d running task(s)", len(e.Tasks))
		if len(e.Tasks) > 0 {
			b.WriteString(": " + strings.Join(e.Tasks, ", "))
		}
	}
	b.WriteString(" (select with --tag/--hostname/--queue/--identity, or --all)")
	return b.String()
}

// Is makes errors.Is(err, ErrPreflight) true: an empty selection changes nothing.
func (e *EmptySelectionError) Is(target error) bool { return target == ErrPreflight }

// LockedError says another run holds the deploy lock.
type LockedError struct {
	Name   string
	Holder sidekiq.LockOwner
	// ExpiresIn is how long the lock lasts if its holder stopped refreshing it.
	ExpiresIn time.Duration
	// Held is the fleet's own account (when it renewed, when it expires); nil when unknown.
	Held *sidekiq.LockHeldError
}

func (e *LockedError) Error() string {
	h := e.Holder
	s := fmt.Sprintf("deploy lock %q held by %s on %s (pid %d) since %s", e.Name, h.Owner, h.Host, h.PID,
		h.StartedAt.UTC().Format("2006-01-02T15:04:05Z"))
	switch {
	case e.Held != nil && !e.Held.ExpiresAt.IsZero():
		s += fmt.Sprintf("; if that run is gone, the lock expires at %s", e.Held.ExpiresAt.UTC().Format("15:04:05Z"))
	case e.ExpiresIn > 0:
		s += fmt.Sprintf("; if that run is gone, the lock expires in %v", e.ExpiresIn.Round(time.Second))
	}
	return s
}

// Hint says how to get out: wait for the other run, or remove a lock its holder left.
func (e *LockedError) Hint() string {
	cmd := "drainctl unlock"
	if svc, ok := strings.CutPrefix(e.Name, "deploy:"); ok {
		for i, ref := range strings.Split(svc, ",") {
			if c, s, ok := strings.Cut(ref, "/"); ok {
				if i == 0 {
					cmd += " --cluster " + c
				}
				cmd += " --service " + s
			}
		}
	}
	return "wait for that run to end; if it is gone (killed), remove its lock with: " + cmd + " (--force while it still looks renewed)"
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// ExitCode maps a run's error to drainctl's exit code (internal/exitcode's table): 0 for a
// succeeded run or a dry run (also with rescued jobs), 2 a preflight refusal (nothing
// changed), 3 drain timeout with fail, 4 rollout failed or rolled back, 5 rollout timeout, 6
// lock held, 130 interrupted, 1 anything else.
func ExitCode(err error) exitcode.Code {
	switch {
	case err == nil:
		return exitcode.OK
	case errors.Is(err, ErrInterrupted), errors.Is(err, context.Canceled):
		return exitcode.Interrupted
	case errors.Is(err, ErrLocked):
		return exitcode.Locked
	case errors.Is(err, ErrPreflight):
		return exitcode.Usage
	case errors.Is(err, ErrDrainTimeout):
		return exitcode.DrainTimeout
	case errors.Is(err, ErrRolloutFailed):
		return exitcode.RolloutFailed
	case errors.Is(err, ErrRolloutTimeout):
		return exitcode.RolloutTimeout
	}
	return exitcode.Failure
}
