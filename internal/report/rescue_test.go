package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

func sampleRescue() *Rescue {
	at := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	job := func(jid, class, queue, process string) sidekiq.Job {
		return sidekiq.Job{JID: jid, Class: class, Queue: queue, Process: process, Args: []byte(`["secret@example.com"]`)}
	}
	dead := sidekiq.Process{Identity: "ip-10-0-1-23:7:1a2b3c", Hostname: "ip-10-0-1-23", Beat: at.Add(-70 * time.Second), HashExists: true}
	dead.Jobs = []sidekiq.Job{job("aaaaaaaaaaaaaaaaaaaaaaaa", "ReportJob", "default", dead.Identity), job("bbbbbbbbbbbbbbbbbbbbbbbb", "MailJob", "critical", dead.Identity)}
	stale := sidekiq.Process{Identity: "ip-10-0-1-24:7:4d5e6f", Hostname: "ip-10-0-1-24", Beat: at.Add(-14 * time.Second), HashExists: true}
	stale.Jobs = []sidekiq.Job{job("dddddddddddddddddddddddd", "ExportJob", "default", stale.Identity)}
	run := drain.RescueRun{RunID: "vm:4242:20261125T035900Z", At: at, Processes: []drain.RescueProcess{
		{Process: dead, State: drain.RescueProven, Evidence: "no beat since the last one, and its heartbeat hash expired: proven dead"},
		{Process: sidekiq.Process{Identity: "ip-10-0-1-25:7:777777", Hostname: "ip-10-0-1-25"}, State: drain.RescueExpired,
			Evidence: "listed in processes, heartbeat hash expired: died more than ~60 s ago"},
		{Process: stale, State: drain.RescueNotYetKnown, CertainAt: at.Add(46 * time.Second),
			Evidence: "not yet known dead: last beat 14 s ago, certain at 04:00:46"},
	}, Jobs: []sidekiq.JobRescue{
		{Job: dead.Jobs[0], Outcome: sidekiq.OutcomePushed, Reason: "RPUSH to queue:default", RescuedBy: "vm:4242:20261125T035900Z", RescuedAt: at},
		{Job: dead.Jobs[1], Outcome: sidekiq.OutcomeAlreadyRescued, RescuedBy: "ci-7:99:20261125T035830Z", RescuedAt: at.Add(-20 * time.Second),
			Reason: "rescued from this death by run ci-7:99:20261125T035830Z at 2026-11-25T03:59:40Z"},
		{Job: stale.Jobs[0], Outcome: drain.OutcomeNotYetDead, Reason: "its process is not yet known dead (certain at 04:00:46): not requeued"},
	}, Notes: []string{"1 process(es) died before this run and their work hashes expired with their heartbeats."}}
	return FromRescue(run, "redis://127.0.0.1:6379/0", false)
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
	dry.Jobs[0].Outcome, dry.Jobs[0].RescuedBy, dry.Jobs[0].RescuedAt = "would-push", "", time.Time{}
	dry.Counts = map[string]int{"would-push": 1, "already-rescued": 1, "not-yet-known-dead": 1}
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

// FromRescue keeps what an operator needs: who rescued a job and when, when a process not
// yet known dead becomes certain, the counts, and no job arguments unless asked.
func TestFromRescue(t *testing.T) {
	rep := sampleRescue()
	if rep.RunID != "vm:4242:20261125T035900Z" || rep.Counts["pushed"] != 1 || rep.Counts["already-rescued"] != 1 || rep.Counts["not-yet-known-dead"] != 1 {
		t.Errorf("run %q counts %v", rep.RunID, rep.Counts)
	}
	if j := rep.Jobs[1]; j.RescuedBy != "ci-7:99:20261125T035830Z" || j.RescuedAt.IsZero() || j.Args != nil {
		t.Errorf("already rescued job = %+v, want the run that rescued it and no args", j)
	}
	if p := rep.Processes[2]; p.State != "not-yet-known-dead" || p.CertainAt.IsZero() || p.JobsVisible != 1 {
		t.Errorf("stale process = %+v", p)
	}
	var b bytes.Buffer
	if err := Write(&b, Text, rep, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 dead, 1 expired, 1 not-yet-known-dead", "not yet known dead: last beat 14 s ago, certain at 04:00:46",
		"rescued from this death by run ci-7:99:20261125T035830Z"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "no dead process found") {
		t.Errorf("text says no dead process found:\n%s", b.String())
	}
}
