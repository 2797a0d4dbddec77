package drain

import (
	"testing"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// The deployments of the verdict tables: ours (ecs-svc/2, worker:8) replaced ecs-svc/1
// (worker:7); ecs-svc/3 (worker:9) is a deployment this run did not start.
func dep(id, status, rollout string, running int32) ecs.Deployment {
	td := map[string]string{"ecs-svc/1": "worker:7", "ecs-svc/2": "worker:8", "ecs-svc/3": "worker:9"}[id]
	return ecs.Deployment{ID: id, Status: status, TaskDefinition: tdARN + td, RolloutState: rollout, Desired: 2, Running: running,
		Pending: 2 - running}
}

// failedDep is a deployment that FAILED with ECS's reason.
func failedDep(id, status string) ecs.Deployment {
	d := dep(id, status, "FAILED", 0)
	d.RolloutStateReason = "ECS deployment circuit breaker: tasks failed to start."
	return d
}

func memory(rollback bool, rollingBack int, lastOurs *ecs.Deployment) rolloutMemory {
	return rolloutMemory{
		Ours: ecs.DeployResult{Ref: ecs.ServiceRef{Cluster: "prod", Service: "worker"}, DeploymentID: "ecs-svc/2",
			Previous:       []ecs.Deployment{dep("ecs-svc/1", "PRIMARY", "COMPLETED", 2)},
			TaskDefinition: tdARN + "worker:8", Desired: 2, BreakerEnabled: true, BreakerRollback: rollback},
		RollingBack: rollingBack, LastOurs: lastOurs,
	}
}

func svcWith(status string, deps ...ecs.Deployment) *ecs.ServiceState {
	return &ecs.ServiceState{Ref: ecs.ServiceRef{Cluster: "prod", Service: "worker"}, Status: status, Desired: 2, Deployments: deps}
}

func sdOf(status, reason, rollback string) *ecs.ServiceDeploymentInfo {
	return &ecs.ServiceDeploymentInfo{ARN: "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/worker/2", Status: status,
		StatusReason: reason, RollbackReason: rollback}
}

const (
	breakerReason = "ECS deployment circuit breaker: tasks failed to start."
	rolledBackTo1 = "deployment ecs-svc/2 failed and ECS rolled back to deployment ecs-svc/1 (worker:7)"
	replacedBy3   = "deployment ecs-svc/2 was replaced by deployment ecs-svc/3 (worker:9), not started by this run"
	completed     = "deployment ecs-svc/2 completed: 2/2 tasks running"
	awaiting      = "deployment ecs-svc/2 FAILED (" + breakerReason + "): waiting for ECS to roll back"
)

func TestJudge(t *testing.T) {
	lastFailed := failedDep("ecs-svc/2", "PRIMARY")
	lastRunning := dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 1)
	tests := []struct {
		name   string
		svc    *ecs.ServiceState
		sd     *ecs.ServiceDeploymentInfo
		mem    rolloutMemory
		want   RolloutResult
		await  bool
		reason string
	}{
		// Ours PRIMARY alone, by rolloutState.
		{name: "alone IN_PROGRESS", svc: svcWith("ACTIVE", dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 2)), mem: memory(true, 0, nil)},
		{name: "alone COMPLETED", svc: svcWith("ACTIVE", dep("ecs-svc/2", "PRIMARY", "COMPLETED", 2)), mem: memory(true, 0, nil),
			want: RolloutSucceeded, reason: completed},
		{name: "alone, rolloutState not reported", svc: svcWith("ACTIVE", dep("ecs-svc/2", "PRIMARY", "", 2)), mem: memory(true, 0, nil),
			want: RolloutSucceeded, reason: completed},
		{name: "alone COMPLETED, not all running", svc: svcWith("ACTIVE", dep("ecs-svc/2", "PRIMARY", "COMPLETED", 1)), mem: memory(true, 0, nil)},
		{name: "alone FAILED, rollback on", svc: svcWith("ACTIVE", failedDep("ecs-svc/2", "PRIMARY")), mem: memory(true, 0, nil),
			await: true, reason: awaiting},
		{name: "alone FAILED, rollback off", svc: svcWith("ACTIVE", failedDep("ecs-svc/2", "PRIMARY")), mem: memory(false, 0, nil),
			want: RolloutFailed, reason: "deployment ecs-svc/2 FAILED: " + breakerReason},
		{name: "alone FAILED without a reason, rollback off", svc: svcWith("ACTIVE", dep("ecs-svc/2", "PRIMARY", "FAILED", 0)), mem: memory(false, 0, nil),
			want: RolloutFailed, reason: "deployment ecs-svc/2 FAILED: rolloutState FAILED"},

		// Rollback patience: ECS gets rollbackPatience polls to make another deployment PRIMARY.
		{name: "FAILED, still waiting for the rollback", svc: svcWith("ACTIVE", failedDep("ecs-svc/2", "PRIMARY"), dep("ecs-svc/1", "ACTIVE", "COMPLETED", 2)),
			mem: memory(true, rollbackPatience-1, nil), await: true, reason: awaiting},
		{name: "FAILED, no rollback within patience", svc: svcWith("ACTIVE", failedDep("ecs-svc/2", "PRIMARY"), dep("ecs-svc/1", "ACTIVE", "COMPLETED", 2)),
			mem: memory(true, rollbackPatience, nil), want: RolloutFailed,
			reason: "deployment ecs-svc/2 FAILED: " + breakerReason + "; no rollback seen within 5 polls"},

		// Ours PRIMARY with the old one still ACTIVE.
		{name: "with old IN_PROGRESS", svc: svcWith("ACTIVE", dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 2), dep("ecs-svc/1", "ACTIVE", "COMPLETED", 2)), mem: memory(true, 0, nil)},
		{name: "with old COMPLETED", svc: svcWith("ACTIVE", dep("ecs-svc/2", "PRIMARY", "COMPLETED", 2), dep("ecs-svc/1", "ACTIVE", "COMPLETED", 1)), mem: memory(true, 0, nil)},
		{name: "with old, rolloutState not reported", svc: svcWith("ACTIVE", dep("ecs-svc/2", "PRIMARY", "", 2), dep("ecs-svc/1", "ACTIVE", "", 1)), mem: memory(true, 0, nil)},
		{name: "with old FAILED", svc: svcWith("ACTIVE", failedDep("ecs-svc/2", "PRIMARY"), dep("ecs-svc/1", "ACTIVE", "COMPLETED", 2)), mem: memory(true, 0, nil),
			await: true, reason: awaiting},

		// Ours gone, the previous deployment PRIMARY again: rolled back.
		{name: "gone, previous PRIMARY", svc: svcWith("ACTIVE", dep("ecs-svc/1", "PRIMARY", "IN_PROGRESS", 2)), mem: memory(true, 0, nil),
			want: RolloutRolledBack, reason: rolledBackTo1},
		{name: "gone, previous PRIMARY, last seen FAILED", svc: svcWith("ACTIVE", dep("ecs-svc/1", "PRIMARY", "COMPLETED", 2)), mem: memory(true, 1, &lastFailed),
			want: RolloutRolledBack, reason: rolledBackTo1 + ": " + breakerReason},
		{name: "gone, previous PRIMARY, last seen running", svc: svcWith("ACTIVE", dep("ecs-svc/1", "PRIMARY", "COMPLETED", 2)), mem: memory(true, 0, &lastRunning),
			want: RolloutRolledBack, reason: rolledBackTo1},

		// Ours ACTIVE under the previous PRIMARY (a rollback in progress), by our rolloutState.
		{name: "ACTIVE FAILED under previous", svc: svcWith("ACTIVE", dep("ecs-svc/1", "PRIMARY", "IN_PROGRESS", 1), failedDep("ecs-svc/2", "ACTIVE")), mem: memory(true, 2, nil),
			want: RolloutRolledBack, reason: rolledBackTo1 + ": " + breakerReason},
		{name: "ACTIVE IN_PROGRESS under previous", svc: svcWith("ACTIVE", dep("ecs-svc/1", "PRIMARY", "IN_PROGRESS", 1), dep("ecs-svc/2", "ACTIVE", "IN_PROGRESS", 1)), mem: memory(true, 0, nil),
			want: RolloutRolledBack, reason: rolledBackTo1},
		{name: "ACTIVE COMPLETED under previous", svc: svcWith("ACTIVE", dep("ecs-svc/1", "PRIMARY", "IN_PROGRESS", 1), dep("ecs-svc/2", "ACTIVE", "COMPLETED", 2)), mem: memory(true, 0, nil),
			want: RolloutRolledBack, reason: rolledBackTo1},
		{name: "ACTIVE, rolloutState not reported, under previous", svc: svcWith("ACTIVE", dep("ecs-svc/1", "PRIMARY", "", 1), dep("ecs-svc/2", "ACTIVE", "", 1)), mem: memory(false, 0, nil),
			want: RolloutRolledBack, reason: rolledBackTo1},

		// Ours ACTIVE under a PRIMARY that is not one it replaced: superseded.
		{name: "superseded IN_PROGRESS", svc: svcWith("ACTIVE", dep("ecs-svc/3", "PRIMARY", "IN_PROGRESS", 0), dep("ecs-svc/2", "ACTIVE", "IN_PROGRESS", 2)), mem: memory(true, 0, nil),
			want: RolloutFailed, reason: replacedBy3},
		{name: "superseded COMPLETED", svc: svcWith("ACTIVE", dep("ecs-svc/3", "PRIMARY", "IN_PROGRESS", 0), dep("ecs-svc/2", "ACTIVE", "COMPLETED", 2)), mem: memory(true, 0, nil),
			want: RolloutFailed, reason: replacedBy3},
		{name: "superseded, rolloutState not reported", svc: svcWith("ACTIVE", dep("ecs-svc/3", "PRIMARY", "", 0), dep("ecs-svc/2", "ACTIVE", "", 2)), mem: memory(true, 0, nil),
			want: RolloutFailed, reason: replacedBy3},
		{name: "superseded after FAILED", svc: svcWith("ACTIVE", dep("ecs-svc/3", "PRIMARY", "IN_PROGRESS", 0), failedDep("ecs-svc/2", "ACTIVE")), mem: memory(true, 0, nil),
			want: RolloutRolledBack, reason: "deployment ecs-svc/2 failed and ECS rolled back to deployment ecs-svc/3 (worker:9): " + breakerReason},
		{name: "superseded while awaiting the rollback", svc: svcWith("ACTIVE", dep("ecs-svc/3", "PRIMARY", "IN_PROGRESS", 0), dep("ecs-svc/2", "ACTIVE", "IN_PROGRESS", 0)), mem: memory(true, 1, nil),
			want: RolloutRolledBack, reason: "deployment ecs-svc/2 failed and ECS rolled back to deployment ecs-svc/3 (worker:9)"},
		{name: "gone, no PRIMARY at all", svc: svcWith("ACTIVE"), mem: memory(true, 0, nil),
			want: RolloutFailed, reason: "deployment ecs-svc/2 was replaced by another deployment, not started by this run"},

		// The Service Deployments API's view.
		{name: "sd IN_PROGRESS holds a completed list", svc: svcWith("ACTIVE", dep("ecs-svc/2", "PRIMARY", "COMPLETED", 2)), sd: sdOf("IN_PROGRESS", "", ""), mem: memory(true, 0, nil)},
		{name: "sd IN_PROGRESS while rolling", svc: svcWith("ACTIVE", dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 1), dep("ecs-svc/1", "ACTIVE", "COMPLETED", 1)), sd: sdOf("IN_PROGRESS", "", ""), mem: memory(true, 0, nil)},
		{name: "sd SUCCESSFUL before the list settles", svc: svcWith("ACTIVE", dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 2), dep("ecs-svc/1", "ACTIVE", "COMPLETED", 0)),
			sd: sdOf("SUCCESSFUL", "", ""), mem: memory(true, 0, nil), want: RolloutSucceeded, reason: completed + " (service deployment SUCCESSFUL)"},
		{name: "sd SUCCESSFUL but ours FAILED", svc: svcWith("ACTIVE", failedDep("ecs-svc/2", "PRIMARY")), sd: sdOf("SUCCESSFUL", "", ""), mem: memory(true, 0, nil),
			await: true, reason: awaiting},
		{name: "sd SUCCESSFUL but ours gone", svc: svcWith("ACTIVE", dep("ecs-svc/1", "PRIMARY", "COMPLETED", 2)), sd: sdOf("SUCCESSFUL", "", ""), mem: memory(true, 0, nil),
			want: RolloutRolledBack, reason: rolledBackTo1},
		{name: "sd ROLLBACK_IN_PROGRESS", svc: svcWith("ACTIVE", failedDep("ecs-svc/2", "PRIMARY"), dep("ecs-svc/1", "ACTIVE", "COMPLETED", 2)),
			sd: sdOf("ROLLBACK_IN_PROGRESS", "tasks failed to start", "Circuit Breaker has been triggered"), mem: memory(true, 0, nil), want: RolloutRolledBack,
			reason: "deployment ecs-svc/2 failed and ECS rolled back to deployment ecs-svc/1 (worker:7) (service deployment ROLLBACK_IN_PROGRESS: tasks failed to start; rollback: Circuit Breaker has been triggered)"},
		{name: "sd ROLLBACK_SUCCESSFUL, ours still listed PRIMARY", svc: svcWith("ACTIVE", dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 2)),
			sd: sdOf("ROLLBACK_SUCCESSFUL", "", ""), mem: memory(true, 0, nil), want: RolloutRolledBack,
			reason: "deployment ecs-svc/2 failed and ECS rolled back to deployment ecs-svc/1 (worker:7) (service deployment ROLLBACK_SUCCESSFUL)"},
		{name: "sd ROLLBACK_SUCCESSFUL, no deployment replaced known", svc: svcWith("ACTIVE", dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 2)),
			sd: sdOf("ROLLBACK_SUCCESSFUL", "", ""), mem: func() rolloutMemory { m := memory(true, 0, nil); m.Ours.Previous = nil; return m }(),
			want: RolloutRolledBack, reason: "deployment ecs-svc/2 failed and ECS rolled back (service deployment ROLLBACK_SUCCESSFUL)"},
		{name: "sd ROLLBACK_FAILED", svc: svcWith("ACTIVE", dep("ecs-svc/1", "PRIMARY", "IN_PROGRESS", 0)),
			sd: sdOf("ROLLBACK_FAILED", "", "rollback target failed too"), mem: memory(true, 0, nil), want: RolloutRolledBack,
			reason: "deployment ecs-svc/2 failed and ECS rolled back to deployment ecs-svc/1 (worker:7) (service deployment ROLLBACK_FAILED: rollback: rollback target failed too)"},
		{name: "sd STOPPED", svc: svcWith("ACTIVE", dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 1)), sd: sdOf("STOPPED", "", ""), mem: memory(true, 0, nil),
			want: RolloutFailed, reason: "deployment ecs-svc/2 was stopped (service deployment STOPPED)"},
		{name: "sd STOPPED with a reason, superseded", svc: svcWith("ACTIVE", dep("ecs-svc/3", "PRIMARY", "IN_PROGRESS", 0), dep("ecs-svc/2", "ACTIVE", "IN_PROGRESS", 2)),
			sd: sdOf("STOPPED", "a newer deployment started", ""), mem: memory(true, 0, nil),
			want: RolloutFailed, reason: "deployment ecs-svc/2 was replaced by deployment ecs-svc/3 (worker:9), not started by this run (service deployment STOPPED: a newer deployment started)"},
		{name: "sd STOP_REQUESTED", svc: svcWith("ACTIVE", dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 1)), sd: sdOf("STOP_REQUESTED", "", ""), mem: memory(true, 0, nil),
			want: RolloutFailed, reason: "deployment ecs-svc/2 was stopped (service deployment STOP_REQUESTED)"},

		// The service itself.
		{name: "service DRAINING", svc: svcWith("DRAINING", dep("ecs-svc/2", "PRIMARY", "COMPLETED", 2)), mem: memory(true, 0, nil),
			want: RolloutFailed, reason: `service "worker" became DRAINING during the rollout`},
		{name: "service DRAINING wins over a rollback", svc: svcWith("DRAINING", dep("ecs-svc/1", "PRIMARY", "COMPLETED", 2)), sd: sdOf("ROLLBACK_SUCCESSFUL", "", ""),
			mem: memory(true, 0, nil), want: RolloutFailed, reason: `service "worker" became DRAINING during the rollout`},
		{name: "service INACTIVE", svc: svcWith("INACTIVE"), mem: memory(true, 0, nil),
			want: RolloutFailed, reason: `service "worker" became INACTIVE during the rollout`},
		{name: "service gone", svc: nil, mem: memory(true, 0, nil),
			want: RolloutFailed, reason: `service "worker" no longer exists in cluster "prod"`},
		{name: "service gone, with an sd", svc: nil, sd: sdOf("SUCCESSFUL", "", ""), mem: memory(true, 0, nil),
			want: RolloutFailed, reason: `service "worker" no longer exists in cluster "prod"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := judge(tt.svc, tt.sd, tt.mem)
			if got.Result != tt.want || got.AwaitRollback != tt.await || got.Reason != tt.reason {
				t.Errorf("judge = {%q await=%v %q}\n          want {%q await=%v %q}", got.Result, got.AwaitRollback, got.Reason,
					tt.want, tt.await, tt.reason)
			}
		})
	}
}

// TestJudgeRollbackPatience plays polls of a deployment that FAILED with rollback on, the way
// the rollout phase feeds the memory: AwaitRollback for rollbackPatience polls, then failed —
// unless ECS rolls back meanwhile.
func TestJudgeRollbackPatience(t *testing.T) {
	failed := svcWith("ACTIVE", failedDep("ecs-svc/2", "PRIMARY"), dep("ecs-svc/1", "ACTIVE", "COMPLETED", 2))
	rolledBack := svcWith("ACTIVE", dep("ecs-svc/1", "PRIMARY", "IN_PROGRESS", 2), failedDep("ecs-svc/2", "ACTIVE"))
	for _, rollbackAt := range []int{0, 3, rollbackPatience} { // 0: never
		m := memory(true, 0, nil)
		var v rolloutVerdict
		polls := 0
		for polls < 20 {
			polls++
			svc := failed
			if rollbackAt > 0 && polls == rollbackAt {
				svc = rolledBack
			}
			v = judge(svc, nil, m)
			if !v.AwaitRollback {
				break
			}
			m.RollingBack++
		}
		switch rollbackAt {
		case 0:
			if v.Result != RolloutFailed || polls != rollbackPatience+1 ||
				v.Reason != "deployment ecs-svc/2 FAILED: "+breakerReason+"; no rollback seen within 5 polls" {
				t.Errorf("no rollback: after %d polls %+v, want failed after %d", polls, v, rollbackPatience+1)
			}
		default:
			if v.Result != RolloutRolledBack || polls != rollbackAt || v.Reason != rolledBackTo1+": "+breakerReason {
				t.Errorf("rollback at poll %d: after %d polls %+v, want rolled back", rollbackAt, polls, v)
			}
		}
	}
}

func TestExitVerdict(t *testing.T) {
	p := proc(2)
	exit := func(code int32) *int32 { return &code }
	stopped := func(codes ...*int32) *ecs.Task {
		tk := task(2)
		tk.LastStatus, tk.DesiredStatus = "STOPPED", "STOPPED"
		for i, c := range codes {
			tk.Containers = append(tk.Containers, ecs.Container{Name: []string{"sidekiq", "envoy"}[i], ExitCode: c})
		}
		return &tk
	}
	withEvidence := func(o sidekiq.Observation, ev string) sidekiq.Observation { o.Evidence = ev; return o }
	const killedEv = "task t2 container sidekiq exited 137 (SIGKILL after stopTimeout)"
	tests := []struct {
		name     string
		o        sidekiq.Observation
		task     *ecs.Task
		want     ExitVerdict
		evidence string
	}{
		{"gone", withEvidence(obs(p, stGone), "left processes with its heartbeat"), nil, ExitClean, "left processes with its heartbeat"},
		{"gone, container later killed", withEvidence(obs(p, stGone), "left"), stopped(exit(137)), ExitClean, "left"},
		{"dead", withEvidence(obs(p, stDead), "heartbeat expired"), nil, ExitKilled, "heartbeat expired"},
		{"dead, task exited 0", withEvidence(obs(p, stDead), "heartbeat expired"), stopped(exit(0)), ExitKilled, "heartbeat expired"},
		{"quiet, container exited 137", obs(p, stQuiet), stopped(exit(137)), ExitKilled, killedEv},
		{"drained, container exited 137", obs(p, stDrained), stopped(exit(137)), ExitKilled, killedEv},
		{"unknown, container exited 137", obs(p, stUnknown), stopped(exit(137)), ExitKilled, killedEv},
		{"sidecar exited 137", obs(p, stQuiet), stopped(exit(0), exit(137)), ExitKilled,
			"task t2 container envoy exited 137 (SIGKILL after stopTimeout)"},
		{"alive, no task", obs(p, stQuiet), nil, ExitUnknown, ""},
		{"running, no task", obs(p, stRunning), nil, ExitUnknown, ""},
		{"alive, task exited 0", obs(p, stDrained), stopped(exit(0)), ExitUnknown, ""},
		{"alive, task exited 143", obs(p, stQuiet), stopped(exit(143)), ExitUnknown, ""},
		{"alive, task still running", obs(p, stQuiet), stopped(nil), ExitUnknown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ev := exitVerdict(tt.o, tt.task)
			if got != tt.want || ev != tt.evidence {
				t.Errorf("exitVerdict = %s %q, want %s %q", got, ev, tt.want, tt.evidence)
			}
		})
	}
}
