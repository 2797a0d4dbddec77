package check

import (
	"strings"
	"testing"
)

func TestDeploymentAdvice(t *testing.T) {
	pct := func(v int) *int { return &v }
	tests := []struct {
		name string
		d    Deployment
		want string // in the fix; empty for no advice
	}{
		{"rolling with room", Deployment{Strategy: "ROLLING", MaximumPercent: pct(200), DesiredCount: 4}, ""},
		{"rolling 150 of 4", Deployment{Strategy: "ROLLING", MaximumPercent: pct(150), DesiredCount: 4}, ""},
		{"rolling 100", Deployment{Strategy: "ROLLING", MaximumPercent: pct(100), DesiredCount: 4}, `"maximumPercent": 200`},
		{"rolling 150 of 1", Deployment{Strategy: "ROLLING", MaximumPercent: pct(150), DesiredCount: 1}, `"maximumPercent": 200`},
		{"unknown percent", Deployment{Strategy: "ROLLING"}, ""},
		{"blue/green with the hook", Deployment{Strategy: "BLUE_GREEN", PauseHookPostScaleUp: true}, ""},
		{"blue/green without", Deployment{Strategy: "BLUE_GREEN"}, `"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"]`},
		{"canary without", Deployment{Strategy: "CANARY"}, `"lifecycleStages": ["POST_SCALE_UP"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, fix := deploymentAdvice(tt.d)
			if tt.want == "" {
				if msg != "" || fix != "" {
					t.Errorf("advice = %q / %q, want none", msg, fix)
				}
				return
			}
			if msg == "" || !strings.Contains(fix, tt.want) {
				t.Errorf("advice = %q / %q, want a fix containing %q", msg, fix, tt.want)
			}
		})
	}
}
