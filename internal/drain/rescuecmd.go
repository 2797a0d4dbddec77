package drain

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// This file is the policy of `drainctl rescue`, the stand-alone rescue: which processes of a
// snapshot are candidates, how long to wait until Redis (or ECS) proves them dead, and which
// jobs are pushed back. The deploy's own rescue is phase_rescue.go.

// RescueFleet is what RescueDead reads and writes in Redis. *sidekiq.Client satisfies it.
type RescueFleet interface {
	// SnapshotOf reads the given identities whether or not they are still listed.
	SnapshotOf(ctx context.Context, identities []string) (*sidekiq.Snapshot, error)
	// WaitCertain polls the processes until every one is certainly dead; an error wrapping
	// sidekiq.ErrAlive means one beat again, a *sidekiq.NotCertainError that ctx ended first.
	WaitCertain(ctx context.Context, identities []string, opt sidekiq.WaitOptions) ([]sidekiq.Certainty, error)
	// Rescue requeues the jobs of dead processes exactly once per death of a process.
	Rescue(ctx context.Context, jobs []sidekiq.Job, opt sidekiq.RescueOptions) (sidekiq.RescueResult, error)
}

// TaskLister lists a service's tasks; *ecs.Client satisfies it. desired is "RUNNING",
// "STOPPED" or "" for both.
type TaskLister interface {
	Tasks(ctx context.Context, ref ecs.ServiceRef, desired string) ([]ecs.Task, error)
}

// RescueConfig is the input of RescueDead.
type RescueConfig struct {
	// Selector, when Selected, restricts the candidates; hostname and identity criteria also
	// work on processes whose heartbeat expired (their tags and queues are unknown).
	Selector sidekiq.Selector
	Selected bool
	// DryRun lists the candidates and what would be pushed, without waiting or writing.
	DryRun bool
	// StaleAfter is how long a process may go without a beat before it is a candidate. Zero
	// means sidekiq.StaleAfter of each process (12 s on 6.x, 22 s on 7 and 8).
	StaleAfter time.Duration
	// Wait is how long to wait for the candidates not yet known dead to become certainly dead
	// (their heartbeat hash expires 60 s after the last beat). Zero means no wait: they are
	// listed with the time their death becomes certain, and their jobs are left alone.
	Wait time.Duration
	// PollInterval is the time between polls while waiting. Zero means
	// sidekiq.DefaultWatchInterval.
	PollInterval time.Duration
	// RunID names this run in the rescue markers it writes (see RunID).
	RunID string
	// ECS and Services, when both set, give external evidence: a process whose ECS task
	// stopped with its container's exit code 137 is dead now, without waiting for Redis.
	ECS      TaskLister
	Services []ecs.ServiceRef
	// OnWait, when set, is called once before the wait with the processes waited for.
	OnWait func(pending []RescueProcess, wait time.Duration)
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// After waits (between polls, and for Wait). Nil means time.After.
	After func(time.Duration) <-chan time.Time
}

// RescueState is what a rescue found a process to be.
type RescueState string

// The states of a rescued process.
const (
	// RescueExpired: its heartbeat hash had already expired when the run began (it died
	// more than ~60 s ago); its work hash expired with it, so its jobs are usually not visible.
	RescueExpired RescueState = "expired"
	// RescueProven: proven dead during this run (its heartbeat hash expired without a new beat,
	// or its ECS container exited 137); its jobs were rescued.
	RescueProven RescueState = "dead"
	// RescueNotYetKnown: its beat is stale but its heartbeat hash still exists; death
	// becomes certain at CertainAt. Its jobs are not pushed (only listed).
	RescueNotYetKnown RescueState = "not-yet-known-dead"
	// RescueAlive: it beat again while rescue waited: left alone.
	RescueAlive RescueState = "alive"
)

// OutcomeNotYetDead is the outcome of a job whose process is not yet known dead: listed, not
// pushed. (The other outcomes are sidekiq.Outcome's.)
const OutcomeNotYetDead sidekiq.Outcome = "not-yet-known-dead"

// RescueProcess is one candidate process and what the run found it to be.
type RescueProcess struct {
	Process sidekiq.Process
	State   RescueState
	// Evidence says why, in words.
	Evidence string
	// Silent is how long before the run the last beat was; zero when unknown.
	Silent time.Duration
	// CertainAt is when its death becomes certain (RescueNotYetKnown only).
	CertainAt time.Time
}

// RescueRun is the result of RescueDead.
type RescueRun struct {
	RunID     string
	At        time.Time
	DryRun    bool
	Processes []RescueProcess
	// Jobs are the jobs of the candidates: Fleet.Rescue's outcome for those of dead processes
	// (and of every candidate in a dry run), OutcomeNotYetDead for the others.
	Jobs       []sidekiq.JobRescue
	SuperFetch []sidekiq.SuperFetchOrphans
	Notes      []string
	Warnings   []string
}

// ErrRescueInterrupted means the run's context ended while RescueDead waited; nothing was
// pushed. The returned RescueRun says what was found.
var ErrRescueInterrupted = errors.New("rescue interrupted while waiting for processes to be proven dead: nothing was requeued")

// RunID names a rescue run in the markers it writes ("already rescued by run …"): the
// host, the pid and the run's start, as the deploy's rescue does.
func RunID(host string, pid int, start time.Time) string {
	if host == "" {
		host = "drainctl"
	}
	return fmt.Sprintf("%s:%d:%s", host, pid, start.UTC().Format("20060102T150405Z"))
}

// RescueDead is `drainctl rescue`: from snap (the fleet as read at the start) it takes the
// processes without a fresh heartbeat, proves them dead (ECS evidence, or waiting up to
// cfg.Wait for Redis to expire their heartbeat hashes), and pushes back the jobs of those
// proven dead, exactly once per death (Fleet.Rescue). It never prints: warnings and notes are
// in the result. The error is ErrRescueInterrupted when ctx ended during the wait, or
// Fleet.Rescue's error (the result still lists every job).
func RescueDead(ctx context.Context, f RescueFleet, snap *sidekiq.Snapshot, cfg RescueConfig) (RescueRun, error) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	after := cfg.After
	if after == nil {
		after = time.After
	}
	at := now()
	run := RescueRun{RunID: cfg.RunID, At: at, DryRun: cfg.DryRun}

	var procs []sidekiq.Process
	if snap != nil {
		procs = snap.Processes
	}
	if cfg.Selected {
		procs = FilterSelected(procs, cfg.Selector)
	}
	killed := map[string]string{}
	if cfg.ECS != nil && len(cfg.Services) > 0 {
		var tasks []ecs.Task
		for _, ref := range cfg.Services {
			ts, err := cfg.ECS.Tasks(ctx, ref, "")
			if err != nil {
				run.Warnings = append(run.Warnings, fmt.Sprintf("list tasks of %s (no ECS evidence of kills): %v", ref, err))
				continue
			}
			tasks = append(tasks, ts...)
		}
		killed = KilledByECS(procs, tasks)
	}

	jobsOf := map[string][]sidekiq.Job{}
	var pending []int // indexes into run.Processes not yet known dead
	for _, p := range procs {
		rp, ok := ClassifyCandidate(p, cfg.StaleAfter, killed[p.Identity], at)
		if !ok {
			continue
		}
		jobsOf[p.Identity] = p.Jobs
		if rp.State == RescueNotYetKnown {
			pending = append(pending, len(run.Processes))
		}
		run.Processes = append(run.Processes, rp)
	}
	if n := countState(run.Processes, RescueExpired); n > 0 {
		run.Notes = append(run.Notes, fmt.Sprintf("%d process(es) died before this run and their work hashes expired with their heartbeats: drainctl cannot see which jobs they were running. Run rescue within a minute of a kill, or let drainctl deploy watch its own rollout.", n))
	}

	switch {
	case len(pending) == 0 || cfg.DryRun:
	case cfg.Wait <= 0:
		first := run.Processes[pending[0]].CertainAt
		for _, i := range pending[1:] {
			if c := run.Processes[i].CertainAt; c.After(first) {
				first = c
			}
		}
		run.Notes = append(run.Notes, fmt.Sprintf("%d process(es) not yet known dead: their jobs were not requeued. Run rescue --wait %s to block until their death is certain (at %s) and requeue them then; or give --cluster/--service so an ECS exit code 137 proves it at once.",
			len(pending), waitHint(first.Sub(at)), clock(first)))
	default:
		ps := make([]RescueProcess, len(pending))
		for k, i := range pending {
			ps[k] = run.Processes[i]
		}
		if cfg.OnWait != nil {
			cfg.OnWait(ps, cfg.Wait)
		}
		if err := waitDead(ctx, f, &run, pending, cfg, now, after); err != nil {
			return run, err
		}
	}

	var jobs []sidekiq.Job
	var dead []string
	for _, rp := range run.Processes {
		id := rp.Process.Identity
		switch {
		case rp.State == RescueProven || rp.State == RescueExpired || cfg.DryRun && rp.State == RescueNotYetKnown:
			dead = append(dead, id)
			jobs = append(jobs, jobsOf[id]...)
		case rp.State == RescueNotYetKnown:
			for _, j := range jobsOf[id] {
				run.Jobs = append(run.Jobs, sidekiq.JobRescue{Job: j, Outcome: OutcomeNotYetDead,
					Reason: "its process is not yet known dead (certain at " + clock(rp.CertainAt) + "): not requeued"})
			}
		}
	}
	if len(jobs) == 0 {
		return run, nil
	}
	res, err := f.Rescue(ctx, jobs, sidekiq.RescueOptions{RunID: cfg.RunID, Now: now, DryRun: cfg.DryRun, Dead: dead})
	if res.RunID != "" {
		run.RunID = res.RunID
	}
	run.Jobs = append(res.Jobs, run.Jobs...)
	run.SuperFetch = res.SuperFetch
	for _, sf := range res.SuperFetch {
		run.Notes = append(run.Notes, fmt.Sprintf("process %s: super_fetch owns its jobs: %s", sf.Identity, sf.Hint))
	}
	if err != nil {
		run.Warnings = append(run.Warnings, fmt.Sprintf("rescue: %v", err))
		return run, fmt.Errorf("rescue %d job(s) of %d dead process(es): %w", len(jobs), len(dead), err)
	}
	return run, nil
}

// ClassifyCandidate decides whether p is a rescue candidate at now and in which state:
// its heartbeat hash expired (RescueExpired); ECS evidence (killed, non-empty) proves it dead
// (RescueProven); or its beat is stale — older than staleAfter, or than sidekiq.StaleAfter(p)
// when staleAfter is zero — and its death becomes certain when the hash expires
// (RescueNotYetKnown). ok is false for a process with a fresh beat and no ECS evidence.
func ClassifyCandidate(p sidekiq.Process, staleAfter time.Duration, killed string, now time.Time) (RescueProcess, bool) {
	c := sidekiq.ClassifyDeath(p, 0, now)
	rp := RescueProcess{Process: p, Silent: c.Silent}
	switch {
	case c.Death == sidekiq.DeathCertain:
		rp.State = RescueExpired
		rp.Evidence = "listed in processes, heartbeat hash expired: died more than ~60 s ago"
		if len(p.Jobs) == 0 {
			rp.Evidence += "; its work hash expired too, so the jobs it ran (if any) are not visible"
		}
		return rp, true
	case killed != "":
		rp.State = RescueProven
		rp.Evidence = killed
		return rp, true
	}
	stale := c.Death == sidekiq.DeathNotYetKnown
	if staleAfter > 0 {
		stale = p.Beat.IsZero() || c.Silent > staleAfter
	}
	if !stale {
		return rp, false
	}
	rp.State = RescueNotYetKnown
	rp.CertainAt = c.CertainAt
	if rp.CertainAt.IsZero() { // stale by staleAfter only: Redis still calls it alive
		rp.CertainAt = p.Beat.Add(sidekiq.HeartbeatTTL)
		if !rp.CertainAt.After(now) {
			rp.CertainAt = now.Add(sidekiq.HeartbeatTTL)
		}
	}
	last := "no heartbeat read"
	if !p.Beat.IsZero() {
		last = fmt.Sprintf("last beat %d s ago", int(c.Silent.Round(time.Second)/time.Second))
	}
	rp.Evidence = fmt.Sprintf("not yet known dead: %s, certain at %s", last, clock(rp.CertainAt))
	return rp, true
}

// KilledByECS returns, per identity, the ECS evidence that the process was killed: it runs in
// (matches, see MatchTask) a stopped task whose container exited 137, matches no running
// task, and did not beat after the task stopped. tasks are the services' tasks, running and
// stopped.
func KilledByECS(ps []sidekiq.Process, tasks []ecs.Task) map[string]string {
	var running, stopped []ecs.Task
	for _, t := range tasks {
		if t.LastStatus == "STOPPED" || t.DesiredStatus == "STOPPED" && t.LastStatus == "" {
			stopped = append(stopped, t)
		} else {
			running = append(running, t)
		}
	}
	out := map[string]string{}
	for _, p := range ps {
		if !p.HashExists {
			continue
		}
		if _, ok := MatchTask(p, running); ok {
			continue
		}
		t, ok := MatchTask(p, stopped)
		if !ok {
			continue
		}
		ct, killed := t.Killed()
		if !killed || !t.StoppedAt.IsZero() && p.Beat.After(t.StoppedAt) {
			continue
		}
		out[p.Identity] = fmt.Sprintf("ECS task %s stopped, container %s exited 137 (killed): dead now", t.ID, ct.Name)
	}
	return out
}

// waitDead waits up to cfg.Wait for the processes at run.Processes[pending] to be certainly
// dead, marking each dead, alive (it beat again), or leaving it not yet known with a warning.
func waitDead(ctx context.Context, f RescueFleet, run *RescueRun, pending []int, cfg RescueConfig, now func() time.Time, after func(time.Duration) <-chan time.Time) error {
	deadline, stop := make(chan struct{}), make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-after(cfg.Wait):
			close(deadline)
		case <-stop:
		}
	}()
	beatAt := map[string]time.Time{}
	for _, i := range pending {
		beatAt[run.Processes[i].Process.Identity] = run.Processes[i].Process.Beat
	}
	for len(pending) > 0 {
		ids := make([]string, len(pending))
		for k, i := range pending {
			ids[k] = run.Processes[i].Process.Identity
		}
		wctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-deadline:
				cancel()
			case <-wctx.Done():
			}
		}()
		// A process that beat since the snapshot (before WaitCertain's own first poll) is
		// alive too: stop and sort them out. OnPoll runs in WaitCertain's goroutine.
		beat := false
		certs, err := f.WaitCertain(wctx, ids, sidekiq.WaitOptions{Interval: cfg.PollInterval, Now: now, After: after,
			OnPoll: func(cs []sidekiq.Certainty) {
				for _, c := range cs {
					if c.LastBeat.After(beatAt[c.Identity]) {
						beat = true
						cancel()
					}
				}
			}})
		cancel()
		if err == nil {
			for k, i := range pending {
				markDead(&run.Processes[i], certs[k])
			}
			return nil
		}
		if ctx.Err() != nil {
			return ErrRescueInterrupted
		}
		if errors.Is(err, sidekiq.ErrAlive) || beat {
			snap, serr := f.SnapshotOf(ctx, ids)
			if serr != nil {
				run.Warnings = append(run.Warnings, fmt.Sprintf("read the processes that beat again: %v", serr))
				notProven(run, pending, cfg.Wait)
				return nil
			}
			alive := map[string]time.Time{}
			for _, p := range snap.Processes {
				if p.HashExists && p.Beat.After(beatAt[p.Identity]) {
					alive[p.Identity] = p.Beat
				}
			}
			var next []int
			for _, i := range pending {
				rp := &run.Processes[i]
				if b, ok := alive[rp.Process.Identity]; ok {
					rp.State, rp.CertainAt = RescueAlive, time.Time{}
					rp.Evidence = fmt.Sprintf("it beat again at %s: not dead, left alone", clock(b))
					continue
				}
				next = append(next, i)
			}
			pending = next
			select {
			case <-deadline:
				notProven(run, pending, cfg.Wait)
				return nil
			default:
				continue
			}
		}
		// --wait ran out (or Redis kept failing until it did).
		var nc *sidekiq.NotCertainError
		if !errors.As(err, &nc) {
			run.Warnings = append(run.Warnings, fmt.Sprintf("wait for death: %v", err))
		}
		var still []int
		for k, i := range pending {
			if k < len(certs) {
				markDead(&run.Processes[i], certs[k])
			}
			if run.Processes[i].State == RescueNotYetKnown {
				still = append(still, i)
			}
		}
		notProven(run, still, cfg.Wait)
		return nil
	}
	return nil
}

// markDead records a process WaitCertain proved dead.
func markDead(rp *RescueProcess, c sidekiq.Certainty) {
	if c.Death != sidekiq.DeathCertain {
		return
	}
	rp.State, rp.CertainAt = RescueProven, time.Time{}
	rp.Evidence = "no beat since the last one, and its heartbeat hash expired: proven dead"
}

// notProven warns about the processes still not known dead when the wait ran out.
func notProven(run *RescueRun, pending []int, wait time.Duration) {
	for _, i := range pending {
		rp := &run.Processes[i]
		rp.Evidence += fmt.Sprintf("; still not proven dead after --wait %v: not rescued (run rescue again)", wait)
		run.Warnings = append(run.Warnings, fmt.Sprintf("process %s: not proven dead within --wait %v (certain at %s); its jobs were not requeued",
			rp.Process.Identity, wait, clock(rp.CertainAt)))
	}
}

// FilterSelected keeps the processes the selector names; hostname and identity criteria
// also work on processes whose heartbeat expired (their tags and queues are unknown).
func FilterSelected(ps []sidekiq.Process, sel sidekiq.Selector) []sidekiq.Process {
	if len(ps) == 0 {
		return nil
	}
	if sel.All {
		return ps
	}
	var out []sidekiq.Process
	for _, p := range ps {
		if p.HashExists {
			sub := &sidekiq.Snapshot{Processes: []sidekiq.Process{p}}
			if s, err := sub.Select(sel); err == nil && len(s.Processes) == 1 {
				out = append(out, p)
			}
			continue
		}
		host := p.Hostname
		if host == "" {
			host, _, _ = strings.Cut(p.Identity, ":")
		}
		ok := len(sel.Identities) > 0 || sel.Hostname != nil
		if len(sel.Identities) > 0 {
			ok = false
			for _, id := range sel.Identities {
				ok = ok || id == p.Identity
			}
		}
		if sel.Hostname != nil && !sel.Hostname.MatchString(host) {
			ok = false
		}
		if ok && len(sel.Tags)+len(sel.Queues)+len(sel.Labels) == 0 {
			out = append(out, p)
		}
	}
	return out
}

func countState(ps []RescueProcess, s RescueState) int {
	n := 0
	for _, p := range ps {
		if p.State == s {
			n++
		}
	}
	return n
}

// clock is a time of day in the clock's own location, HH:MM:SS.
func clock(t time.Time) string { return t.Format("15:04:05") }

// waitHint is a --wait value that covers d (rounded up to 10 s, at least 10 s, plus a beat).
func waitHint(d time.Duration) string {
	d += 5 * time.Second
	d = (d + 10*time.Second - 1) / (10 * time.Second) * (10 * time.Second)
	if d < 10*time.Second {
		d = 10 * time.Second
	}
	return d.String()
}

var (
	_ RescueFleet = (*sidekiq.Client)(nil)
	_ TaskLister  = (*ecs.Client)(nil)
)
