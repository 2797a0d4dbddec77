package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/sidekiq"
	"github.com/urfave/cli/v2"
)

func drainCommand(getenv env) *cli.Command {
	return &cli.Command{
		Name:      "drain",
		Usage:     "quiet the selected Sidekiq processes and wait for their in-flight jobs to finish (no ECS)",
		UsageText: "drainctl drain (--tag T | --hostname RE | --queue Q | --identity ID | --label L | --all) [flags]",
		Description: `Quiet (TSTP through Redis, like the Web UI's Quiet button) cannot be undone: a quiet
process fetches nothing new until it restarts. drain waits for every selected process to
acknowledge, then for its jobs to finish, bounded by --drain-timeout. Then, by --on-timeout:
fail (default) exits 3 and lists the processes left quiet; stop sends TERM through Redis so
Sidekiq requeues the unfinished jobs and exits, and waits up to --exit-timeout for them to leave.`,
		Flags: flags(redisFlags(), selectionFlags(), outputFlags(), []cli.Flag{
			durFlag("drain-timeout", drain.DefaultDrainTimeout, "how long to wait for in-flight jobs after quiet"),
			strFlag("on-timeout", "fail", "when jobs outlast --drain-timeout: fail (exit 3, processes left quiet) or stop (TERM through Redis: Sidekiq requeues and exits)"),
			durFlag("exit-timeout", time.Minute, "with --on-timeout stop: how long to wait for the processes to leave"),
			durFlag("poll-interval", time.Second, "time between polls of Redis"),
			boolFlag("dry-run", false, "read the fleet and report what would be quieted; change nothing"),
		}),
		Action: func(c *cli.Context) error { return runDrain(c, getenv, false) },
	}
}

func quietCommand(getenv env) *cli.Command {
	return &cli.Command{
		Name:      "quiet",
		Usage:     "send quiet (TSTP) to the selected Sidekiq processes and wait for them to acknowledge",
		UsageText: "drainctl quiet (--tag T | --hostname RE | --queue Q | --identity ID | --label L | --all) [--no-wait] [flags]",
		Description: `Quiet cannot be undone: a quiet process fetches nothing new until it restarts. A process
reads the signal at its next heartbeat and shows it at the one after (about 10 s on Sidekiq 6,
20 s on 7). --no-wait returns once the signals are sent.`,
		Flags: flags(redisFlags(), selectionFlags(), outputFlags(), []cli.Flag{
			boolFlag("no-wait", false, "return once the signals are sent, without waiting for the acknowledgement"),
			durFlag("poll-interval", time.Second, "time between polls of Redis"),
			boolFlag("dry-run", false, "read the fleet and report what would be quieted; change nothing"),
		}),
		Action: func(c *cli.Context) error { return runDrain(c, getenv, true) },
	}
}

// drainRun is one drain or quiet run: the selection, its watcher and the Result it fills.
type drainRun struct {
	u     *ui
	cl    *sidekiq.Client
	obs   drain.Observer
	res   drain.Result
	ps    []sidekiq.Process
	w     *sidekiq.Watcher
	last  []sidekiq.Observation
	jobs  map[string][]sidekiq.Job // at quiet, by process
	total int
}

// runDrain implements drain and, with quietOnly, quiet.
func runDrain(c *cli.Context, getenv env, quietOnly bool) error {
	o, u, ro, sel, selGiven, err := fleetFlags(c, getenv)
	if err != nil {
		return err
	}
	if !selGiven {
		return noSelectorErr()
	}
	poll, err := o.positive("poll-interval")
	if err != nil {
		return err
	}
	dryRun, err := o.boolean("dry-run")
	if err != nil {
		return err
	}
	var (
		drainTimeout, exitTimeout time.Duration
		onTimeout                 string
		noWait                    bool
	)
	command := "drain"
	if quietOnly {
		command = "quiet"
		if noWait, err = o.boolean("no-wait"); err != nil {
			return err
		}
	} else {
		if drainTimeout, err = o.positive("drain-timeout"); err != nil {
			return err
		}
		if exitTimeout, err = o.positive("exit-timeout"); err != nil {
			return err
		}
		if onTimeout, err = o.oneOf("on-timeout", "fail", "stop"); err != nil {
			if o.str("on-timeout") == "deploy" {
				return usageErr("--on-timeout deploy: drain has no deploy step; use fail or stop (or drainctl deploy)")
			}
			return err
		}
	}

	ctx := c.Context
	cl, err := openRedis(ctx, ro, true)
	if err != nil {
		return err
	}
	defer cl.Close()
	snap, err := snapshot(ctx, cl, ro)
	if err != nil {
		return err
	}
	selected, err := selectProcesses(snap, sel)
	if err != nil {
		return err
	}

	d := &drainRun{u: u, cl: cl, obs: u.observer(), jobs: map[string][]sidekiq.Job{}}
	d.res = drain.Result{StartedAt: time.Now(), DryRun: dryRun, APICalls: map[string]int{"redis.Ping": 1, "redis.Snapshot": 1},
		Settings: drain.Settings{RedisURL: ro.Redacted(), DrainTimeout: drainTimeout, OnTimeout: drain.OnTimeout(onTimeout), PollInterval: poll}}
	for _, p := range selected {
		if ok, why := sidekiq.Drainable(p); !ok {
			d.warn("not drained: %s", why)
			continue
		}
		d.ps = append(d.ps, p)
		d.jobs[p.Identity] = p.Jobs
		d.total += len(p.Jobs)
		state := drain.StateRunning
		if p.Quiet {
			state = drain.StateQuiet
		}
		d.res.Processes = append(d.res.Processes, drain.ProcessResult{Identity: p.Identity, Hostname: p.Hostname, Tag: p.Tag,
			Version: p.Version, Queues: p.Queues, State: state, LastBeat: p.Beat, BusyAtQuiet: len(p.Jobs)})
		for _, j := range p.Jobs {
			d.res.JobList = append(d.res.JobList, drain.JobRecord{JID: j.JID, Class: j.Class, Queue: j.Queue, Process: p.Identity,
				RunAt: j.RunAt, Args: j.Args, Fate: drain.JobStillRunning})
		}
	}
	if len(d.ps) == 0 {
		return usageErr("no drainable process in the selection (every selected process is dead or embedded)")
	}
	ids := make([]string, len(d.ps))
	for i, p := range d.ps {
		ids[i] = p.Identity
	}

	if dryRun {
		d.res.Outcome = drain.OutcomeDryRun
		d.res.Plan = append(d.res.Plan, fmt.Sprintf("would quiet %d process(es): %s", len(ids), strings.Join(ids, ", ")))
		if !quietOnly {
			d.res.Plan = append(d.res.Plan, fmt.Sprintf("would wait up to %v for %d in-flight job(s), then %s", drainTimeout, d.total, onTimeout))
		}
		return d.finish(command, nil)
	}

	// Quiet, then wait for the acknowledgement.
	d.phaseStarted(drain.PhaseQuiet)
	d.res.APICalls["redis.Quiet"]++
	if err := cl.Quiet(ctx, ids); err != nil {
		err = fmt.Errorf("quiet %d process(es): %w", len(ids), err)
		d.phaseEnded(drain.PhaseQuiet, err)
		return err
	}
	d.w = cl.NewWatcher(d.ps)
	d.w.Interval = poll
	d.w.OnError = func(err error) { d.u.warn("read the fleet (retrying): %v", err) }
	d.w.OnTick = func(obs []sidekiq.Observation) {
		d.res.APICalls["redis.SnapshotOf"]++
		d.progress(drain.PhaseQuiet, obs, time.Time{})
	}
	if noWait {
		d.phaseEnded(drain.PhaseQuiet, nil)
		d.res.Outcome = drain.OutcomeSucceeded
		for i := range d.res.Processes {
			d.res.Processes[i].Evidence = "quiet sent; not waiting for the acknowledgement (--no-wait)"
		}
		return d.finish(command, nil)
	}
	var ack time.Duration
	for _, p := range d.ps {
		ack = max(ack, sidekiq.AckWithin(p))
	}
	ack += poll
	actx, cancel := context.WithTimeout(ctx, ack)
	d.last, err = d.w.Until(actx, sidekiq.Every(sidekiq.StateQuiet, sidekiq.StateDrained, sidekiq.StateGone, sidekiq.StateDead))
	cancel()
	if ctx.Err() != nil {
		d.phaseEnded(drain.PhaseQuiet, ctx.Err())
		return d.interrupted(command)
	}
	var unacked []string
	for _, ob := range d.last {
		if ob.State == sidekiq.StateRunning || ob.State == sidekiq.StateUnknown {
			unacked = append(unacked, ob.Identity)
		}
	}
	var ackErr error
	if len(unacked) > 0 {
		ackErr = fmt.Errorf("%d process(es) did not acknowledge quiet within %v: %s", len(unacked), ack.Round(time.Second), strings.Join(unacked, ", "))
		d.warn("%v", ackErr)
	}
	d.phaseEnded(drain.PhaseQuiet, ackErr)
	if quietOnly {
		d.res.Outcome = drain.OutcomeSucceeded
		if ackErr != nil {
			d.res.Outcome = drain.OutcomeFailed
			return d.finish(command, &exitError{code: exitFailure, err: ackErr, hint: "a process that does not acknowledge may be stuck or embedded; check it with drainctl status"})
		}
		return d.finish(command, nil)
	}

	// Drain: wait for the jobs to finish.
	d.phaseStarted(drain.PhaseDrain)
	deadline := time.Now().Add(drainTimeout)
	d.w.OnTick = func(obs []sidekiq.Observation) {
		d.res.APICalls["redis.SnapshotOf"]++
		d.progress(drain.PhaseDrain, obs, deadline)
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	last, err := d.w.Until(dctx, sidekiq.Every(sidekiq.StateDrained, sidekiq.StateGone, sidekiq.StateDead))
	cancel()
	if last != nil {
		d.last = last
	}
	if ctx.Err() != nil {
		d.phaseEnded(drain.PhaseDrain, ctx.Err())
		return d.interrupted(command)
	}
	if err == nil {
		d.phaseEnded(drain.PhaseDrain, nil)
		d.res.Outcome = drain.OutcomeSucceeded
		return d.finish(command, nil)
	}
	timeoutErr := fmt.Errorf("%w: %d job(s) still running after %v", drain.ErrDrainTimeout, d.remaining(d.last), drainTimeout)
	d.phaseEnded(drain.PhaseDrain, timeoutErr)

	if onTimeout == "stop" {
		alive := d.alive()
		d.warn("drain timed out after %v: sending TERM to %d process(es); Sidekiq requeues their unfinished jobs", drainTimeout, len(alive))
		d.phaseStarted(drain.PhaseExits)
		d.res.APICalls["redis.Stop"]++
		if err := cl.Stop(ctx, alive); err != nil {
			err = fmt.Errorf("stop %d process(es): %w", len(alive), err)
			d.phaseEnded(drain.PhaseExits, err)
			return err
		}
		d.w.OnTick = func(obs []sidekiq.Observation) {
			d.res.APICalls["redis.SnapshotOf"]++
			d.progress(drain.PhaseExits, obs, time.Time{})
		}
		ectx, cancel := context.WithTimeout(ctx, exitTimeout)
		last, err := d.w.Until(ectx, sidekiq.Every(sidekiq.StateGone, sidekiq.StateDead))
		cancel()
		if last != nil {
			d.last = last
		}
		if ctx.Err() != nil {
			d.phaseEnded(drain.PhaseExits, ctx.Err())
			return d.interrupted(command)
		}
		d.phaseEnded(drain.PhaseExits, err)
		if err != nil {
			d.res.Outcome = drain.OutcomeFailed
			return d.finish(command, fmt.Errorf("%d process(es) still running %v after TERM: %s", len(d.alive()), exitTimeout, strings.Join(d.alive(), ", ")))
		}
		d.res.Outcome = drain.OutcomeSucceeded
		return d.finish(command, nil)
	}

	// fail: the processes stay quiet and need a restart.
	d.res.Outcome = drain.OutcomeDrainTimeout
	alive := d.alive()
	d.res.Left = &drain.Leftover{QuietProcesses: alive,
		Hint: "these processes stay quiet until restarted; finish with: drainctl drain --on-timeout stop " + identityFlags(alive)}
	msg := fmt.Sprintf("%v; left quiet: %s", timeoutErr, strings.Join(alive, ", "))
	return d.finish(command, &exitError{code: exitDrainTimeout, err: errors.New(msg), hint: d.res.Left.Hint})
}

func identityFlags(ids []string) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "--identity %s", id)
	}
	return b.String()
}

// phaseStarted records the start of a phase for the report and the progress.
func (d *drainRun) phaseStarted(p drain.Phase) {
	now := time.Now()
	d.res.Phases = append(d.res.Phases, drain.PhaseRecord{Phase: p, StartedAt: now})
	d.obs.PhaseStarted(p, now)
}

// phaseEnded records the end of the phase started last.
func (d *drainRun) phaseEnded(p drain.Phase, err error) {
	now := time.Now()
	if i := len(d.res.Phases) - 1; i >= 0 && d.res.Phases[i].Phase == p {
		d.res.Phases[i].EndedAt = now
		if err != nil {
			d.res.Phases[i].Error = err.Error()
		}
	}
	d.obs.PhaseEnded(p, now, err)
}

func (d *drainRun) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.res.Warnings = append(d.res.Warnings, msg)
	d.obs.Warning(msg)
}

// alive lists the watched processes still running (quiet or not).
func (d *drainRun) alive() []string {
	var out []string
	for _, ob := range d.last {
		if !ob.State.Terminal() {
			out = append(out, ob.Identity)
		}
	}
	if d.last == nil {
		for _, p := range d.ps {
			out = append(out, p.Identity)
		}
	}
	return out
}

// remaining counts the jobs still in flight on live watched processes.
func (d *drainRun) remaining(obs []sidekiq.Observation) int {
	n := 0
	for _, ob := range obs {
		if !ob.State.Terminal() {
			n += len(ob.Jobs)
		}
	}
	return n
}

// progress reports one tick to the observer.
func (d *drainRun) progress(phase drain.Phase, obs []sidekiq.Observation, deadline time.Time) {
	now := time.Now()
	dp := drain.DrainProgress{Phase: phase, At: now, Total: d.total, Remaining: d.remaining(obs), Processes: map[drain.State]int{}, Deadline: deadline}
	var running []drain.RunningJob
	for _, ob := range obs {
		dp.Processes[drain.State(ob.State)]++
		if ob.State.Terminal() {
			continue
		}
		for _, j := range ob.Jobs {
			running = append(running, drain.RunningJob{JID: j.JID, Class: j.Class, Queue: j.Queue, Process: ob.Identity, Running: now.Sub(j.RunAt)})
		}
	}
	sort.Slice(running, func(i, j int) bool { return running[i].Running > running[j].Running })
	if len(running) > 5 {
		running = running[:5]
	}
	dp.Longest = running
	d.obs.DrainProgress(dp)
}

// interrupted reports a cancelled run: what is left quiet.
func (d *drainRun) interrupted(command string) error {
	d.res.Outcome = drain.OutcomeInterrupted
	alive := d.alive()
	d.res.Left = &drain.Leftover{QuietProcesses: alive, Hint: "quiet is idempotent: re-run the same command to finish"}
	return d.finish(command, &exitError{code: exitInterrupted, err: drain.ErrInterrupted, hint: d.res.Left.Hint})
}

// finish settles the processes' end states and the jobs' fates from the last observations,
// writes the report and returns err.
func (d *drainRun) finish(command string, err error) error {
	d.res.EndedAt = time.Now()
	byID := map[string]sidekiq.Observation{}
	for _, ob := range d.last {
		byID[ob.Identity] = ob
	}
	for i, pr := range d.res.Processes {
		ob, ok := byID[pr.Identity]
		if !ok {
			continue
		}
		d.res.Processes[i].State = drain.State(ob.State)
		d.res.Processes[i].Evidence = ob.Evidence
		if !ob.LastBeat.IsZero() {
			d.res.Processes[i].LastBeat = ob.LastBeat
		}
	}
	if d.last != nil {
		d.res.Jobs = drain.JobCounts{}
		for i, j := range d.res.JobList {
			ob := byID[j.Process]
			inFlight := false
			for _, cur := range ob.Jobs {
				if cur.JID == j.JID {
					inFlight = true
				}
			}
			fate := drain.JobFinished
			switch {
			case !inFlight:
			case ob.State == sidekiq.StateGone:
				fate = drain.JobRequeued
			case ob.State == sidekiq.StateDead:
				fate = drain.JobLost
				d.res.JobList[i].Note = "its process died; run drainctl rescue --identity " + j.Process
			default:
				fate = drain.JobStillRunning
			}
			d.res.JobList[i].Fate = fate
		}
	}
	d.res.Jobs = drain.JobCounts{}
	for _, j := range d.res.JobList {
		switch j.Fate {
		case drain.JobFinished:
			d.res.Jobs.Finished++
		case drain.JobRequeued:
			d.res.Jobs.Requeued++
		case drain.JobStillRunning:
			d.res.Jobs.StillRunning++
		case drain.JobLost:
			d.res.Jobs.Lost++
		case drain.JobRescued:
			d.res.Jobs.Rescued++
		}
	}
	if err != nil {
		d.res.Error = err.Error()
	}
	d.res.ExitCode = codeOf(err)
	if rerr := d.u.runReport(d.res, command); rerr != nil && err == nil {
		return rerr
	}
	return err
}
