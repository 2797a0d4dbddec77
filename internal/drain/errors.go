package drain

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
)

// PreflightError lists the findings that refused the run.
type PreflightError struct {
	Findings []string
}

func (e *PreflightError) Error() string {
	if len(e.Findings) == 1 {
		return "preflight: " + e.Findings[0]
	}
	return "preflight: " + strings.Join(e.Findings, "; ")
}

// Is makes errors.Is(err, ErrPreflight) true.
func (e *PreflightError) Is(target error) bool { return target == ErrPreflight }

// EmptySelectionError says the selection matched no process, and lists what there was.
type EmptySelectionError struct {
	// Fleet lists every process of the fleet ("identity (tag)").
	Fleet []string
	// Tasks lists the services' running tasks ("task-id ip").
	Tasks []string
}

func (e *EmptySelectionError) Error() string {
	var b strings.Builder
	b.WriteString("no process selected")
	fmt.Fprintf(&b, "; fleet has %d process(es)", len(e.Fleet))
	if len(e.Fleet) > 0 {
		b.WriteString(": " + strings.Join(e.Fleet, ", "))
	}
	fmt.Fprintf(&b, "; services have %d running task(s)", len(e.Tasks))
	if len(e.Tasks) > 0 {
		b.WriteString(": " + strings.Join(e.Tasks, ", "))
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
}

func (e *LockedError) Error() string {
	h := e.Holder
	return fmt.Sprintf("deploy lock %q held by %s on %s (pid %d) since %s", e.Name, h.Owner, h.Host, h.PID,
		h.StartedAt.UTC().Format("2006-01-02T15:04:05Z"))
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// ExitCode maps a run's Result and error to drainctl's exit code: 0 succeeded (also with
// rescued jobs) or dry run, 1 unexpected, 2 preflight refusal (nothing changed), 3 drain
// timeout with fail, 4 rollout failed or rolled back, 5 rollout timeout, 6 lock held,
// 130 interrupted. The command's exit.go holds the same table for its own usage errors.
func ExitCode(res Result, err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrInterrupted), errors.Is(err, context.Canceled):
		return 130
	case errors.Is(err, ErrLocked):
		return 6
	case errors.Is(err, ErrPreflight):
		return 2
	case errors.Is(err, ErrDrainTimeout):
		return 3
	case errors.Is(err, ErrRolloutFailed):
		return 4
	case errors.Is(err, ErrRolloutTimeout):
		return 5
	}
	return 1
}
