package drain

import (
	"github.com/drainctl/drainctl/internal/check"
	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// CheckInput is what drainctl check needs to lint a service's task definition td: the
// preflight, `check --cluster/--service` and status read it the same way.
func CheckInput(td *ecs.TaskDefinitionInfo, st ecs.ServiceState) check.Input {
	return check.Input{Source: td.ARN, TaskDefinition: checkTaskDefinition(td), LaunchType: st.LaunchType,
		Deployment: checkDeployment(st)}
}

// MatchTask places a Sidekiq process in one of the tasks (by private IP, task ARN or
// container runtime ID, as sidekiq.MatchTask describes).
func MatchTask(p sidekiq.Process, tasks []ecs.Task) (ecs.Task, bool) {
	a, ok := sidekiq.MatchTask(p, taskAddresses(tasks))
	if !ok {
		return ecs.Task{}, false
	}
	for _, t := range tasks {
		if t.ARN == a.TaskARN {
			return t, true
		}
	}
	return ecs.Task{}, false
}
