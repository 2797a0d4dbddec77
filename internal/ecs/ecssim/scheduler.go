package ecssim

import (
	"sort"
	"strings"
	"time"
)

// run is the scheduler goroutine: one Step per Tick until Close.
func (s *Sim) run() {
	tk := time.NewTicker(s.o.Tick)
	defer tk.Stop()
	for {
		select {
		case <-s.stopCh:
			return
		case <-tk.C:
			s.Step()
		}
	}
}

// Step runs one scheduler step now: task lifecycles, then every service's rolling update. The
// scheduler goroutine started by Start calls it every Tick; tests that serve Handler
// themselves may call it directly. It is an addition to the agreed API.
func (s *Sim) Step() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	now := s.now()
	names := make([]string, 0, len(s.clusters))
	for n := range s.clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := s.clusters[n]
		for _, sn := range c.order {
			svc := c.services[sn]
			for _, t := range svc.tasks {
				s.advance(t, now)
				s.expireProtection(t, now)
			}
			s.schedule(svc, now)
		}
	}
}

// advance moves a task along PROVISIONING → PENDING → RUNNING → healthy, and finishes the
// stop of simulated tasks.
func (s *Sim) advance(t *task, now time.Time) {
	svc := t.svc
	switch t.lastStatus {
	case statusProvisioning:
		if now.Before(t.nextAt) {
			return
		}
		t.lastStatus, t.pullStartedAt, t.nextAt = statusPending, now, now.Add(s.scaled(pendingDelay))
	case statusPending:
		if now.Before(t.nextAt) || s.faults.never[svc.c.name+"/"+svc.name] {
			return
		}
		if s.faults.failStart[t.td.arn] {
			code := int32(1)
			t.exitCode = &code
			s.finishStop(t, now, "EssentialContainerExited", "Essential container in task exited")
			s.countFailure(t)
			return
		}
		if svc.proc != nil {
			if err := s.startProcess(t); err != nil {
				t.containerReason = "CannotStartContainerError: " + err.Error()
				s.finishStop(t, now, "TaskFailedToStart", "CannotStartContainerError: "+err.Error())
				s.countFailure(t)
				return
			}
		}
		t.lastStatus, t.startedAt = statusRunning, now
		t.healthyAt = now.Add(s.scaled(s.o.HealthyAfter))
		s.logf("ecssim: task %s (%s) RUNNING", t.id, t.ip)
	case statusRunning:
		if !t.healthy && t.wanted() && !now.Before(t.healthyAt) {
			t.healthy = true
			t.dep.failedTasks = 0
		}
	case statusStopping:
		if t.proc == nil && !now.Before(t.nextAt) {
			code := int32(0)
			t.exitCode = &code
			t.lastStatus, t.stoppedAt = statusStopped, now
		}
	}
}

// finishStop marks a task STOPPED now with a stop code and reason.
func (s *Sim) finishStop(t *task, now time.Time, code, reason string) {
	t.desiredStatus, t.lastStatus = statusStopped, statusStopped
	if t.stoppingAt.IsZero() {
		t.stoppingAt = now
	}
	t.stoppedAt = now
	if t.stopCode == "" {
		t.stopCode, t.stoppedReason = code, reason
	}
	t.healthy = false
	s.logf("ecssim: task %s STOPPED (%s: %s)", t.id, t.stopCode, t.stoppedReason)
}

// countFailure counts a task that stopped before it was healthy against its deployment's
// circuit breaker.
func (s *Sim) countFailure(t *task) {
	d := t.dep
	d.failedTasks++
	d.failures++
	d.updatedAt = s.now()
}

// schedule runs one step of the service's deployment: the stage sequence of a blue/green,
// linear or canary deployment in progress, else the rolling update.
func (s *Sim) schedule(svc *service, now time.Time) {
	p := svc.deployments[0]
	s.checkBreaker(svc, p, now)
	p = svc.deployments[0]
	if !p.direct && p.dc.staged() && p.rolloutState != rolloutCompleted {
		s.scheduleStaged(svc, p, now)
	} else {
		s.scheduleRolling(svc, p, now)
	}

	// Older deployments without tasks leave the list.
	kept := svc.deployments[:1]
	for _, d := range svc.deployments[1:] {
		has := false
		for _, t := range svc.tasks {
			if t.dep == d && t.live() {
				has = true
				break
			}
		}
		if has {
			kept = append(kept, d)
			continue
		}
		d.status, d.updatedAt = depInactive, now
		s.logf("ecssim: service %s: deployment %s INACTIVE", svc.name, d.id)
	}
	svc.deployments = kept
	if !p.direct && p.dc.staged() || p.rolloutState != rolloutInProgress {
		return
	}

	// Completion: our tasks all healthy and nothing else left, or the early success
	// criteria; then the POST_SCALE_UP hooks.
	D := int(svc.desired)
	ready, wanted := 0, 0
	for _, t := range svc.tasks {
		if t.dep == p && t.wanted() {
			wanted++
			if t.healthy {
				ready++
			}
		}
	}
	done := ready == D && wanted == D && len(svc.deployments) == 1
	if es := p.dc.earlySuccess; es != nil && es.Enable && !p.direct && es.HealthyPercent != nil {
		need := (D*int(*es.HealthyPercent) + 99) / 100
		done = ready >= need && (es.SourceServiceRevisionCleanup == cleanupDeferred || len(svc.deployments) == 1)
	}
	if !done {
		return
	}
	if !p.direct && p.stage != stagePostScaleUp {
		s.enterStage(svc, p, stagePostScaleUp, stagePostScaleUp, now)
	}
	if !s.hooksDone(svc, p, now) {
		return
	}
	s.complete(svc, p, now)
}

// complete marks p COMPLETED and its service deployment SUCCESSFUL, and a rollback to it
// ROLLBACK_SUCCESSFUL.
func (s *Sim) complete(svc *service, p *deployment, now time.Time) {
	p.rolloutState, p.rolloutReason, p.updatedAt = rolloutCompleted, "ECS deployment "+p.id+" completed.", now
	p.completed = true
	p.stage, p.hooks = stageCleanUp, nil
	if p.sdStatus == "IN_PROGRESS" || p.sdStatus == "ROLLBACK_IN_PROGRESS" || p.sdStatus == "STOPPED" {
		p.sdStatus, p.sdReason, p.finishedAt = "SUCCESSFUL", "", now
	}
	for _, h := range svc.history {
		if h.rollbackTo == p && h.sdStatus == "ROLLBACK_IN_PROGRESS" {
			h.sdStatus, h.finishedAt, h.sdReason = "ROLLBACK_SUCCESSFUL", now, h.rollbackDone
		}
	}
	svc.addEvent("(service %s) (deployment %s) deployment completed.", svc.name, p.id)
	svc.addEvent("(service %s) has reached a steady state.", svc.name)
	s.logf("ecssim: service %s: deployment %s COMPLETED", svc.name, p.id)
}

// rollingStages runs the stages before a rolling deployment's scale-up (their hooks hold
// it); it reports whether p has reached SCALE_UP.
func (s *Sim) rollingStages(svc *service, p *deployment, now time.Time) bool {
	for {
		if !s.hooksDone(svc, p, now) {
			return false
		}
		switch p.stage {
		case "":
			s.enterStage(svc, p, stageReconcile, stageReconcile, now)
		case stageReconcile:
			s.enterStage(svc, p, stagePreScaleUp, stagePreScaleUp, now)
		case stagePreScaleUp:
			s.enterStage(svc, p, stageScaleUp, stageScaleUp, now)
			return true
		default:
			return true
		}
	}
}

// scheduleRolling runs one step of the rolling update.
func (s *Sim) scheduleRolling(svc *service, p *deployment, now time.Time) {
	if p.rolloutState == rolloutInProgress && !s.rollingStages(svc, p, now) {
		return
	}
	D := svc.desired
	maxTasks := int(D) * int(svc.maxPct) / 100
	minHealthy := (int(D)*int(svc.minPct) + 99) / 100
	if svc.controller != "ECS" {
		maxTasks, minHealthy = int(D), 0
	}

	healthy, live := 0, 0
	for _, t := range svc.tasks {
		if t.live() {
			live++
		}
		if t.wanted() && t.healthy {
			healthy++
		}
	}

	// Stop: tasks of older deployments, and tasks of the primary beyond the desired count;
	// unhealthy ones first (they cost no healthy capacity), never below minimumHealthy.
	var candidates []*task
	primaryWanted := 0
	for _, t := range svc.tasks {
		if !t.wanted() {
			continue
		}
		if t.dep == p {
			primaryWanted++
			continue
		}
		candidates = append(candidates, t)
	}
	if extra := primaryWanted - int(D); extra > 0 {
		for i := len(svc.tasks) - 1; i >= 0 && extra > 0; i-- {
			if t := svc.tasks[i]; t.wanted() && t.dep == p {
				candidates = append(candidates, t)
				extra--
			}
		}
	}
	sort.SliceStable(candidates, func(i, j int) bool { return !candidates[i].healthy && candidates[j].healthy })
	var stopped []*task
	held := 0
	for _, t := range candidates {
		if t.healthy && healthy-1 < minHealthy {
			continue
		}
		if t.protected(now) {
			// Scale-in protection: deployments and scale-in leave the task alone.
			held++
			continue
		}
		if t.healthy {
			healthy--
		}
		if t.dep == p {
			primaryWanted--
		}
		s.stopTask(t, now, "ServiceSchedulerInitiated", "Scaling activity initiated by (deployment "+p.id+")")
		stopped = append(stopped, t)
	}
	if held > 0 && !p.heldNoted {
		p.heldNoted = true
		svc.addEvent("(service %s) (deployment %s) was unable to stop %d tasks: they have task scale-in protection enabled.", svc.name, p.id, held)
	}
	if len(stopped) > 0 {
		svc.addEvent("(service %s) has stopped %d running tasks: %s.", svc.name, len(stopped), taskList(stopped))
	}

	// Start: tasks of the primary up to the desired count, within maximumPercent.
	if !(p.rolloutState == rolloutFailed) {
		n := min(int(D)-primaryWanted, maxTasks-live)
		var started []*task
		for i := 0; i < n; i++ {
			started = append(started, s.startTask(svc, p, now))
		}
		if len(started) > 0 {
			svc.addEvent("(service %s) has started %d tasks: %s.", svc.name, len(started), taskList(started))
			p.updatedAt = now
		}
	}

}

// checkBreaker fails the primary deployment when its failed tasks reach the circuit breaker
// threshold and, with rollback, makes the most recent COMPLETED deployment PRIMARY again.
func (s *Sim) checkBreaker(svc *service, p *deployment, now time.Time) {
	if !svc.breaker.Enable || svc.controller != "ECS" || p.rolloutState != rolloutInProgress {
		return
	}
	p.threshold = breakerThreshold(svc.desired)
	if p.failedTasks < p.threshold {
		return
	}
	p.rolloutState, p.rolloutReason, p.updatedAt = rolloutFailed, "ECS deployment circuit breaker: tasks failed to start.", now
	p.breakerTriggered = true
	svc.addEvent("(service %s) (deployment %s) deployment failed: tasks failed to start.", svc.name, p.id)
	s.logf("ecssim: service %s: deployment %s FAILED", svc.name, p.id)
	var target *deployment
	if svc.breaker.Rollback {
		target = lastCompleted(svc, p)
	}
	if target == nil {
		p.sdStatus, p.sdReason, p.finishedAt = "STOPPED", "Service deployment stopped because the circuit breaker threshold was exceeded.", now
		return
	}
	s.rollBack(svc, p, target, now, "Circuit breaker triggered: tasks failed to start. Rolling back to "+target.id+".",
		"Service deployment rolling back because the circuit breaker threshold was exceeded.",
		"Service deployment rolled back because the circuit breaker threshold was exceeded.")
}

func taskList(ts []*task) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = "(task " + t.id + ")"
	}
	return strings.Join(parts, " ")
}

// startTask creates a PROVISIONING task of deployment d.
func (s *Sim) startTask(svc *service, d *deployment, now time.Time) *task {
	td := s.tdByARN[d.taskDef]
	t := &task{
		svc: svc, dep: d, td: td, id: randHex(32), ip: s.nextIP(), rtID: randHex(64),
		eni: "eni-" + randHex(16), att: randUUID(),
		lastStatus: statusProvisioning, desiredStatus: statusRunning, createdAt: now,
		nextAt: now.Add(s.scaled(provisionDelay)),
	}
	t.arn = s.arn("task/" + svc.c.name + "/" + t.id)
	t.stopTimeout = s.scaled(defaultStop)
	if td != nil && len(td.containers) > 0 && td.containers[0].StopTimeout != nil {
		t.stopTimeout = s.scaled(time.Duration(*td.containers[0].StopTimeout) * time.Second)
	}
	if svc.proc != nil && svc.proc.StopTimeout > 0 {
		t.stopTimeout = svc.proc.StopTimeout
	}
	svc.tasks = append(svc.tasks, t)
	return t
}

// stopTask asks a task to stop: tasks not yet running stop at once, simulated ones after a
// short delay, processes get SIGTERM and, after the stop timeout, SIGKILL.
func (s *Sim) stopTask(t *task, now time.Time, code, reason string) {
	if !t.wanted() || !t.live() {
		return
	}
	t.desiredStatus, t.stopCode, t.stoppedReason = statusStopped, code, reason
	t.healthy = false
	switch {
	case t.lastStatus == statusProvisioning || t.lastStatus == statusPending:
		s.finishStop(t, now, code, reason)
	case t.proc != nil:
		t.lastStatus, t.stoppingAt = statusStopping, now
		s.terminate(t.proc, t.stopTimeout)
	default:
		t.lastStatus, t.stoppingAt, t.nextAt = statusStopping, now, now.Add(s.scaled(simStopDelay))
	}
	s.logf("ecssim: task %s stopping (%s)", t.id, reason)
}
