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
	return NewTaskMatcher(tasks)(p)
}

// NewTaskMatcher is MatchTask over a fixed set of tasks, their addresses worked out once: for
// the loops that place every process of the fleet.
func NewTaskMatcher(tasks []ecs.Task) func(sidekiq.Process) (ecs.Task, bool) {
	addrs := taskAddresses(tasks)
	byARN := make(map[string]ecs.Task, len(tasks))
	for _, t := range tasks {
		byARN[t.ARN] = t
	}
	return func(p sidekiq.Process) (ecs.Task, bool) {
		a, ok := sidekiq.MatchTask(p, addrs)
		if !ok {
			return ecs.Task{}, false
		}
		t, ok := byARN[a.TaskARN]
		return t, ok
	}
}
