package sidekiq

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/testenv"
)

func TestLayoutOf(t *testing.T) {
	tests := []struct {
		version string
		want    Layout
	}{
		{"", Layout6}, {"6.5.12", Layout6}, {"7.0.2", Layout7}, {"7.3.2", Layout7}, {"8.0.0", Layout8}, {"8.1.7", Layout8},
		{"9.0.0", LayoutUnknown}, {"10.1", LayoutUnknown}, {"x.y", LayoutUnknown},
	}
	for _, tc := range tests {
		if got := layoutOf(tc.version); got != tc.want {
			t.Errorf("layoutOf(%q) = %v, want %v", tc.version, got, tc.want)
		}
	}
	for s, want := range map[string]Layout{"6": Layout6, "7": Layout7, " 8 ": Layout8, "": LayoutUnknown} {
		if l, err := ParseLayout(s); err != nil || l != want {
			t.Errorf("ParseLayout(%q) = %v, %v; want %v", s, l, err, want)
		}
	}
	if _, err := ParseLayout("9"); err == nil {
		t.Error("ParseLayout(9): want an error")
	}
}

// TestUnknownMajor: a Sidekiq 9 heartbeat is not taken for 8; CheckLayouts names its version
// and Rescue refuses its jobs, unless a layout is forced.
func TestUnknownMajor(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx := context.Background()
	const id = "ip-10-0-9-9:9:999999999999"
	if err := handBeat(ctx, rdb, "", id, "9.0.1", time.Now(), true, -1, "nine1"); err != nil {
		t.Fatal(err)
	}
	for _, forced := range []Layout{LayoutUnknown, Layout8} {
		t.Run("forced="+forced.String(), func(t *testing.T) {
			c := NewClient(rdb, "")
			c.ForceLayout(forced)
			snap, err := c.Snapshot(ctx)
			if err != nil || len(snap.Processes) != 1 {
				t.Fatalf("snapshot: %v %+v", err, snap)
			}
			p := snap.Processes[0]
			if p.Layout != forced || p.Version != "9.0.1" || len(p.Jobs) != 1 {
				t.Fatalf("process layout %v version %q jobs %d, want layout %v", p.Layout, p.Version, len(p.Jobs), forced)
			}
			err = c.CheckLayouts(snap.Processes)
			res, rerr := c.Rescue(ctx, p.Jobs, RescueOptions{DryRun: true})
			if rerr != nil {
				t.Fatal(rerr)
			}
			var uv *UnknownVersionError
			if forced == LayoutUnknown {
				if !errors.As(err, &uv) || uv.Version != "9.0.1" || uv.Identity != id || !strings.Contains(err.Error(), "Sidekiq 9.0.1") {
					t.Errorf("CheckLayouts = %v, want an *UnknownVersionError naming 9.0.1", err)
				}
				if res.Jobs[0].Outcome != OutcomeUnknownVersion || !strings.Contains(res.Jobs[0].Reason, "9.0.1") {
					t.Errorf("rescue: %s %q, want unknown-version naming 9.0.1", res.Jobs[0].Outcome, res.Jobs[0].Reason)
				}
				return
			}
			if err != nil {
				t.Errorf("CheckLayouts with a forced layout = %v", err)
			}
			if res.Jobs[0].Outcome != OutcomeWouldPush {
				t.Errorf("rescue with a forced layout: %s %q, want would-push", res.Jobs[0].Outcome, res.Jobs[0].Reason)
			}
		})
	}
}
