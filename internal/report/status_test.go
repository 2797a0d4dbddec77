package report

import (
	"bytes"
	"encoding/json"
	"github.com/drainctl/drainctl/internal/ecs"
	"testing"
	"time"
)

// formats are the three renderings and the extensions of their golden files.
var formats = []struct {
	f   Format
	ext string
}{{Text, "txt"}, {JSON, "json"}, {Markdown, "md"}}

func sampleStatus() *Status {
	at := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	st := NewStatus(at, "redis://:xxxxx@redis.internal:6379/0")
	st.Processes = []StatusProcess{
		{Identity: "ip-10-0-1-23:7:1a2b3c", Hostname: "ip-10-0-1-23", Task: "0f3c9a1e5d7b4c2a9e8f7d6c5b4a3921", Tag: "worker",
			Version: "7.3.2", Queues: []string{"critical", "default"}, Busy: 2, Concurrency: 5, LastBeat: at.Add(-4 * time.Second), BeatAge: 4},
		{Identity: "ip-10-0-1-24:7:4d5e6f", Hostname: "ip-10-0-1-24", Tag: "worker", Version: "7.3.2", Queues: []string{"default"},
			Quiet: true, Concurrency: 5, LastBeat: at.Add(-9 * time.Second), BeatAge: 9},
		{Identity: "ip-10-0-1-25:7:777777", Hostname: "ip-10-0-1-25", Queues: []string{}, Dead: true},
	}
	st.Jobs = []StatusJob{
		{Class: "ReportJob", Queue: "default", JID: "aaaaaaaaaaaaaaaaaaaaaaaa", Process: "ip-10-0-1-23:7:1a2b3c", RunAt: at.Add(-95 * time.Second), Running: 95},
		{Class: "MailJob", Queue: "critical", JID: "bbbbbbbbbbbbbbbbbbbbbbbb", Process: "ip-10-0-1-23:7:1a2b3c", RunAt: at.Add(-3 * time.Second), Running: 3,
			Args: json.RawMessage(`[42,"a|b"]`)},
	}
	st.Queues = []StatusQueue{{Name: "critical", Size: 0}, {Name: "default", Size: 120, Latency: 12.5}}
	st.Services = []StatusService{{Cluster: "prod", Service: "worker", Status: "ACTIVE",
		TaskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:7", Desired: 2, Running: 2, Controller: "ECS",
		Strategy: NewDeployStrategy(ecs.DeploymentStrategy{Name: "BLUE_GREEN", BakeTime: 10 * time.Minute,
			Hooks: []ecs.LifecycleHook{{Type: "PAUSE", Stages: []string{"POST_SCALE_UP"}, Timeout: 30 * time.Minute, TimeoutAction: "ROLLBACK"}}}),
		Deployments: []StatusDeployment{{ID: "ecs-svc/1234567890123456789", Status: "PRIMARY", RolloutState: "COMPLETED",
			TaskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:7", Desired: 2, Running: 2, CreatedAt: at.Add(-time.Hour)}},
		Tasks: []StatusTask{{ID: "0f3c9a1e5d7b4c2a9e8f7d6c5b4a3921", ARN: "arn:aws:ecs:us-east-1:123456789012:task/prod/0f3c9a1e5d7b4c2a9e8f7d6c5b4a3921",
			LastStatus: "RUNNING", Deployment: "ecs-svc/1234567890123456789", PrivateIPv4: "10.0.1.23", Processes: []string{"ip-10-0-1-23:7:1a2b3c"}}},
	}}
	st.Warnings = []string{"service prod/worker: deployment circuit breaker is off"}
	return st
}

func TestStatusGolden(t *testing.T) {
	for _, f := range formats {
		var b bytes.Buffer
		if err := Write(&b, f.f, sampleStatus(), Options{}); err != nil {
			t.Fatal(err)
		}
		golden(t, "status."+f.ext, b.Bytes())
	}
}

func TestStatusSchemaAndKind(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, JSON, NewStatus(time.Unix(0, 0), "redis://127.0.0.1:6379/0"), Options{}); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["schema"] != Schema || doc["kind"] != "status" {
		t.Errorf("schema, kind = %v, %v; want %s, status", doc["schema"], doc["kind"], Schema)
	}
	// An empty fleet is empty lists, not nulls.
	for _, k := range []string{"processes", "jobs", "queues"} {
		if l, ok := doc[k].([]any); !ok || len(l) != 0 {
			t.Errorf("%s = %v, want []", k, doc[k])
		}
	}
}
