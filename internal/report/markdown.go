package report

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
)

// WriteMarkdown writes the report as GitHub-flavoured Markdown for PR comments and CI
// summaries, with a Mermaid gantt chart of the phases.
func WriteMarkdown(w io.Writer, r Report) error {
	var b bytes.Buffer
	icon := "✅"
	switch {
	case r.Outcome == "dry_run":
		icon = "📝"
	case !r.good():
		icon = "❌"
	case len(r.Warnings) > 0:
		icon = "⚠️"
	}
	fmt.Fprintf(&b, "### %s drainctl %s: %s (exit %d)\n\n", icon, r.Command, outcomeText(r), r.ExitCode)
	fmt.Fprintf(&b, "Started %s, took %s. Redis `%s`.\n", r.StartedAt.Format("2006-01-02 15:04:05 UTC"),
		fmtDur(r.Duration.Duration()), mdCode(orDash(r.Settings.RedisURL)))
	if r.Strategy.Name != "" {
		fmt.Fprintf(&b, "Strategy **%s**: %s.\n", r.Strategy.Name, mdText(r.Strategy.Reason))
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "\n> **Error:** %s\n", mdText(r.Error))
	}
	if len(r.Findings) > 0 {
		fmt.Fprintln(&b, "\n| Severity | Code | Subject | Finding | Fix |")
		fmt.Fprintln(&b, "|---|---|---|---|---|")
		for _, f := range r.Findings {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", f.Severity, f.Code, mdCell(orDash(f.Subject)), mdCell(f.Message), mdCell(orDash(f.Fix)))
		}
	}
	if len(r.Plan) > 0 {
		fmt.Fprintln(&b, "\n**Plan** (nothing was changed):")
		for _, p := range r.Plan {
			fmt.Fprintf(&b, "- %s\n", mdText(p))
		}
	}

	j := r.Jobs
	fmt.Fprintln(&b, "\n| Jobs | finished | requeued | rescued | already rescued | safe | still running | lost |")
	fmt.Fprintln(&b, "|---|---:|---:|---:|---:|---:|---:|---:|")
	fmt.Fprintf(&b, "| count | %d | %d | %d | %d | %d | %d | %d |\n", j.Finished, j.Requeued, j.Rescued, j.AlreadyRescued, j.Safe, j.StillRunning, j.Lost)
	if m := r.Metrics; m.Samples > 0 {
		fmt.Fprintf(&b, "\nLongest queue wait **%s**, processing gap **%s**, interrupted jobs **%d** (%d samples).\n",
			fmtDur(m.LongestQueueWait.Duration()), fmtDur(m.ProcessingGap.Duration()), m.InterruptedJobs, m.Samples)
	}

	if len(r.Processes) > 0 {
		fmt.Fprintln(&b, "\n| Process | Task | Busy | State | Exit | Evidence |")
		fmt.Fprintln(&b, "|---|---|---:|---|---|---|")
		for _, p := range r.Processes {
			fmt.Fprintf(&b, "| `%s` | %s | %d | %s | %s | %s |\n", mdCode(p.Identity), mdCell(orDash(p.Task)), p.BusyAtQuiet,
				p.State, orDash(p.Exit), mdCell(orDash(p.Evidence)))
		}
	}
	if hasTimeline(r.Processes) {
		fmt.Fprintln(&b, "\n| Process | Quiet | Idle | Released | Exited |")
		fmt.Fprintln(&b, "|---|---|---|---|---|")
		for _, p := range r.Processes {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", mdCode(p.Identity), clock(p.QuietAt), clock(p.IdleAt), clock(p.ReleasedAt), clock(p.ExitedAt))
		}
	}
	if len(r.Protection) > 0 {
		fmt.Fprintln(&b, "\n| Protected task | Service | Set | Released | Expires | Note |")
		fmt.Fprintln(&b, "|---|---|---|---|---|---|")
		for _, p := range r.Protection {
			set := clock(p.ProtectedAt)
			if p.Foreign {
				set = "not by drainctl"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", mdCell(p.Task), mdCell(p.Service), set, clock(p.ReleasedAt), clock(p.ExpiresAt), mdCell(orDash(p.Note)))
		}
	}
	if len(r.Queues) > 0 {
		fmt.Fprintln(&b, "\n| Queue | Size | Latency |")
		fmt.Fprintln(&b, "|---|---:|---:|")
		for _, q := range r.Queues {
			fmt.Fprintf(&b, "| %s | %d | %s |\n", mdCell(q.Name), q.Size, fmtDur(q.Latency.Duration()))
		}
	}
	if notable := notableJobs(r); len(notable) > 0 {
		fmt.Fprintln(&b, "\n| Job | Class | Queue | Running at start | Fate | Note |")
		fmt.Fprintln(&b, "|---|---|---|---:|---|---|")
		for _, jb := range notable {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", mdCode(jb.JID), mdCell(jb.Class), mdCell(jb.Queue),
				ageAtStart(r, jb), jb.Fate, mdCell(orDash(jb.Note)))
		}
	}

	for _, s := range r.Services {
		fmt.Fprintf(&b, "\n#### ECS service `%s/%s`\n\n", mdCode(s.Cluster), mdCode(s.Service))
		fmt.Fprintf(&b, "- %s\n", mdText(serviceConfig(s.Config)))
		if s.Deployed {
			fmt.Fprintf(&b, "- deployment `%s`: %s → %s\n", mdCode(s.DeploymentID), mdCell(shortTD(s.PreviousTaskDefinition)),
				mdCell(shortTD(s.TaskDefinition)))
		} else {
			fmt.Fprintf(&b, "- no deployment started (%s)\n", mdCell(shortTD(s.PreviousTaskDefinition)))
		}
		if s.Result != "" {
			line := fmt.Sprintf("- rollout **%s** after %d polls", s.Result, len(s.Timeline))
			if s.Reason != "" {
				line += ": " + mdText(s.Reason)
			}
			fmt.Fprintln(&b, line)
		}
		for _, t := range s.ReplacedTasks {
			fmt.Fprintf(&b, "- replaced quiet task `%s`\n", taskID(t))
		}
		for _, t := range s.KeptQuietTasks {
			fmt.Fprintf(&b, "- quiet task left running `%s` (restart it)\n", taskID(t))
		}
		if len(s.StoppedTasks) > 0 {
			fmt.Fprintln(&b, "\n| Stopped task | Stop code | Reason | Exit codes |")
			fmt.Fprintln(&b, "|---|---|---|---|")
			for _, t := range s.StoppedTasks {
				fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", t.ID, t.StopCode, mdCell(t.StoppedReason),
					mdCell(strings.TrimSuffix(strings.TrimPrefix(exits(t.Containers), " ("), ")")))
			}
		}
		if len(s.Events) > 0 {
			fmt.Fprintln(&b, "\n<details><summary>Service events</summary>")
			fmt.Fprintln(&b)
			for _, e := range s.Events {
				fmt.Fprintf(&b, "- %s %s\n", e.At.Format("15:04:05"), mdText(e.Message))
			}
			fmt.Fprintln(&b, "\n</details>")
		}
	}

	if len(r.Phases) > 0 {
		fmt.Fprintln(&b, "\n```mermaid")
		fmt.Fprintln(&b, "gantt")
		fmt.Fprintf(&b, "    title drainctl %s\n", r.Command)
		fmt.Fprintln(&b, "    dateFormat x")
		fmt.Fprintln(&b, "    axisFormat %H:%M:%S")
		fmt.Fprintln(&b, "    section phases")
		for i, p := range r.Phases {
			start, end := p.StartedAt.UnixMilli(), p.EndedAt.UnixMilli()
			if end <= start {
				end = start + 1 // Mermaid drops zero-length bars
			}
			tag := "done"
			if p.Error != "" {
				tag = "crit"
			}
			fmt.Fprintf(&b, "    %s %s :%s, p%d, %d, %d\n", p.Name, fmtDur(p.Duration.Duration()), tag, i, start, end)
		}
		fmt.Fprintln(&b, "```")
	}

	if len(r.Warnings) > 0 {
		fmt.Fprintln(&b, "\n**Warnings**")
		for _, w := range r.Warnings {
			fmt.Fprintf(&b, "- ⚠️ %s\n", mdText(w))
		}
	}
	if l := r.Left; l != nil {
		fmt.Fprintln(&b, "\n**Left behind**")
		if len(l.QuietProcesses) > 0 {
			fmt.Fprintf(&b, "- quiet, need a restart: %s\n", mdCodeList(l.QuietProcesses))
		}
		if l.DeploymentStarted {
			for _, k := range sortedKeys(l.DeploymentIDs) {
				fmt.Fprintf(&b, "- deployment started on `%s`: `%s`\n", mdCode(k), mdCode(l.DeploymentIDs[k]))
			}
		} else {
			fmt.Fprintln(&b, "- no deployment was started")
		}
		if l.Hint != "" {
			fmt.Fprintf(&b, "- next: %s\n", mdText(l.Hint))
		}
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write markdown report: %w", err)
	}
	return nil
}

func mdCodeList(ss []string) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = "`" + mdCode(s) + "`"
	}
	return strings.Join(parts, ", ")
}

// mdCell escapes text for a table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return mdText(s)
}

// mdText keeps text on one line and stops it from opening HTML.
func mdText(s string) string {
	s = strings.ReplaceAll(s, "\r", " ")
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "<", "&lt;")
}

// mdCode makes s safe inside a single-backtick code span.
func mdCode(s string) string { return strings.ReplaceAll(mdText(s), "`", "'") }

// StepSummaryEnv names the file GitHub Actions shows as the job summary.
const StepSummaryEnv = "GITHUB_STEP_SUMMARY"

// AppendStepSummary appends the Markdown report to the file named by $GITHUB_STEP_SUMMARY
// (read through getenv); it does nothing when the variable is unset.
func AppendStepSummary(getenv func(string) string, r Report) error {
	path := getenv(StepSummaryEnv)
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open step summary %s: %w", path, err)
	}
	werr := WriteMarkdown(f, r)
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("append step summary %s: %w", path, werr)
	}
	if cerr != nil {
		return fmt.Errorf("close step summary %s: %w", path, cerr)
	}
	return nil
}

// WriteAnnotations writes GitHub Actions workflow commands (::error:: for a failed run,
// ::warning:: per warning) when getenv("GITHUB_ACTIONS") is "true"; otherwise nothing.
func WriteAnnotations(w io.Writer, getenv func(string) string, r Report) error {
	if getenv("GITHUB_ACTIONS") != "true" {
		return nil
	}
	var b bytes.Buffer
	if !r.good() {
		msg := fmt.Sprintf("drainctl %s: %s (exit %d)", r.Command, outcomeText(r), r.ExitCode)
		if r.Error != "" {
			msg += ": " + r.Error
		}
		fmt.Fprintf(&b, "::error title=drainctl %s::%s\n", r.Command, escapeCommand(msg))
	}
	for _, wn := range r.Warnings {
		fmt.Fprintf(&b, "::warning title=drainctl %s::%s\n", r.Command, escapeCommand(wn))
	}
	if r.Jobs.Rescued > 0 {
		fmt.Fprintf(&b, "::warning title=drainctl %s::%s\n", r.Command,
			escapeCommand(fmt.Sprintf("%d job(s) were rescued after their process was killed: nothing was lost, fix the signal path", r.Jobs.Rescued)))
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write annotations: %w", err)
	}
	return nil
}

// escapeCommand escapes a workflow command's message as the runner expects.
func escapeCommand(s string) string {
	s = strings.ReplaceAll(s, "%", "%25")
	s = strings.ReplaceAll(s, "\r", "%0D")
	return strings.ReplaceAll(s, "\n", "%0A")
}
