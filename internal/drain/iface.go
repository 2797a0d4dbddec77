package drain

import (
	"context"
	"time"

	"github.com/drainctl/drainctl/internal/sidekiq"
)

// Fleet is the Sidekiq side of a run: what drain reads from and writes to Redis. The command
// adapts *sidekiq.Client to it; unit tests use a fake.
type Fleet interface {
	// Ping checks that Redis is reachable and writable (a short-lived drainctl probe key, not
	// a change to the fleet; dry runs call it too).
	Ping(ctx context.Context) error
	// Snapshot reads every process of the fleet with its in-flight jobs.
	Snapshot(ctx context.Context) (*sidekiq.Snapshot, error)
	// SnapshotOf reads the given identities whether or not they are still listed; a process
	// whose heartbeat hash expired comes back with HashExists false.
	SnapshotOf(ctx context.Context, identities []string) (*sidekiq.Snapshot, error)
	// QueueStats reads the size and latency of the given queues (for the report).
	QueueStats(ctx context.Context, queues []string) ([]QueueDepth, error)
	// Quiet sends TSTP to each identity through its signal list (one-way: no un-quiet).
	Quiet(ctx context.Context, identities []string) error
	// Stop sends TERM to each identity: Sidekiq requeues unfinished jobs and exits.
	Stop(ctx context.Context, identities []string) error
	// Watch starts observing exactly these processes; later processes are never included.
	Watch(ps []sidekiq.Process) ProcessWatcher
	// Rescue requeues the jobs of dead processes, exactly once per jid.
	Rescue(ctx context.Context, jobs []sidekiq.Job) (RescueResult, error)
	// AcquireLock takes the named deploy lock. It returns an error satisfying
	// errors.As(err, **sidekiq.LockHeldError) when another live run holds it.
	AcquireLock(ctx context.Context, name string, owner sidekiq.LockOwner, ttl time.Duration) (Lock, error)
	// LockHolder reports who holds the named lock without taking it; nil when it is free.
	LockHolder(ctx context.Context, name string) (*sidekiq.LockOwner, error)
}

var _ Lock = (*sidekiq.Lock)(nil)

// Lock is a held deploy lock. *sidekiq.Lock satisfies it.
type Lock interface {
	// Refresh extends the lock's TTL; it fails with sidekiq.ErrLockLost when it is no longer ours.
	Refresh(ctx context.Context) error
	// Release deletes the lock if it is still ours.
	Release(ctx context.Context) error
	// TookOver returns the previous holder when acquiring took over a stale lock, else nil.
	TookOver() *sidekiq.LockOwner
}

// ProcessWatcher observes a fixed set of processes, one poll at a time. The sidekiq
// Watcher satisfies it through an adapter.
type ProcessWatcher interface {
	// Poll reads the processes once and returns one Observation per identity. A Redis error
	// is returned as is; the Runner retries it at the next tick.
	Poll(ctx context.Context) ([]Observation, error)
	// MarkDead records external evidence (an ECS container exit code 137) that the process
	// was killed, so later polls report it dead without waiting for its heartbeat to expire.
	MarkDead(identity, evidence string)
}

// State is where a watched process stands; the values are those of sidekiq.State.
type State string

// Process states, in the order a drained process goes through them.
const (
	StateUnknown State = "unknown"
	StateRunning State = "running" // fetching work
	StateQuiet   State = "quiet"   // acknowledged quiet, still busy
	StateDrained State = "drained" // quiet, nothing in flight
	StateGone    State = "gone"    // left cleanly (Sidekiq requeued anything unfinished)
	StateDead    State = "dead"    // killed: heartbeat expired or ECS saw exit 137
)

// Alive reports whether the process still runs (it may still do or pick up work).
func (s State) Alive() bool {
	return s == StateRunning || s == StateQuiet || s == StateDrained || s == StateUnknown
}

// Observation is one process at one poll.
type Observation struct {
	Identity string
	State    State
	// Process is the last heartbeat seen.
	Process sidekiq.Process
	// Jobs is the process's in-flight work at this poll; after death, its last non-empty
	// snapshot, kept for rescue.
	Jobs     []sidekiq.Job
	LastBeat time.Time
	// Evidence says why the state is what it is when it is not obvious ("container exit 137").
	Evidence string
}

// QueueDepth is one Sidekiq queue's backlog (sidekiq.QueueStat through the adapter).
type QueueDepth struct {
	Name    string        `json:"name"`
	Size    int64         `json:"size"`
	Latency time.Duration `json:"latency"`
}

// RescueResult says what Fleet.Rescue did with each job.
type RescueResult struct {
	// Requeued lists the jids pushed back onto their queues by this call.
	Requeued []string
	// Safe lists the jids left alone because they were already safe: queued, scheduled, in
	// retry, running elsewhere, or rescued before (the exactly-once marker exists).
	Safe []string
	// Skipped lists jids that could not be rescued, with the reason (super_fetch-owned, no
	// payload): these are counted as lost unless something else recovers them.
	Skipped map[string]string
}

// Service is one ECS service: what drain reads and changes through the ECS API. The
// command adapts *ecs.Client plus a ServiceRef to it; unit tests use a fake.
type Service interface {
	// Ref names the service.
	Ref() ServiceRef
	// Preflight reads the service and refuses what drainctl cannot deploy (missing service,
	// CODE_DEPLOY controller, a deployment already in progress): those errors mean nothing
	// was changed.
	Preflight(ctx context.Context) (ServiceState, error)
	// Deploy makes exactly one UpdateService call (a forced new deployment of taskDefinition,
	// or of the current one when it is empty) and returns our deployment.
	Deploy(ctx context.Context, taskDefinition string) (Rollout, error)
	// Watch polls the rollout until it succeeds, fails, is rolled back or opt.Timeout passes
	// (then Result is RolloutTimedOut, not an error). A cancelled ctx returns ctx.Err().
	Watch(ctx context.Context, r Rollout, opt WatchOptions) (RolloutOutcome, error)
	// Tasks lists the service's tasks with the desired status "RUNNING", "STOPPED", or both ("").
	Tasks(ctx context.Context, desired string) ([]Task, error)
	// StopTasks stops the given tasks so the service replaces them.
	StopTasks(ctx context.Context, taskARNs []string, reason string) error
}

// ServiceRef names one ECS service.
type ServiceRef struct {
	Cluster string `json:"cluster"`
	Service string `json:"service"`
}

// String is "cluster/service".
func (r ServiceRef) String() string { return r.Cluster + "/" + r.Service }

// ServiceState is what preflight read about a service.
type ServiceState struct {
	Ref             ServiceRef   `json:"ref"`
	Status          string       `json:"status"`
	TaskDefinition  string       `json:"task_definition"`
	Desired         int32        `json:"desired"`
	Running         int32        `json:"running"`
	Pending         int32        `json:"pending"`
	Deployments     []Deployment `json:"deployments"`
	MinHealthy      int32        `json:"minimum_healthy_percent"`
	MaxPercent      int32        `json:"maximum_percent"`
	BreakerEnabled  bool         `json:"circuit_breaker"`
	BreakerRollback bool         `json:"circuit_breaker_rollback"`
	Controller      string       `json:"controller"`
	// Warnings are preflight findings that do not block (e.g. a signal-path concern).
	Warnings []string `json:"warnings,omitempty"`
}

// Deployment is one entry of a service's deployments list.
type Deployment struct {
	ID             string    `json:"id"`
	Status         string    `json:"status"` // PRIMARY, ACTIVE
	TaskDefinition string    `json:"task_definition"`
	RolloutState   string    `json:"rollout_state,omitempty"`
	Desired        int32     `json:"desired"`
	Running        int32     `json:"running"`
	Pending        int32     `json:"pending"`
	CreatedAt      time.Time `json:"created_at"`
}

// Rollout is the deployment our UpdateService started.
type Rollout struct {
	DeploymentID           string    `json:"deployment_id"`
	TaskDefinition         string    `json:"task_definition"`
	PreviousTaskDefinition string    `json:"previous_task_definition"`
	StartedAt              time.Time `json:"started_at"`
}

// WatchOptions tunes Service.Watch.
type WatchOptions struct {
	// Interval is the time between polls. Zero means the Service's default.
	Interval time.Duration
	// Timeout bounds the watch. Zero means no limit.
	Timeout time.Duration
	// OnPoll is called after every poll, synchronously and before Watch returns (the Runner
	// keeps its lock alive from it).
	OnPoll func(RolloutPoll)
}

// RolloutPoll is one poll of a rollout, for progress and the report's timeline.
type RolloutPoll struct {
	At           time.Time  `json:"at"`
	Ref          ServiceRef `json:"-"`
	DeploymentID string     `json:"deployment_id"`
	RolloutState string     `json:"rollout_state,omitempty"`
	Desired      int32      `json:"desired"`
	Running      int32      `json:"running"`
	Pending      int32      `json:"pending"`
	// Deployments is how many deployments the service lists (1 when only ours is left).
	Deployments int `json:"deployments"`
	// Events are the service events new since the previous poll.
	Events []ServiceEvent `json:"events,omitempty"`
	// Err is a poll that failed (e.g. throttled) and was skipped.
	Err string `json:"error,omitempty"`
}

// ServiceEvent is one line of the service's events.
type ServiceEvent struct {
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

// RolloutResult is how a rollout ended.
type RolloutResult string

// Rollout results.
const (
	RolloutSucceeded  RolloutResult = "succeeded"
	RolloutFailed     RolloutResult = "failed"
	RolloutRolledBack RolloutResult = "rolled_back"
	RolloutTimedOut   RolloutResult = "timed_out"
)

// RolloutOutcome is the end of a watched rollout.
type RolloutOutcome struct {
	Result RolloutResult `json:"result"`
	// Reason is ECS's rolloutStateReason or the deployment's status reason.
	Reason string         `json:"reason,omitempty"`
	Events []ServiceEvent `json:"events,omitempty"`
	// StoppedTasks are the tasks that stopped during the rollout, with reasons and exit codes.
	StoppedTasks []Task `json:"stopped_tasks,omitempty"`
	Polls        int    `json:"polls"`
}

// Task is one ECS task.
type Task struct {
	ARN           string      `json:"arn"`
	ID            string      `json:"id"`
	DeploymentID  string      `json:"deployment_id,omitempty"`
	LastStatus    string      `json:"last_status"`
	DesiredStatus string      `json:"desired_status"`
	PrivateIPv4   string      `json:"private_ipv4,omitempty"`
	PrivateDNS    string      `json:"private_dns,omitempty"`
	StopCode      string      `json:"stop_code,omitempty"`
	StoppedReason string      `json:"stopped_reason,omitempty"`
	Containers    []Container `json:"containers,omitempty"`
	StartedAt     time.Time   `json:"started_at,omitzero"`
	StoppedAt     time.Time   `json:"stopped_at,omitzero"`
}

// Container is one container of a task.
type Container struct {
	Name      string `json:"name"`
	RuntimeID string `json:"runtime_id,omitempty"`
	ExitCode  *int32 `json:"exit_code,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// Killed reports whether a container of the task exited with 137 (SIGKILL), the ECS
// evidence that the process inside did not stop within stopTimeout.
func (t Task) Killed() (Container, bool) {
	for _, c := range t.Containers {
		if c.ExitCode != nil && *c.ExitCode == 137 {
			return c, true
		}
	}
	return Container{}, false
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

// DrainProgress is one poll of the drain (and quiet/exits) waits.
type DrainProgress struct {
	Phase Phase     `json:"phase"`
	At    time.Time `json:"at"`
	// Total is the number of jobs in flight when the selection was quieted.
	Total int `json:"total"`
	// Remaining is the number of jobs still in flight on the selected processes.
	Remaining int `json:"remaining"`
	// Processes counts the selected processes by state.
	Processes map[State]int `json:"processes"`
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
