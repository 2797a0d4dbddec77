package ecs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// DefaultInterval is the time between two polls of Watch: slow enough for ECS's read quota
// (about 20 requests a second per account and region, shared with everyone else).
const DefaultInterval = 6 * time.Second

// rollbackPatience is how many polls Watch waits, after our deployment turned FAILED with
// rollback enabled, for ECS to make another deployment PRIMARY.
const rollbackPatience = 5

// Result is how a watched deployment ended.
type Result string

// Results of Watch. The zero value means the rollout is still running.
const (
	// Succeeded: our deployment is PRIMARY, COMPLETED where reported, running == desired, and
	// no other deployment is left.
	Succeeded Result = "succeeded"
	// Failed: our deployment's rolloutState is FAILED (circuit breaker without rollback), the
	// service went inactive, or another deployment not started by this run replaced ours.
	Failed Result = "failed"
	// RolledBack: ECS made a previous deployment PRIMARY again (circuit-breaker rollback):
	// the old tasks, and whatever state they are in, stay.
	RolledBack Result = "rolled_back"
	// TimedOut: WatchOptions.Timeout passed first; the rollout may still be running in ECS.
	TimedOut Result = "timed_out"
	// Interrupted: the context ended first; the rollout may still be running in ECS.
	Interrupted Result = "interrupted"
)

// Event is one service event (ECS keeps the latest 100).
type Event struct {
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

// WatchOptions tunes Watch. The clock fields exist so tests can drive the loop.
type WatchOptions struct {
	// Interval is the time between polls. Zero means DefaultInterval.
	Interval time.Duration
	// Timeout bounds the whole watch; unfinished deployments end TimedOut. Zero means no limit
	// but the context's.
	Timeout time.Duration
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// After waits like time.After. Nil means time.After.
	After func(time.Duration) <-chan time.Time
	// OnPoll observes every poll, skipped ones included. Nil means no observer. It runs on
	// Watch's goroutine: keep it quick.
	OnPoll func(Poll)
}

// Poll is what one poll saw.
type Poll struct {
	// N counts polls from 1.
	N  int       `json:"n"`
	At time.Time `json:"at"`
	// Err is set when the poll could not read some services (throttling after the SDK's
	// retries, a server error, the network): a skipped tick, not a failure.
	Err      error             `json:"-"`
	Services []ServiceProgress `json:"services"`
}

// ServiceProgress is one service's state at a poll.
type ServiceProgress struct {
	Ref          ServiceRef `json:"ref"`
	DeploymentID string     `json:"deploymentId"`
	RolloutState string     `json:"rolloutState,omitempty"`
	// Desired, Running, Pending and Failed are our deployment's counts.
	Desired int32 `json:"desired"`
	Running int32 `json:"running"`
	Pending int32 `json:"pending"`
	Failed  int32 `json:"failedTasks"`
	// OldDeployments and OldRunning are the other deployments and their remaining tasks.
	OldDeployments int   `json:"oldDeployments"`
	OldRunning     int32 `json:"oldRunning"`
	// NewEvents are the service events first seen at this poll, oldest first.
	NewEvents []Event `json:"newEvents,omitempty"`
	// Warnings are new at this poll.
	Warnings []string `json:"warnings,omitempty"`
	// Result is set once the deployment reached an outcome, at this poll or before.
	Result Result `json:"result,omitempty"`
}

// Outcome is how one watched deployment ended, and why.
type Outcome struct {
	Ref          ServiceRef `json:"ref"`
	DeploymentID string     `json:"deploymentId"`
	Result       Result     `json:"result"`
	// Reason is one line explaining Result.
	Reason string `json:"reason"`
	// Events are the service events since the deployment started, oldest first.
	Events []Event `json:"events,omitempty"`
	// StoppedTasks are tasks of our deployment that stopped (fetched when failedTasks rose, and
	// once more at a failure), with stop codes, reasons and exit codes.
	StoppedTasks []Task `json:"stoppedTasks,omitempty"`
	// Warnings collected along the way.
	Warnings []string `json:"warnings,omitempty"`
	// Last is our deployment as last seen; nil when it was never seen again.
	Last *Deployment `json:"last,omitempty"`
	// Primary is the PRIMARY deployment's ID as last seen (the rollback target after a rollback).
	Primary string `json:"primary,omitempty"`
	// ServiceDeployment is the Service Deployments API's view, when that API answered.
	ServiceDeployment *ServiceDeploymentInfo `json:"serviceDeployment,omitempty"`
	// Polls is the number of polls made.
	Polls int `json:"polls"`
}

// ServiceDeploymentInfo is what DescribeServiceDeployments says about our deployment.
type ServiceDeploymentInfo struct {
	ARN            string `json:"arn"`
	Status         string `json:"status"`
	StatusReason   string `json:"statusReason,omitempty"`
	RollbackReason string `json:"rollbackReason,omitempty"`
	FailureCount   int32  `json:"failureCount,omitempty"`
	Threshold      int32  `json:"threshold,omitempty"`
}

// watchState is Watch's memory of one deployment.
type watchState struct {
	dep         DeployResult
	out         Outcome
	seenEvents  map[string]bool
	seenStopped map[string]bool
	lastFailed  int32
	failedSeen  bool
	rollingBack int // polls since our deployment turned FAILED with rollback on
	prevIDs     map[string]bool
}

// Watch polls the deployments Deploy started until each reaches an outcome, the timeout
// passes, or ctx ends. Each poll makes one DescribeServices call per cluster for up to 10
// unfinished services; stopped tasks are fetched only when a deployment's failedTasks rises,
// and the Service Deployments API is asked once per unsuccessful outcome (quietly skipped when
// denied or unimplemented). A throttled poll is skipped. The error is non-nil only when the
// watch could not go on (access denied, ctx ended); the outcomes are returned either way.
func (c *Client) Watch(ctx context.Context, deps []DeployResult, opt WatchOptions) ([]Outcome, error) {
	if opt.Interval <= 0 {
		opt.Interval = DefaultInterval
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.After == nil {
		opt.After = time.After
	}
	states := make([]*watchState, len(deps))
	for i, d := range deps {
		ws := &watchState{
			dep:         d,
			out:         Outcome{Ref: d.Ref, DeploymentID: d.DeploymentID},
			seenEvents:  map[string]bool{},
			seenStopped: map[string]bool{},
			prevIDs:     map[string]bool{},
		}
		for _, p := range d.Previous {
			ws.prevIDs[p.ID] = true
		}
		states[i] = ws
	}
	start := opt.Now()
	var fatal error
	// A poll that outlasts this (SDK retries under throttling) is a skipped tick.
	pollLimit := max(4*opt.Interval, 30*time.Second)
	for n := 1; ; n++ {
		pctx, cancel := context.WithTimeout(ctx, pollLimit)
		poll, err := c.poll(pctx, ctx, n, states)
		cancel()
		poll.At = opt.Now()
		if err != nil {
			fatal = err
			break
		}
		if opt.OnPoll != nil {
			opt.OnPoll(poll)
		}
		if allDone(states) {
			break
		}
		wait := opt.Interval
		if opt.Timeout > 0 {
			left := opt.Timeout - opt.Now().Sub(start)
			if left <= 0 {
				for _, ws := range states {
					if ws.out.Result == "" {
						ws.out.Result = TimedOut
						ws.out.Reason = fmt.Sprintf("no outcome after %s: %s; the rollout may still be running in ECS", opt.Timeout, progressLine(ws))
					}
				}
				break
			}
			wait = min(wait, left)
		}
		select {
		case <-ctx.Done():
			fatal = ctx.Err()
		case <-opt.After(wait):
		}
		if fatal != nil {
			break
		}
	}
	if fatal != nil {
		for _, ws := range states {
			if ws.out.Result == "" {
				ws.out.Result = Interrupted
				ws.out.Reason = fmt.Sprintf("watch stopped (%v): %s; the rollout may still be running in ECS", fatal, progressLine(ws))
			}
		}
	}
	// Explain the unsuccessful outcomes; a fresh context so an interrupt still gets its report.
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	outcomes := make([]Outcome, len(states))
	for i, ws := range states {
		if ws.out.Result != Succeeded {
			if ws.out.Result == Failed || ws.out.Result == RolledBack || ws.failedSeen {
				c.collectStopped(ectx, ws)
			}
			c.enrich(ectx, ws)
		}
		outcomes[i] = ws.out
	}
	if fatal != nil {
		return outcomes, fmt.Errorf("watch rollout: %w", fatal)
	}
	return outcomes, nil
}

func allDone(states []*watchState) bool {
	for _, ws := range states {
		if ws.out.Result == "" {
			return false
		}
	}
	return true
}

// poll reads every unfinished service once and updates states. Its error is fatal. ctx bounds
// this poll; run is the whole watch's context.
func (c *Client) poll(ctx, run context.Context, n int, states []*watchState) (Poll, error) {
	poll := Poll{N: n}
	var refs []ServiceRef
	for _, ws := range states {
		if ws.out.Result == "" {
			ws.out.Polls = n
			refs = append(refs, ws.dep.Ref)
		}
	}
	groups := groupByCluster(refs)
	read := map[ServiceRef]bool{}
	svcOf := map[ServiceRef]ecstypes.Service{}
	for _, cluster := range groups.order {
		for start := 0; start < len(groups.refs[cluster]); start += maxServicesPerCall {
			batch := groups.refs[cluster][start:min(start+maxServicesPerCall, len(groups.refs[cluster]))]
			svcs, _, err := c.describeServices(ctx, cluster, batch)
			if err != nil {
				if run.Err() != nil {
					return poll, run.Err()
				}
				var ae *AccessDeniedError
				if errors.As(err, &ae) || !(isTransient(err) || ctx.Err() != nil) {
					return poll, err
				}
				if poll.Err == nil {
					poll.Err = err
				}
				continue
			}
			for _, ref := range batch {
				read[ref] = true
				if s, ok := findService(svcs, ref.Service); ok {
					svcOf[ref] = s
				}
			}
		}
	}
	for _, ws := range states {
		if ws.out.Result != "" {
			poll.Services = append(poll.Services, ServiceProgress{Ref: ws.dep.Ref, DeploymentID: ws.dep.DeploymentID, Result: ws.out.Result})
			continue
		}
		if !read[ws.dep.Ref] {
			poll.Services = append(poll.Services, ServiceProgress{Ref: ws.dep.Ref, DeploymentID: ws.dep.DeploymentID})
			continue
		}
		svc, ok := svcOf[ws.dep.Ref]
		var prog ServiceProgress
		if !ok {
			prog = ServiceProgress{Ref: ws.dep.Ref, DeploymentID: ws.dep.DeploymentID}
			ws.finish(Failed, fmt.Sprintf("service %q no longer exists in cluster %q", shortName(ws.dep.Ref.Service), shortName(ws.dep.Ref.Cluster)))
		} else {
			prog = c.evaluate(ctx, ws, svc)
		}
		prog.Result = ws.out.Result
		poll.Services = append(poll.Services, prog)
	}
	return poll, nil
}

func (ws *watchState) finish(r Result, reason string) {
	ws.out.Result, ws.out.Reason = r, reason
}

func (ws *watchState) warn(prog *ServiceProgress, msg string) {
	prog.Warnings = append(prog.Warnings, msg)
	ws.out.Warnings = append(ws.out.Warnings, msg)
}

// evaluate applies one described service to a deployment's state.
func (c *Client) evaluate(ctx context.Context, ws *watchState, svc ecstypes.Service) ServiceProgress {
	prog := ServiceProgress{Ref: ws.dep.Ref, DeploymentID: ws.dep.DeploymentID}
	deps := deploymentsOf(svc.Deployments)
	var ours, primary *Deployment
	for i := range deps {
		d := &deps[i]
		if d.ID == ws.dep.DeploymentID {
			ours = d
		} else {
			prog.OldDeployments++
			prog.OldRunning += d.Running
		}
		if d.Status == "PRIMARY" && primary == nil {
			primary = d
		}
	}
	if primary != nil {
		ws.out.Primary = primary.ID
	}

	// Events since our deployment started, oldest first.
	since := ws.dep.StartedAt.Truncate(time.Second)
	for i := len(svc.Events) - 1; i >= 0; i-- {
		e := svc.Events[i]
		at, msg := aws.ToTime(e.CreatedAt), aws.ToString(e.Message)
		key := eventKey(aws.ToString(e.Id), at, msg)
		if ws.seenEvents[key] || (!at.IsZero() && at.Before(since)) {
			continue
		}
		ws.seenEvents[key] = true
		ev := Event{At: at, Message: msg}
		prog.NewEvents = append(prog.NewEvents, ev)
		ws.out.Events = append(ws.out.Events, ev)
		if strings.Contains(strings.ToLower(msg), "unable to place a task") {
			ws.warn(&prog, "ECS cannot place tasks: "+msg)
		}
	}

	if ours != nil {
		last := *ours
		ws.out.Last = &last
		prog.RolloutState, prog.Desired, prog.Running, prog.Pending, prog.Failed = ours.RolloutState, ours.Desired, ours.Running, ours.Pending, ours.Failed
		if ours.Failed > ws.lastFailed {
			ws.warn(&prog, fmt.Sprintf("deployment %s: failed tasks %d → %d", ours.ID, ws.lastFailed, ours.Failed))
			ws.failedSeen = true
			for _, t := range c.collectStopped(ctx, ws) {
				ws.warn(&prog, "stopped "+t.Summary())
			}
		}
		ws.lastFailed = ours.Failed
	}

	name := shortName(ws.dep.Ref.Service)
	switch {
	case aws.ToString(svc.Status) != "ACTIVE":
		ws.finish(Failed, fmt.Sprintf("service %q became %s during the rollout", name, aws.ToString(svc.Status)))
	case ours == nil || ours.Status != "PRIMARY":
		target := "another deployment"
		if primary != nil {
			target = fmt.Sprintf("deployment %s (%s)", primary.ID, shortName(primary.TaskDefinition))
		}
		why := ""
		if ours != nil && ours.RolloutStateReason != "" {
			why = ": " + ours.RolloutStateReason
		} else if ws.out.Last != nil && ws.out.Last.RolloutStateReason != "" {
			why = ": " + ws.out.Last.RolloutStateReason
		}
		switch {
		case (primary != nil && ws.prevIDs[primary.ID]) || ws.rollingBack > 0 || (ours != nil && ours.RolloutState == "FAILED"):
			ws.finish(RolledBack, fmt.Sprintf("deployment %s failed and ECS rolled back to %s%s", ws.dep.DeploymentID, target, why))
		default:
			ws.finish(Failed, fmt.Sprintf("deployment %s was replaced by %s, not started by this run%s", ws.dep.DeploymentID, target, why))
		}
	case ours.RolloutState == "FAILED":
		reason := ours.RolloutStateReason
		if reason == "" {
			reason = "rolloutState FAILED"
		}
		if ws.dep.BreakerRollback && ws.rollingBack < rollbackPatience {
			if ws.rollingBack == 0 {
				ws.warn(&prog, fmt.Sprintf("deployment %s FAILED (%s): waiting for ECS to roll back", ours.ID, reason))
			}
			ws.rollingBack++
			break
		}
		if ws.rollingBack > 0 {
			reason += fmt.Sprintf("; no rollback seen within %d polls", ws.rollingBack)
		}
		ws.finish(Failed, fmt.Sprintf("deployment %s FAILED: %s", ours.ID, reason))
	case (ours.RolloutState == "" || ours.RolloutState == "COMPLETED") && ours.Running == ours.Desired && len(deps) == 1:
		ws.finish(Succeeded, fmt.Sprintf("deployment %s completed: %d/%d tasks running", ours.ID, ours.Running, ours.Desired))
	}
	return prog
}

// progressLine describes where a deployment stood at its last poll.
func progressLine(ws *watchState) string {
	d := ws.out.Last
	if d == nil {
		return fmt.Sprintf("deployment %s was not seen", ws.dep.DeploymentID)
	}
	s := fmt.Sprintf("deployment %s had %d/%d tasks running, %d pending", d.ID, d.Running, d.Desired, d.Pending)
	if d.RolloutState != "" {
		s += ", " + d.RolloutState
	}
	return s
}

// collectStopped fetches our deployment's stopped tasks and returns those not seen before.
// Errors become a warning: the stopped tasks only explain.
func (c *Client) collectStopped(ctx context.Context, ws *watchState) []Task {
	tasks, err := c.stoppedTasksOf(ctx, ws.dep.Ref, ws.dep.DeploymentID)
	if err != nil {
		ws.out.Warnings = append(ws.out.Warnings, "could not read stopped tasks: "+err.Error())
		return nil
	}
	var fresh []Task
	for _, t := range tasks {
		if ws.seenStopped[t.ARN] {
			continue
		}
		ws.seenStopped[t.ARN] = true
		fresh = append(fresh, t)
	}
	ws.out.StoppedTasks = append(ws.out.StoppedTasks, fresh...)
	return fresh
}

// enrich adds the Service Deployments API's view to an outcome; it stays quiet when the API is
// denied, unimplemented or silent.
func (c *Client) enrich(ctx context.Context, ws *watchState) {
	info, err := c.serviceDeployment(ctx, ws.dep)
	if err != nil || info == nil {
		return
	}
	ws.out.ServiceDeployment = info
	var extra []string
	if info.Status != "" {
		s := "service deployment " + info.Status
		if info.StatusReason != "" && !strings.Contains(ws.out.Reason, info.StatusReason) {
			s += ": " + info.StatusReason
		}
		extra = append(extra, s)
	}
	if info.RollbackReason != "" && !strings.Contains(ws.out.Reason, info.RollbackReason) {
		extra = append(extra, "rollback: "+info.RollbackReason)
	}
	if info.Threshold > 0 {
		extra = append(extra, fmt.Sprintf("circuit breaker %d/%d failed tasks", info.FailureCount, info.Threshold))
	}
	if len(extra) > 0 {
		ws.out.Reason += " (" + strings.Join(extra, "; ") + ")"
	}
}

// serviceDeployment finds our deployment in the Service Deployments API: by the ARN's last
// segment matching the deployment ID's digits, else the first one created since StartedAt.
func (c *Client) serviceDeployment(ctx context.Context, dep DeployResult) (*ServiceDeploymentInfo, error) {
	after := dep.StartedAt.Add(-time.Minute)
	list, err := c.api.ListServiceDeployments(ctx, &awsecs.ListServiceDeploymentsInput{
		Cluster:   aws.String(dep.Ref.Cluster),
		Service:   aws.String(dep.Ref.Service),
		CreatedAt: &ecstypes.CreatedAt{After: &after},
	})
	if err != nil {
		return nil, err
	}
	briefs := list.ServiceDeployments
	digits := dep.DeploymentID[strings.LastIndexByte(dep.DeploymentID, '/')+1:]
	arn := ""
	for _, b := range briefs {
		if a := aws.ToString(b.ServiceDeploymentArn); shortName(a) == digits {
			arn = a
		}
	}
	if arn == "" {
		since := dep.StartedAt.Add(-2 * time.Second)
		slices.SortFunc(briefs, func(a, b ecstypes.ServiceDeploymentBrief) int {
			return aws.ToTime(a.CreatedAt).Compare(aws.ToTime(b.CreatedAt))
		})
		for _, b := range briefs {
			if !aws.ToTime(b.CreatedAt).Before(since) {
				arn = aws.ToString(b.ServiceDeploymentArn)
				break
			}
		}
	}
	if arn == "" {
		return nil, nil
	}
	out, err := c.api.DescribeServiceDeployments(ctx, &awsecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{arn}})
	if err != nil {
		return nil, err
	}
	for _, sd := range out.ServiceDeployments {
		info := &ServiceDeploymentInfo{
			ARN:          aws.ToString(sd.ServiceDeploymentArn),
			Status:       string(sd.Status),
			StatusReason: aws.ToString(sd.StatusReason),
		}
		if sd.Rollback != nil {
			info.RollbackReason = aws.ToString(sd.Rollback.Reason)
		}
		if cb := sd.DeploymentCircuitBreaker; cb != nil {
			info.FailureCount, info.Threshold = cb.FailureCount, cb.Threshold
		}
		return info, nil
	}
	return nil, nil
}
