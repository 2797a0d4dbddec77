package main

import (
	"fmt"
	"sort"
	"time"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/report"
	"github.com/urfave/cli/v2"
)

func statusCommand(getenv env) *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show the Sidekiq fleet (processes, in-flight jobs, queues) and, with --cluster/--service, the ECS service",
		UsageText: "drainctl status [--redis-url URL] [selectors] [--cluster C --service S] [--output text|json|markdown]",
		Description: `status only reads. Without selectors it shows every process listed in Redis; a process
whose heartbeat expired (killed) is shown as dead. With --cluster/--service it adds the
service's deployments and running tasks, and places each process in its task.`,
		Flags:  flags(redisFlags(), ecsFlags(), selectionFlags(), outputFlags()),
		Action: func(c *cli.Context) error { return runStatus(c, getenv) },
	}
}

// statusReport is the status document; the tests decode `status --output json` into it.
type statusReport = report.Status

func runStatus(c *cli.Context, getenv env) error {
	o, u, ro, sel, selGiven, err := fleetFlags(c, getenv)
	if err != nil {
		return err
	}
	refs, err := o.serviceRefs(false)
	if err != nil {
		return err
	}
	ctx := c.Context
	cl, err := openRedis(ctx, ro, false)
	if err != nil {
		return err
	}
	defer cl.Close()
	snap, err := snapshot(ctx, cl, ro)
	if err != nil {
		return err
	}
	ps := snap.Processes
	if selGiven {
		if ps, err = selectProcesses(snap, sel); err != nil {
			return err
		}
	}
	now := time.Now()
	st := report.NewStatus(now, ro.Redacted())

	// ECS first, so processes can be placed in tasks.
	var tasks []ecs.Task
	taskSvc := map[string]int{}
	if len(refs) > 0 {
		ec, err := openECS(ctx, o)
		if err != nil {
			return err
		}
		states, derr := ec.Describe(ctx, refs)
		if derr != nil {
			return ecsErr(derr)
		}
		for _, s := range states {
			// What would refuse or endanger a deploy (CODE_DEPLOY, ...) is only a fact here.
			var warnings []string
			for _, f := range drain.ServiceFindings(s, true) {
				warnings = append(warnings, f.Message)
			}
			ss := report.StatusService{Cluster: s.Ref.Cluster, Service: s.Ref.Service, Status: s.Status, TaskDefinition: s.TaskDefinition,
				Desired: s.Desired, Running: s.Running, Pending: s.Pending, Controller: s.Controller, Warnings: warnings, Tasks: []report.StatusTask{}, Deployments: []report.StatusDeployment{}}
			for _, d := range s.Deployments {
				ss.Deployments = append(ss.Deployments, report.StatusDeployment{ID: d.ID, Status: d.Status, RolloutState: d.RolloutState,
					TaskDefinition: d.TaskDefinition, Desired: d.Desired, Running: d.Running, Pending: d.Pending, Failed: d.Failed, CreatedAt: d.CreatedAt})
			}
			ts, err := ec.Tasks(ctx, s.Ref, "RUNNING")
			if err != nil {
				st.Warnings = append(st.Warnings, fmt.Sprintf("list tasks of %s: %v", s.Ref, err))
			}
			for _, t := range ts {
				taskSvc[t.ARN] = len(st.Services)
				tasks = append(tasks, t)
				ss.Tasks = append(ss.Tasks, report.StatusTask{ID: t.ID, ARN: t.ARN, LastStatus: t.LastStatus, Deployment: t.DeploymentID,
					PrivateIPv4: t.PrivateIPv4, Processes: []string{}})
			}
			st.Services = append(st.Services, ss)
		}
	}

	queues := map[string]bool{}
	for _, p := range ps {
		sp := report.StatusProcess{Identity: p.Identity, Hostname: p.Hostname, Tag: p.Tag, Version: p.Version, Queues: p.Queues,
			Quiet: p.Quiet, Busy: p.Busy, Concurrency: p.Concurrency, LastBeat: p.Beat, Dead: !p.HashExists, Err: p.Err}
		if sp.Queues == nil {
			sp.Queues = []string{}
		}
		if !p.Beat.IsZero() {
			sp.BeatAge = now.Sub(p.Beat).Round(100 * time.Millisecond).Seconds()
		}
		if t, ok := drain.MatchTask(p, tasks); ok {
			sp.Task = t.ID
			svc := &st.Services[taskSvc[t.ARN]]
			for i := range svc.Tasks {
				if svc.Tasks[i].ARN == t.ARN {
					svc.Tasks[i].Processes = append(svc.Tasks[i].Processes, p.Identity)
				}
			}
		}
		st.Processes = append(st.Processes, sp)
		for _, q := range p.Queues {
			queues[q] = true
		}
		for _, j := range p.Jobs {
			sj := report.StatusJob{Class: j.Class, Queue: j.Queue, JID: j.JID, Process: p.Identity, RunAt: j.RunAt,
				Running: now.Sub(j.RunAt).Round(100 * time.Millisecond).Seconds()}
			if u.showArgs {
				sj.Args = j.Args
			}
			st.Jobs = append(st.Jobs, sj)
		}
	}
	sort.Slice(st.Jobs, func(i, j int) bool { return st.Jobs[i].Running > st.Jobs[j].Running })
	if len(queues) > 0 {
		names := make([]string, 0, len(queues))
		for q := range queues {
			names = append(names, q)
		}
		sort.Strings(names)
		qs, err := cl.QueueStats(ctx, names, now)
		if err != nil {
			st.Warnings = append(st.Warnings, fmt.Sprintf("read queue sizes: %v", err))
		}
		for _, q := range qs {
			st.Queues = append(st.Queues, report.StatusQueue{Name: q.Name, Size: q.Size, Latency: q.Latency.Round(100 * time.Millisecond).Seconds()})
		}
	}
	for _, w := range st.Warnings {
		u.warn("%s", w)
	}
	return u.emitDoc(st)
}

// emitDoc writes doc to stdout in --output's format and to --report in its own.
func (u *ui) emitDoc(doc report.Doc) error {
	ro := report.Options{Command: doc.Kind(), Version: versionString(), ShowArgs: u.showArgs}
	so := ro
	so.Color = u.color && isTerminal(u.stdout)
	if err := report.Write(u.stdout, report.Format(u.out), doc, so); err != nil {
		return fmt.Errorf("write the result: %w", err)
	}
	if u.reportPath == "" {
		return nil
	}
	return report.WriteFile(u.reportPath, doc, ro)
}
