package drain

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/finding"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// Overlap finding codes.
const (
	CodeNoRoom                = "PF026"
	CodeUnplacedForOverlap    = "PF027"
	CodeProtectionUnavailable = "PF028"
	CodeForeignProtection     = "PF029"
	CodeStrategyMismatch      = "PF030"
	CodeHookTimeout           = "PF031"
	CodeBakeShorterThanDrain  = "PF032"
)

// overlapState is the overlap strategy's memory: the protection it set, the processes it
// quieted, the new workers it saw.
type overlapState struct {
	// own maps each task this run protected (and has not released) to its cluster.
	own map[string]string
	// foreign are tasks protected by someone else at preflight: never touched.
	foreign map[string]bool
	// record indexes Result.Protection by task ARN.
	record map[string]int
	// quieted are the old processes sent TSTP, in order.
	quieted    map[string]bool
	firstQuiet time.Time
	// newWorkers are the processes seen heartbeating from our deployment's tasks.
	newWorkers map[string]bool
	// procsOf lists the selected processes of each old task (the inverse of run.taskOf).
	procsOf  map[string][]string
	timedOut bool
}

// overlapRoom is how many new tasks a rolling deployment can start beside desired old ones
// that cannot be stopped: ⌊desired·maximumPercent/100⌋ − desired.
func overlapRoom(desired, maxPercent int32) int32 {
	return desired*maxPercent/100 - desired
}

// overlapChecks are the preflight's findings for the overlap strategy (severity error when
// overlap was asked for, info when auto only chooses). It reads the old tasks' protection;
// the tasks protected by someone else are left alone and reported.
func (x *run) overlapChecks(ctx context.Context) []finding.Finding {
	sev := finding.Info
	if x.cfg.Strategy == StrategyOverlap {
		sev = finding.Error
	}
	var out []finding.Finding
	for _, s := range x.res.Services {
		st := s.State
		if room := overlapRoom(st.Desired, st.MaxPercent); room < 1 {
			out = append(out, finding.Finding{Code: CodeNoRoom, Name: "no-room-for-overlap", Severity: sev, Subject: s.Ref.String(),
				Message: fmt.Sprintf("maximumPercent %d leaves no room for a new task beside the %d old ones", st.MaxPercent, st.Desired),
				Fix:     "set deploymentConfiguration.maximumPercent to 200 for a no-gap deploy"})
		}
	}
	for _, p := range x.selected {
		if x.taskOf[p.Identity] == "" {
			out = append(out, finding.Finding{Code: CodeUnplacedForOverlap, Name: "unplaced-process", Severity: sev, Subject: p.Identity,
				Message: "the process runs in no task of the services, so no task can be protected for it",
				Fix:     "select only the services' processes (the default selection), or use --strategy drain-first"})
		}
	}
	for _, s := range x.res.Services {
		arns := x.oldTasks(s.Ref)
		if len(arns) == 0 {
			continue
		}
		x.count("ecs.TaskProtections")
		prots, _, err := x.ecs.TaskProtections(ctx, s.Ref.Cluster, arns)
		if err != nil {
			out = append(out, finding.Finding{Code: CodeProtectionUnavailable, Name: "protection-unavailable", Severity: sev, Subject: s.Ref.String(),
				Message: fmt.Sprintf("task scale-in protection cannot be read: %v", err),
				Fix:     "allow ecs:GetTaskProtection and ecs:UpdateTaskProtection for a no-gap deploy"})
			continue
		}
		for _, p := range prots {
			if p.Protected {
				x.ov.foreign[p.TaskARN] = true
				x.res.Protection = append(x.res.Protection, ProtectionRecord{TaskARN: p.TaskARN, Service: s.Ref.String(), Foreign: true,
					ExpiresAt: p.ExpiresAt, Note: "protected by someone else before this run: left alone"})
				out = append(out, finding.Finding{Code: CodeForeignProtection, Name: "foreign-protection", Severity: finding.Warning, Subject: lastSegment(p.TaskARN),
					Message: fmt.Sprintf("task is already scale-in protected (until %s) by someone else: drainctl leaves its protection alone; ECS stops it only once that protection ends",
						p.ExpiresAt.UTC().Format(time.RFC3339))})
			}
		}
	}
	return out
}

// chooseStrategy settles auto (and checks overlap) after the preflight read everything: the
// overlap findings decide, and the reason says why in the report.
func (x *run) chooseStrategy(ctx context.Context) {
	req := x.cfg.Strategy
	switch req {
	case StrategyAuto, StrategyOverlap, StrategyPauseHook, StrategyBlueGreen:
	default:
		return
	}
	x.ov = newOverlapState()
	for _, p := range x.selected {
		if arn := x.taskOf[p.Identity]; arn != "" {
			x.ov.procsOf[arn] = append(x.ov.procsOf[arn], p.Identity)
		}
	}
	x.res.Strategy.Requested = req
	if x.blueGreenLike() {
		x.chooseBlueGreen(req)
		return
	}
	if req == StrategyPauseHook || req == StrategyBlueGreen {
		x.res.Strategy.Name = req
		x.addFinding(finding.Finding{Code: CodeStrategyMismatch, Name: "strategy-mismatch", Severity: finding.Error, Subject: x.res.Services[0].Ref.String(),
			Message: fmt.Sprintf("the service deploys %s: --strategy %s is for blue/green, linear and canary deployments", orDefault(x.res.Services[0].State.Strategy.Name, ecs.StrategyRolling), req),
			Fix:     "use --strategy auto (overlap or drain-first)"})
		return
	}
	fs := x.overlapChecks(ctx)
	var why []string
	for _, f := range fs {
		x.addFinding(f)
		if f.Code != CodeForeignProtection {
			why = append(why, f.Subject+": "+f.Message)
		}
	}
	if len(why) == 0 {
		x.res.Strategy.Name = StrategyOverlap
		x.res.Strategy.Reason = x.capacityPlan()
		return
	}
	if req == StrategyOverlap {
		x.res.Strategy.Name = StrategyOverlap
		x.res.Strategy.Reason = "overlap was asked for but cannot run: " + strings.Join(why, "; ")
		return
	}
	x.res.Strategy.Name = StrategyDrainFirst
	x.res.Strategy.Reason = "auto chose drain-first: " + strings.Join(why, "; ")
	x.warn("strategy %s", x.res.Strategy.Reason)
}

// blueGreenLike is true when a service deploys blue/green, linear or canary.
func (x *run) blueGreenLike() bool {
	for _, s := range x.res.Services {
		if s.State.Strategy.BlueGreenLike() {
			return true
		}
	}
	return false
}

// chooseBlueGreen settles the strategy of blue/green (linear, canary) services: a PAUSE hook
// at POST_SCALE_UP on every service makes it pause-hook, else blue-green; overlap is refused
// (ECS stops blue at CLEAN_UP; protecting it would only stall the deployment).
func (x *run) chooseBlueGreen(req StrategyName) {
	allHook := true
	for _, s := range x.res.Services {
		if s.State.Strategy.PauseHookAt(ecs.StagePostScaleUp) == nil {
			allHook = false
		}
	}
	subject := x.res.Services[0].Ref.String()
	kind := x.res.Services[0].State.Strategy.Name
	for _, s := range x.res.Services {
		if !s.State.Strategy.BlueGreenLike() {
			x.res.Strategy.Name = req
			x.addFinding(finding.Finding{Code: CodeStrategyMismatch, Name: "mixed-strategies", Severity: finding.Error, Subject: s.Ref.String(),
				Message: fmt.Sprintf("the services mix deployment strategies (%s deploys %s, %s deploys %s): one run cannot hand both over safely",
					subject, kind, s.Ref, orDefault(s.State.Strategy.Name, ecs.StrategyRolling)),
				Fix: "deploy them in separate runs"})
			return
		}
	}
	switch {
	case req == StrategyOverlap:
		x.res.Strategy.Name = req
		x.addFinding(finding.Finding{Code: CodeStrategyMismatch, Name: "strategy-mismatch", Severity: finding.Error, Subject: subject,
			Message: fmt.Sprintf("the service deploys %s: overlap protects tasks of rolling deployments only", kind),
			Fix:     "use --strategy auto (pause-hook with a PAUSE hook at POST_SCALE_UP, else blue-green)"})
		return
	case req == StrategyPauseHook && !allHook:
		x.res.Strategy.Name = req
		x.addFinding(finding.Finding{Code: CodeStrategyMismatch, Name: "no-pause-hook", Severity: finding.Error, Subject: subject,
			Message: "the service has no PAUSE lifecycle hook at POST_SCALE_UP to drain at", Fix: pauseHookFix(x.cfg.DrainTimeout)})
		return
	case allHook && req != StrategyBlueGreen:
		x.res.Strategy.Name = StrategyPauseHook
		x.res.Strategy.Reason = fmt.Sprintf("%s with a PAUSE hook at POST_SCALE_UP: once green heartbeats, quiet blue and wait for its jobs, then CONTINUE; CLEAN_UP stops idle blue tasks", kind)
		for _, s := range x.res.Services {
			h := s.State.Strategy.PauseHookAt(ecs.StagePostScaleUp)
			if h.Timeout > 0 && x.cfg.DrainTimeout > 0 && h.Timeout < x.cfg.DrainTimeout {
				x.addFinding(finding.Finding{Code: CodeHookTimeout, Name: "hook-times-out-first", Severity: finding.Error, Subject: s.Ref.String(),
					Message: fmt.Sprintf("the PAUSE hook at POST_SCALE_UP times out after %v (then %s), before the drain budget of %v", h.Timeout, orDefault(h.TimeoutAction, "its timeout action"), x.cfg.DrainTimeout),
					Fix:     fmt.Sprintf("raise the hook's timeoutInMinutes to at least %d, or lower --drain-timeout", int(x.cfg.DrainTimeout.Minutes()+0.999)+1)})
			}
		}
	default:
		x.res.Strategy.Name = StrategyBlueGreen
		x.res.Strategy.Reason = fmt.Sprintf("%s without a PAUSE hook at POST_SCALE_UP: quiet blue as green heartbeats, during the bake; CLEAN_UP stops blue", kind)
		for _, s := range x.res.Services {
			bake := s.State.Strategy.BakeTime
			if x.cfg.DrainTimeout > 0 && bake < x.cfg.DrainTimeout {
				x.addFinding(finding.Finding{Code: CodeBakeShorterThanDrain, Name: "bake-shorter-than-drain", Severity: finding.Warning, Subject: s.Ref.String(),
					Message: fmt.Sprintf("bake time %v is shorter than the drain budget %v: a job running longer than the bake plus stopTimeout is cut at CLEAN_UP (Sidekiq requeues it, or drainctl rescues it)", bake, x.cfg.DrainTimeout),
					Fix:     pauseHookFix(x.cfg.DrainTimeout)})
			}
		}
	}
}

// pauseHookFix is the deploymentConfiguration fragment that lets drainctl drain blue before
// CLEAN_UP.
func pauseHookFix(drain time.Duration) string {
	mins := int(drain.Minutes()+0.999) + 5
	return fmt.Sprintf(`add to deploymentConfiguration: "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"], "timeoutConfiguration": {"timeoutInMinutes": %d, "action": "ROLLBACK"}}]`, mins)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func newOverlapState() *overlapState {
	return &overlapState{own: map[string]string{}, foreign: map[string]bool{}, record: map[string]int{},
		quieted: map[string]bool{}, newWorkers: map[string]bool{}, procsOf: map[string][]string{}}
}

// capacityPlan says how the overlap hands over: how many new tasks start at once beside the
// protected old ones, and how the old ones leave.
func (x *run) capacityPlan() string {
	var parts []string
	for _, s := range x.res.Services {
		st := s.State
		parts = append(parts, fmt.Sprintf("%s: %d new task(s) start at once beside %d protected old one(s) (desired %d, maximumPercent %d)",
			s.Ref, min(overlapRoom(st.Desired, st.MaxPercent), st.Desired), len(x.oldTasks(s.Ref)), st.Desired, st.MaxPercent))
	}
	return "protect the old tasks from scale-in, deploy, quiet one old process per new worker that heartbeats, release each old task once idle: " +
		strings.Join(parts, "; ")
}

// oldTasks are the service's tasks at preflight that run selected processes, protected by
// no one else.
func (x *run) oldTasks(ref ecs.ServiceRef) []string {
	i := x.serviceIndex(ref)
	if i < 0 {
		return nil
	}
	hosts := map[string]bool{}
	for _, p := range x.selected {
		hosts[x.taskOf[p.Identity]] = true
	}
	var out []string
	for _, t := range x.res.Services[i].TasksAtStart {
		if hosts[t.ARN] && (x.ov == nil || !x.ov.foreign[t.ARN]) {
			out = append(out, t.ARN)
		}
	}
	return out
}

// errProtectionUnavailable means the protection could not be set at all (AccessDenied, an
// endpoint without it): nothing was protected, and drain-first can take over.
var errProtectionUnavailable = errors.New("task scale-in protection unavailable")

// protectionExpiry covers the drain and rollout budgets and the exits, within ECS's limit.
func (x *run) protectionExpiry() time.Duration {
	d := x.cfg.DrainTimeout + x.cfg.RolloutTimeout + x.cfg.ExitTimeout
	if x.cfg.DrainTimeout < 0 || x.cfg.RolloutTimeout < 0 || d > ecs.MaxProtection {
		d = ecs.MaxProtection
	}
	return d
}

// protect sets scale-in protection on every old task of the selection before the deployment,
// so ECS cannot pick an old task to stop first.
func (x *run) protect(ctx context.Context) (err error) {
	if x.res.Strategy.Name != StrategyOverlap {
		return nil // blue/green: ECS stops blue at CLEAN_UP; nothing to hold
	}
	defer x.phase(PhaseProtect)(&err)
	expiry := x.protectionExpiry()
	for _, s := range x.res.Services {
		arns := x.oldTasks(s.Ref)
		if len(arns) == 0 {
			continue
		}
		x.count("ecs.ProtectTasks")
		done, fails, err := x.ecs.ProtectTasks(ctx, s.Ref.Cluster, arns, expiry)
		now := x.cfg.Now()
		for _, p := range done {
			x.ov.own[p.TaskARN] = s.Ref.Cluster
			x.ov.record[p.TaskARN] = len(x.res.Protection)
			x.res.Protection = append(x.res.Protection, ProtectionRecord{TaskARN: p.TaskARN, Service: s.Ref.String(), ProtectedAt: now, ExpiresAt: p.ExpiresAt})
		}
		if err != nil {
			if len(x.ov.own) == 0 && (errors.Is(err, ecs.ErrAccessDenied) || errors.Is(err, ecs.ErrUnsupported)) {
				return fmt.Errorf("%w: %w", errProtectionUnavailable, err)
			}
			return fmt.Errorf("protect %d task(s) of %s: %w", len(arns), s.Ref, err)
		}
		for _, f := range fails {
			switch f.Reason {
			case "TASK_NOT_VALID", "MISSING":
				// The task stopped since preflight: its process is leaving; the exits phase sees it.
				x.warn("%s: task %s could not be protected (%s): it is stopping already", s.Ref, lastSegment(f.TaskARN), f.Reason)
			default:
				return fmt.Errorf("protect task %s of %s: %s %s", lastSegment(f.TaskARN), s.Ref, f.Reason, f.Detail)
			}
		}
	}
	return nil
}

// release clears the protection this run set on the tasks, recording why.
func (x *run) release(ctx context.Context, arns []string, note string) error {
	byCluster := map[string][]string{}
	var order []string
	for _, a := range arns {
		c, ok := x.ov.own[a]
		if !ok {
			continue
		}
		if _, seen := byCluster[c]; !seen {
			order = append(order, c)
		}
		byCluster[c] = append(byCluster[c], a)
	}
	var errs []error
	for _, c := range order {
		x.count("ecs.UnprotectTasks")
		fails, err := x.ecs.UnprotectTasks(ctx, c, byCluster[c])
		if err != nil {
			errs = append(errs, fmt.Errorf("release the protection of %d task(s) in %s: %w", len(byCluster[c]), c, err))
			continue
		}
		failed := map[string]bool{}
		for _, f := range fails {
			failed[f.TaskARN] = true
			errs = append(errs, fmt.Errorf("release the protection of task %s: %s %s", lastSegment(f.TaskARN), f.Reason, f.Detail))
		}
		now := x.cfg.Now()
		for _, a := range byCluster[c] {
			if failed[a] {
				continue
			}
			delete(x.ov.own, a)
			if i, ok := x.ov.record[a]; ok {
				x.res.Protection[i].ReleasedAt, x.res.Protection[i].Note = now, note
			}
			for _, id := range x.ov.procsOf[a] {
				if pr := x.process(id); pr != nil && pr.ReleasedAt.IsZero() {
					pr.ReleasedAt = now
				}
			}
		}
	}
	return errors.Join(errs...)
}

// releaseAll clears every protection this run still holds, with a context of its own: it
// runs on every exit path, interrupts included. What it cannot clear expires by itself.
func (x *run) releaseAll(ctx context.Context, note string) {
	if x.ov == nil || len(x.ov.own) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), x.cfg.CleanupTimeout)
	defer cancel()
	var arns []string
	for a := range x.ov.own {
		arns = append(arns, a)
	}
	sort.Strings(arns)
	if err := x.release(cctx, arns, note); err != nil {
		var until []string
		for _, a := range arns {
			if i, ok := x.ov.record[a]; ok && x.res.Protection[i].ReleasedAt.IsZero() {
				until = append(until, fmt.Sprintf("%s until %s", lastSegment(a), x.res.Protection[i].ExpiresAt.UTC().Format(time.RFC3339)))
			}
		}
		x.warn("%v; the protection expires by itself: %s", err, strings.Join(until, ", "))
	}
}

// handover watches the rollout and hands the work from the old processes to the new ones:
// each new worker that heartbeats from our deployment's tasks lets one old process (the one
// with the least work) be quieted; each old task whose processes are all idle is released, so
// ECS stops it and Sidekiq exits with nothing to requeue. It returns the worst rollout result
// once every service's rollout has ended.
func (x *run) handover(ctx context.Context) (worst RolloutResult, err error) {
	defer x.phase(PhaseHandover)(&err)
	x.watcher = x.watch(x.selected)
	return x.rolloutLoop(ctx, func(ctx context.Context, ws []*rolloutWatch) (bool, error) {
		deadline := x.pollOld(ctx, PhaseHandover)
		if failedAny(ws) {
			return true, nil // the failure is judged by the strategy; what was quieted is recovered
		}
		if err := x.quietForNewWorkers(ctx, ws); err != nil {
			return false, err
		}
		if err := x.releaseIdle(ctx); err != nil {
			x.warn("%v (retrying)", err)
		}
		if !deadline.IsZero() && !x.ov.timedOut && !x.cfg.Now().Before(deadline) {
			x.ov.timedOut = true
			return false, x.overlapDrainTimeout(ctx)
		}
		return false, nil
	})
}

// pollOld reads the old processes once during a hand-over, records their timeline and shows
// the progress; it returns the drain deadline (zero before the first quiet).
func (x *run) pollOld(ctx context.Context, p Phase) (deadline time.Time) {
	obs := x.poll(ctx)
	x.markTimeline(obs)
	if !x.ov.firstQuiet.IsZero() && x.cfg.DrainTimeout > 0 {
		deadline = x.ov.firstQuiet.Add(x.cfg.DrainTimeout)
	}
	x.progress(p, obs, deadline)
	return deadline
}

func failedAny(ws []*rolloutWatch) bool {
	for _, w := range ws {
		if w.done && w.out.Result != RolloutSucceeded {
			return true
		}
	}
	return false
}

// quietForNewWorkers quiets one old process per new worker seen since, least work first; once
// our deployments run every desired task and their workers all heartbeat, it quiets the rest.
// Once every old process is quiet there is nothing left to look for.
func (x *run) quietForNewWorkers(ctx context.Context, ws []*rolloutWatch) error {
	if len(x.ov.quieted) == len(x.selected) {
		return nil
	}
	allUp := true
	var ours []ecs.Task
	for _, w := range ws {
		s := x.res.Services[w.i]
		x.count("ecs.Tasks")
		ts, err := x.ecs.Tasks(ctx, s.Ref, "RUNNING")
		if err != nil {
			if ctx.Err() == nil {
				x.warn("list the tasks of %s: %v (retrying)", s.Ref, err)
			}
			return nil
		}
		n := 0
		for _, t := range ts {
			if t.DeploymentID == s.Rollout.DeploymentID {
				ours = append(ours, t)
				n++
			}
		}
		if int32(n) < s.Rollout.Desired {
			allUp = false
		}
	}
	if len(ours) == 0 {
		return nil
	}
	snap, err := x.heartbeats(ctx)
	if err != nil {
		if ctx.Err() == nil {
			x.warn("read the fleet: %v (retrying)", err)
		}
		return nil
	}
	match := NewTaskMatcher(ours)
	placed := map[string]bool{}
	for _, p := range snap.Processes {
		if _, old := x.procIndex[p.Identity]; !p.HashExists || p.Quiet || old {
			continue
		}
		if t, ok := match(p); ok {
			placed[t.ARN] = true
			x.ov.newWorkers[p.Identity] = true
		}
	}
	if len(placed) < len(ours) {
		allUp = false
	}
	want := len(x.ov.newWorkers) - len(x.ov.quieted)
	if allUp && len(x.ov.newWorkers) > 0 {
		want = len(x.selected)
	}
	var pick []string
	for _, p := range x.leastWorkFirst() {
		if len(pick) >= want {
			break
		}
		pick = append(pick, p)
	}
	if len(pick) == 0 {
		return nil
	}
	x.count("redis.Quiet")
	if err := x.fleet.Quiet(ctx, pick); err != nil {
		return fmt.Errorf("quiet %d old process(es): %w", len(pick), err)
	}
	now := x.cfg.Now()
	x.quietSent = true
	if x.ov.firstQuiet.IsZero() {
		x.ov.firstQuiet = now
	}
	for _, id := range pick {
		x.ov.quieted[id] = true
		if pr := x.process(id); pr != nil {
			pr.QuietAt = now
		}
	}
	return nil
}

// leastWorkFirst lists the old processes not yet quieted and still alive, fewest jobs in
// flight first (then by identity, for a stable order).
func (x *run) leastWorkFirst() []string {
	type cand struct {
		id   string
		jobs int
	}
	var cs []cand
	for _, p := range x.selected {
		if x.ov.quieted[p.Identity] {
			continue
		}
		o, seen := x.last[p.Identity]
		if seen && o.State.Terminal() {
			continue
		}
		n := len(p.Jobs)
		if seen {
			n = len(o.Jobs)
		}
		cs = append(cs, cand{p.Identity, n})
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].jobs != cs[j].jobs {
			return cs[i].jobs < cs[j].jobs
		}
		return cs[i].id < cs[j].id
	})
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.id
	}
	return out
}

// releaseIdle releases each protected old task whose selected processes are all quieted and
// idle (or gone): ECS then stops it and Sidekiq exits with nothing to requeue.
func (x *run) releaseIdle(ctx context.Context) error {
	var ready []string
	for arn := range x.ov.own {
		ids := x.ov.procsOf[arn]
		ok := len(ids) > 0
		for _, id := range ids {
			o, seen := x.last[id]
			if !x.ov.quieted[id] || !seen || !drained(o) {
				ok = false
			}
		}
		if ok {
			ready = append(ready, arn)
		}
	}
	if len(ready) == 0 {
		return nil
	}
	sort.Strings(ready)
	return x.release(ctx, ready, "idle: its processes were quiet with nothing in flight")
}

// overlapDrainTimeout applies Config.OnTimeout to the quieted processes still busy when the
// drain budget (counted from the first quiet) is spent.
func (x *run) overlapDrainTimeout(ctx context.Context) error {
	var busy []string
	var tasks []string
	jobs := 0
	for _, p := range x.selected {
		o, ok := x.last[p.Identity]
		if !x.ov.quieted[p.Identity] || !ok || drained(o) {
			continue
		}
		busy = append(busy, p.Identity)
		jobs += len(o.Jobs)
		if arn := x.taskOf[p.Identity]; arn != "" {
			tasks = append(tasks, arn)
		}
	}
	if len(busy) == 0 {
		return nil
	}
	switch x.cfg.OnTimeout {
	case OnTimeoutFail:
		return fmt.Errorf("%w after %v: %d job(s) still running on %s", ErrDrainTimeout, x.cfg.DrainTimeout, jobs, strings.Join(busy, ", "))
	case OnTimeoutStop:
		x.warn("drain timed out after %v with %d job(s) on %d process(es): sending TERM so Sidekiq requeues them now", x.cfg.DrainTimeout, jobs, len(busy))
		x.count("redis.Stop")
		if err := x.fleet.Stop(ctx, busy); err != nil {
			return fmt.Errorf("stop %d process(es) after drain timeout: %w", len(busy), err)
		}
		x.stopSent = true
	default:
		x.warn("drain timed out after %v with %d job(s) on %d process(es): releasing their tasks; ECS's SIGTERM lets Sidekiq requeue them",
			x.cfg.DrainTimeout, jobs, len(busy))
	}
	return x.release(ctx, tasks, "drain timeout: released with jobs in flight")
}

// markTimeline records when each old process was first seen idle and when it left.
func (x *run) markTimeline(obs []sidekiq.Observation) {
	now := x.cfg.Now()
	for _, o := range obs {
		pr := x.process(o.Identity)
		if pr == nil {
			continue
		}
		if pr.IdleAt.IsZero() && !pr.QuietAt.IsZero() && o.State == sidekiq.StateDrained {
			pr.IdleAt = now
		}
		if pr.ExitedAt.IsZero() && o.State.Terminal() {
			pr.ExitedAt = now
		}
	}
}
