package drain

import (
	"context"
	"fmt"

	"github.com/drainctl/drainctl/internal/check"
	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// LiveService is what `drainctl check --cluster --service` reads of ECS; *ecs.Client
// satisfies it.
type LiveService interface {
	Describe(ctx context.Context, refs []ecs.ServiceRef) ([]ecs.ServiceState, error)
	TaskDefinition(ctx context.Context, name string) (*ecs.TaskDefinitionInfo, error)
	Tasks(ctx context.Context, ref ecs.ServiceRef, desired string) ([]ecs.Task, error)
}

var _ LiveService = (*ecs.Client)(nil)

// LiveCheckOptions are the check's own inputs besides the services.
type LiveCheckOptions struct {
	// Container names the Sidekiq container; empty lets the check choose.
	Container string
	// Scripts are entry point scripts the image runs.
	Scripts []check.ScriptFile
	// LaunchType overrides the service's (FARGATE, EC2); empty means the service's.
	LaunchType string
	// Fleet, when not nil, is the Sidekiq fleet: processes that vanished from the services'
	// tasks without leaving `processes` are evidence of kills.
	Fleet *sidekiq.Snapshot
}

// NoContainerError means the check could not settle on a Sidekiq container (bad input: name it).
type NoContainerError struct{ Err error }

func (e *NoContainerError) Error() string { return e.Err.Error() }
func (e *NoContainerError) Unwrap() error { return e.Err }

// LiveCheckInputs reads each service's current task definition and deployment configuration,
// its recently stopped tasks (a Sidekiq container that exited 137 was killed after
// stopTimeout) and, with a fleet, the processes of its tasks that vanished without removing
// themselves: the check's inputs. Warnings are reads that failed but leave a check possible.
func LiveCheckInputs(ctx context.Context, svc LiveService, refs []ecs.ServiceRef, opt LiveCheckOptions) (inputs []check.Input, warnings []string, err error) {
	states, err := svc.Describe(ctx, refs)
	if err != nil {
		return nil, nil, err
	}
	for _, st := range states {
		td, err := svc.TaskDefinition(ctx, st.TaskDefinition)
		if err != nil {
			return nil, warnings, fmt.Errorf("service %s: read its task definition %s: %w", st.Ref, st.TaskDefinition, err)
		}
		in := CheckInput(td, st)
		in.Container, in.EntrypointScripts = opt.Container, opt.Scripts
		if opt.LaunchType != "" {
			in.LaunchType = opt.LaunchType
		}
		// The container the checks settle on names the exit code that matters.
		first, err := check.Run(in)
		if err != nil {
			return nil, warnings, &NoContainerError{Err: err}
		}
		name := opt.Container
		if name == "" && len(first.Targets) > 0 {
			name = first.Targets[0].Container
		}
		live := &check.Live{}
		stopped, err := svc.Tasks(ctx, st.Ref, "STOPPED")
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("list stopped tasks of %s: %v", st.Ref, err))
		}
		all := append([]ecs.Task(nil), stopped...)
		for _, t := range stopped {
			for _, ct := range t.Containers {
				if ct.Name != name {
					continue
				}
				stt := check.StoppedTask{TaskID: t.ID, Container: ct.Name, StopCode: t.StopCode, Reason: ct.Reason}
				if ct.ExitCode != nil {
					v := int(*ct.ExitCode)
					stt.ExitCode = &v
				}
				live.StoppedTasks = append(live.StoppedTasks, stt)
			}
		}
		if opt.Fleet != nil {
			running, err := svc.Tasks(ctx, st.Ref, "RUNNING")
			if err != nil {
				warnings = append(warnings, fmt.Sprintf("list running tasks of %s: %v", st.Ref, err))
			}
			all = append(all, running...)
			for _, p := range opt.Fleet.Processes {
				if p.HashExists {
					continue
				}
				if _, ok := MatchTask(p, all); ok {
					live.VanishedProcesses++
					live.Vanished = append(live.Vanished, p.Identity)
				}
			}
		}
		in.Live = live
		inputs = append(inputs, in)
	}
	return inputs, warnings, nil
}
