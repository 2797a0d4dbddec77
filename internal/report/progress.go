package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// ProgressOptions configures the live progress.
type ProgressOptions struct {
	// TTY is true when the writer is a terminal: bars are drawn instead of lines.
	TTY bool
	// JSONOutput is true when the report goes out as JSON: never draw bars then, only lines.
	JSONOutput bool
	// Color allows colour in the bars.
	Color bool
}

// Progress is a drain.Observer that shows the run on stderr: progress bars on a terminal,
// one plain line per change elsewhere (CI logs).
type Progress struct {
	w    io.Writer
	bars bool
	opt  ProgressOptions

	mu        sync.Mutex
	bar       *progressbar.ProgressBar
	barPhase  string
	lastDrain string
	lastPoll  map[string]string
	started   map[drain.Phase]time.Time
}

var _ drain.Observer = (*Progress)(nil)

// NewProgress returns the observer writing to w, which must be stderr (or a test buffer):
// stdout carries only the report.
func NewProgress(w io.Writer, opt ProgressOptions) *Progress {
	return &Progress{w: w, opt: opt, bars: opt.TTY && !opt.JSONOutput, lastPoll: map[string]string{},
		started: map[drain.Phase]time.Time{}}
}

func (p *Progress) newBar(max int64, desc string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(p.w), // the default writer is stdout
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionEnableColorCodes(p.opt.Color),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	)
}

// closeBar finishes the current bar, if any.
func (p *Progress) closeBar() {
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
		p.barPhase = ""
	}
}

// line prints a line above any bar.
func (p *Progress) line(format string, args ...any) {
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	fmt.Fprintf(p.w, "drainctl: "+format+"\n", args...)
}

// PhaseStarted prints the phase's start.
func (p *Progress) PhaseStarted(ph drain.Phase, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.started[ph] = at
	p.closeBar()
	p.line("%s ...", ph)
}

// PhaseEnded prints the phase's end with its duration and error.
func (p *Progress) PhaseEnded(ph drain.Phase, at time.Time, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeBar()
	d := at.Sub(p.started[ph])
	if err != nil {
		// The error itself is printed once, as the command's final `drainctl: error:` line.
		p.line("%s failed after %s", ph, fmtDur(d))
		return
	}
	p.line("%s done in %s", ph, fmtDur(d))
}

// DrainProgress shows the remaining jobs: a bar of finished/total on a terminal, else a line
// whenever the count, the process states or the longest job change. In the quiet phase, whose
// subject is the processes acknowledging TSTP (their jobs show up only at their next
// heartbeat), it leads with how many processes it still waits for, and the bar counts them.
func (p *Progress) DrainProgress(dp drain.DrainProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	longest, longestJID := "", ""
	if len(dp.Longest) > 0 {
		l := dp.Longest[0]
		longest = fmt.Sprintf("longest %s %s on %s for %s", l.Class, l.JID, l.Process, l.Running.Round(time.Second))
		longestJID = l.JID
	}
	procs, waiting := 0, dp.Processes[sidekiq.StateRunning]+dp.Processes[sidekiq.StateUnknown]
	for _, n := range dp.Processes {
		procs += n
	}
	quiet := dp.Phase == drain.PhaseQuiet
	if p.bars {
		desc := fmt.Sprintf("%s: %d job(s) left", dp.Phase, dp.Remaining)
		done, total := dp.Total-dp.Remaining, dp.Total
		if quiet {
			desc = fmt.Sprintf("%s: %d process(es) to acknowledge, %d job(s) in flight", dp.Phase, waiting, dp.Remaining)
			done, total = procs-waiting, procs
		}
		if longest != "" {
			desc += ", " + longest
		}
		if p.bar == nil || p.barPhase != string(dp.Phase) {
			p.closeBar()
			p.bar = p.newBar(int64(max(total, 1)), desc)
			p.barPhase = string(dp.Phase)
		}
		if int64(total) > p.bar.GetMax64() {
			p.bar.ChangeMax64(int64(total))
		}
		p.bar.Describe(desc)
		_ = p.bar.Set(done)
		return
	}
	// The longest job by jid, not its running time, which changes at every poll.
	key := fmt.Sprintf("%s %d/%d %s %s", dp.Phase, dp.Remaining, dp.Total, states(dp.Processes), longestJID)
	if key == p.lastDrain {
		return
	}
	p.lastDrain = key
	jobs := fmt.Sprintf("%d of %d job(s) still running", dp.Remaining, dp.Total)
	if dp.Total == 0 && dp.Remaining == 0 {
		jobs = "no job in flight seen yet" // not "0 of 0": work shows up only at each heartbeat
	}
	msg := fmt.Sprintf("%s: %s; processes %s", dp.Phase, jobs, states(dp.Processes))
	if quiet {
		ack := fmt.Sprintf("waiting for %d of %d process(es) to acknowledge", waiting, procs)
		if waiting == 0 {
			ack = fmt.Sprintf("none of %d process(es) left to acknowledge", procs)
		}
		msg = fmt.Sprintf("%s: %s; processes %s; %s", dp.Phase, ack, states(dp.Processes), jobs)
	}
	if longest != "" {
		msg += "; " + longest
	}
	p.line("%s", msg)
}

// states prints process counts by state in a fixed order: "quiet 2, drained 1".
func states(m map[sidekiq.State]int) string {
	order := []sidekiq.State{sidekiq.StateRunning, sidekiq.StateQuiet, sidekiq.StateDrained, sidekiq.StateGone, sidekiq.StateDead, sidekiq.StateUnknown}
	var parts []string
	for _, s := range order {
		if m[s] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, m[s]))
		}
	}
	return strings.Join(parts, ", ")
}

// RolloutPoll shows new tasks running out of desired (a bar on a terminal), and the service
// events as lines.
func (p *Progress) RolloutPoll(rp drain.RolloutPoll) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ref := rp.Ref.String()
	events := append([]ecs.Event(nil), rp.Events...)
	sort.SliceStable(events, func(a, b int) bool { return events[a].At.Before(events[b].At) })
	for _, e := range events {
		p.line("%s event: %s", ref, e.Message)
	}
	if rp.Err != "" {
		p.line("%s poll skipped: %s", ref, rp.Err)
		return
	}
	if p.bars {
		desc := fmt.Sprintf("rollout %s %s: %s", ref, rp.DeploymentID, orDash(rp.RolloutState))
		if p.bar == nil || p.barPhase != "rollout "+ref {
			p.closeBar()
			p.bar = p.newBar(int64(max(rp.Desired, 1)), desc)
			p.barPhase = "rollout " + ref
		}
		if int64(rp.Desired) != p.bar.GetMax64() && rp.Desired > 0 {
			p.bar.ChangeMax64(int64(rp.Desired))
		}
		p.bar.Describe(desc)
		_ = p.bar.Set(int(rp.Running))
		return
	}
	key := fmt.Sprintf("%s %d/%d %d %s %d %s %s", rp.DeploymentID, rp.Running, rp.Desired, rp.Pending, rp.RolloutState, rp.Deployments, rp.Status, rp.LifecycleStage)
	if p.lastPoll[ref] == key {
		return
	}
	p.lastPoll[ref] = key
	stage := ""
	if rp.LifecycleStage != "" {
		stage = fmt.Sprintf(", stage %s (%s)", rp.LifecycleStage, rp.Status)
	}
	p.line("rollout %s %s: %d/%d running, %d pending, %s, %d deployment(s)%s", ref, rp.DeploymentID, rp.Running,
		rp.Desired, rp.Pending, orDash(rp.RolloutState), rp.Deployments, stage)
}

// Warning prints the warning as its own line.
func (p *Progress) Warning(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line("warning: %s", redactText(msg))
}
