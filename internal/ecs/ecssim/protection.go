package ecssim

import (
	"strings"
	"time"
)

// Task scale-in protection limits, as ECS documents them.
const (
	maxProtectTasks         = 10   // tasks per UpdateTaskProtection call
	maxGetProtectionTasks   = 100  // tasks per GetTaskProtection call
	defaultProtectMinutes   = 120  // expiresInMinutes when unset
	maxProtectMinutes       = 2880 // 48 hours
	reasonTaskNotValid      = "TASK_NOT_VALID"
	reasonDeploymentBlocked = "DEPLOYMENT_BLOCKED"
)

// protected reports whether the task's scale-in protection is on at now.
func (t *task) protected(now time.Time) bool {
	return !t.protectedUntil.IsZero() && now.Before(t.protectedUntil)
}

// expireProtection clears the protection of a task whose expiry has passed, as ECS resets
// protectionEnabled to false then.
func (s *Sim) expireProtection(t *task, now time.Time) {
	if !t.protectedUntil.IsZero() && !now.Before(t.protectedUntil) {
		t.protectedUntil = time.Time{}
		s.logf("ecssim: task %s protection expired", t.id)
	}
}

// protectedCount is the number of the service's tasks still wanted and protected at now.
func (svc *service) protectedCount(now time.Time) int {
	n := 0
	for _, t := range svc.tasks {
		if t.wanted() && t.protected(now) {
			n++
		}
	}
	return n
}

func (s *Sim) taskARNFor(c *cluster, ref string) string {
	if strings.HasPrefix(ref, "arn:") {
		return ref
	}
	return s.arn("task/" + c.name + "/" + ref)
}

func protectedTaskJSON(t *task, now time.Time) map[string]any {
	on := t.wanted() && t.protected(now)
	out := map[string]any{"taskArn": t.arn, "protectionEnabled": on}
	if on {
		out["expirationDate"] = ts(t.protectedUntil)
	}
	return out
}

func opUpdateTaskProtection(s *Sim, body []byte) (any, error) {
	var in struct {
		Cluster           string   `json:"cluster"`
		Tasks             []string `json:"tasks"`
		ProtectionEnabled bool     `json:"protectionEnabled"`
		ExpiresInMinutes  *int32   `json:"expiresInMinutes"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	c := s.findCluster(in.Cluster)
	if c == nil {
		return nil, clusterNotFound()
	}
	if len(in.Tasks) == 0 || len(in.Tasks) > maxProtectTasks {
		return nil, invalidParam("tasks must hold 1 to %d task IDs or ARNs.", maxProtectTasks)
	}
	minutes := int32(defaultProtectMinutes)
	if in.ExpiresInMinutes != nil {
		minutes = *in.ExpiresInMinutes
	}
	if in.ProtectionEnabled && (minutes < 1 || minutes > maxProtectMinutes) {
		return nil, invalidParam("expiresInMinutes must be between 1 and %d.", maxProtectMinutes)
	}
	now := s.now()
	protected, failures := []any{}, []failure{}
	for _, ref := range in.Tasks {
		t := c.findTask(ref)
		if t == nil || !t.wanted() || !t.live() {
			failures = append(failures, failure{Arn: s.taskARNFor(c, ref), Reason: reasonTaskNotValid,
				Detail: "The task is not a running task of a service: it does not exist or has stopped."})
			continue
		}
		if in.ProtectionEnabled {
			if !t.protected(now) && t.svc.protectedCount(now)+1 > int(t.svc.desired) {
				failures = append(failures, failure{Arn: t.arn, Reason: reasonDeploymentBlocked,
					Detail: "Protecting the task would hold more protected tasks than the service's desired count, blocking its deployment."})
				continue
			}
			t.protectedUntil = now.Add(s.scaled(time.Duration(minutes) * time.Minute))
			s.logf("ecssim: task %s protected for %d min", t.id, minutes)
		} else if !t.protectedUntil.IsZero() {
			t.protectedUntil = time.Time{}
			s.logf("ecssim: task %s protection cleared", t.id)
		}
		protected = append(protected, protectedTaskJSON(t, now))
	}
	return map[string]any{"protectedTasks": protected, "failures": failures}, nil
}

func opGetTaskProtection(s *Sim, body []byte) (any, error) {
	var in struct {
		Cluster string   `json:"cluster"`
		Tasks   []string `json:"tasks"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	c := s.findCluster(in.Cluster)
	if c == nil {
		return nil, clusterNotFound()
	}
	if len(in.Tasks) > maxGetProtectionTasks {
		return nil, invalidParam("tasks must hold at most %d task IDs or ARNs.", maxGetProtectionTasks)
	}
	now := s.now()
	protected, failures := []any{}, []failure{}
	if len(in.Tasks) == 0 {
		for _, n := range c.order {
			for _, t := range c.services[n].tasks {
				if t.wanted() && t.protected(now) {
					protected = append(protected, protectedTaskJSON(t, now))
				}
			}
		}
		return map[string]any{"protectedTasks": protected, "failures": failures}, nil
	}
	for _, ref := range in.Tasks {
		t := c.findTask(ref)
		if t == nil {
			failures = append(failures, failure{Arn: s.taskARNFor(c, ref), Reason: reasonTaskNotValid,
				Detail: "The task does not exist or is not a task of a service."})
			continue
		}
		protected = append(protected, protectedTaskJSON(t, now))
	}
	return map[string]any{"protectedTasks": protected, "failures": failures}, nil
}
