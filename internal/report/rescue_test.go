package report

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func sampleRescue() *Rescue {
	at := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	rep := NewRescue(at, "redis://127.0.0.1:6379/0", false)
	rep.Processes = []RescueProcess{
		{Identity: "ip-10-0-1-23:7:1a2b3c", Hostname: "ip-10-0-1-23", LastBeat: at.Add(-70 * time.Second), State: "dead",
			Evidence: "heartbeat stopped and its hash expired", JobsVisible: 2},
		{Identity: "ip-10-0-1-25:7:777777", Hostname: "ip-10-0-1-25", State: "expired",
			Evidence: "listed in processes, heartbeat hash expired: died more than ~60 s ago"},
	}
	rep.Jobs = []RescueJob{
		{JID: "aaaaaaaaaaaaaaaaaaaaaaaa", Class: "ReportJob", Queue: "default", Process: "ip-10-0-1-23:7:1a2b3c", Outcome: "pushed"},
		{JID: "bbbbbbbbbbbbbbbbbbbbbbbb", Class: "MailJob", Queue: "critical", Process: "ip-10-0-1-23:7:1a2b3c", Outcome: "retry",
			Reason: "the jid is in the retry set"},
	}
	rep.Counts = map[string]int{"pushed": 1, "retry": 1}
	rep.Notes = []string{"1 process(es) died before this run and their work hashes expired with their heartbeats."}
	return rep
}

func TestRescueGolden(t *testing.T) {
	for _, f := range formats {
		var b bytes.Buffer
		if err := Write(&b, f.f, sampleRescue(), Options{}); err != nil {
			t.Fatal(err)
		}
		golden(t, "rescue."+f.ext, b.Bytes())
	}
	dry := sampleRescue()
	dry.DryRun = true
	dry.Jobs[0].Outcome = "would-push"
	dry.Counts = map[string]int{"would-push": 1, "retry": 1}
	var b bytes.Buffer
	if err := Write(&b, Text, dry, Options{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "rescue-dry-run.txt", b.Bytes())
}

func TestRescueSchemaAndKind(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, JSON, NewRescue(time.Unix(0, 0), "redis://127.0.0.1:6379/0", true), Options{}); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["schema"] != Schema || doc["kind"] != "rescue" || doc["dry_run"] != true {
		t.Errorf("schema, kind, dry_run = %v, %v, %v; want %s, rescue, true", doc["schema"], doc["kind"], doc["dry_run"], Schema)
	}
}

// The Markdown lists notes then warnings without changing the document.
func TestRescueMarkdownKeepsNotes(t *testing.T) {
	rep := sampleRescue()
	rep.Notes = make([]string, 1, 4)
	rep.Notes[0] = "a note"
	rep.Warnings = []string{"a warning"}
	var b bytes.Buffer
	if err := Write(&b, Markdown, rep, Options{}); err != nil {
		t.Fatal(err)
	}
	if len(rep.Notes) != 1 || rep.Notes[:2][1] != "" {
		t.Errorf("rendering changed the notes: %q", rep.Notes[:2])
	}
	if !bytes.Contains(b.Bytes(), []byte("\n- a note\n- a warning\n")) {
		t.Errorf("notes and warnings missing:\n%s", b.String())
	}
}
