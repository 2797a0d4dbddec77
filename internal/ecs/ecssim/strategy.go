package ecssim

import (
	"math"
	"time"
)

// Deployment strategies, lifecycle stages, hook types and actions as ECS spells them.
const (
	StrategyRolling   = "ROLLING"
	StrategyBlueGreen = "BLUE_GREEN"
	StrategyLinear    = "LINEAR"
	StrategyCanary    = "CANARY"

	stageReconcile   = "RECONCILE_SERVICE"
	stagePreScaleUp  = "PRE_SCALE_UP"
	stageScaleUp     = "SCALE_UP"
	stagePostScaleUp = "POST_SCALE_UP"
	stageTestShift   = "TEST_TRAFFIC_SHIFT"
	stagePostTest    = "POST_TEST_TRAFFIC_SHIFT"
	stagePreProd     = "PRE_PRODUCTION_TRAFFIC_SHIFT" // a hook stage, reported as PRODUCTION_TRAFFIC_SHIFT
	stageProdShift   = "PRODUCTION_TRAFFIC_SHIFT"
	stagePostProd    = "POST_PRODUCTION_TRAFFIC_SHIFT"
	stageBake        = "BAKE_TIME"
	stageCleanUp     = "CLEAN_UP"

	hookLambda = "AWS_LAMBDA"
	hookPause  = "PAUSE"

	actionContinue = "CONTINUE"
	actionRollback = "ROLLBACK"

	hookAwaiting  = "AWAITING_ACTION"
	hookSucceeded = "SUCCEEDED"
	hookFailed    = "FAILED"
	hookTimedOut  = "TIMED_OUT"

	cleanupBlocking = "BLOCKING"
	cleanupDeferred = "DEFERRED"
)

// Defaults and limits of the strategy settings, from the SDK's documentation.
const (
	defaultHookTimeoutMinutes = 1440
	maxHookTimeoutMinutes     = 1440
	maxBakeMinutes            = 1440
	defaultStepPercent        = 10.0
	defaultStepBakeMinutes    = 6
	defaultCanaryPercent      = 5.0
	defaultCanaryBakeMinutes  = 10
)

// LifecycleHook is one entry of deploymentConfiguration.lifecycleHooks, in ECS's JSON shape
// (hookDetails is not kept). AWS_LAMBDA hooks are not invoked: they succeed at once. A PAUSE
// hook holds the deployment at its stage with status AWAITING_ACTION until
// ContinueServiceDeployment or its timeout.
type LifecycleHook struct {
	TargetType           string       `json:"targetType"`
	LifecycleStages      []string     `json:"lifecycleStages"`
	HookTargetArn        string       `json:"hookTargetArn,omitempty"`
	RoleArn              string       `json:"roleArn,omitempty"`
	TimeoutConfiguration *HookTimeout `json:"timeoutConfiguration,omitempty"`
}

// HookTimeout is a lifecycle hook's timeoutConfiguration: TimeoutInMinutes nil means 1440,
// Action "" means ROLLBACK.
type HookTimeout struct {
	TimeoutInMinutes *int32 `json:"timeoutInMinutes,omitempty"`
	Action           string `json:"action,omitempty"`
}

// LinearConfiguration is deploymentConfiguration.linearConfiguration: StepPercent nil means
// 10 (3 to 100), StepBakeTimeInMinutes nil means 6 (0 to 1440).
type LinearConfiguration struct {
	StepPercent           *float64 `json:"stepPercent,omitempty"`
	StepBakeTimeInMinutes *int32   `json:"stepBakeTimeInMinutes,omitempty"`
}

// CanaryConfiguration is deploymentConfiguration.canaryConfiguration: CanaryPercent nil
// means 5 (0.1 to 100), CanaryBakeTimeInMinutes nil means 10 (0 to 1440).
type CanaryConfiguration struct {
	CanaryPercent           *float64 `json:"canaryPercent,omitempty"`
	CanaryBakeTimeInMinutes *int32   `json:"canaryBakeTimeInMinutes,omitempty"`
}

// EarlySuccessCriteria is deploymentConfiguration.earlySuccessCriteria (ROLLING only): the
// rollout completes once HealthyPercent of the desired count runs healthy on the new
// revision; SourceServiceRevisionCleanup BLOCKING also waits for the old tasks to be gone,
// DEFERRED does not (they are stopped in the background after COMPLETED).
type EarlySuccessCriteria struct {
	Enable                       bool   `json:"enable"`
	HealthyPercent               *int32 `json:"healthyPercent,omitempty"`
	SourceServiceRevisionCleanup string `json:"sourceServiceRevisionCleanup,omitempty"`
}

// deployConfig is the strategy part of a service's deploymentConfiguration.
type deployConfig struct {
	strategy     string
	bake         *int32
	hooks        []LifecycleHook
	linear       *LinearConfiguration
	canary       *CanaryConfiguration
	earlySuccess *EarlySuccessCriteria
}

// wireDeployConfig is the strategy part of deploymentConfiguration in a request.
type wireDeployConfig struct {
	Strategy             string                `json:"strategy"`
	BakeTimeInMinutes    *int32                `json:"bakeTimeInMinutes"`
	LifecycleHooks       []LifecycleHook       `json:"lifecycleHooks"`
	LinearConfiguration  *LinearConfiguration  `json:"linearConfiguration"`
	CanaryConfiguration  *CanaryConfiguration  `json:"canaryConfiguration"`
	EarlySuccessCriteria *EarlySuccessCriteria `json:"earlySuccessCriteria"`
}

// merged is dc with the settings w gives replacing its own.
func (dc deployConfig) merged(w wireDeployConfig) deployConfig {
	if w.Strategy != "" {
		dc.strategy = w.Strategy
	}
	if w.BakeTimeInMinutes != nil {
		dc.bake = w.BakeTimeInMinutes
	}
	if w.LifecycleHooks != nil {
		dc.hooks = append([]LifecycleHook{}, w.LifecycleHooks...)
	}
	if w.LinearConfiguration != nil {
		dc.linear = w.LinearConfiguration
	}
	if w.CanaryConfiguration != nil {
		dc.canary = w.CanaryConfiguration
	}
	if w.EarlySuccessCriteria != nil {
		dc.earlySuccess = w.EarlySuccessCriteria
	}
	return dc
}

func (dc deployConfig) strategyOrRolling() string {
	if dc.strategy == "" {
		return StrategyRolling
	}
	return dc.strategy
}

// staged reports whether deployments of dc run the blue/green stage sequence.
func (dc deployConfig) staged() bool { return dc.strategyOrRolling() != StrategyRolling }

var hookStages = map[string]bool{
	stageReconcile: true, stagePreScaleUp: true, stagePostScaleUp: true, stageTestShift: true,
	stagePostTest: true, stagePreProd: true, stageProdShift: true, stagePostProd: true,
}

// validate checks dc as ECS checks an UpdateService request; minPct is the service's
// minimumHealthyPercent and controller its deployment controller type.
func (dc deployConfig) validate(minPct int32, controller string) error {
	switch dc.strategyOrRolling() {
	case StrategyRolling, StrategyBlueGreen, StrategyLinear, StrategyCanary:
	default:
		return invalidParam("Invalid deployment strategy: %s. Valid values are ROLLING, BLUE_GREEN, LINEAR and CANARY.", dc.strategy)
	}
	if dc.staged() && controller != "ECS" {
		return invalidParam("The %s deployment strategy requires the ECS deployment controller.", dc.strategy)
	}
	if dc.bake != nil && (*dc.bake < 0 || *dc.bake > maxBakeMinutes) {
		return invalidParam("bakeTimeInMinutes must be between 0 and %d.", maxBakeMinutes)
	}
	if l := dc.linear; l != nil {
		if l.StepPercent != nil && (*l.StepPercent < 3 || *l.StepPercent > 100) {
			return invalidParam("linearConfiguration.stepPercent must be between 3.0 and 100.0.")
		}
		if l.StepBakeTimeInMinutes != nil && (*l.StepBakeTimeInMinutes < 0 || *l.StepBakeTimeInMinutes > maxBakeMinutes) {
			return invalidParam("linearConfiguration.stepBakeTimeInMinutes must be between 0 and %d.", maxBakeMinutes)
		}
	}
	if c := dc.canary; c != nil {
		if c.CanaryPercent != nil && (*c.CanaryPercent < 0.1 || *c.CanaryPercent > 100) {
			return invalidParam("canaryConfiguration.canaryPercent must be between 0.1 and 100.0.")
		}
		if c.CanaryBakeTimeInMinutes != nil && (*c.CanaryBakeTimeInMinutes < 0 || *c.CanaryBakeTimeInMinutes > maxBakeMinutes) {
			return invalidParam("canaryConfiguration.canaryBakeTimeInMinutes must be between 0 and %d.", maxBakeMinutes)
		}
	}
	if es := dc.earlySuccess; es != nil && es.Enable {
		if dc.staged() {
			return invalidParam("earlySuccessCriteria is only supported with the ROLLING deployment strategy.")
		}
		if es.HealthyPercent == nil || *es.HealthyPercent < 0 || *es.HealthyPercent > 100 {
			return invalidParam("earlySuccessCriteria.healthyPercent must be an integer between 0 and 100.")
		}
		if *es.HealthyPercent < minPct {
			return invalidParam("earlySuccessCriteria.healthyPercent must be at least minimumHealthyPercent (%d).", minPct)
		}
		if es.SourceServiceRevisionCleanup != cleanupBlocking && es.SourceServiceRevisionCleanup != cleanupDeferred {
			return invalidParam("earlySuccessCriteria.sourceServiceRevisionCleanup must be BLOCKING or DEFERRED.")
		}
	}
	for i, h := range dc.hooks {
		switch h.TargetType {
		case hookLambda:
			if h.HookTargetArn == "" || h.RoleArn == "" {
				return invalidParam("lifecycleHooks[%d]: an AWS_LAMBDA hook needs hookTargetArn and roleArn.", i)
			}
		case hookPause:
		default:
			return invalidParam("lifecycleHooks[%d]: invalid targetType %q: valid values are AWS_LAMBDA and PAUSE.", i, h.TargetType)
		}
		if len(h.LifecycleStages) == 0 {
			return invalidParam("lifecycleHooks[%d]: lifecycleStages must not be empty.", i)
		}
		for _, st := range h.LifecycleStages {
			if !hookStages[st] {
				return invalidParam("lifecycleHooks[%d]: a lifecycle hook cannot be set at stage %s.", i, st)
			}
			if h.TargetType == hookPause && (st == stageTestShift || st == stageProdShift) {
				return invalidParam("lifecycleHooks[%d]: PAUSE hooks cannot be configured at the %s stage.", i, st)
			}
		}
		if tc := h.TimeoutConfiguration; tc != nil {
			if tc.TimeoutInMinutes != nil && (*tc.TimeoutInMinutes < 1 || *tc.TimeoutInMinutes > maxHookTimeoutMinutes) {
				return invalidParam("lifecycleHooks[%d]: timeoutInMinutes must be between 1 and %d.", i, maxHookTimeoutMinutes)
			}
			if tc.Action != "" && tc.Action != actionContinue && tc.Action != actionRollback {
				return invalidParam("lifecycleHooks[%d]: timeout action must be CONTINUE or ROLLBACK.", i)
			}
		}
	}
	return nil
}

// json is dc's part of deploymentConfiguration on the wire, added to out.
func (dc deployConfig) addJSON(out map[string]any) {
	out["strategy"] = dc.strategyOrRolling()
	if dc.bake != nil {
		out["bakeTimeInMinutes"] = *dc.bake
	}
	if dc.hooks != nil {
		out["lifecycleHooks"] = dc.hooks
	}
	if dc.linear != nil {
		out["linearConfiguration"] = dc.linear
	}
	if dc.canary != nil {
		out["canaryConfiguration"] = dc.canary
	}
	if dc.earlySuccess != nil {
		out["earlySuccessCriteria"] = dc.earlySuccess
	}
}

func minutesOr(v *int32, def int32) time.Duration {
	if v == nil {
		return time.Duration(def) * time.Minute
	}
	return time.Duration(*v) * time.Minute
}

// hookRun is one lifecycle hook invocation at one stage of one deployment.
type hookRun struct {
	id, targetType, targetArn string
	status, timeoutAction     string
	expiresAt                 time.Time
}

// enterStage moves d to stage and invokes the hooks configured for hookStage there.
func (s *Sim) enterStage(svc *service, d *deployment, stage, hookStage string, now time.Time) {
	if d.stage != stage {
		d.stage, d.stageAt = stage, now
		s.logf("ecssim: service %s: deployment %s at %s", svc.name, d.id, stage)
	}
	d.hooks = nil
	for _, h := range d.dc.hooks {
		if !contains(h.LifecycleStages, hookStage) {
			continue
		}
		r := &hookRun{id: randUUID(), targetType: h.TargetType, status: hookSucceeded, timeoutAction: actionRollback}
		if h.TargetType == hookLambda {
			r.targetArn = h.HookTargetArn
		}
		var timeout *int32
		if tc := h.TimeoutConfiguration; tc != nil {
			timeout = tc.TimeoutInMinutes
			if tc.Action != "" {
				r.timeoutAction = tc.Action
			}
		}
		r.expiresAt = now.Add(s.scaled(minutesOr(timeout, defaultHookTimeoutMinutes)))
		if h.TargetType == hookPause {
			r.status = hookAwaiting
			svc.addEvent("(service %s) (deployment %s) is paused at %s by lifecycle hook %s, awaiting action.", svc.name, d.id, hookStage, r.id)
		}
		d.hooks = append(d.hooks, r)
	}
	d.updatedAt = now
}

// hooksDone reports whether no hook of d's stage is awaiting action, timing out the ones
// whose time is up; it returns false also when a timeout rolled d back.
func (s *Sim) hooksDone(svc *service, d *deployment, now time.Time) bool {
	done := true
	for _, h := range d.hooks {
		if h.status != hookAwaiting {
			continue
		}
		if now.Before(h.expiresAt) {
			done = false
			continue
		}
		h.status = hookTimedOut
		s.logf("ecssim: service %s: lifecycle hook %s timed out (%s)", svc.name, h.id, h.timeoutAction)
		if h.timeoutAction == actionRollback {
			s.hookRollback(svc, d, now, "lifecycle hook "+h.id+" timed out")
			return false
		}
	}
	return done
}

// hookRollback rolls d back because of a lifecycle hook (ROLLBACK or a timeout whose action
// is ROLLBACK) to the most recent deployment that completed; without one d is STOPPED.
func (s *Sim) hookRollback(svc *service, d *deployment, now time.Time, why string) {
	d.rolloutState, d.rolloutReason, d.updatedAt = rolloutFailed, "ECS deployment rolled back: "+why+".", now
	svc.addEvent("(service %s) (deployment %s) deployment failed: %s.", svc.name, d.id, why)
	target := lastCompleted(svc, d)
	if target == nil {
		d.sdStatus, d.sdReason, d.finishedAt = "STOPPED", "Service deployment stopped: "+why+".", now
		return
	}
	s.rollBack(svc, d, target, now, "Lifecycle hook rollback: "+why+". Rolling back to "+target.id+".",
		"Service deployment rolling back: "+why+".", "Service deployment rolled back: "+why+".")
}

// lastCompleted is the most recent deployment of svc other than d that reached COMPLETED.
func lastCompleted(svc *service, d *deployment) *deployment {
	for i := len(svc.history) - 1; i >= 0; i-- {
		if h := svc.history[i]; h != d && h.completed {
			return h
		}
	}
	return nil
}

// rollBack makes target PRIMARY again (same ID, IN_PROGRESS, reconciled the rolling way:
// d's tasks are stopped, target's kept) and marks d ROLLBACK_IN_PROGRESS.
func (s *Sim) rollBack(svc *service, d, target *deployment, now time.Time, reason, sdReason, doneReason string) {
	d.status = depActive
	d.rollbackTo, d.rollbackAt, d.rollbackReason, d.rollbackDone = target, now, reason, doneReason
	d.sdStatus, d.sdReason = "ROLLBACK_IN_PROGRESS", sdReason
	rest := []*deployment{}
	for _, x := range svc.deployments {
		if x != target {
			x.status = depActive
			rest = append(rest, x)
		}
	}
	target.status, target.rolloutState, target.updatedAt = depPrimary, rolloutInProgress, now
	target.rolloutReason = "ECS deployment rolling back to deploymentId " + target.id + "."
	target.dc.strategy, target.dc.hooks, target.stage = StrategyRolling, nil, stageScaleUp
	svc.deployments = append([]*deployment{target}, rest...)
	svc.taskDef = target.taskDef
	svc.addEvent("(service %s) rolling back to deployment %s.", svc.name, target.id)
	s.logf("ecssim: service %s: rolling back to %s", svc.name, target.id)
}

// scheduleStaged runs one step of a blue/green, linear or canary deployment p: green (p's
// tasks) scales to the desired count beside blue (every other task), production traffic
// shifts, blue bakes, and CLEAN_UP stops blue. PAUSE hooks hold it at their stage.
func (s *Sim) scheduleStaged(svc *service, p *deployment, now time.Time) {
	if p.rolloutState != rolloutInProgress {
		return // failed without a rollback: nothing more starts or stops
	}
	D := int(svc.desired)
	var green, blue []*task
	healthyGreen := 0
	for _, t := range svc.tasks {
		if !t.wanted() {
			continue
		}
		if t.dep == p {
			green = append(green, t)
			if t.healthy {
				healthyGreen++
			}
		} else {
			blue = append(blue, t)
		}
	}
	// Green is kept at the desired count from SCALE_UP on (failed tasks are replaced).
	if p.stage != "" && p.stage != stageReconcile && p.stage != stagePreScaleUp {
		var started []*task
		for i := len(green); i < D; i++ {
			started = append(started, s.startTask(svc, p, now))
		}
		if len(started) > 0 {
			svc.addEvent("(service %s) has started %d tasks: %s.", svc.name, len(started), taskList(started))
			p.updatedAt = now
		}
	}
	for i := 0; i < 20; i++ { // a bound, not a limit: each pass moves one stage at most
		if !s.hooksDone(svc, p, now) {
			return
		}
		switch p.stage {
		case "":
			s.enterStage(svc, p, stageReconcile, stageReconcile, now)
		case stageReconcile:
			s.enterStage(svc, p, stagePreScaleUp, stagePreScaleUp, now)
		case stagePreScaleUp:
			s.enterStage(svc, p, stageScaleUp, stageScaleUp, now)
			return // green starts at the next step
		case stageScaleUp:
			if healthyGreen < D {
				return
			}
			s.enterStage(svc, p, stagePostScaleUp, stagePostScaleUp, now)
		case stagePostScaleUp:
			s.enterStage(svc, p, stageTestShift, stageTestShift, now)
		case stageTestShift:
			s.enterStage(svc, p, stagePostTest, stagePostTest, now)
		case stagePostTest:
			s.enterStage(svc, p, stageProdShift, stagePreProd, now)
			p.shifted = false
		case stageProdShift:
			if !p.shifted {
				w, bake := p.nextWeight()
				p.weight, p.shifted = w, true
				p.stepUntil = now.Add(s.scaled(bake))
				svc.addEvent("(service %s) (deployment %s) shifted %.1f%% of production traffic to the new revision.", svc.name, p.id, w)
				s.enterStage(svc, p, stageProdShift, stageProdShift, now)
				continue
			}
			if p.weight < 100 {
				if now.Before(p.stepUntil) {
					return
				}
				s.enterStage(svc, p, stageProdShift, stagePreProd, now)
				p.shifted = false
				continue
			}
			s.enterStage(svc, p, stagePostProd, stagePostProd, now)
		case stagePostProd:
			s.enterStage(svc, p, stageBake, stageBake, now)
			p.stepUntil = now.Add(s.scaled(minutesOr(p.dc.bake, 0)))
		case stageBake:
			if now.Before(p.stepUntil) {
				return
			}
			s.enterStage(svc, p, stageCleanUp, stageCleanUp, now)
		case stageCleanUp:
			var stopped []*task
			held, live := 0, 0
			for _, t := range svc.tasks {
				if t.dep == p || !t.live() {
					continue
				}
				live++
				if !t.wanted() {
					continue
				}
				if t.protected(now) {
					held++
					continue
				}
				s.stopTask(t, now, "ServiceSchedulerInitiated", "Scaling activity initiated by (deployment "+p.id+")")
				stopped = append(stopped, t)
			}
			if len(stopped) > 0 {
				svc.addEvent("(service %s) has stopped %d running tasks: %s.", svc.name, len(stopped), taskList(stopped))
			}
			if held > 0 && !p.heldNoted {
				p.heldNoted = true
				svc.addEvent("(service %s) (deployment %s) was unable to stop %d tasks: they have task scale-in protection enabled.", svc.name, p.id, held)
			}
			if live > 0 || healthyGreen < D {
				return
			}
			s.complete(svc, p, now)
			return
		default:
			return
		}
	}
}

// nextWeight is the production traffic share after the next shift step and the bake that
// follows it.
func (d *deployment) nextWeight() (float64, time.Duration) {
	switch d.dc.strategyOrRolling() {
	case StrategyLinear:
		step, bake := defaultStepPercent, minutesOr(nil, defaultStepBakeMinutes)
		if l := d.dc.linear; l != nil {
			if l.StepPercent != nil {
				step = *l.StepPercent
			}
			bake = minutesOr(l.StepBakeTimeInMinutes, defaultStepBakeMinutes)
		}
		w := math.Min(100, math.Round((d.weight+step)*10)/10)
		return w, bake
	case StrategyCanary:
		if d.weight > 0 {
			return 100, 0
		}
		pct, bake := defaultCanaryPercent, minutesOr(nil, defaultCanaryBakeMinutes)
		if c := d.dc.canary; c != nil {
			if c.CanaryPercent != nil {
				pct = *c.CanaryPercent
			}
			bake = minutesOr(c.CanaryBakeTimeInMinutes, defaultCanaryBakeMinutes)
		}
		return pct, bake
	default:
		return 100, 0
	}
}
