package drain

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/drainctl/drainctl/internal/sidekiq"
)

// Runner runs the deploy sequence once. See the package documentation for the phases.
type Runner struct {
	Config   Config
	Fleet    Fleet
	Services []Service
	// Observer receives progress events. Nil means NopObserver.
	Observer Observer
}

// run is the state of one Run: what was selected, written and observed so far.
type run struct {
	cfg   Config
	fleet Fleet
	svcs  []Service
	obs   Observer
	res   Result

	lockName    string
	lock        Lock
	lastRefresh time.Time

	selected []sidekiq.Process
	taskOf   map[string]string // identity → task ARN
	jobs     *ledger
	watcher  ProcessWatcher
	last     map[string]Observation

	quietSent bool
	rescued   map[string]bool
	safe      map[string]bool
	notes     map[string]string
}

// Run performs the sequence. It returns the Result in every case; the error is nil only for
// a succeeded run or a dry run, and is one of the package's typed errors otherwise (see
// ExitCode).
func (r *Runner) Run(ctx context.Context) (Result, error) {
	obs := r.Observer
	if obs == nil {
		obs = NopObserver{}
	}
	cfg, cfgErr := r.Config.withDefaults()
	x := &run{cfg: cfg, fleet: r.Fleet, svcs: r.Services, obs: obs, jobs: newLedger(),
		taskOf: map[string]string{}, last: map[string]Observation{}}
	x.res = Result{StartedAt: cfg.Now(), DryRun: cfg.DryRun, APICalls: map[string]int{}, Settings: Settings{
		RedisURL: cfg.RedisURL, DrainTimeout: cfg.DrainTimeout, OnTimeout: cfg.OnTimeout,
		RolloutTimeout: cfg.RolloutTimeout, ExitTimeout: cfg.ExitTimeout, PollInterval: cfg.PollInterval,
		Rescue: !cfg.NoRescue, TaskDefinition: cfg.TaskDefinition, OnRolloutFailure: cfg.OnRolloutFailure,
		Strict: cfg.Strict,
	}}
	refs := make([]ServiceRef, len(r.Services))
	for i, s := range r.Services {
		refs[i] = s.Ref()
		x.res.Services = append(x.res.Services, ServiceResult{Ref: refs[i]})
	}
	x.lockName = cfg.LockName
	if x.lockName == "" {
		x.lockName = lockName(refs)
	}
	x.res.Lock.Name = x.lockName
	if cfgErr != nil {
		return x.end(ctx, OutcomeFailed, cfgErr)
	}
	if len(r.Services) == 0 {
		return x.end(ctx, OutcomeFailed, &PreflightError{Findings: []string{"no service given (use --service)"}})
	}
	return x.sequence(ctx)
}

// sequence is the deploy, step by step; every return goes through end, stopEarly or
// interrupted so the Result always says what was left behind.
func (x *run) sequence(ctx context.Context) (Result, error) {
	// 1. Preflight: reads only.
	if err := x.preflight(ctx); err != nil {
		if ctx.Err() != nil {
			return x.interrupted(ctx, PhasePreflight)
		}
		return x.end(ctx, OutcomeFailed, err)
	}
	if x.cfg.DryRun {
		x.plan()
		return x.end(ctx, OutcomeDryRun, nil)
	}
	if ctx.Err() != nil {
		return x.interrupted(ctx, PhasePreflight)
	}

	// 2. Lock.
	if err := x.acquireLock(ctx); err != nil {
		if ctx.Err() != nil {
			return x.interrupted(ctx, PhaseLock)
		}
		return x.end(ctx, OutcomeFailed, err)
	}
	if ctx.Err() != nil {
		return x.interrupted(ctx, PhaseLock)
	}

	// 3. Quiet: from here on, the selection can only be restarted, not un-quieted.
	if err := x.quiet(ctx); err != nil {
		return x.abort(ctx, PhaseQuiet, err)
	}

	// 4. Drain.
	timedOut, err := x.drain(ctx)
	if err != nil {
		return x.abort(ctx, PhaseDrain, err)
	}

	// 5. Drain-timeout policy.
	if timedOut {
		if err := x.onDrainTimeout(ctx); err != nil {
			if errors.Is(err, ErrDrainTimeout) {
				return x.stopEarly(ctx, OutcomeDrainTimeout, err)
			}
			return x.abort(ctx, PhaseDrain, err)
		}
	}
	if ctx.Err() != nil {
		return x.interrupted(ctx, PhaseDrain)
	}

	// 6. Deploy: exactly one UpdateService per service.
	if err := x.deploy(ctx); err != nil {
		return x.abort(ctx, PhaseDeploy, err)
	}
	if ctx.Err() != nil {
		return x.interrupted(ctx, PhaseDeploy)
	}

	// 7. Watch the rollout.
	result, err := x.rollout(ctx)
	if err != nil {
		return x.abort(ctx, PhaseRollout, err)
	}

	switch result {
	case RolloutSucceeded:
		// 8. Watch the old processes leave, then rescue the dead ones' jobs.
		if err := x.exits(ctx, nil); err != nil {
			return x.abort(ctx, PhaseExits, err)
		}
		if err := x.rescue(ctx); err != nil {
			return x.abort(ctx, PhaseExits, err)
		}
		return x.end(ctx, OutcomeSucceeded, nil)

	case RolloutTimedOut:
		// Another service's rollout succeeded: its old processes leave all the same.
		if err := x.exitsOfSucceeded(ctx); err != nil {
			return x.abort(ctx, PhaseExits, err)
		}
		x.finalPoll(ctx)
		if err := x.rescue(ctx); err != nil {
			return x.abort(ctx, PhaseRollout, err)
		}
		return x.stopEarly(ctx, OutcomeRolloutTimeout, fmt.Errorf("%w after %v: %s", ErrRolloutTimeout,
			x.cfg.RolloutTimeout, x.rolloutSummary()))

	default:
		// 9. Failed or rolled back: get quieted tasks the rollback kept replaced.
		if err := x.recover(ctx); err != nil {
			return x.abort(ctx, PhaseRecover, err)
		}
		// 8. for the services whose rollout succeeded: their old processes leave all the same.
		if err := x.exitsOfSucceeded(ctx); err != nil {
			return x.abort(ctx, PhaseExits, err)
		}
		if err := x.rescue(ctx); err != nil {
			return x.abort(ctx, PhaseRecover, err)
		}
		outcome := OutcomeFailed
		if result == RolloutRolledBack {
			outcome = OutcomeRolledBack
		}
		return x.end(ctx, outcome, fmt.Errorf("%w: %s", ErrRolloutFailed, x.rolloutSummary()))
	}
}

// abort ends the run after a failed write or read: an interrupt when ctx was cancelled,
// otherwise a failure with the state left behind re-read.
func (x *run) abort(ctx context.Context, p Phase, err error) (Result, error) {
	if ctx.Err() != nil {
		return x.interrupted(ctx, p)
	}
	return x.stopEarly(ctx, OutcomeFailed, err)
}

// phase starts a phase record and returns the func that ends it with the phase's error.
func (x *run) phase(p Phase) func(*error) {
	at := x.cfg.Now()
	x.res.Phases = append(x.res.Phases, PhaseRecord{Phase: p, StartedAt: at})
	i := len(x.res.Phases) - 1
	x.obs.PhaseStarted(p, at)
	return func(errp *error) {
		end := x.cfg.Now()
		x.res.Phases[i].EndedAt = end
		var err error
		if errp != nil {
			err = *errp
		}
		if err != nil {
			x.res.Phases[i].Error = err.Error()
		}
		x.obs.PhaseEnded(p, end, err)
	}
}

func (x *run) count(call string) { x.res.APICalls[call]++ }

func (x *run) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	x.res.Warnings = append(x.res.Warnings, msg)
	x.obs.Warning(msg)
}

// wait sleeps one poll interval, keeping the lock alive; it returns ctx's error when
// cancelled.
func (x *run) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-x.cfg.After(x.cfg.PollInterval):
	}
	x.refreshLock(ctx)
	return nil
}

// ---- 1. Preflight -------------------------------------------------------------------------

func (x *run) preflight(ctx context.Context) (err error) {
	defer x.phase(PhasePreflight)(&err)
	var findings []string
	var allTasks [][]Task
	for i, s := range x.svcs {
		st, err := s.Preflight(ctx)
		x.count("ecs.Preflight")
		if err != nil {
			findings = append(findings, fmt.Sprintf("service %s: %v", s.Ref(), err))
			allTasks = append(allTasks, nil)
			continue
		}
		x.res.Services[i].State = st
		for _, w := range st.Warnings {
			if x.cfg.Strict {
				findings = append(findings, fmt.Sprintf("service %s: %s (--strict)", s.Ref(), w))
			} else {
				x.warn("service %s: %s", s.Ref(), w)
			}
		}
		tasks, err := s.Tasks(ctx, "RUNNING")
		x.count("ecs.Tasks")
		if err != nil {
			findings = append(findings, fmt.Sprintf("list tasks of service %s: %v", s.Ref(), err))
		}
		x.res.Services[i].TasksAtStart = tasks
		allTasks = append(allTasks, tasks)
	}
	x.count("redis.Ping")
	if err := x.fleet.Ping(ctx); err != nil {
		findings = append(findings, fmt.Sprintf("redis: %v", err))
		return &PreflightError{Findings: findings}
	}
	snap, err := x.fleet.Snapshot(ctx)
	x.count("redis.Snapshot")
	if err != nil {
		findings = append(findings, fmt.Sprintf("read the sidekiq fleet: %v", err))
	}
	if len(findings) > 0 {
		return &PreflightError{Findings: findings}
	}

	if err := x.selectProcesses(snap, allTasks); err != nil {
		return err
	}

	x.readQueues(ctx)

	// Heartbeats must be fresh: a frozen process never acknowledges quiet.
	now := x.cfg.Now()
	var stale []string
	for _, p := range x.selected {
		if age := now.Sub(p.Beat); age > x.cfg.StaleAfter {
			stale = append(stale, fmt.Sprintf("%s (%s ago)", p.Identity, age.Round(time.Second)))
		}
	}
	if len(stale) > 0 {
		findings = append(findings, fmt.Sprintf("%d selected process(es) have no heartbeat in %v: %s (check them, or deselect them with --identity)",
			len(stale), x.cfg.StaleAfter, strings.Join(stale, ", ")))
	}

	holder, err := x.fleet.LockHolder(ctx, x.lockName)
	x.count("redis.LockHolder")
	switch {
	case err != nil:
		findings = append(findings, fmt.Sprintf("read deploy lock %q: %v", x.lockName, err))
	case holder != nil:
		x.res.Lock.Holder = holder
		return &LockedError{Name: x.lockName, Holder: *holder}
	}
	if len(findings) > 0 {
		return &PreflightError{Findings: findings}
	}
	return nil
}

// selectProcesses fixes the selection: Config.Select's choice, or the processes placed in
// the services' running tasks. Dead leftovers and embedded processes are left out with a
// warning.
func (x *run) selectProcesses(snap *sidekiq.Snapshot, allTasks [][]Task) error {
	var flat []Task
	svcOfTask := map[string]string{}
	for i, ts := range allTasks {
		for _, t := range ts {
			flat = append(flat, t)
			svcOfTask[t.ARN] = x.svcs[i].Ref().String()
		}
	}
	var candidates []sidekiq.Process
	if x.cfg.Select != nil {
		ps, err := x.cfg.Select(snap)
		if err != nil {
			return &PreflightError{Findings: []string{err.Error()}}
		}
		candidates = ps
	} else {
		for _, p := range snap.Processes {
			if _, ok := x.cfg.Match(p, flat); ok {
				candidates = append(candidates, p)
			} else {
				x.res.Unplaced = append(x.res.Unplaced, p.Identity)
			}
		}
	}
	for _, p := range candidates {
		if ok, why := sidekiq.Drainable(p); !ok {
			x.warn("not drained: %s", why)
			continue
		}
		pr := ProcessResult{Identity: p.Identity, Hostname: p.Hostname, Tag: p.Tag, Version: p.Version,
			Queues: p.Queues, State: StateRunning, LastBeat: p.Beat, BusyAtQuiet: len(p.Jobs)}
		if p.Quiet {
			pr.State = StateQuiet
			x.warn("process %s is already quiet (an earlier run?): it is drained again", p.Identity)
		}
		if x.cfg.Match != nil {
			if t, ok := x.cfg.Match(p, flat); ok {
				x.taskOf[p.Identity] = t.ARN
				pr.TaskARN = t.ARN
				pr.Service = svcOfTask[t.ARN]
			}
		}
		x.selected = append(x.selected, p)
		x.res.Processes = append(x.res.Processes, pr)
		for _, j := range p.Jobs {
			x.jobs.add(p.Identity, j)
		}
	}
	if len(x.selected) == 0 {
		e := &EmptySelectionError{}
		for _, p := range snap.Processes {
			e.Fleet = append(e.Fleet, describeProcess(p))
		}
		for _, t := range flat {
			e.Tasks = append(e.Tasks, describeTask(t))
		}
		return e
	}
	return nil
}

// readQueues records the selection's queue depths; a failure is only a warning.
func (x *run) readQueues(ctx context.Context) {
	seen := map[string]bool{}
	var names []string
	for _, p := range x.selected {
		for _, q := range p.Queues {
			if !seen[q] {
				seen[q] = true
				names = append(names, q)
			}
		}
	}
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	x.count("redis.QueueStats")
	qs, err := x.fleet.QueueStats(ctx, names)
	if err != nil {
		if ctx.Err() == nil {
			x.warn("read queue sizes: %v", err)
		}
		return
	}
	x.res.Queues = qs
}

func describeProcess(p sidekiq.Process) string {
	if p.Tag != "" {
		return fmt.Sprintf("%s (tag %s)", p.Identity, p.Tag)
	}
	return p.Identity
}

func describeTask(t Task) string {
	id := t.ID
	if id == "" {
		id = t.ARN
	}
	if t.PrivateIPv4 != "" {
		return id + " " + t.PrivateIPv4
	}
	return id
}

// plan fills Result.Plan for a dry run.
func (x *run) plan() {
	busy := 0
	for _, p := range x.selected {
		busy += len(p.Jobs)
	}
	x.res.Plan = append(x.res.Plan,
		fmt.Sprintf("would take the deploy lock %q (free now)", x.lockName),
		fmt.Sprintf("would quiet %d process(es): %s", len(x.selected), strings.Join(identities(x.selected), ", ")),
		fmt.Sprintf("would wait up to %v for %d in-flight job(s), then %s", x.cfg.DrainTimeout, busy, policyText(x.cfg.OnTimeout)))
	for _, s := range x.res.Services {
		td := x.cfg.TaskDefinition
		if td == "" {
			x.res.Plan = append(x.res.Plan, fmt.Sprintf("would force a new deployment of %s on %s", shortTD(s.State.TaskDefinition), s.Ref))
		} else {
			x.res.Plan = append(x.res.Plan, fmt.Sprintf("would deploy %s on %s (now %s)", td, s.Ref, shortTD(s.State.TaskDefinition)))
		}
	}
	x.res.Plan = append(x.res.Plan, fmt.Sprintf("would watch the rollout for up to %v and the old processes' exits for up to %v", x.cfg.RolloutTimeout, x.cfg.ExitTimeout))
	if x.cfg.NoRescue {
		x.res.Plan = append(x.res.Plan, "would not rescue the jobs of killed processes (--rescue=false)")
	} else {
		x.res.Plan = append(x.res.Plan, "would rescue the jobs of killed processes, once each")
	}
	for _, rec := range x.jobs.jobs {
		rec.Fate = JobStillRunning
	}
}

func policyText(p OnTimeout) string {
	switch p {
	case OnTimeoutStop:
		return "send TERM through Redis (Sidekiq requeues) and deploy"
	case OnTimeoutFail:
		return "stop with exit 3, leaving the processes quiet"
	}
	return "deploy anyway (ECS's SIGTERM lets Sidekiq requeue what is left)"
}

// shortTD turns a task definition ARN into family:revision.
func shortTD(td string) string {
	if i := strings.LastIndex(td, "/"); i >= 0 {
		return td[i+1:]
	}
	return td
}

func identities(ps []sidekiq.Process) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Identity
	}
	return out
}

// ---- 2. Lock ------------------------------------------------------------------------------

func (x *run) acquireLock(ctx context.Context) (err error) {
	defer x.phase(PhaseLock)(&err)
	owner := x.cfg.LockOwner
	if owner.StartedAt.IsZero() {
		owner.StartedAt = x.res.StartedAt
	}
	lock, err := x.fleet.AcquireLock(ctx, x.lockName, owner, x.cfg.LockTTL)
	x.count("redis.Lock")
	if err != nil {
		var held *sidekiq.LockHeldError
		if errors.As(err, &held) {
			x.res.Lock.Holder = &held.Holder
			return &LockedError{Name: x.lockName, Holder: held.Holder}
		}
		return fmt.Errorf("acquire deploy lock %q: %w", x.lockName, err)
	}
	x.lock = lock
	x.lastRefresh = x.cfg.Now()
	x.res.Lock.Acquired = true
	if prev := lock.TookOver(); prev != nil {
		x.res.Lock.TookOver = prev
		x.warn("took over the stale deploy lock %q of %s on %s (pid %d, started %s): it stopped refreshing it",
			x.lockName, prev.Owner, prev.Host, prev.PID, prev.StartedAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// refreshLock extends the lock once a third of its TTL has passed.
func (x *run) refreshLock(ctx context.Context) {
	if x.lock == nil || x.cfg.Now().Sub(x.lastRefresh) < x.cfg.LockTTL/3 {
		return
	}
	x.count("redis.LockRefresh")
	if err := x.lock.Refresh(ctx); err != nil {
		if ctx.Err() != nil {
			return
		}
		x.warn("refresh deploy lock %q: %v (another run may take it over)", x.lockName, err)
		return
	}
	x.lastRefresh = x.cfg.Now()
}

// releaseLock releases the lock with a context of its own: it runs after an interrupt too.
func (x *run) releaseLock(ctx context.Context) {
	if x.lock == nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), x.cfg.CleanupTimeout)
	defer cancel()
	x.count("redis.LockRelease")
	if err := x.lock.Release(cctx); err != nil {
		x.warn("release deploy lock %q: %v (it expires in %v)", x.lockName, err, x.cfg.LockTTL)
		return
	}
	x.lock = nil
	x.res.Lock.Released = true
}

// ---- 3. Quiet -----------------------------------------------------------------------------

func (x *run) quiet(ctx context.Context) (err error) {
	defer x.phase(PhaseQuiet)(&err)
	ids := identities(x.selected)
	x.count("redis.Quiet")
	if err := x.fleet.Quiet(ctx, ids); err != nil {
		return fmt.Errorf("quiet %d process(es): %w", len(ids), err)
	}
	x.quietSent = true
	x.watcher = x.fleet.Watch(x.selected)
	deadline := x.cfg.Now().Add(x.cfg.AckTimeout)
	for {
		obs := x.poll(ctx)
		x.progress(PhaseQuiet, obs, deadline)
		var waiting []string
		for _, p := range x.selected {
			if o, ok := x.last[p.Identity]; !ok || o.State == StateRunning || o.State == StateUnknown {
				waiting = append(waiting, p.Identity)
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		if !x.cfg.Now().Before(deadline) {
			x.warn("%d process(es) did not acknowledge quiet within %v: %s", len(waiting), x.cfg.AckTimeout, strings.Join(waiting, ", "))
			return nil
		}
		if err := x.wait(ctx); err != nil {
			return err
		}
	}
}

// poll reads the watched processes once; a failed poll is a warning and a skipped tick.
func (x *run) poll(ctx context.Context) []Observation {
	x.count("redis.Poll")
	obs, err := x.watcher.Poll(ctx)
	if err != nil {
		if ctx.Err() == nil {
			x.warn("poll sidekiq processes: %v (retrying)", err)
		}
		return nil
	}
	for _, o := range obs {
		x.last[o.Identity] = o
	}
	x.jobs.observe(obs)
	return obs
}

// progress emits a DrainProgress for the latest observations.
func (x *run) progress(p Phase, obs []Observation, deadline time.Time) {
	if obs == nil {
		return
	}
	now := x.cfg.Now()
	dp := DrainProgress{Phase: p, At: now, Total: len(x.jobs.order), Processes: map[State]int{},
		Longest: longest(obs, now, 5), Deadline: deadline}
	for _, o := range obs {
		dp.Processes[o.State]++
		if o.State.Alive() {
			dp.Remaining += len(o.Jobs)
		}
	}
	x.obs.DrainProgress(dp)
}

// ---- 4. Drain -----------------------------------------------------------------------------

// drain waits until no selected process runs a job; timedOut reports DrainTimeout passing.
func (x *run) drain(ctx context.Context) (timedOut bool, err error) {
	defer x.phase(PhaseDrain)(&err)
	var deadline time.Time
	if x.cfg.DrainTimeout > 0 {
		deadline = x.cfg.Now().Add(x.cfg.DrainTimeout)
	}
	for {
		obs := x.poll(ctx)
		x.progress(PhaseDrain, obs, deadline)
		if obs != nil && drained(obs) {
			return false, nil
		}
		if !deadline.IsZero() && !x.cfg.Now().Before(deadline) {
			return true, nil
		}
		if err := x.wait(ctx); err != nil {
			return false, err
		}
	}
}

// drained is true when every process is quiet with nothing in flight, or no longer alive.
func drained(obs []Observation) bool {
	for _, o := range obs {
		if o.State.Alive() && (o.State == StateRunning || o.State == StateUnknown || len(o.Jobs) > 0) {
			return false
		}
	}
	return true
}

// busyProcesses lists the alive processes with jobs in flight at the last poll.
func (x *run) busyProcesses() (ids []string, jobs int) {
	for _, p := range x.selected {
		o, ok := x.last[p.Identity]
		if !ok || !o.State.Alive() || len(o.Jobs) == 0 {
			continue
		}
		ids = append(ids, p.Identity)
		jobs += len(o.Jobs)
	}
	return ids, jobs
}

// ---- 5. Drain-timeout policy ----------------------------------------------------------------

func (x *run) onDrainTimeout(ctx context.Context) error {
	ids, jobs := x.busyProcesses()
	switch x.cfg.OnTimeout {
	case OnTimeoutStop:
		x.warn("drain timed out after %v with %d job(s) on %d process(es): sending TERM so Sidekiq requeues them now",
			x.cfg.DrainTimeout, jobs, len(ids))
		x.count("redis.Stop")
		if err := x.fleet.Stop(ctx, ids); err != nil {
			return fmt.Errorf("stop %d process(es) after drain timeout: %w", len(ids), err)
		}
		return nil
	case OnTimeoutFail:
		return fmt.Errorf("%w after %v: %d job(s) still running on %s", ErrDrainTimeout, x.cfg.DrainTimeout, jobs,
			strings.Join(ids, ", "))
	default:
		rest := "drainctl rescues the jobs of any process that is killed instead"
		if x.cfg.NoRescue {
			rest = "the jobs of any process that is killed instead are reported, not rescued (--rescue=false)"
		}
		x.warn("drain timed out after %v with %d job(s) on %d process(es): deploying anyway; ECS's SIGTERM lets Sidekiq requeue them if the signal path delivers it, and %s",
			x.cfg.DrainTimeout, jobs, len(ids), rest)
		return nil
	}
}

// ---- 6. Deploy ----------------------------------------------------------------------------

func (x *run) deploy(ctx context.Context) (err error) {
	defer x.phase(PhaseDeploy)(&err)
	for i, s := range x.svcs {
		if err := ctx.Err(); err != nil {
			return err // a safe point between two services
		}
		x.count("ecs.Deploy")
		ro, err := s.Deploy(ctx, x.cfg.TaskDefinition)
		if err != nil {
			return fmt.Errorf("deploy service %s: %w", s.Ref(), err)
		}
		if ro.PreviousTaskDefinition == "" {
			ro.PreviousTaskDefinition = x.res.Services[i].State.TaskDefinition
		}
		x.res.Services[i].Deployed = true
		x.res.Services[i].Rollout = ro
	}
	return nil
}

// ---- 7. Rollout ---------------------------------------------------------------------------

// rollout watches every service's deployment within one shared RolloutTimeout and returns
// the worst result: failed/rolled back, then timed out, then succeeded. Every deployment was
// started before the first watch, so ECS rolls them out at the same time: watching them one
// after another against one deadline bounds each from its own deploy, and a watch that finds
// the budget spent still gets one poll interval to read its service's outcome.
func (x *run) rollout(ctx context.Context) (worst RolloutResult, err error) {
	defer x.phase(PhaseRollout)(&err)
	var deadline time.Time
	if x.cfg.RolloutTimeout > 0 {
		deadline = x.cfg.Now().Add(x.cfg.RolloutTimeout)
	}
	worst = RolloutSucceeded
	for i, s := range x.svcs {
		opt := WatchOptions{Interval: x.cfg.PollInterval, OnPoll: func(p RolloutPoll) {
			p.Ref = s.Ref()
			x.res.Services[i].Polls = append(x.res.Services[i].Polls, p)
			x.obs.RolloutPoll(p)
			x.refreshLock(ctx)
		}}
		if !deadline.IsZero() {
			opt.Timeout = max(deadline.Sub(x.cfg.Now()), x.cfg.PollInterval)
		}
		x.count("ecs.Watch")
		out, err := s.Watch(ctx, x.res.Services[i].Rollout, opt)
		if err != nil {
			return worst, fmt.Errorf("watch the rollout of %s (deployment %s): %w", s.Ref(),
				x.res.Services[i].Rollout.DeploymentID, err)
		}
		x.res.APICalls["ecs.WatchPolls"] += out.Polls
		x.res.Services[i].Outcome = &out
		worst = worse(worst, out.Result)
	}
	return worst, nil
}

func worse(a, b RolloutResult) RolloutResult {
	rank := map[RolloutResult]int{RolloutSucceeded: 0, RolloutTimedOut: 1, RolloutFailed: 2, RolloutRolledBack: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func (x *run) rolloutSummary() string {
	var parts []string
	for _, s := range x.res.Services {
		if s.Outcome == nil {
			continue
		}
		p := fmt.Sprintf("%s deployment %s %s", s.Ref, s.Rollout.DeploymentID, s.Outcome.Result)
		if s.Outcome.Reason != "" {
			p += " (" + s.Outcome.Reason + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// rolloutSucceeded is true when every deployed service's rollout was watched to success.
func (x *run) rolloutSucceeded() bool {
	for _, s := range x.res.Services {
		if s.Deployed && (s.Outcome == nil || s.Outcome.Result != RolloutSucceeded) {
			return false
		}
	}
	return true
}

// ---- 8. Exits -----------------------------------------------------------------------------

// exits waits until every selected process in only (every one when only is nil) is gone or
// dead, marking processes dead early on the ECS evidence of a killed container, bounded by
// ExitTimeout.
func (x *run) exits(ctx context.Context, only map[string]bool) (err error) {
	defer x.phase(PhaseExits)(&err)
	deadline := x.cfg.Now().Add(x.cfg.ExitTimeout)
	marked := map[string]bool{}
	if only != nil {
		for _, p := range x.selected {
			marked[p.Identity] = !only[p.Identity] // never mark the others: they are not waited for
		}
	}
	for {
		x.markKilled(ctx, marked)
		obs := x.poll(ctx)
		x.progress(PhaseExits, obs, deadline)
		if obs != nil && allLeft(obs, only) {
			x.recordOldStops(ctx)
			return nil
		}
		if !x.cfg.Now().Before(deadline) {
			for _, p := range x.selected {
				if only != nil && !only[p.Identity] {
					continue
				}
				if o, ok := x.last[p.Identity]; !ok || o.State.Alive() {
					x.warn("process %s still running %v after the rollout: not part of this service?", p.Identity, x.cfg.ExitTimeout)
				}
			}
			x.recordOldStops(ctx)
			return nil
		}
		if err := x.wait(ctx); err != nil {
			return err
		}
	}
}

// exitsOfSucceeded runs the exits phase for the processes of the services whose rollout
// succeeded when another service's did not: ECS stopped their old tasks all the same, and the
// jobs of one killed there must be rescued. The other services' processes are not waited for.
func (x *run) exitsOfSucceeded(ctx context.Context) error {
	ok := map[string]bool{}
	for _, s := range x.res.Services {
		if s.Outcome != nil && s.Outcome.Result == RolloutSucceeded {
			ok[s.Ref.String()] = true
		}
	}
	only := map[string]bool{}
	for _, p := range x.res.Processes {
		if ok[p.Service] {
			only[p.Identity] = true
		}
	}
	if len(only) == 0 {
		return nil
	}
	return x.exits(ctx, only)
}

// allLeft is true when every observed process in only (every one when only is nil) is no
// longer alive.
func allLeft(obs []Observation, only map[string]bool) bool {
	for _, o := range obs {
		if only != nil && !only[o.Identity] {
			continue
		}
		if o.State.Alive() {
			return false
		}
	}
	return true
}

// markKilled reads the services' stopped tasks and marks dead the alive processes whose task
// has a container that exited 137.
func (x *run) markKilled(ctx context.Context, marked map[string]bool) {
	pending := map[string][]string{} // task ARN → identities still alive and unmarked
	for id, arn := range x.taskOf {
		if marked[id] {
			continue
		}
		if o, ok := x.last[id]; ok && !o.State.Alive() {
			continue
		}
		pending[arn] = append(pending[arn], id)
	}
	if len(pending) == 0 {
		return
	}
	for _, s := range x.svcs {
		x.count("ecs.Tasks")
		tasks, err := s.Tasks(ctx, "STOPPED")
		if err != nil {
			if ctx.Err() == nil {
				x.warn("list stopped tasks of %s: %v (retrying)", s.Ref(), err)
			}
			continue
		}
		for _, t := range tasks {
			c, killed := t.Killed()
			if !killed {
				continue
			}
			ids := pending[t.ARN]
			sort.Strings(ids)
			for _, id := range ids {
				x.watcher.MarkDead(id, fmt.Sprintf("task %s container %s exited 137 (SIGKILL after stopTimeout)", t.ID, c.Name))
				marked[id] = true
			}
		}
	}
}

// recordOldStops reads each service's stopped tasks once and records those that were running
// at preflight, for the report.
func (x *run) recordOldStops(ctx context.Context) {
	for i, s := range x.svcs {
		atStart := map[string]bool{}
		for _, t := range x.res.Services[i].TasksAtStart {
			atStart[t.ARN] = true
		}
		if len(atStart) == 0 {
			continue
		}
		x.count("ecs.Tasks")
		tasks, err := s.Tasks(ctx, "STOPPED")
		if err != nil {
			if ctx.Err() == nil {
				x.warn("list stopped tasks of %s: %v (the report lacks their exit codes)", s.Ref(), err)
			}
			continue
		}
		for _, t := range tasks {
			if atStart[t.ARN] {
				x.res.Services[i].OldTasksStopped = append(x.res.Services[i].OldTasksStopped, t)
			}
		}
	}
}

// finalPoll records the processes' states once more, for a run that ends without exits.
func (x *run) finalPoll(ctx context.Context) {
	if x.watcher != nil {
		x.poll(ctx)
	}
}

// rescue requeues the jobs of dead processes (Fleet.Rescue does it exactly once per jid) and
// names the likely cause.
func (x *run) rescue(ctx context.Context) error {
	var dead []string
	var jobs []sidekiq.Job
	for _, p := range x.selected {
		o, ok := x.last[p.Identity]
		if !ok || o.State != StateDead {
			continue
		}
		dead = append(dead, p.Identity)
		jobs = append(jobs, o.Jobs...)
	}
	if len(dead) == 0 {
		return nil
	}
	x.warn("%d process(es) were killed instead of stopping: %s; the signal path likely does not deliver SIGTERM to Sidekiq (shell wrapper as PID 1, no init, or stopTimeout below sidekiq -t + 5s)",
		len(dead), strings.Join(dead, ", "))
	if len(jobs) == 0 {
		return nil
	}
	if x.cfg.NoRescue {
		x.warn("%d job(s) of killed processes not rescued (--rescue=false): run drainctl rescue", len(jobs))
		return nil
	}
	x.count("redis.Rescue")
	rr, err := x.fleet.Rescue(ctx, jobs)
	if err != nil {
		return fmt.Errorf("rescue %d job(s) of %d killed process(es): %w", len(jobs), len(dead), err)
	}
	x.rescued, x.safe, x.notes = set(rr.Requeued), set(rr.Safe), rr.Skipped
	if len(rr.Requeued) > 0 {
		x.warn("rescued %d job(s) of killed processes: nothing lost, but they run again from the start", len(rr.Requeued))
	}
	return nil
}

func set(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[s] = true
	}
	return m
}

// ---- 9. Recover ---------------------------------------------------------------------------

// recover finds the quieted processes still alive in tasks a failed rollout kept and stops
// those tasks (unless OnRolloutFailure is leave), so the service starts fresh, un-quieted ones.
// Services whose own rollout succeeded are left alone.
func (x *run) recover(ctx context.Context) (err error) {
	defer x.phase(PhaseRecover)(&err)
	x.finalPoll(ctx)
	for i, s := range x.svcs {
		if o := x.res.Services[i].Outcome; o != nil && o.Result == RolloutSucceeded {
			continue
		}
		x.count("ecs.Tasks")
		running, err := s.Tasks(ctx, "RUNNING")
		if err != nil {
			return fmt.Errorf("list running tasks of %s: %w", s.Ref(), err)
		}
		alive := map[string]bool{}
		for _, t := range running {
			alive[t.ARN] = true
		}
		seen := map[string]bool{}
		var kept []string
		for _, p := range x.selected {
			arn := x.taskOf[p.Identity]
			if arn == "" || !alive[arn] || seen[arn] {
				continue
			}
			if o, ok := x.last[p.Identity]; ok && !o.State.Alive() {
				continue
			}
			seen[arn] = true
			kept = append(kept, arn)
		}
		if len(kept) == 0 {
			continue
		}
		if x.cfg.OnRolloutFailure == OnRolloutFailureLeave {
			x.res.Services[i].KeptQuietTasks = kept
			x.warn("%s: %d task(s) kept by the failed rollout run quieted processes that will not work again until restarted (--on-rollout-failure=leave): %s",
				s.Ref(), len(kept), strings.Join(kept, ", "))
			continue
		}
		x.count("ecs.StopTasks")
		if err := s.StopTasks(ctx, kept, "drainctl: replace quieted tasks after a failed rollout"); err != nil {
			x.res.Services[i].KeptQuietTasks = kept
			return fmt.Errorf("stop %d quieted task(s) of %s: %w", len(kept), s.Ref(), err)
		}
		x.res.Services[i].ReplacedTasks = kept
		x.warn("%s: stopped %d task(s) kept by the failed rollout whose processes were quiet; the service starts fresh ones",
			s.Ref(), len(kept))
	}
	for _, p := range x.selected {
		if x.taskOf[p.Identity] != "" {
			continue
		}
		if o, ok := x.last[p.Identity]; ok && o.State.Alive() {
			x.warn("process %s is quiet and in no task of the services: restart it", p.Identity)
		}
	}
	return nil
}

// ---- 10. End ------------------------------------------------------------------------------

// interrupted ends a cancelled run: re-read what is left with a fresh short context.
func (x *run) interrupted(ctx context.Context, p Phase) (Result, error) {
	return x.stopEarly(ctx, OutcomeInterrupted, fmt.Errorf("%w during %s: %w", ErrInterrupted, p, ctx.Err()))
}

// stopEarly records the state left behind (re-read from Redis) and ends the run.
func (x *run) stopEarly(ctx context.Context, outcome Outcome, err error) (Result, error) {
	left := &Leftover{DeploymentIDs: map[string]string{}}
	for _, s := range x.res.Services {
		if s.Deployed {
			left.DeploymentStarted = true
			left.DeploymentIDs[s.Ref.String()] = s.Rollout.DeploymentID
		}
	}
	if x.quietSent {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), x.cfg.CleanupTimeout)
		x.count("redis.SnapshotOf")
		snap, rerr := x.fleet.SnapshotOf(cctx, identities(x.selected))
		cancel()
		if rerr != nil {
			x.warn("re-read the selected processes: %v; assume all %d are quiet", rerr, len(x.selected))
			left.QuietProcesses = identities(x.selected)
		} else {
			for _, p := range snap.Processes {
				if p.HashExists && p.Listed && p.Quiet {
					left.QuietProcesses = append(left.QuietProcesses, p.Identity)
				}
			}
		}
	}
	switch {
	case left.DeploymentStarted && x.rolloutSucceeded():
		left.Hint = "the rollout succeeded; if an old process was killed, run drainctl rescue to requeue its jobs"
	case left.DeploymentStarted:
		var ws []string
		for _, s := range x.res.Services {
			if s.Deployed {
				ws = append(ws, fmt.Sprintf("aws ecs describe-services --cluster %s --services %s (deployment %s)",
					s.Ref.Cluster, s.Ref.Service, s.Rollout.DeploymentID))
			}
		}
		left.Hint = "the deployment continues without drainctl; watch it with: " + strings.Join(ws, "; ")
	case outcome == OutcomeDrainTimeout && len(left.QuietProcesses) > 0:
		left.Hint = fmt.Sprintf("%d process(es) stay quiet until restarted (quiet cannot be undone): finish with the same command and --on-timeout deploy (or stop), or restart them",
			len(left.QuietProcesses))
	case len(left.QuietProcesses) > 0:
		left.Hint = fmt.Sprintf("%d process(es) stay quiet until restarted: re-run the same command to finish (quiet is idempotent)",
			len(left.QuietProcesses))
	}
	if left.DeploymentStarted || len(left.QuietProcesses) > 0 {
		x.res.Left = left
	}
	return x.end(ctx, outcome, err)
}

// end settles the jobs and processes, releases the lock and returns the Result.
func (x *run) end(ctx context.Context, outcome Outcome, err error) (Result, error) {
	x.releaseLock(ctx)
	for i, pr := range x.res.Processes {
		if o, ok := x.last[pr.Identity]; ok {
			x.res.Processes[i].State = o.State
			x.res.Processes[i].Evidence = o.Evidence
			if !o.LastBeat.IsZero() {
				x.res.Processes[i].LastBeat = o.LastBeat
			}
		}
	}
	if outcome != OutcomeDryRun {
		x.jobs.settle(x.last, x.rescued, x.safe, x.notes)
	}
	x.res.JobList = x.jobs.records()
	x.res.Jobs = count(x.res.JobList)
	x.res.Outcome = outcome
	x.res.EndedAt = x.cfg.Now()
	if err != nil {
		x.res.Error = err.Error()
	}
	x.res.ExitCode = ExitCode(x.res, err)
	return x.res, err
}
