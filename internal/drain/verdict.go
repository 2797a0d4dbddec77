package drain

import (
	"fmt"
	"strings"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// rollbackPatience is how many polls the rollout watch waits, after our deployment turned
// FAILED with rollback enabled, for ECS to make another deployment PRIMARY.
const rollbackPatience = 5

// rolloutMemory is what the verdict needs from before this poll.
type rolloutMemory struct {
	// Ours is the deployment our UpdateService started, with the deployments it replaced.
	Ours ecs.DeployResult
	// RollingBack counts the polls since ours turned FAILED with rollback on.
	RollingBack int
	// LastOurs is our deployment as last seen (its rolloutStateReason outlives it).
	LastOurs *ecs.Deployment
}

// rolloutVerdict is where a rollout stands after one poll.
type rolloutVerdict struct {
	// Result is empty while the rollout runs.
	Result RolloutResult
	Reason string
	// AwaitRollback: ours FAILED with rollback on; the next polls should see ECS roll back.
	AwaitRollback bool
}

// judge decides a rollout from one read of its service: svc is nil when the service no longer
// exists; sd is the Service Deployments API's view of our deployment, nil when unknown.
//
// The Service Deployments API is the verdict where it answers, for every strategy: only
// SUCCESSFUL is success; ROLLBACK_* is a rollback and STOPPED a failure; while it is in
// progress, a failure the deployments list shows (ours replaced, FAILED) still counts.
// Without it, the deployment-ID rule judges: success is our deployment PRIMARY, COMPLETED
// where reported, running == desired and no other deployment left; failure is our deployment
// gone or no longer PRIMARY (rolled back when ECS went back to a deployment ours replaced, or
// when ours had FAILED; superseded otherwise), FAILED without a rollback, or the service no
// longer ACTIVE. Stable is not succeeded: a rolled-back service is stable too.
func judge(svc *ecs.ServiceState, sd *ecs.ServiceDeploymentInfo, m rolloutMemory) rolloutVerdict {
	v := judgeDeployments(svc, m)
	if sd == nil || sd.Status == "" || svc == nil || svc.Status != "ACTIVE" {
		return v // a service gone or no longer ACTIVE fails whatever the API says
	}
	id := m.Ours.DeploymentID
	suffix := " (service deployment " + sd.Status + sdWhy(sd) + ")"
	switch {
	case sd.Status == "SUCCESSFUL":
		if v.Result != "" && v.Result != RolloutSucceeded || v.AwaitRollback {
			return v // the deployments list says otherwise (ours FAILED or replaced): it decides
		}
		reason := fmt.Sprintf("deployment %s completed (service deployment SUCCESSFUL)", id)
		if ours := svc.Deployment(id); ours != nil {
			reason = fmt.Sprintf("deployment %s completed: %d/%d tasks running (service deployment SUCCESSFUL)", id, ours.Running, ours.Desired)
		}
		return rolloutVerdict{Result: RolloutSucceeded, Reason: reason}
	case strings.HasPrefix(sd.Status, "ROLLBACK_"):
		if v.Result == RolloutRolledBack {
			return rolloutVerdict{Result: RolloutRolledBack, Reason: v.Reason + suffix}
		}
		// The API can say so before the deployments list shows it: ECS rolls back to the
		// deployment ours replaced.
		return rolloutVerdict{Result: RolloutRolledBack, Reason: fmt.Sprintf("deployment %s failed and ECS rolled back%s%s", id, rollbackTarget(m), suffix)}
	case sd.Status == "STOPPED" || sd.Status == "STOP_REQUESTED":
		if v.Result == RolloutFailed {
			return rolloutVerdict{Result: RolloutFailed, Reason: v.Reason + suffix}
		}
		return rolloutVerdict{Result: RolloutFailed, Reason: fmt.Sprintf("deployment %s was stopped%s", id, suffix)}
	case v.Result == RolloutSucceeded:
		// The deployments list looks done, but the service deployment is not SUCCESSFUL yet
		// (a bake time, a hook, a deferred clean-up): wait for it.
		return rolloutVerdict{}
	}
	return v
}

// judgeDeployments is the deployment-ID rule alone (see judge).
func judgeDeployments(svc *ecs.ServiceState, m rolloutMemory) rolloutVerdict {
	id := m.Ours.DeploymentID
	if svc == nil {
		return rolloutVerdict{Result: RolloutFailed, Reason: fmt.Sprintf("service %q no longer exists in cluster %q",
			lastSegment(m.Ours.Ref.Service), lastSegment(m.Ours.Ref.Cluster))}
	}
	ours, primary := svc.Deployment(id), svc.Primary()
	switch {
	case svc.Status != "ACTIVE":
		return rolloutVerdict{Result: RolloutFailed, Reason: fmt.Sprintf("service %q became %s during the rollout", lastSegment(m.Ours.Ref.Service), svc.Status)}

	case ours == nil || ours.Status != "PRIMARY":
		target := "another deployment"
		if primary != nil {
			target = fmt.Sprintf("deployment %s (%s)", primary.ID, shortTD(primary.TaskDefinition))
		}
		why := ""
		if ours != nil && ours.RolloutStateReason != "" {
			why = ": " + ours.RolloutStateReason
		} else if m.LastOurs != nil && m.LastOurs.RolloutStateReason != "" {
			why = ": " + m.LastOurs.RolloutStateReason
		}
		replacedByOld := false
		for _, p := range m.Ours.Previous {
			replacedByOld = replacedByOld || primary != nil && p.ID == primary.ID
		}
		if replacedByOld || m.RollingBack > 0 || (ours != nil && ours.RolloutState == "FAILED") {
			return rolloutVerdict{Result: RolloutRolledBack, Reason: fmt.Sprintf("deployment %s failed and ECS rolled back to %s%s", id, target, why)}
		}
		return rolloutVerdict{Result: RolloutFailed, Reason: fmt.Sprintf("deployment %s was replaced by %s, not started by this run%s", id, target, why)}

	case ours.RolloutState == "FAILED":
		reason := ours.RolloutStateReason
		if reason == "" {
			reason = "rolloutState FAILED"
		}
		if m.Ours.BreakerRollback && m.RollingBack < rollbackPatience {
			return rolloutVerdict{AwaitRollback: true, Reason: fmt.Sprintf("deployment %s FAILED (%s): waiting for ECS to roll back", id, reason)}
		}
		if m.RollingBack > 0 {
			reason += fmt.Sprintf("; no rollback seen within %d polls", m.RollingBack)
		}
		return rolloutVerdict{Result: RolloutFailed, Reason: fmt.Sprintf("deployment %s FAILED: %s", id, reason)}

	case (ours.RolloutState == "" || ours.RolloutState == "COMPLETED") && ours.Running == ours.Desired && len(svc.Deployments) == 1:
		return rolloutVerdict{Result: RolloutSucceeded, Reason: fmt.Sprintf("deployment %s completed: %d/%d tasks running", id, ours.Running, ours.Desired)}
	}
	return rolloutVerdict{}
}

// rollbackTarget names the deployment a rollback returns to: the one ours replaced (listed
// PRIMARY, or the first of the others UpdateService listed), or "" when none is known.
func rollbackTarget(m rolloutMemory) string {
	prev := m.Ours.Previous
	if len(prev) == 0 {
		return ""
	}
	p := prev[0]
	for _, d := range prev {
		if d.Status == "PRIMARY" {
			p = d
		}
	}
	return fmt.Sprintf(" to deployment %s (%s)", p.ID, shortTD(p.TaskDefinition))
}

// sdWhy is the service deployment's own reason, for a verdict's message.
func sdWhy(sd *ecs.ServiceDeploymentInfo) string {
	var parts []string
	if sd.StatusReason != "" {
		parts = append(parts, sd.StatusReason)
	}
	if sd.RollbackReason != "" {
		parts = append(parts, "rollback: "+sd.RollbackReason)
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, "; ")
}

// lastSegment is the name part of a name or ARN.
func lastSegment(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// ExitVerdict is how an old process left.
type ExitVerdict string

// Exit verdicts.
const (
	// ExitUnknown: it has not left yet, or nothing yet proves how.
	ExitUnknown ExitVerdict = "unknown"
	// ExitClean: Sidekiq shut down by itself (it requeued what it had not finished).
	ExitClean ExitVerdict = "clean"
	// ExitKilled: it died without its shutdown (SIGKILL, OOM): its jobs need a rescue.
	ExitKilled ExitVerdict = "killed"
)

// exitVerdict decides how an old process left from what Redis showed of it (the watcher's
// observation) and what ECS says of its task (nil when unknown or not placed). A container
// exit code 137 is SIGKILL, proof of a kill even while Redis still shows the heartbeat hash;
// a process that left `processes` with its hash still there shut down cleanly, whatever its
// container's exit code says afterwards.
func exitVerdict(o sidekiq.Observation, task *ecs.Task) (ExitVerdict, string) {
	switch o.State {
	case sidekiq.StateGone:
		return ExitClean, o.Evidence
	case sidekiq.StateDead:
		return ExitKilled, o.Evidence
	}
	if task != nil {
		if c, killed := task.Killed(); killed {
			return ExitKilled, fmt.Sprintf("task %s container %s exited 137 (SIGKILL after stopTimeout)", task.ID, c.Name)
		}
	}
	return ExitUnknown, ""
}
