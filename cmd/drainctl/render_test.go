package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func sampleStatus() statusReport {
	at := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	return statusReport{
		Schema: statusSchema, At: at, Redis: "redis://:xxxxx@redis.internal:6379/0",
		Processes: []statusProcess{
			{Identity: "ip-10-0-1-23:7:1a2b3c", Hostname: "ip-10-0-1-23", Task: "0f3c9a1e5d7b4c2a9e8f7d6c5b4a3921", Tag: "worker",
				Version: "7.3.2", Queues: []string{"critical", "default"}, Busy: 2, Concurrency: 5, LastBeat: at.Add(-4 * time.Second), BeatAge: 4},
			{Identity: "ip-10-0-1-24:7:4d5e6f", Hostname: "ip-10-0-1-24", Tag: "worker", Version: "7.3.2", Queues: []string{"default"},
				Quiet: true, Concurrency: 5, LastBeat: at.Add(-9 * time.Second), BeatAge: 9},
			{Identity: "ip-10-0-1-25:7:777777", Hostname: "ip-10-0-1-25", Queues: []string{}, Dead: true},
		},
		Jobs: []statusJob{
			{Class: "ReportJob", Queue: "default", JID: "aaaaaaaaaaaaaaaaaaaaaaaa", Process: "ip-10-0-1-23:7:1a2b3c", RunAt: at.Add(-95 * time.Second), Running: 95},
			{Class: "MailJob", Queue: "critical", JID: "bbbbbbbbbbbbbbbbbbbbbbbb", Process: "ip-10-0-1-23:7:1a2b3c", RunAt: at.Add(-3 * time.Second), Running: 3,
				Args: json.RawMessage(`[42,"a|b"]`)},
		},
		Queues: []statusQueue{{Name: "critical", Size: 0}, {Name: "default", Size: 120, Latency: 12.5}},
		Services: []statusService{{Cluster: "prod", Service: "worker", Status: "ACTIVE",
			TaskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:7", Desired: 2, Running: 2, Controller: "ECS",
			Deployments: []statusDeployment{{ID: "ecs-svc/1234567890123456789", Status: "PRIMARY", RolloutState: "COMPLETED",
				TaskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:7", Desired: 2, Running: 2, CreatedAt: at.Add(-time.Hour)}},
			Tasks: []statusTask{{ID: "0f3c9a1e5d7b4c2a9e8f7d6c5b4a3921", ARN: "arn:aws:ecs:us-east-1:123456789012:task/prod/0f3c9a1e5d7b4c2a9e8f7d6c5b4a3921",
				LastStatus: "RUNNING", Deployment: "ecs-svc/1234567890123456789", PrivateIPv4: "10.0.1.23", Processes: []string{"ip-10-0-1-23:7:1a2b3c"}}},
		}},
		Warnings: []string{"service prod/worker: deployment circuit breaker is off"},
	}
}

func sampleRescue() rescueReport {
	at := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	return rescueReport{
		Schema: rescueSchema, At: at, Redis: "redis://127.0.0.1:6379/0",
		Processes: []rescueProcess{
			{Identity: "ip-10-0-1-23:7:1a2b3c", Hostname: "ip-10-0-1-23", LastBeat: at.Add(-70 * time.Second), State: "dead",
				Evidence: "heartbeat stopped and its hash expired", JobsVisible: 2},
			{Identity: "ip-10-0-1-25:7:777777", Hostname: "ip-10-0-1-25", State: "expired",
				Evidence: "listed in processes, heartbeat hash expired: died more than ~60 s ago"},
		},
		Jobs: []rescueJob{
			{JID: "aaaaaaaaaaaaaaaaaaaaaaaa", Class: "ReportJob", Queue: "default", Process: "ip-10-0-1-23:7:1a2b3c", Outcome: "pushed"},
			{JID: "bbbbbbbbbbbbbbbbbbbbbbbb", Class: "MailJob", Queue: "critical", Process: "ip-10-0-1-23:7:1a2b3c", Outcome: "retry",
				Reason: "the jid is in the retry set"},
		},
		Counts: map[string]int{"pushed": 1, "retry": 1},
		Notes:  []string{"1 process(es) died before this run and their work hashes expired with their heartbeats."},
	}
}

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	for _, f := range []struct {
		f   format
		ext string
	}{{formatText, "txt"}, {formatJSON, "json"}, {formatMarkdown, "md"}} {
		var b bytes.Buffer
		if err := writeStatus(&b, f.f, sampleStatus()); err != nil {
			t.Fatal(err)
		}
		golden(t, "status."+f.ext, b.Bytes())
		b.Reset()
		if err := writeRescue(&b, f.f, sampleRescue()); err != nil {
			t.Fatal(err)
		}
		golden(t, "rescue."+f.ext, b.Bytes())
	}
	dry := sampleRescue()
	dry.DryRun = true
	dry.Jobs[0].Outcome = "would-push"
	dry.Counts = map[string]int{"would-push": 1, "retry": 1}
	var b bytes.Buffer
	if err := writeRescue(&b, formatText, dry); err != nil {
		t.Fatal(err)
	}
	golden(t, "rescue-dry-run.txt", b.Bytes())
}
