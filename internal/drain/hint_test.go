package drain

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/finding"
)

// hinter is a fleet that names another namespace, or fails to look.
type hinter struct {
	hint  string
	err   error
	asked int
}

func (h *hinter) NamespaceHint(context.Context) (string, error) {
	h.asked++
	return h.hint, h.err
}

// TestFailureHint: what is left behind names the next step, an empty selection prefers the
// namespace Sidekiq's keys are really under, and a held lock names the unlock command.
func TestFailureHint(t *testing.T) {
	left := Result{Left: &Leftover{Hint: "run drainctl rescue"}}
	empty := &EmptySelectionError{Hint: "try --all"}
	refusedEmpty := &PreflightError{Findings: []finding.Finding{{Code: CodeEmptySelection, Severity: finding.Error}}}
	locked := &LockedError{Name: "deploy:prod/worker"}
	tests := []struct {
		name      string
		res       Result
		err       error
		fleet     hinter
		want      string
		wantAsked int
	}{
		{"nothing to add", Result{}, errors.New("boom"), hinter{hint: "ns"}, "", 0},
		{"left behind", left, errors.New("boom"), hinter{hint: "ns"}, "run drainctl rescue", 0},
		{"empty selection, other namespace", left, fmt.Errorf("select: %w", empty), hinter{hint: "use --redis-namespace app"}, "use --redis-namespace app", 1},
		{"empty selection, own hint", Result{}, empty, hinter{}, "try --all", 1},
		{"empty selection, lookup failed", Result{}, empty, hinter{hint: "x", err: errors.New("down")}, "try --all", 1},
		{"refused preflight finding", Result{}, refusedEmpty, hinter{hint: "use --redis-namespace app"}, "use --redis-namespace app", 1},
		{"refused preflight finding, no namespace", left, refusedEmpty, hinter{}, "run drainctl rescue", 1},
		{"locked", Result{}, locked, hinter{hint: "ns"}, locked.Hint(), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FailureHint(context.Background(), tt.res, tt.err, &tt.fleet); got != tt.want {
				t.Errorf("FailureHint = %q, want %q", got, tt.want)
			}
			if tt.fleet.asked != tt.wantAsked {
				t.Errorf("asked the fleet %d times, want %d", tt.fleet.asked, tt.wantAsked)
			}
		})
	}
}

// TestRefusedResult: a run refused before it started reports the refusal with its exit code
// and an empty API call count (a JSON object, not null).
func TestRefusedResult(t *testing.T) {
	t0 := time.Unix(100, 0)
	res := RefusedResult(StrategyDrainOnly, t0, t0.Add(time.Second), "redis://r/0", "no Redis URL", 2)
	if res.Command != CommandOf(StrategyDrainOnly) || res.Strategy.Name != StrategyDrainOnly || res.Outcome != OutcomeRefused ||
		res.ExitCode != 2 || res.Error != "no Redis URL" || res.Settings.RedisURL != "redis://r/0" || res.APICalls == nil ||
		!res.StartedAt.Equal(t0) || res.EndedAt.Sub(res.StartedAt) != time.Second {
		t.Errorf("RefusedResult = %+v", res)
	}
}
