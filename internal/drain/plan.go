package drain

import (
	"fmt"
	"strings"
	"time"

	"github.com/drainctl/drainctl/internal/sidekiq"
)

// plan fills Result.Plan for a dry run: what the strategy would do, in order, from what
// preflight read.
func (x *run) plan() {
	busy := 0
	for _, p := range x.selected {
		busy += len(p.Jobs)
	}
	add := func(format string, args ...any) { x.res.Plan = append(x.res.Plan, fmt.Sprintf(format, args...)) }
	if x.lockName != "" {
		add("would take the deploy lock %q (free now)", x.lockName)
	}
	switch x.res.Strategy.Name {
	case StrategyOverlap, StrategyBlueGreen:
		x.planOverlap(add, busy)
		return
	case StrategyPauseHook:
		x.planPauseHook(add, busy)
		return
	}
	add("would quiet %d process(es): %s", len(x.selected), strings.Join(identities(x.selected), ", "))
	switch x.cfg.Strategy {
	case StrategyQuietOnly:
		if !x.cfg.NoWait {
			add("would wait up to %v for every process to acknowledge", x.ackTimeout())
		}
		return
	case StrategyDrainOnly:
		add("would wait up to %v for %d in-flight job(s), then %s", x.cfg.DrainTimeout, busy, policyText(x.cfg.Strategy, x.cfg.OnTimeout))
		return
	}
	add("would wait up to %v for %d in-flight job(s), then %s", x.cfg.DrainTimeout, busy, policyText(x.cfg.Strategy, x.cfg.OnTimeout))
	for _, s := range x.res.Services {
		if td := x.cfg.TaskDefinition; td != "" {
			add("would deploy %s on %s (now %s)", shortTD(td), s.Ref, shortTD(s.State.TaskDefinition))
		} else {
			add("would force a new deployment of %s on %s", shortTD(s.State.TaskDefinition), s.Ref)
		}
	}
	add("would watch the rollout for up to %v and the old processes' exits for up to %v", x.cfg.RolloutTimeout, x.cfg.ExitTimeout)
	if x.cfg.NoRescue {
		add("would not rescue the jobs of killed processes (--rescue=false)")
	} else {
		add("would rescue the jobs of killed processes, once each")
	}
}

// policyText says what a drain timeout leads to.
func policyText(s StrategyName, p OnTimeout) string {
	switch {
	case p == OnTimeoutStop && s == StrategyDrainOnly:
		return "send TERM through Redis (Sidekiq requeues) and wait for the processes to leave"
	case p == OnTimeoutStop && s == StrategyOverlap:
		return "send TERM through Redis (Sidekiq requeues) and release the task"
	case p == OnTimeoutStop:
		return "send TERM through Redis (Sidekiq requeues) and deploy"
	case p == OnTimeoutDeploy && s == StrategyOverlap:
		return "release the task anyway (ECS's SIGTERM lets Sidekiq requeue what is left)"
	case p == OnTimeoutDeploy && s == StrategyPauseHook:
		return "continue anyway (CLEAN_UP's SIGTERM lets Sidekiq requeue what is left)"
	case p == OnTimeoutFail && s == StrategyPauseHook:
		return "stop with exit 3; the deployment waits at its hook until the hook times out or is answered"
	case p == OnTimeoutFail:
		return "stop with exit 3, leaving the processes quiet"
	}
	return "deploy anyway (ECS's SIGTERM lets Sidekiq requeue what is left)"
}

// planOverlap is the overlap strategy's plan.
func (x *run) planOverlap(add func(string, ...any), busy int) {
	if x.res.Strategy.Name == StrategyOverlap {
		for _, s := range x.res.Services {
			arns := x.oldTasks(s.Ref)
			add("would protect %d old task(s) of %s from scale-in for %v", len(arns), s.Ref, x.protectionExpiry())
		}
	}
	for _, s := range x.res.Services {
		if td := x.cfg.TaskDefinition; td != "" {
			add("would deploy %s on %s (now %s)", shortTD(td), s.Ref, shortTD(s.State.TaskDefinition))
		} else {
			add("would force a new deployment of %s on %s", shortTD(s.State.TaskDefinition), s.Ref)
		}
	}
	add("would quiet one of the %d old process(es) (least work first) for each new worker that heartbeats from the new deployment's tasks", len(x.selected))
	if x.res.Strategy.Name == StrategyBlueGreen {
		for _, s := range x.res.Services {
			add("blue keeps running through the bake (%v); CLEAN_UP then stops it: a job still running after bake + stopTimeout is cut and requeued (%d job(s) in flight now)",
				s.State.Strategy.BakeTime, busy)
		}
		now := x.cfg.Now()
		var obs []sidekiq.Observation
		for _, p := range x.selected {
			obs = append(obs, sidekiq.Observation{Identity: p.Identity, Jobs: p.Jobs})
		}
		for _, j := range longest(obs, now, 5) {
			add("may be cut at CLEAN_UP unless it ends within the bake: %s %s on %s, running %v", j.Class, j.JID, j.Process, j.Running.Round(time.Second))
		}
		add("would watch the rollout for up to %v and the old processes' exits for up to %v", x.cfg.RolloutTimeout, x.cfg.ExitTimeout)
		return
	}
	add("would release each old task once its processes are quiet and idle (%d job(s) in flight now); after %v, %s",
		busy, x.cfg.DrainTimeout, policyText(StrategyOverlap, x.cfg.OnTimeout))
	add("would watch the rollout for up to %v and the old processes' exits for up to %v", x.cfg.RolloutTimeout, x.cfg.ExitTimeout)
	add("would clear every protection it set on every exit path (a killed drainctl leaves it to expire after %v)", x.protectionExpiry())
}

// planPauseHook is the pause-hook strategy's plan.
func (x *run) planPauseHook(add func(string, ...any), busy int) {
	for _, s := range x.res.Services {
		if td := x.cfg.TaskDefinition; td != "" {
			add("would deploy %s on %s (now %s), %s", shortTD(td), s.Ref, shortTD(s.State.TaskDefinition), s.State.Strategy.Name)
		} else {
			add("would force a new %s deployment of %s on %s", s.State.Strategy.Name, shortTD(s.State.TaskDefinition), s.Ref)
		}
	}
	add("at the PAUSE hook at POST_SCALE_UP, would quiet the %d blue process(es) as green's workers heartbeat", len(x.selected))
	add("would wait up to %v for blue's %d in-flight job(s), then answer the hook CONTINUE (on timeout: %s)", x.cfg.DrainTimeout, busy,
		policyText(StrategyPauseHook, x.cfg.OnTimeout))
	add("CLEAN_UP then stops the idle blue tasks; would watch the rollout for up to %v and the old processes' exits for up to %v",
		x.cfg.RolloutTimeout, x.cfg.ExitTimeout)
}
