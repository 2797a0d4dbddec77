package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// Rescue is the document of `drainctl rescue`: the processes found without a heartbeat and
// what happened to each of their jobs.
type Rescue struct {
	Schema string `json:"schema"`
	// DocKind is "rescue".
	DocKind string    `json:"kind"`
	At      time.Time `json:"at"`
	Redis   string    `json:"redis_url"`
	DryRun  bool      `json:"dry_run"`
	// RunID names this run in the rescue markers it wrote ("already rescued by run …").
	RunID     string          `json:"run_id,omitempty"`
	Processes []RescueProcess `json:"processes"`
	Jobs      []RescueJob     `json:"jobs"`
	// Counts is the number of jobs per outcome (sidekiq.Outcome).
	Counts   map[string]int `json:"counts"`
	Notes    []string       `json:"notes,omitempty"`
	Warnings []string       `json:"warnings,omitempty"`
}

// RescueProcess is one process without a heartbeat.
type RescueProcess struct {
	Identity string    `json:"identity"`
	Hostname string    `json:"hostname"`
	LastBeat time.Time `json:"last_beat,omitzero"`
	// State is dead (proven by this run), not-yet-known-dead (stale beat, heartbeat hash
	// still there: certain at CertainAt), alive (it beat again) or expired (dead before this
	// run: its jobs are no longer visible).
	State       string `json:"state"`
	Evidence    string `json:"evidence,omitempty"`
	JobsVisible int    `json:"jobs_visible"`
	// CertainAt is when a not-yet-known-dead process's death becomes certain.
	CertainAt time.Time `json:"certain_at,omitzero"`
}

// RescueJob is one job of a dead process and its outcome.
type RescueJob struct {
	JID     string `json:"jid"`
	Class   string `json:"class"`
	Queue   string `json:"queue"`
	Process string `json:"process"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	// RescuedBy and RescuedAt name the run that pushed the job back from this death, and
	// when (this run for pushed, another for already-rescued).
	RescuedBy string          `json:"rescued_by,omitempty"`
	RescuedAt time.Time       `json:"rescued_at,omitzero"`
	Args      json.RawMessage `json:"args,omitempty"`
}

// NewRescue is an empty rescue document of a run at at on redis (a redacted URL).
func NewRescue(at time.Time, redis string, dryRun bool) *Rescue {
	return &Rescue{Schema: Schema, DocKind: "rescue", At: at, Redis: redis, DryRun: dryRun,
		Processes: []RescueProcess{}, Jobs: []RescueJob{}, Counts: map[string]int{}}
}

// FromRescue is the document of a drain.RescueDead run on redis (a redacted URL); job
// arguments are kept only with showArgs.
func FromRescue(run drain.RescueRun, redis string, showArgs bool) *Rescue {
	rep := NewRescue(run.At, redis, run.DryRun)
	rep.RunID = run.RunID
	for _, p := range run.Processes {
		rep.Processes = append(rep.Processes, RescueProcess{Identity: p.Process.Identity, Hostname: p.Process.Hostname, LastBeat: p.Process.Beat,
			State: string(p.State), Evidence: p.Evidence, JobsVisible: len(p.Process.Jobs), CertainAt: p.CertainAt})
	}
	for _, jr := range run.Jobs {
		rj := RescueJob{JID: jr.Job.JID, Class: jr.Job.Class, Queue: jr.Job.Queue, Process: jr.Job.Process, Outcome: string(jr.Outcome),
			Reason: jr.Reason, RescuedBy: jr.RescuedBy, RescuedAt: jr.RescuedAt}
		if showArgs {
			rj.Args = jr.Job.Args
		}
		rep.Jobs = append(rep.Jobs, rj)
		rep.Counts[string(jr.Outcome)]++
	}
	rep.Notes = append(rep.Notes, run.Notes...)
	rep.Warnings = append(rep.Warnings, run.Warnings...)
	return rep
}

// Kind is "rescue".
func (rep *Rescue) Kind() string { return rep.DocKind }

func (rep *Rescue) writeText(w io.Writer, _ Options) error {
	var b bytes.Buffer
	title := "drainctl rescue"
	if rep.DryRun {
		title += " (dry run: nothing was changed)"
	}
	fmt.Fprintf(&b, "%s: %s (redis %s)\n", title, rep.summary(), rep.Redis)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	if len(rep.Processes) > 0 {
		fmt.Fprintln(&b, "\nProcesses without a fresh heartbeat:")
		fmt.Fprintln(tw, "  IDENTITY\tSTATE\tLAST BEAT\tJOBS SEEN\tEVIDENCE")
		for _, p := range rep.Processes {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\n", p.Identity, p.State, fmtTime(p.LastBeat), p.JobsVisible, orDash(p.Evidence))
		}
		tw.Flush()
	}
	if len(rep.Jobs) > 0 {
		fmt.Fprintln(&b, "\nJobs:")
		fmt.Fprintln(tw, "  JID\tCLASS\tQUEUE\tPROCESS\tOUTCOME\tREASON")
		for _, j := range rep.Jobs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", j.JID, j.Class, j.Queue, j.Process, j.Outcome, orDash(j.Reason))
		}
		tw.Flush()
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "\nnote: %s\n", n)
	}
	_, err := w.Write(b.Bytes())
	return err
}

func (rep *Rescue) writeMarkdown(w io.Writer, _ Options) error {
	var b bytes.Buffer
	title := "drainctl rescue"
	if rep.DryRun {
		title += " (dry run)"
	}
	fmt.Fprintf(&b, "### %s\n\n%s — redis `%s`\n", title, rep.summary(), rep.Redis)
	if len(rep.Processes) > 0 {
		fmt.Fprintln(&b, "\n| Process | State | Last beat | Jobs seen | Evidence |\n|---|---|---|---|---|")
		for _, p := range rep.Processes {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %d | %s |\n", p.Identity, p.State, fmtTime(p.LastBeat), p.JobsVisible, fleetCell(p.Evidence))
		}
	}
	if len(rep.Jobs) > 0 {
		fmt.Fprintln(&b, "\n| JID | Class | Queue | Process | Outcome | Reason |\n|---|---|---|---|---|---|")
		for _, j := range rep.Jobs {
			fmt.Fprintf(&b, "| `%s` | %s | %s | `%s` | %s | %s |\n", j.JID, fleetCell(j.Class), fleetCell(j.Queue), j.Process, j.Outcome, fleetCell(j.Reason))
		}
	}
	for _, n := range append(append([]string(nil), rep.Notes...), rep.Warnings...) {
		fmt.Fprintf(&b, "\n- %s", n)
	}
	b.WriteString("\n")
	_, err := w.Write(b.Bytes())
	return err
}

// summary is the one-line outcome: how many processes in which state, how many jobs per
// outcome.
func (rep *Rescue) summary() string {
	if len(rep.Processes) == 0 {
		return "no dead process found"
	}
	states := map[string]int{}
	for _, p := range rep.Processes {
		states[p.State]++
	}
	var procs []string
	for _, st := range []drain.RescueState{drain.RescueProven, drain.RescueExpired, drain.RescueNotYetKnown, drain.RescueAlive} {
		if n := states[string(st)]; n > 0 {
			procs = append(procs, fmt.Sprintf("%d %s", n, st))
		}
	}
	if len(procs) == 0 { // documents of older versions (suspected, gone)
		procs = append(procs, fmt.Sprintf("%d", len(rep.Processes)))
	}
	var parts []string
	for _, k := range []sidekiq.Outcome{sidekiq.OutcomePushed, sidekiq.OutcomeWouldPush, sidekiq.OutcomeAlreadyRescued, sidekiq.OutcomeQueued,
		sidekiq.OutcomeScheduled, sidekiq.OutcomeRetry, sidekiq.OutcomeRunning, sidekiq.OutcomeSuperFetch, drain.OutcomeNotYetDead,
		sidekiq.OutcomeUnknownVersion, sidekiq.OutcomeInvalid, sidekiq.OutcomeError} {
		if n := rep.Counts[string(k)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "no job to requeue")
	}
	return fmt.Sprintf("processes without a fresh heartbeat: %s; jobs: %s", strings.Join(procs, ", "), strings.Join(parts, ", "))
}
