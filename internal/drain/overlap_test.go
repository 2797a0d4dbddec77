package drain

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/ecs"
)

func TestOverlapRoom(t *testing.T) {
	tests := []struct {
		desired, maxPercent, want int32
	}{
		{2, 200, 2},
		{4, 150, 2},
		{3, 150, 1}, // ⌊4.5⌋ − 3
		{2, 100, 0},
		{1, 150, 0}, // ⌊1.5⌋ − 1
		{10, 110, 1},
	}
	for _, tt := range tests {
		if got := overlapRoom(tt.desired, tt.maxPercent); got != tt.want {
			t.Errorf("overlapRoom(%d, %d) = %d, want %d", tt.desired, tt.maxPercent, got, tt.want)
		}
	}
}

// TestRunAutoChooses: auto settles on overlap when there is room, permission and every
// process is placed, and on drain-first with the reason otherwise; overlap asked for where it
// cannot run is refused before any write.
func TestRunAutoChooses(t *testing.T) {
	tests := []struct {
		name       string
		strategy   StrategyName
		setup      func(f *fixture)
		want       StrategyName
		reason     string
		wantRefuse bool
		code       string // the refusal's (or warning's) finding
		warning    string
	}{
		{name: "room", strategy: StrategyAuto, want: StrategyOverlap, reason: "2 new task(s) start at once beside 2 protected old one(s)"},
		{name: "no room", strategy: StrategyAuto, setup: func(f *fixture) { f.svc.state.MaxPercent = 100 },
			want: StrategyDrainFirst, reason: "maximumPercent 100 leaves no room for a new task beside the 2 old ones"},
		{name: "no permission", strategy: StrategyAuto, setup: func(f *fixture) {
			f.ecs.protectErr = &ecs.AccessDeniedError{Action: "ecs:GetTaskProtection", Resource: "tasks", Region: "us-east-1"}
		}, want: StrategyDrainFirst, reason: "task scale-in protection cannot be read"},
		{name: "overlap without room", strategy: StrategyOverlap, setup: func(f *fixture) { f.svc.state.MaxPercent = 100 },
			want: StrategyOverlap, wantRefuse: true, code: CodeNoRoom},
		{name: "blue/green with a PAUSE hook", strategy: StrategyAuto, setup: func(f *fixture) { f.svc.state.Strategy = blueGreen(time.Hour) },
			want: StrategyPauseHook, reason: "BLUE_GREEN with a PAUSE hook at POST_SCALE_UP"},
		{name: "blue/green without a hook", strategy: StrategyAuto, setup: func(f *fixture) {
			f.svc.state.Strategy = ecs.DeploymentStrategy{Name: "BLUE_GREEN", BakeTime: time.Minute}
		}, want: StrategyBlueGreen, reason: "without a PAUSE hook", warning: CodeBakeShorterThanDrain},
		{name: "linear with a PAUSE hook", strategy: StrategyAuto, setup: func(f *fixture) {
			st := blueGreen(time.Hour)
			st.Name = "LINEAR"
			f.svc.state.Strategy = st
		}, want: StrategyPauseHook, reason: "LINEAR with a PAUSE hook"},
		{name: "hook times out before the drain budget", strategy: StrategyAuto, setup: func(f *fixture) { f.svc.state.Strategy = blueGreen(5 * time.Minute) },
			wantRefuse: true, code: CodeHookTimeout},
		{name: "overlap on blue/green", strategy: StrategyOverlap, setup: func(f *fixture) { f.svc.state.Strategy = blueGreen(time.Hour) },
			wantRefuse: true, code: CodeStrategyMismatch},
		{name: "pause-hook on rolling", strategy: StrategyPauseHook, wantRefuse: true, code: CodeStrategyMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			f.cfg.Strategy, f.cfg.DryRun = tt.strategy, true
			if tt.setup != nil {
				tt.setup(f)
			}
			res, err := f.run(t, nil)
			if tt.wantRefuse {
				if !errors.Is(err, ErrPreflight) || ExitCode(err) != 2 || !strings.Contains(err.Error(), tt.code) {
					t.Fatalf("err = %v, want a refusal naming %s", err, tt.code)
				}
				noWrites(t, f.calls)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Strategy.Name != tt.want || res.Strategy.Requested != tt.strategy || !strings.Contains(res.Strategy.Reason, tt.reason) {
				t.Errorf("strategy = %+v, want %s because %q", res.Strategy, tt.want, tt.reason)
			}
			if tt.warning != "" && !strings.Contains(strings.Join(res.Warnings, "\n"), tt.warning) {
				t.Errorf("warnings = %q, want %s", res.Warnings, tt.warning)
			}
			noWrites(t, f.calls)
		})
	}
}

// blueGreen is a BLUE_GREEN strategy with a PAUSE hook at POST_SCALE_UP timing out after d.
func blueGreen(d time.Duration) ecs.DeploymentStrategy {
	return ecs.DeploymentStrategy{Name: "BLUE_GREEN", BakeTime: 5 * time.Minute,
		Hooks: []ecs.LifecycleHook{{Type: "PAUSE", Stages: []string{"POST_SCALE_UP"}, Timeout: d, TimeoutAction: "ROLLBACK"}}}
}

// TestRunOverlapFallsBackWithoutProtection: protection refused at the first write, before
// anything was quieted, turns the run into drain-first with a warning; it never fails the
// deploy for it.
func TestRunOverlapFallsBackWithoutProtection(t *testing.T) {
	f := newFixture()
	f.cfg.Strategy = StrategyAuto
	denied := &ecs.AccessDeniedError{Action: "ecs:UpdateTaskProtection", Resource: "2 task(s)", Region: "us-east-1"}
	// Reading is allowed, setting is not.
	f.ecs.protectErrOnSet = denied
	res, err := f.run(t, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Strategy.Name != StrategyDrainFirst || !strings.Contains(res.Strategy.Reason, "protection is unavailable") ||
		!strings.Contains(strings.Join(res.Warnings, "\n"), "drain-first instead") {
		t.Errorf("strategy %+v, warnings %q; want drain-first with the reason", res.Strategy, res.Warnings)
	}
	if len(f.calls.named("Deploy")) != 1 || len(f.calls.named("UnprotectTasks")) != 0 {
		t.Errorf("calls = %v, want one Deploy and nothing to unprotect", f.calls.all())
	}
}

// TestRunOverlapLeavesForeignProtectionAlone: a task someone else protected is reported,
// never protected or unprotected by drainctl; the others are protected before the deploy.
func TestRunOverlapLeavesForeignProtectionAlone(t *testing.T) {
	f := newFixture()
	f.cfg.Strategy, f.cfg.DryRun = StrategyOverlap, true
	f.ecs.foreign = map[string]bool{task(1).ARN: true}
	res, err := f.run(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	var foreign []ProtectionRecord
	for _, p := range res.Protection {
		if p.Foreign {
			foreign = append(foreign, p)
		}
	}
	if len(foreign) != 1 || foreign[0].TaskARN != task(1).ARN || !strings.Contains(strings.Join(res.Warnings, "\n"), CodeForeignProtection) {
		t.Errorf("protection %+v, warnings %q; want task 1 reported as protected by someone else", res.Protection, res.Warnings)
	}
	if plan := strings.Join(res.Plan, "\n"); !strings.Contains(plan, "would protect 1 old task(s)") {
		t.Errorf("plan:\n%s\nwant 1 task to protect", plan)
	}
}
