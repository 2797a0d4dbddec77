package report

import (
	"time"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// The status document is built from what internal/status reads (a sidekiq.Process, an
// ecs.ServiceState, ...) by the constructors below, so that the document's shape is decided
// here, next to its renderers, and both the buffered and the streamed status build it the
// same way.

// NewStatusProcess is p as the status document shows it, read at now. A process listed in
// Redis whose heartbeat hash expired is Dead.
func NewStatusProcess(p sidekiq.Process, now time.Time) StatusProcess {
	sp := StatusProcess{Identity: p.Identity, Hostname: p.Hostname, Tag: p.Tag, Version: p.Version, Queues: p.Queues,
		Quiet: p.Quiet, Busy: p.Busy, Concurrency: p.Concurrency, LastBeat: p.Beat, Dead: !p.HashExists, Err: p.Err}
	if sp.Queues == nil {
		sp.Queues = []string{}
	}
	if !p.Beat.IsZero() {
		sp.BeatAge = now.Sub(p.Beat).Round(100 * time.Millisecond).Seconds()
	}
	return sp
}

// NewStatusJob is j, in flight on the process identity, as the status document shows it,
// read at now. Its arguments are left out unless showArgs (they may hold personal data).
func NewStatusJob(j sidekiq.Job, identity string, now time.Time, showArgs bool) StatusJob {
	sj := StatusJob{Class: j.Class, Queue: j.Queue, JID: j.JID, Process: identity, RunAt: j.RunAt,
		Running: now.Sub(j.RunAt).Round(100 * time.Millisecond).Seconds()}
	if showArgs {
		sj.Args = j.Args
	}
	return sj
}

// NewStatusService is the ECS service s as the status document shows it, with its
// deployments and no tasks yet (AddTask). What would refuse or endanger a deploy
// (drain.ServiceFindings: CODE_DEPLOY, a rollout in progress, ...) is only a warning here.
func NewStatusService(s ecs.ServiceState) StatusService {
	var warnings []string
	for _, f := range drain.ServiceFindings(s, true) {
		warnings = append(warnings, f.Message)
	}
	ss := StatusService{Cluster: s.Ref.Cluster, Service: s.Ref.Service, Status: s.Status, TaskDefinition: s.TaskDefinition,
		Desired: s.Desired, Running: s.Running, Pending: s.Pending, Controller: s.Controller, Warnings: warnings,
		Tasks: []StatusTask{}, Deployments: []StatusDeployment{}, Strategy: NewDeployStrategy(s.Strategy)}
	for _, d := range s.Deployments {
		ss.Deployments = append(ss.Deployments, StatusDeployment{ID: d.ID, Status: d.Status, RolloutState: d.RolloutState,
			TaskDefinition: d.TaskDefinition, Desired: d.Desired, Running: d.Running, Pending: d.Pending, Failed: d.Failed, CreatedAt: d.CreatedAt})
	}
	return ss
}

// AddTask lists the running task t in ss, with no processes yet (Status.PlaceProcess).
func (ss *StatusService) AddTask(t ecs.Task) {
	ss.Tasks = append(ss.Tasks, StatusTask{ID: t.ID, ARN: t.ARN, LastStatus: t.LastStatus, Deployment: t.DeploymentID,
		PrivateIPv4: t.PrivateIPv4, Processes: []string{}})
}

// PlaceProcess lists the process identity among the processes of the task taskARN of
// st.Services[service].
func (st *Status) PlaceProcess(service int, taskARN, identity string) {
	svc := &st.Services[service]
	for i := range svc.Tasks {
		if svc.Tasks[i].ARN == taskARN {
			svc.Tasks[i].Processes = append(svc.Tasks[i].Processes, identity)
		}
	}
}

// NewStatusQueues is the queue sizes and latencies qs as the status document shows them
// (never nil).
func NewStatusQueues(qs []sidekiq.QueueStat) []StatusQueue {
	out := []StatusQueue{}
	for _, q := range qs {
		out = append(out, StatusQueue{Name: q.Name, Size: q.Size, Latency: q.Latency.Round(100 * time.Millisecond).Seconds()})
	}
	return out
}
