package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/ecs"
)

var _ drain.Observer = LogObserver{}

// TestLogObserver: each event is one JSON record with its level, message and attributes; a
// service event is a record of its own.
func TestLogObserver(t *testing.T) {
	var b bytes.Buffer
	o := LogObserver{slog.New(slog.NewJSONHandler(&b, nil))}
	at := time.Unix(0, 0)
	o.PhaseStarted(drain.Phase("quiet"), at)
	o.PhaseEnded(drain.Phase("quiet"), at, nil)
	o.PhaseEnded(drain.Phase("wait"), at, errors.New("drain timed out"))
	o.DrainProgress(drain.DrainProgress{Phase: drain.Phase("wait"), Total: 4, Remaining: 1})
	o.RolloutPoll(drain.RolloutPoll{Ref: ecs.ServiceRef{Cluster: "prod", Service: "worker"}, DeploymentID: "ecs-svc/2",
		RolloutState: "IN_PROGRESS", Running: 1, Desired: 2, Pending: 1, Events: []ecs.Event{{Message: "has started 1 tasks"}}})
	o.Warning("careful")

	want := []map[string]any{
		{"level": "INFO", "msg": "phase started", "phase": "quiet"},
		{"level": "INFO", "msg": "phase ended", "phase": "quiet"},
		{"level": "WARN", "msg": "phase ended", "phase": "wait", "error": "drain timed out"},
		{"level": "INFO", "msg": "drain", "phase": "wait", "total": 4.0, "remaining": 1.0},
		{"level": "INFO", "msg": "rollout", "service": "prod/worker", "deployment": "ecs-svc/2", "state": "IN_PROGRESS",
			"running": 1.0, "desired": 2.0, "pending": 1.0},
		{"level": "INFO", "msg": "service event", "service": "prod/worker", "message": "has started 1 tasks"},
		{"level": "WARN", "msg": "careful"},
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d records, want %d:\n%s", len(lines), len(want), b.String())
	}
	for i, l := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatal(err)
		}
		delete(got, "time")
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("record %d = %v, want %v", i, got, want[i])
		}
	}
}
