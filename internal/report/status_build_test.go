package report

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// TestNewStatusProcess: a listed process whose heartbeat hash expired is dead, the beat age is
// rounded to a tenth of a second, and the queues are never null in JSON.
func TestNewStatusProcess(t *testing.T) {
	now := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		p    sidekiq.Process
		want StatusProcess
	}{
		{"live", sidekiq.Process{Identity: "h:1:a", Hostname: "h", Tag: "worker", Version: "7.3.2", Queues: []string{"default"}, Busy: 2,
			Concurrency: 5, Beat: now.Add(-4260 * time.Millisecond), HashExists: true},
			StatusProcess{Identity: "h:1:a", Hostname: "h", Tag: "worker", Version: "7.3.2", Queues: []string{"default"}, Busy: 2,
				Concurrency: 5, LastBeat: now.Add(-4260 * time.Millisecond), BeatAge: 4.3}},
		{"quiet", sidekiq.Process{Identity: "h:2:b", Quiet: true, Beat: now, HashExists: true},
			StatusProcess{Identity: "h:2:b", Queues: []string{}, Quiet: true, LastBeat: now}},
		{"dead, no beat", sidekiq.Process{Identity: "h:3:c", Err: "bad info"},
			StatusProcess{Identity: "h:3:c", Queues: []string{}, Dead: true, Err: "bad info"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewStatusProcess(tt.p, now); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("NewStatusProcess = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestNewStatusJob: the running time is rounded, and the arguments are shown only when asked.
func TestNewStatusJob(t *testing.T) {
	now := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	j := sidekiq.Job{Class: "MailJob", Queue: "critical", JID: "b1", RunAt: now.Add(-95040 * time.Millisecond), Args: json.RawMessage(`[42]`)}
	for _, show := range []bool{false, true} {
		got := NewStatusJob(j, "h:1:a", now, show)
		want := StatusJob{Class: "MailJob", Queue: "critical", JID: "b1", Process: "h:1:a", RunAt: j.RunAt, Running: 95}
		if show {
			want.Args = j.Args
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("NewStatusJob(showArgs %v) = %+v, want %+v", show, got, want)
		}
	}
}

// TestStatusServiceTasks: a service shows its deployments and running tasks, a process is
// placed in the task with its ARN only, and a deploy's refusal (CODE_DEPLOY) is a warning.
func TestStatusServiceTasks(t *testing.T) {
	st := NewStatus(time.Unix(0, 0), "redis://r:6379/0")
	s := ecs.ServiceState{Ref: ecs.ServiceRef{Cluster: "prod", Service: "worker"}, Status: "ACTIVE", TaskDefinition: "worker:7",
		Desired: 2, Running: 2, Controller: "CODE_DEPLOY",
		Deployments: []ecs.Deployment{{ID: "ecs-svc/1", Status: "PRIMARY", TaskDefinition: "worker:7", Desired: 2, Running: 2}}}
	ss := NewStatusService(s)
	ss.AddTask(ecs.Task{ARN: "arn:t/1", ID: "1", LastStatus: "RUNNING", DeploymentID: "ecs-svc/1", PrivateIPv4: "10.0.0.1"})
	ss.AddTask(ecs.Task{ARN: "arn:t/2", ID: "2", LastStatus: "RUNNING"})
	st.Services = append(st.Services, ss)
	st.PlaceProcess(0, "arn:t/2", "ip-10-0-0-2:7:x")

	got := st.Services[0]
	if len(got.Warnings) == 0 {
		t.Errorf("a CODE_DEPLOY service has no warning: %+v", got)
	}
	wantDep := []StatusDeployment{{ID: "ecs-svc/1", Status: "PRIMARY", TaskDefinition: "worker:7", Desired: 2, Running: 2}}
	if !reflect.DeepEqual(got.Deployments, wantDep) {
		t.Errorf("deployments = %+v, want %+v", got.Deployments, wantDep)
	}
	wantTasks := []StatusTask{
		{ID: "1", ARN: "arn:t/1", LastStatus: "RUNNING", Deployment: "ecs-svc/1", PrivateIPv4: "10.0.0.1", Processes: []string{}},
		{ID: "2", ARN: "arn:t/2", LastStatus: "RUNNING", Processes: []string{"ip-10-0-0-2:7:x"}},
	}
	if !reflect.DeepEqual(got.Tasks, wantTasks) {
		t.Errorf("tasks = %+v, want %+v", got.Tasks, wantTasks)
	}
}

// TestNewStatusQueues: latencies are rounded to a tenth of a second; no queues is an empty
// list, never null.
func TestNewStatusQueues(t *testing.T) {
	if got := NewStatusQueues(nil); got == nil || len(got) != 0 {
		t.Errorf("NewStatusQueues(nil) = %#v, want an empty list", got)
	}
	got := NewStatusQueues([]sidekiq.QueueStat{{Name: "default", Size: 3, Latency: 1260 * time.Millisecond}})
	want := []StatusQueue{{Name: "default", Size: 3, Latency: 1.3}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("NewStatusQueues = %+v, want %+v", got, want)
	}
}
