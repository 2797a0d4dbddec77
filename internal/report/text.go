package report

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drainctl/drainctl/internal/finding"
)

// ANSI colours, used only with Options.Color.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
)

// WriteJSON writes the report as indented JSON (schema drainctl/v2, kind deploy, drain or quiet).
func WriteJSON(w io.Writer, r Report) error { return Write(w, JSON, &r, Options{}) }

// outcomeText is the headline word for an outcome.
func outcomeText(r Report) string {
	switch r.Outcome {
	case "succeeded":
		return "succeeded"
	case "rolled_back":
		return "rollout rolled back"
	case "rollout_timeout":
		return "rollout timed out"
	case "drain_timeout":
		return "drain timed out"
	case "dry_run":
		return "dry run"
	}
	return r.Outcome
}

func (r Report) good() bool { return r.ExitCode == 0 }

// WriteText writes the report for a terminal, aligned with text/tabwriter; colours only
// with opts.Color.
func WriteText(w io.Writer, r Report, opts Options) error {
	var b bytes.Buffer
	paint := func(code, s string) string {
		if !opts.Color {
			return s
		}
		return code + s + ansiReset
	}
	head := fmt.Sprintf("drainctl %s: %s (exit %d)", r.Command, outcomeText(r), r.ExitCode)
	switch {
	case r.good() && len(r.Warnings) == 0:
		head = paint(ansiGreen+ansiBold, head)
	case r.good():
		head = paint(ansiYellow+ansiBold, head)
	default:
		head = paint(ansiRed+ansiBold, head)
	}
	fmt.Fprintln(&b, head)
	fmt.Fprintf(&b, "  started %s, took %s; redis %s\n", r.StartedAt.Format(time.RFC3339),
		fmtDur(r.Duration.Duration()), orDash(r.Settings.RedisURL))
	if r.Strategy.Name != "" {
		fmt.Fprintf(&b, "  strategy %s: %s\n", r.Strategy.Name, r.Strategy.Reason)
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "  %s %s\n", paint(ansiRed, "error:"), r.Error)
	}
	if len(r.Findings) > 0 {
		fmt.Fprintln(&b, "\nFindings:")
		for _, f := range r.Findings {
			sev := string(f.Severity)
			if f.Severity == finding.Error {
				sev = paint(ansiRed, sev)
			}
			fmt.Fprintf(&b, "  %s %s %s: %s\n", sev, f.Code, orDash(f.Subject), f.Message)
			if f.Fix != "" {
				fmt.Fprintf(&b, "    fix: %s\n", f.Fix)
			}
		}
	}

	if len(r.Plan) > 0 {
		fmt.Fprintln(&b, "\nPlan (nothing was changed):")
		for _, p := range r.Plan {
			fmt.Fprintf(&b, "  - %s\n", p)
		}
	}

	fmt.Fprintln(&b)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	j := r.Jobs
	lost := fmt.Sprint(j.Lost)
	if j.Lost > 0 {
		lost = paint(ansiRed, lost)
	}
	fmt.Fprintln(tw, "JOBS\tfinished\trequeued\trescued\talready rescued\tsafe\tstill running\tlost")
	fmt.Fprintf(tw, "\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", j.Finished, j.Requeued, j.Rescued, j.AlreadyRescued, j.Safe, j.StillRunning, lost)
	tw.Flush()
	if m := r.Metrics; m.Samples > 0 {
		fmt.Fprintf(&b, "  longest queue wait %s, processing gap %s, interrupted jobs %d (%d samples)\n",
			fmtDur(m.LongestQueueWait.Duration()), fmtDur(m.ProcessingGap.Duration()), m.InterruptedJobs, m.Samples)
	}

	if len(r.Processes) > 0 {
		fmt.Fprintln(&b)
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PROCESS\tTASK\tBUSY\tSTATE\tEXIT\tEVIDENCE")
		for _, p := range r.Processes {
			st := p.State
			if st == "dead" {
				st = paint(ansiRed, st)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", p.Identity, orDash(p.Task), p.BusyAtQuiet, st, orDash(p.Exit), orDash(p.Evidence))
		}
		tw.Flush()
	}
	if len(r.Unplaced) > 0 {
		fmt.Fprintf(&b, "  not in the services' tasks (not drained): %s\n", strings.Join(r.Unplaced, ", "))
	}
	if hasTimeline(r.Processes) {
		fmt.Fprintln(&b)
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIMELINE\tQUIET\tIDLE\tRELEASED\tEXITED")
		for _, p := range r.Processes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Identity, clock(p.QuietAt), clock(p.IdleAt), clock(p.ReleasedAt), clock(p.ExitedAt))
		}
		tw.Flush()
	}
	if len(r.Protection) > 0 {
		fmt.Fprintln(&b)
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PROTECTED TASK\tSERVICE\tSET\tRELEASED\tEXPIRES\tNOTE")
		for _, p := range r.Protection {
			set := clock(p.ProtectedAt)
			if p.Foreign {
				set = "not by drainctl"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Task, p.Service, set, clock(p.ReleasedAt), clock(p.ExpiresAt), orDash(p.Note))
		}
		tw.Flush()
	}

	if len(r.Queues) > 0 {
		fmt.Fprintln(&b)
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "QUEUE\tSIZE\tLATENCY")
		for _, q := range r.Queues {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", q.Name, q.Size, fmtDur(q.Latency.Duration()))
		}
		tw.Flush()
	}

	if notable := notableJobs(r); len(notable) > 0 {
		fmt.Fprintln(&b)
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "JOB\tCLASS\tQUEUE\tRUNNING AT START\tFATE\tPROCESS")
		for _, jb := range notable {
			line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", jb.JID, jb.Class, jb.Queue, ageAtStart(r, jb), jb.Fate, jb.Process)
			if jb.Note != "" {
				line += "\t" + jb.Note
			}
			if jb.Args != nil {
				line += "\targs " + string(jb.Args)
			}
			fmt.Fprintln(tw, line)
		}
		tw.Flush()
	}

	for _, s := range r.Services {
		fmt.Fprintf(&b, "\nSERVICE %s/%s\n", s.Cluster, s.Service)
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  service\t%s\n", serviceConfig(s.Config))
		if s.Deployed {
			fmt.Fprintf(tw, "  deployment\t%s\n", s.DeploymentID)
		} else {
			fmt.Fprintf(tw, "  deployment\tnot started\n")
		}
		if s.Deployed {
			fmt.Fprintf(tw, "  task definition\t%s -> %s\n", orDash(shortTD(s.PreviousTaskDefinition)), orDash(shortTD(s.TaskDefinition)))
		} else {
			fmt.Fprintf(tw, "  task definition\t%s (unchanged)\n", orDash(shortTD(s.PreviousTaskDefinition)))
		}
		if s.Result != "" {
			res := s.Result
			if s.Reason != "" {
				res += " (" + s.Reason + ")"
			}
			fmt.Fprintf(tw, "  rollout\t%s, %d polls\n", res, len(s.Timeline))
		}
		for _, t := range s.ReplacedTasks {
			fmt.Fprintf(tw, "  replaced quiet task\t%s\n", taskID(t))
		}
		for _, t := range s.KeptQuietTasks {
			fmt.Fprintf(tw, "  quiet task left running\t%s\n", taskID(t))
		}
		tw.Flush()
		for _, e := range s.Events {
			fmt.Fprintf(&b, "  event %s %s\n", e.At.Format("15:04:05"), e.Message)
		}
		for _, t := range s.StoppedTasks {
			fmt.Fprintf(&b, "  stopped %s %s %q%s\n", t.ID, t.StopCode, t.StoppedReason, exits(t.Containers))
		}
	}

	if len(r.Phases) > 0 {
		fmt.Fprintln(&b)
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PHASE\tSTARTED\tDURATION")
		for _, p := range r.Phases {
			e := ""
			if p.Error != "" {
				e = "  " + paint(ansiRed, "failed: "+p.Error)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s%s\n", p.Name, p.StartedAt.Format("15:04:05"), fmtDur(p.Duration.Duration()), e)
		}
		tw.Flush()
	}

	if r.Lock.Holder != nil {
		h := r.Lock.Holder
		fmt.Fprintf(&b, "\nlock %q is held by %s on %s (pid %d) since %s\n", r.Lock.Name, h.Owner, h.Host, h.PID, h.StartedAt.Format(time.RFC3339))
	}

	if len(r.Warnings) > 0 {
		fmt.Fprintln(&b, "\nWarnings:")
		for _, w := range r.Warnings {
			fmt.Fprintf(&b, "  %s %s\n", paint(ansiYellow, "!"), w)
		}
	}
	if l := r.Left; l != nil {
		fmt.Fprintln(&b, "\nLeft behind:")
		if len(l.QuietProcesses) > 0 {
			fmt.Fprintf(&b, "  quiet (need a restart): %s\n", strings.Join(l.QuietProcesses, ", "))
		}
		if l.DeploymentStarted {
			for _, k := range sortedKeys(l.DeploymentIDs) {
				fmt.Fprintf(&b, "  deployment started: %s %s\n", k, l.DeploymentIDs[k])
			}
		} else {
			fmt.Fprintln(&b, "  no deployment was started")
		}
		if l.Hint != "" {
			fmt.Fprintf(&b, "  next: %s\n", l.Hint)
		}
	}
	if len(r.APICalls) > 0 {
		var parts []string
		for _, k := range sortedKeys(r.APICalls) {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.APICalls[k]))
		}
		fmt.Fprintf(&b, "\nAPI calls: %s\n", strings.Join(parts, ", "))
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write text report: %w", err)
	}
	return nil
}

// ageAtStart is how long the job had been running when the run started ("-" for jobs that
// started later).
func ageAtStart(r Report, j Job) string {
	if j.RunAt.IsZero() || !j.RunAt.Before(r.StartedAt) {
		return "-"
	}
	return fmtDur(r.StartedAt.Sub(j.RunAt))
}

// serviceConfig summarises a service's counts and deployment configuration.
func serviceConfig(c ServiceConfig) string {
	s := fmt.Sprintf("%d/%d running, min %d%% max %d%%", c.Running, c.Desired, c.MinimumHealthyPercent, c.MaximumPercent)
	switch {
	case c.CircuitBreaker && c.Rollback:
		s += ", circuit breaker with rollback"
	case c.CircuitBreaker:
		s += ", circuit breaker without rollback"
	default:
		s += ", no circuit breaker (a bad rollout only ends at the timeout)"
	}
	if c.Controller != "" && c.Controller != "ECS" {
		s += ", controller " + c.Controller
	}
	if st := strategyText(c.Strategy); st != "" {
		s += ", " + st
	}
	return s
}

// strategyText says how the service deploys when it is more than plain rolling.
func strategyText(d DeployStrategy) string {
	var parts []string
	if d.Name != "" && (d.Name != "ROLLING" || len(d.Hooks) > 0 || d.EarlySuccess != nil) {
		parts = append(parts, d.Name)
	}
	if d.Name != "" && d.Name != "ROLLING" {
		parts = append(parts, "bake "+fmtDur(d.BakeTime.Duration()))
	}
	for _, h := range d.Hooks {
		hs := fmt.Sprintf("%s hook at %s", h.Type, strings.Join(h.Stages, "/"))
		if h.Timeout > 0 {
			hs += fmt.Sprintf(" (times out after %s: %s)", fmtDur(h.Timeout.Duration()), orDash(h.TimeoutAction))
		}
		parts = append(parts, hs)
	}
	if d.Alarms {
		parts = append(parts, "alarms")
	}
	if es := d.EarlySuccess; es != nil {
		parts = append(parts, fmt.Sprintf("early success at %d%% (%s clean-up)", es.HealthyPercent, es.Cleanup))
	}
	return strings.Join(parts, ", ")
}

// notableJobs are the jobs worth listing one by one: everything but the finished ones.
func notableJobs(r Report) []Job {
	var out []Job
	for _, j := range r.JobList {
		if j.Fate != "finished" {
			out = append(out, j)
		}
	}
	return out
}

func exits(cs []ContainerExit) string {
	var parts []string
	for _, c := range cs {
		if c.ExitCode != nil {
			parts = append(parts, fmt.Sprintf("%s exit %d", c.Name, *c.ExitCode))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortTD turns a task definition ARN into family:revision.
func shortTD(td string) string { return taskID(td) }

// fmtDur prints a duration rounded for people: 850ms, 12s, 2m13s.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// hasTimeline says whether any process has a timeline entry worth a table.
func hasTimeline(ps []Process) bool {
	for _, p := range ps {
		if !p.QuietAt.IsZero() || !p.ReleasedAt.IsZero() {
			return true
		}
	}
	return false
}

// clock is a time of day for the timeline, "-" when it did not happen.
func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("15:04:05")
}
