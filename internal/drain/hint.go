package drain

import (
	"context"
	"errors"
	"time"
)

// NamespaceHinter is what FailureHint asks of the fleet; *sidekiq.Client satisfies it.
type NamespaceHinter interface {
	// NamespaceHint names another redis-namespace prefix under which Sidekiq processes are
	// listed, or "" when there is none.
	NamespaceHint(ctx context.Context) (string, error)
}

// FailureHint is the one line that names what to do after a run that failed with err (Run's
// error, or nil when only res.ExitCode says it failed): the hint of what the run left
// behind; for a selection that found nothing, the other Redis namespace Sidekiq's keys are
// under (the usual reason, asked of fleet) or else the selection's own hint; for a held
// deploy lock, the unlock command. "" when there is nothing to add.
func FailureHint(ctx context.Context, res Result, err error, fleet NamespaceHinter) string {
	hint := ""
	if res.Left != nil {
		hint = res.Left.Hint
	}
	var (
		empty  *EmptySelectionError
		locked *LockedError
	)
	switch {
	case errors.As(err, &empty) || hasFinding(err, CodeEmptySelection):
		if h, herr := fleet.NamespaceHint(ctx); herr == nil && h != "" {
			hint = h
		} else if empty != nil && empty.Hint != "" {
			hint = empty.Hint
		}
	case errors.As(err, &locked):
		hint = locked.Hint()
	}
	return hint
}

// hasFinding says whether err is a preflight refusal carrying a finding with the given code.
func hasFinding(err error, code string) bool {
	var pe *PreflightError
	if !errors.As(err, &pe) {
		return false
	}
	for _, f := range pe.Findings {
		if f.Code == code {
			return true
		}
	}
	return false
}

// RefusedResult is the Result of a run refused before its Runner started (bad input, an
// unreachable Redis): nothing was read or changed, and the report still says why. msg is the
// error's one-line message and exitCode the code the command exits with.
func RefusedResult(strategy StrategyName, started, ended time.Time, redisURL, msg string, exitCode int) Result {
	return Result{Command: CommandOf(strategy), Strategy: Strategy{Name: strategy}, Outcome: OutcomeRefused,
		StartedAt: started, EndedAt: ended, Error: msg, ExitCode: exitCode,
		Settings: Settings{RedisURL: redisURL}, APICalls: map[string]int{}}
}
