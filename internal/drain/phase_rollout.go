package drain

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drainctl/drainctl/internal/ecs"
)

// deploy makes exactly one UpdateService per service: a forced new deployment of the target
// task definition. Our deployment ID is recorded at once.
func (x *run) deploy(ctx context.Context) (err error) {
	defer x.phase(PhaseDeploy)(&err)
	for i, s := range x.res.Services {
		if err := ctx.Err(); err != nil {
			return err // a safe point between two services
		}
		x.count("ecs.Deploy")
		dr, err := x.ecs.Deploy(ctx, s.Ref, x.cfg.TaskDefinition)
		if err != nil {
			return fmt.Errorf("deploy service %s: %w", s.Ref, err)
		}
		x.res.Services[i].Deployed = true
		x.res.Services[i].Rollout = dr
	}
	return nil
}

// PreviousTaskDefinition is the task definition the service ran before our deployment.
func (s ServiceResult) PreviousTaskDefinition() string {
	for _, p := range s.Rollout.Previous {
		if p.Status == "PRIMARY" {
			return p.TaskDefinition
		}
	}
	if len(s.Rollout.Previous) > 0 {
		return s.Rollout.Previous[0].TaskDefinition
	}
	return s.State.TaskDefinition
}

// rolloutWatch is the rollout phase's memory of one service.
type rolloutWatch struct {
	i           int // index in x.res.Services
	mem         rolloutMemory
	seenEvents  map[string]bool
	seenStopped map[string]bool
	lastFailed  int32
	failedSeen  bool
	done        bool
	out         RolloutOutcome
	// sd is the Service Deployments API's last view of ours; sdOff once the API is denied or
	// not implemented (the deployment-ID rule judges alone then).
	sd    *ecs.ServiceDeploymentInfo
	sdOff bool
}

// rollout watches every deployed service's rollout within one RolloutTimeout, one
// DescribeServices per cluster and poll for all of them, and returns the worst result:
// rolled back, then failed, then timed out, then succeeded. A throttled poll is a skipped
// tick; the stopped tasks of our deployment are read only when its failedTasks rises.
func (x *run) rollout(ctx context.Context) (worst RolloutResult, err error) {
	defer x.phase(PhaseRollout)(&err)
	return x.rolloutLoop(ctx, nil)
}

// rolloutStep is what a strategy does after each poll of the rollouts (the hand-over of
// overlap and blue-green, the PAUSE hook's drain): stop ends the watch early (a rollout
// failed), an error ends the run.
type rolloutStep func(ctx context.Context, ws []*rolloutWatch) (stop bool, err error)

// rolloutLoop is the one poll loop of every strategy: it polls the deployed services'
// rollouts, runs step after each poll (nil for none), and ends when every rollout ended, the
// step stops it, or RolloutTimeout passed. It returns the worst result; a rollout left
// unfinished by an early stop counts as failed.
func (x *run) rolloutLoop(ctx context.Context, step rolloutStep) (worst RolloutResult, err error) {
	var ws []*rolloutWatch
	for i, s := range x.res.Services {
		if s.Deployed {
			ws = append(ws, &rolloutWatch{i: i, mem: rolloutMemory{Ours: s.Rollout}, seenEvents: map[string]bool{},
				seenStopped: map[string]bool{}})
		}
	}
	start := x.cfg.Now()
	// A poll that outlasts this (SDK retries under throttling) is a skipped tick.
	pollLimit := max(4*x.cfg.PollInterval, 30*time.Second)
	for n := 1; ; n++ {
		pctx, cancel := context.WithTimeout(ctx, pollLimit)
		perr := x.pollRollouts(pctx, ws, n)
		cancel()
		if ctx.Err() != nil {
			x.endRollouts(ctx, ws)
			return worst, ctx.Err()
		}
		if perr != nil {
			x.endRollouts(ctx, ws)
			return worst, perr
		}
		if step != nil {
			stop, err := step(ctx, ws)
			if err != nil {
				x.endRollouts(ctx, ws)
				return worst, err
			}
			if stop {
				break
			}
		}
		if allDone(ws) {
			break
		}
		if x.cfg.RolloutTimeout > 0 && x.cfg.Now().Sub(start) >= x.cfg.RolloutTimeout {
			for _, w := range ws {
				if !w.done {
					w.done, w.out.Result = true, RolloutTimedOut
					w.out.Reason = fmt.Sprintf("no outcome after %s: %s; the rollout may still be running in ECS", x.cfg.RolloutTimeout, progressLine(w))
				}
			}
			break
		}
		if err := x.wait(ctx); err != nil {
			x.endRollouts(ctx, ws)
			return worst, err
		}
	}
	x.endRollouts(ctx, ws)
	worst = RolloutSucceeded
	for _, w := range ws {
		if !w.done {
			w.out.Result = RolloutFailed
		}
		worst = worse(worst, w.out.Result)
	}
	return worst, nil
}

func allDone(ws []*rolloutWatch) bool {
	for _, w := range ws {
		if !w.done {
			return false
		}
	}
	return true
}

// pollRollouts reads every unfinished service once and judges it. Its error ends the watch
// (access denied, an error that another try will not fix); a transient one is a skipped tick.
func (x *run) pollRollouts(ctx context.Context, ws []*rolloutWatch, n int) error {
	var refs []ecs.ServiceRef
	for _, w := range ws {
		if !w.done {
			w.out.Polls = n
			refs = append(refs, x.res.Services[w.i].Ref)
		}
	}
	x.count("ecs.Describe")
	states, err := x.ecs.Describe(ctx, refs)
	at := x.cfg.Now()
	if err != nil {
		// A missing service is judged below (it has no state); a transient error skips the
		// tick; anything else ends the watch.
		for _, e := range flatten(err) {
			switch {
			case errors.Is(e, ecs.ErrNotFound):
			case ecs.Transient(e) || ctx.Err() != nil:
				for _, w := range ws {
					if !w.done {
						x.emitPoll(w, RolloutPoll{At: at, Err: e.Error()})
					}
				}
				return nil
			default:
				return e
			}
		}
	}
	byRef := map[ecs.ServiceRef]*ecs.ServiceState{}
	for i := range states {
		byRef[states[i].Ref] = &states[i]
	}
	for _, w := range ws {
		if w.done {
			continue
		}
		svc := byRef[x.res.Services[w.i].Ref]
		p := RolloutPoll{At: at}
		if svc != nil {
			p = x.observeRollout(ctx, w, svc, at)
		}
		sd := x.readServiceDeployment(ctx, w)
		if sd != nil {
			p.Status, p.LifecycleStage = sd.Status, sd.LifecycleStage
		}
		v := judge(svc, sd, w.mem)
		switch {
		case v.AwaitRollback:
			if w.mem.RollingBack == 0 {
				x.warn("%s", v.Reason)
			}
			w.mem.RollingBack++
		case v.Result != "":
			w.done, w.out.Result, w.out.Reason = true, v.Result, v.Reason
		}
		x.emitPoll(w, p)
	}
	return nil
}

// readServiceDeployment reads our deployment in the Service Deployments API: the verdict for
// every strategy, and the lifecycle stage. The first read finds its ARN, later ones describe
// it. Denied or unimplemented, the API is not asked again and the deployment-ID rule judges;
// a transient failure skips this tick's view.
func (x *run) readServiceDeployment(ctx context.Context, w *rolloutWatch) *ecs.ServiceDeploymentInfo {
	if w.sdOff {
		return nil
	}
	s := x.res.Services[w.i]
	var (
		sd  *ecs.ServiceDeploymentInfo
		err error
	)
	if w.sd != nil && w.sd.ARN != "" {
		x.count("ecs.ServiceDeployment")
		sd, err = x.ecs.ServiceDeployment(ctx, s.Ref, w.sd.ARN)
	} else {
		x.count("ecs.ServiceDeploymentOf")
		sd, err = x.ecs.ServiceDeploymentOf(ctx, s.Rollout)
	}
	switch {
	case err != nil && (errors.Is(err, ecs.ErrAccessDenied) || errors.Is(err, ecs.ErrUnsupported)):
		w.sdOff = true
		x.warn("%s: the Service Deployments API is not available (%v): the rollout is judged by its deployment ID alone", s.Ref, err)
		return nil
	case err != nil:
		return nil
	}
	if sd != nil {
		w.sd = sd
	}
	return sd
}

// observeRollout records one read of a service: new events, our deployment's counts, and
// the stopped tasks when its failedTasks rose.
func (x *run) observeRollout(ctx context.Context, w *rolloutWatch, svc *ecs.ServiceState, at time.Time) RolloutPoll {
	ours := w.mem.Ours
	p := RolloutPoll{At: at, Deployments: len(svc.Deployments)}
	since := ours.StartedAt.Truncate(time.Second)
	for _, e := range svc.Events {
		if w.seenEvents[e.Key()] || (!e.At.IsZero() && e.At.Before(since)) {
			continue
		}
		w.seenEvents[e.Key()] = true
		p.Events = append(p.Events, e)
		w.out.Events = append(w.out.Events, e)
		if strings.Contains(strings.ToLower(e.Message), "unable to place a task") {
			x.warn("%s: ECS cannot place tasks: %s", svc.Ref, e.Message)
		}
	}
	d := svc.Deployment(ours.DeploymentID)
	if d == nil {
		return p
	}
	last := *d
	w.mem.LastOurs = &last
	p.RolloutState, p.Desired, p.Running, p.Pending, p.Failed = d.RolloutState, d.Desired, d.Running, d.Pending, d.Failed
	if d.Failed > w.lastFailed {
		x.warn("%s: deployment %s: failed tasks %d → %d", svc.Ref, d.ID, w.lastFailed, d.Failed)
		w.failedSeen = true
		for _, t := range x.collectStopped(ctx, w) {
			x.warn("%s: stopped %s", svc.Ref, t.Summary())
		}
	}
	w.lastFailed = d.Failed
	return p
}

// emitPoll records a poll in the service's timeline and shows it.
func (x *run) emitPoll(w *rolloutWatch, p RolloutPoll) {
	s := &x.res.Services[w.i]
	p.Ref, p.DeploymentID = s.Ref, s.Rollout.DeploymentID
	s.Polls = append(s.Polls, p)
	x.obs.RolloutPoll(p)
}

// collectStopped reads our deployment's stopped tasks and returns those not seen before; a
// failed read is a warning (the stopped tasks only explain).
func (x *run) collectStopped(ctx context.Context, w *rolloutWatch) []ecs.Task {
	s := x.res.Services[w.i]
	x.count("ecs.StoppedTasksOf")
	tasks, err := x.ecs.StoppedTasksOf(ctx, s.Ref, s.Rollout.DeploymentID)
	if err != nil {
		if ctx.Err() == nil {
			x.warn("%s: could not read stopped tasks: %v", s.Ref, err)
		}
		return nil
	}
	var fresh []ecs.Task
	for _, t := range tasks {
		if !w.seenStopped[t.ARN] {
			w.seenStopped[t.ARN] = true
			fresh = append(fresh, t)
		}
	}
	w.out.StoppedTasks = append(w.out.StoppedTasks, fresh...)
	return fresh
}

// endRollouts records the outcome of every rollout that reached one and explains the
// unsuccessful ones (their stopped tasks, the Service Deployments API's view), with a context
// of its own so an interrupt still gets its report. A rollout the watch left unfinished (an
// interrupt, an error) has no outcome.
func (x *run) endRollouts(ctx context.Context, ws []*rolloutWatch) {
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), x.cfg.CleanupTimeout)
	defer cancel()
	for _, w := range ws {
		if !w.done {
			continue
		}
		if w.out.Result != RolloutSucceeded {
			if w.out.Result == RolloutFailed || w.out.Result == RolloutRolledBack || w.failedSeen {
				x.collectStopped(ectx, w)
			}
			x.enrich(ectx, w)
		}
		out := w.out
		x.res.Services[w.i].Outcome = &out
	}
}

// enrich adds the Service Deployments API's view to an unsuccessful outcome; it stays quiet
// when the API is denied, unimplemented or silent.
func (x *run) enrich(ctx context.Context, w *rolloutWatch) {
	var (
		info *ecs.ServiceDeploymentInfo
		err  error
	)
	switch {
	case w.sdOff:
		return // denied or not implemented: asked once already
	case w.sd != nil && w.sd.ARN != "":
		// Found during the watch: its latest state, without listing the deployments again.
		x.count("ecs.ServiceDeployment")
		info, err = x.ecs.ServiceDeployment(ctx, x.res.Services[w.i].Ref, w.sd.ARN)
	default:
		x.count("ecs.ServiceDeploymentOf")
		info, err = x.ecs.ServiceDeploymentOf(ctx, x.res.Services[w.i].Rollout)
	}
	if err != nil || info == nil {
		return
	}
	w.out.ServiceDeployment = info
	// Each part only once: the verdict may already quote the service deployment.
	var extra []string
	if info.Status != "" && !strings.Contains(w.out.Reason, "service deployment "+info.Status) {
		s := "service deployment " + info.Status
		if info.StatusReason != "" && !strings.Contains(w.out.Reason, info.StatusReason) {
			s += ": " + info.StatusReason
		}
		extra = append(extra, s)
	}
	if info.RollbackReason != "" && !strings.Contains(w.out.Reason, info.RollbackReason) {
		extra = append(extra, "rollback: "+info.RollbackReason)
	}
	if info.Threshold > 0 {
		extra = append(extra, fmt.Sprintf("circuit breaker %d/%d failed tasks", info.FailureCount, info.Threshold))
	}
	if len(extra) > 0 {
		w.out.Reason += " (" + strings.Join(extra, "; ") + ")"
	}
}

// progressLine describes where a deployment stood at its last poll.
func progressLine(w *rolloutWatch) string {
	d := w.mem.LastOurs
	if d == nil {
		return fmt.Sprintf("deployment %s was not seen", w.mem.Ours.DeploymentID)
	}
	s := fmt.Sprintf("deployment %s had %d/%d tasks running, %d pending", d.ID, d.Running, d.Desired, d.Pending)
	if d.RolloutState != "" {
		s += ", " + d.RolloutState
	}
	return s
}

func worse(a, b RolloutResult) RolloutResult {
	rank := map[RolloutResult]int{RolloutSucceeded: 0, RolloutTimedOut: 1, RolloutFailed: 2, RolloutRolledBack: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// rolloutSummary is one line per service outcome, for errors.
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
