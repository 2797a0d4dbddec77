package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/drainctl/drainctl/internal/check"
	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/finding"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// service adapts *ecs.Client plus one service to drain.Service.
type service struct {
	c               *ecs.Client
	ref             ecs.ServiceRef
	allowInProgress bool
	// checkPath runs the signal-path checks on the service's task definition at preflight
	// and adds their error and warning findings to ServiceState.Warnings (so --strict
	// refuses them); findings keeps them for the caller.
	checkPath bool

	mu       sync.Mutex
	deployed map[string]ecs.DeployResult // by deployment ID, for Watch
	findings []check.Finding
}

var _ drain.Service = (*service)(nil)

func newService(c *ecs.Client, ref ecs.ServiceRef, allowInProgress, checkPath bool) *service {
	return &service{c: c, ref: ref, allowInProgress: allowInProgress, checkPath: checkPath, deployed: map[string]ecs.DeployResult{}}
}

func (s *service) Ref() drain.ServiceRef {
	return drain.ServiceRef{Cluster: s.ref.Cluster, Service: s.ref.Service}
}

func (s *service) Preflight(ctx context.Context) (drain.ServiceState, error) {
	sts, err := s.c.Preflight(ctx, []ecs.ServiceRef{s.ref}, ecs.PreflightOptions{AllowInProgress: s.allowInProgress})
	if err != nil {
		return drain.ServiceState{}, err
	}
	if len(sts) == 0 {
		return drain.ServiceState{}, fmt.Errorf("preflight of service %s: no state returned", s.ref)
	}
	st := sts[0]
	out := serviceState(st)
	if s.checkPath {
		for _, f := range s.signalPath(st) {
			out.Warnings = append(out.Warnings, fmt.Sprintf("signal path %s %s (container %s): %s; fix: %s", f.Code, f.Severity, f.Container, f.Message, f.Fix))
		}
	}
	return out, nil
}

// signalPath runs internal/check on what preflight read; a check that cannot run (no
// Sidekiq container recognised) is one warning.
func (s *service) signalPath(st ecs.ServiceState) []check.Finding {
	if st.TaskDef == nil {
		return nil
	}
	in := check.Input{Source: st.TaskDef.ARN, TaskDefinition: taskDefinition(st.TaskDef), LaunchType: st.LaunchType,
		Deployment: deploymentConfig(st)}
	res, err := check.Run(in)
	if err != nil {
		return []check.Finding{{Code: "check", Severity: finding.Warning, Container: "?", Message: "signal-path check skipped: " + err.Error(), Fix: "name the container with drainctl check --container"}}
	}
	var out []check.Finding
	for _, f := range res.Findings {
		// The circuit breaker is already a preflight warning of the ECS client.
		if f.Code == check.CodeCircuitBreakerOff {
			continue
		}
		if f.Severity == finding.Error || f.Severity == finding.Warning {
			out = append(out, f)
		}
	}
	s.mu.Lock()
	s.findings = out
	s.mu.Unlock()
	return out
}

// taskDefinition converts the ECS client's task definition for internal/check.
func taskDefinition(td *ecs.TaskDefinitionInfo) check.TaskDefinition {
	var cs []check.Container
	for _, c := range td.Containers {
		cc := check.Container{Name: c.Name, Image: c.Image, Command: c.Command, EntryPoint: c.EntryPoint,
			InitProcessEnabled: c.InitProcessEnabled, Environment: c.Environment}
		ess := c.Essential
		cc.Essential = &ess
		if c.StopTimeout != nil {
			v := int(*c.StopTimeout)
			cc.StopTimeout = &v
		}
		for _, d := range c.DependsOn {
			cc.DependsOn = append(cc.DependsOn, check.Dependency{ContainerName: d.ContainerName, Condition: d.Condition})
		}
		cs = append(cs, cc)
	}
	t := check.NewTaskDefinition(td.Family, int(td.Revision), td.NetworkMode, td.RequiresCompatibilities, cs...)
	t.ARN = td.ARN
	return t
}

func deploymentConfig(st ecs.ServiceState) *check.Deployment {
	minH, maxP := int(st.MinHealthy), int(st.MaxPercent)
	return &check.Deployment{MinimumHealthyPercent: &minH, MaximumPercent: &maxP,
		CircuitBreakerEnabled: st.BreakerEnabled, CircuitBreakerRollback: st.BreakerRollback}
}

func serviceState(st ecs.ServiceState) drain.ServiceState {
	out := drain.ServiceState{
		Ref:    drain.ServiceRef{Cluster: st.Ref.Cluster, Service: st.Ref.Service},
		Status: st.Status, TaskDefinition: st.TaskDefinition,
		Desired: st.Desired, Running: st.Running, Pending: st.Pending,
		MinHealthy: st.MinHealthy, MaxPercent: st.MaxPercent,
		BreakerEnabled: st.BreakerEnabled, BreakerRollback: st.BreakerRollback,
		Controller: st.Controller, Warnings: append([]string(nil), st.Warnings...),
	}
	for _, d := range st.Deployments {
		out.Deployments = append(out.Deployments, drain.Deployment{ID: d.ID, Status: d.Status, TaskDefinition: d.TaskDefinition,
			RolloutState: d.RolloutState, Desired: d.Desired, Running: d.Running, Pending: d.Pending, CreatedAt: d.CreatedAt})
	}
	return out
}

func (s *service) Deploy(ctx context.Context, taskDefinition string) (drain.Rollout, error) {
	dr, err := s.c.Deploy(ctx, s.ref, taskDefinition)
	if err != nil {
		return drain.Rollout{}, err
	}
	s.mu.Lock()
	s.deployed[dr.DeploymentID] = dr
	s.mu.Unlock()
	r := drain.Rollout{DeploymentID: dr.DeploymentID, TaskDefinition: dr.TaskDefinition, StartedAt: dr.StartedAt}
	for _, p := range dr.Previous {
		if p.Status == "PRIMARY" || r.PreviousTaskDefinition == "" {
			r.PreviousTaskDefinition = p.TaskDefinition
		}
	}
	return r, nil
}

func (s *service) Watch(ctx context.Context, r drain.Rollout, opt drain.WatchOptions) (drain.RolloutOutcome, error) {
	s.mu.Lock()
	dr, ok := s.deployed[r.DeploymentID]
	s.mu.Unlock()
	if !ok {
		dr = ecs.DeployResult{Ref: s.ref, DeploymentID: r.DeploymentID, TaskDefinition: r.TaskDefinition, StartedAt: r.StartedAt}
	}
	wo := ecs.WatchOptions{Interval: opt.Interval, Timeout: opt.Timeout}
	if opt.OnPoll != nil {
		wo.OnPoll = func(p ecs.Poll) { opt.OnPoll(rolloutPoll(p, s.ref, r.DeploymentID)) }
	}
	outs, err := s.c.Watch(ctx, []ecs.DeployResult{dr}, wo)
	if ctx.Err() != nil {
		return drain.RolloutOutcome{}, ctx.Err()
	}
	if len(outs) == 0 {
		if err == nil {
			err = errors.New("no outcome")
		}
		return drain.RolloutOutcome{}, fmt.Errorf("watch rollout of %s: %w", s.ref, err)
	}
	o := outs[0]
	if o.Result == ecs.Interrupted {
		return drain.RolloutOutcome{}, context.Canceled
	}
	out := drain.RolloutOutcome{Reason: o.Reason, Polls: o.Polls}
	switch o.Result {
	case ecs.Succeeded:
		out.Result = drain.RolloutSucceeded
	case ecs.RolledBack:
		out.Result = drain.RolloutRolledBack
	case ecs.TimedOut:
		out.Result = drain.RolloutTimedOut
	case ecs.Failed:
		out.Result = drain.RolloutFailed
	default:
		if err != nil {
			return out, fmt.Errorf("watch rollout of %s: %w", s.ref, err)
		}
		out.Result = drain.RolloutTimedOut
	}
	for _, e := range o.Events {
		out.Events = append(out.Events, drain.ServiceEvent{At: e.At, Message: e.Message})
	}
	for _, t := range o.StoppedTasks {
		out.StoppedTasks = append(out.StoppedTasks, task(t))
	}
	return out, nil
}

func rolloutPoll(p ecs.Poll, ref ecs.ServiceRef, deploymentID string) drain.RolloutPoll {
	rp := drain.RolloutPoll{At: p.At, Ref: drain.ServiceRef{Cluster: ref.Cluster, Service: ref.Service}, DeploymentID: deploymentID}
	if p.Err != nil {
		rp.Err = p.Err.Error()
	}
	for _, sp := range p.Services {
		if sp.Ref != ref {
			continue
		}
		rp.RolloutState, rp.Desired, rp.Running, rp.Pending = sp.RolloutState, sp.Desired, sp.Running, sp.Pending
		rp.Deployments = 1 + sp.OldDeployments
		for _, e := range sp.NewEvents {
			rp.Events = append(rp.Events, drain.ServiceEvent{At: e.At, Message: e.Message})
		}
	}
	return rp
}

func (s *service) Tasks(ctx context.Context, desired string) ([]drain.Task, error) {
	ts, err := s.c.Tasks(ctx, s.ref, desired)
	out := make([]drain.Task, 0, len(ts))
	for _, t := range ts {
		out = append(out, task(t))
	}
	return out, err
}

func (s *service) StopTasks(ctx context.Context, arns []string, reason string) error {
	return s.c.StopTasks(ctx, s.ref.Cluster, arns, reason)
}

func task(t ecs.Task) drain.Task {
	out := drain.Task{ARN: t.ARN, ID: t.ID, DeploymentID: t.DeploymentID, LastStatus: t.LastStatus, DesiredStatus: t.DesiredStatus,
		PrivateIPv4: t.PrivateIPv4, PrivateDNS: t.PrivateDNS, StopCode: t.StopCode, StoppedReason: t.StoppedReason,
		StartedAt: t.StartedAt, StoppedAt: t.StoppedAt}
	for _, c := range t.Containers {
		out.Containers = append(out.Containers, drain.Container{Name: c.Name, RuntimeID: c.RuntimeID, ExitCode: c.ExitCode, Reason: c.Reason})
	}
	return out
}

// taskAddress is what sidekiq.MatchTask needs of a task.
func taskAddress(t drain.Task) sidekiq.TaskAddress {
	a := sidekiq.TaskAddress{TaskARN: t.ARN, PrivateIPv4: t.PrivateIPv4, PrivateDNS: t.PrivateDNS}
	for _, c := range t.Containers {
		if c.RuntimeID != "" {
			a.ContainerRuntimeIDs = append(a.ContainerRuntimeIDs, c.RuntimeID)
		}
	}
	return a
}

// matchTask places a process in one of the tasks (drain.Config.Match).
func matchTask(p sidekiq.Process, tasks []drain.Task) (drain.Task, bool) {
	addrs := make([]sidekiq.TaskAddress, len(tasks))
	for i, t := range tasks {
		addrs[i] = taskAddress(t)
	}
	a, ok := sidekiq.MatchTask(p, addrs)
	if !ok {
		return drain.Task{}, false
	}
	for _, t := range tasks {
		if t.ARN == a.TaskARN {
			return t, true
		}
	}
	return drain.Task{}, false
}
