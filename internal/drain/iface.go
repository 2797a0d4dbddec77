package drain

import (
	"context"
	"time"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// Fleet is the Sidekiq side of a run: what drain reads from and writes to Redis.
// *sidekiq.Client satisfies it.
type Fleet interface {
	// Ping checks that Redis is reachable and writable (a short-lived probe key, not a change
	// to the fleet; dry runs call it too).
	Ping(ctx context.Context) error
	// Snapshot reads every process of the fleet with its in-flight jobs.
	Snapshot(ctx context.Context) (*sidekiq.Snapshot, error)
	// Processes reads every process's heartbeat without the in-flight jobs: all that a quiet
	// without waiting needs.
	Processes(ctx context.Context) (*sidekiq.Snapshot, error)
	// SnapshotOf reads the given identities whether or not they are still listed; a process
	// whose heartbeat hash expired comes back with HashExists false.
	SnapshotOf(ctx context.Context, identities []string) (*sidekiq.Snapshot, error)
	// QueueStats reads the size and latency of the given queues.
	QueueStats(ctx context.Context, queues []string, now time.Time) ([]sidekiq.QueueStat, error)
	// Quiet sends TSTP to each identity through its signal list (one-way: no un-quiet).
	Quiet(ctx context.Context, identities []string) error
	// Stop sends TERM to each identity: Sidekiq requeues unfinished jobs and exits.
	Stop(ctx context.Context, identities []string) error
	// Rescue requeues the jobs of dead processes exactly once per death of a process.
	Rescue(ctx context.Context, jobs []sidekiq.Job, opt sidekiq.RescueOptions) (sidekiq.RescueResult, error)
	// AcquireLock takes the named deploy lock. It returns an error satisfying
	// errors.As(err, **sidekiq.LockHeldError) when another live run holds it.
	AcquireLock(ctx context.Context, name string, owner sidekiq.LockOwner, ttl time.Duration) (*sidekiq.Lock, error)
	// LockHolder reports who holds the named lock without taking it; nil when it is free.
	LockHolder(ctx context.Context, name string) (*sidekiq.LockOwner, error)
}

// ECS is the service side of a run: what drain reads and changes through the ECS API.
// *ecs.Client satisfies it. Errors match ecs.ErrNotFound, ecs.ErrAccessDenied,
// ecs.ErrRefused or ecs.ErrUnsupported where they mean that.
type ECS interface {
	// Describe reads the services with their deployments, configuration and latest events.
	Describe(ctx context.Context, refs []ecs.ServiceRef) ([]ecs.ServiceState, error)
	// CheckClusters fails for each cluster that does not exist or is not ACTIVE.
	CheckClusters(ctx context.Context, clusters []string) error
	// TaskDefinition describes a task definition (ARN, family:revision, or family for its
	// latest ACTIVE revision).
	TaskDefinition(ctx context.Context, name string) (*ecs.TaskDefinitionInfo, error)
	// Deploy makes exactly one UpdateService call (a forced new deployment of
	// taskDefinition, or of the current one when it is empty) and returns our deployment.
	Deploy(ctx context.Context, ref ecs.ServiceRef, taskDefinition string) (ecs.DeployResult, error)
	// Tasks lists the service's tasks with the desired status "RUNNING", "STOPPED", or both ("").
	Tasks(ctx context.Context, ref ecs.ServiceRef, desired string) ([]ecs.Task, error)
	// StoppedTasksOf lists the stopped tasks a deployment started.
	StoppedTasksOf(ctx context.Context, ref ecs.ServiceRef, deploymentID string) ([]ecs.Task, error)
	// StopTasks stops the given tasks so the service replaces them.
	StopTasks(ctx context.Context, cluster string, taskARNs []string, reason string) error
	// ServiceDeploymentOf reads our deployment in the Service Deployments API; nil, nil when
	// it is not there (yet).
	ServiceDeploymentOf(ctx context.Context, dep ecs.DeployResult) (*ecs.ServiceDeploymentInfo, error)
	// ServiceDeployment re-reads a service deployment by ARN (status, lifecycle stage, hooks).
	ServiceDeployment(ctx context.Context, ref ecs.ServiceRef, arn string) (*ecs.ServiceDeploymentInfo, error)
	// ContinueDeployment answers a PAUSE lifecycle hook with CONTINUE or ROLLBACK.
	ContinueDeployment(ctx context.Context, ref ecs.ServiceRef, serviceDeploymentARN, hookID, action string) error
	// ProtectTasks sets scale-in protection on the tasks for expiresIn, so a deployment cannot
	// stop them; ECS's per-task refusals come back as failures (TASK_NOT_VALID,
	// DEPLOYMENT_BLOCKED), a refused call as an error (ecs.ErrAccessDenied, ecs.ErrUnsupported).
	ProtectTasks(ctx context.Context, cluster string, taskARNs []string, expiresIn time.Duration) ([]ecs.TaskProtection, []ecs.ProtectionFailure, error)
	// UnprotectTasks clears the scale-in protection of the tasks (ECS may then stop them).
	UnprotectTasks(ctx context.Context, cluster string, taskARNs []string) ([]ecs.ProtectionFailure, error)
	// TaskProtections reads the tasks' scale-in protection.
	TaskProtections(ctx context.Context, cluster string, taskARNs []string) ([]ecs.TaskProtection, []ecs.ProtectionFailure, error)
}

// ProcessWatcher follows a fixed set of processes, one poll at a time. *sidekiq.Watcher
// satisfies it.
type ProcessWatcher interface {
	// Poll reads the processes once and returns one observation per identity. A Redis error
	// is returned with the previous observations; the Runner retries at the next tick.
	Poll(ctx context.Context) ([]sidekiq.Observation, error)
	// MarkDead records external evidence (an ECS container exit code 137) that the process
	// was killed, so later polls report it dead without waiting for its heartbeat to expire.
	MarkDead(identity, evidence string)
}

// Observer receives the Runner's events as they happen; the report package draws them.
// Methods are called from the goroutine running Run and must not block for long.
type Observer interface {
	PhaseStarted(p Phase, at time.Time)
	PhaseEnded(p Phase, at time.Time, err error)
	DrainProgress(p DrainProgress)
	RolloutPoll(p RolloutPoll)
	Warning(message string)
}

// NopObserver ignores every event.
type NopObserver struct{}

// PhaseStarted ignores the event.
func (NopObserver) PhaseStarted(Phase, time.Time) {}

// PhaseEnded ignores the event.
func (NopObserver) PhaseEnded(Phase, time.Time, error) {}

// DrainProgress ignores the event.
func (NopObserver) DrainProgress(DrainProgress) {}

// RolloutPoll ignores the event.
func (NopObserver) RolloutPoll(RolloutPoll) {}

// Warning ignores the event.
func (NopObserver) Warning(string) {}

// DrainProgress is one poll of the quiet, drain and exits waits.
type DrainProgress struct {
	Phase Phase     `json:"phase"`
	At    time.Time `json:"at"`
	// Total is the number of jobs in flight when the selection was quieted.
	Total int `json:"total"`
	// Remaining is the number of jobs still in flight on the selected processes.
	Remaining int `json:"remaining"`
	// Processes counts the selected processes by state.
	Processes map[sidekiq.State]int `json:"processes"`
	// Longest are the longest-running remaining jobs, longest first (at most 5).
	Longest []RunningJob `json:"longest,omitempty"`
	// Deadline is when the phase's budget runs out; zero when unbounded.
	Deadline time.Time `json:"deadline,omitzero"`
}

// RunningJob is an in-flight job and how long it has been running.
type RunningJob struct {
	JID     string        `json:"jid"`
	Class   string        `json:"class"`
	Queue   string        `json:"queue"`
	Process string        `json:"process"`
	Running time.Duration `json:"running"`
}

// RolloutPoll is one poll of a rollout, for progress and the report's timeline.
type RolloutPoll struct {
	At           time.Time      `json:"at"`
	Ref          ecs.ServiceRef `json:"-"`
	DeploymentID string         `json:"deployment_id"`
	RolloutState string         `json:"rollout_state,omitempty"`
	Desired      int32          `json:"desired"`
	Running      int32          `json:"running"`
	Pending      int32          `json:"pending"`
	// Failed is ECS's count of our deployment's tasks that failed to start.
	Failed int32 `json:"failed"`
	// Deployments is how many deployments the service lists (1 when only ours is left).
	Deployments int `json:"deployments"`
	// Events are the service events new since the previous poll.
	Events []ecs.Event `json:"events,omitempty"`
	// Status and LifecycleStage are the Service Deployments API's view of ours, when read.
	Status         string `json:"status,omitempty"`
	LifecycleStage string `json:"lifecycle_stage,omitempty"`
	// Err is a poll that failed (e.g. throttled) and was skipped.
	Err string `json:"error,omitempty"`
}
