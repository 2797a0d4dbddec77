package drain

import (
	"encoding/json"
	"time"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/finding"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// Phase names a step of the run.
type Phase string

// Phases, in the order drain-first runs them.
const (
	PhasePreflight Phase = "preflight"
	PhaseLock      Phase = "lock"
	PhaseQuiet     Phase = "quiet"
	PhaseDrain     Phase = "drain"
	PhaseDeploy    Phase = "deploy"
	PhaseRollout   Phase = "rollout"
	PhaseExits     Phase = "exits"
	PhaseRescue    Phase = "rescue"
	PhaseRecover   Phase = "recover"
	// PhaseProtect and PhaseHandover are the overlap strategy's own: protect the old tasks
	// from scale-in; hand the work over from old to new processes as the new ones arrive.
	PhaseProtect  Phase = "protect"
	PhaseHandover Phase = "handover"
)

// Outcome is how the run ended; the report's "outcome" field.
type Outcome string

// Outcomes.
const (
	OutcomeSucceeded      Outcome = "succeeded"
	OutcomeFailed         Outcome = "failed"
	OutcomeRefused        Outcome = "refused"
	OutcomeRolledBack     Outcome = "rolled_back"
	OutcomeRolloutTimeout Outcome = "rollout_timeout"
	OutcomeDrainTimeout   Outcome = "drain_timeout"
	OutcomeInterrupted    Outcome = "interrupted"
	OutcomeLocked         Outcome = "locked"
	OutcomeDryRun         Outcome = "dry_run"
)

// JobFate is what became of one job that was in flight when the selection was quieted.
type JobFate string

// Job fates.
const (
	// JobFinished: the job left the work of a process that was still alive.
	JobFinished JobFate = "finished"
	// JobRequeued: the job was still in flight when its process left cleanly, so Sidekiq's
	// shutdown pushed it back.
	JobRequeued JobFate = "requeued"
	// JobRescued: its process died and this run pushed it back.
	JobRescued JobFate = "rescued"
	// JobAlreadyRescued: its process died and an earlier (or concurrent) rescue of the same
	// death pushed it back; the record's Note says which run, when.
	JobAlreadyRescued JobFate = "already_rescued"
	// JobSafe: its process died, and the job was found safe elsewhere (queued, scheduled, in
	// retry, or running on a live process), so nothing was pushed.
	JobSafe JobFate = "safe"
	// JobStillRunning: its process is still alive and still runs it at the end of the run.
	JobStillRunning JobFate = "still_running"
	// JobLost: its process died and the job was not rescued.
	JobLost JobFate = "lost"
)

// Result is everything a run did and left behind; the report renders it.
type Result struct {
	// Command is the command that ran: deploy, drain or quiet.
	Command   string    `json:"command"`
	Strategy  Strategy  `json:"strategy"`
	Outcome   Outcome   `json:"outcome"`
	DryRun    bool      `json:"dry_run"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	// Settings is the effective configuration, for the report.
	Settings Settings `json:"settings"`
	// Phases lists the phases that ran, in order.
	Phases []PhaseRecord `json:"phases"`
	// Findings are what preflight found: refusals (errors), warnings and advice.
	Findings []finding.Finding `json:"findings,omitempty"`
	// Processes is the selection, with each process's end state.
	Processes []ProcessResult `json:"processes"`
	// Unplaced are fleet processes that could not be placed in any task of the services.
	Unplaced []string `json:"unplaced,omitempty"`
	// Jobs counts the jobs in flight at quiet by fate; JobList has each one.
	Jobs     JobCounts       `json:"jobs"`
	JobList  []JobRecord     `json:"job_list"`
	Services []ServiceResult `json:"services"`
	// Queues are the selection's queues at preflight: size and latency.
	Queues []sidekiq.QueueStat `json:"queues,omitempty"`
	Lock   LockRecord          `json:"lock"`
	// Plan says what a dry run would have done, one line per action.
	Plan []string `json:"plan,omitempty"`
	// Left is the state left behind when the run stopped early; nil otherwise.
	Left *Leftover `json:"left,omitempty"`
	// Metrics are the deploy's queue wait, processing gap and interrupted jobs.
	Metrics Metrics `json:"metrics"`
	// Protection lists the tasks whose scale-in protection the run set (overlap).
	Protection []ProtectionRecord `json:"protection,omitempty"`
	// APICalls counts the calls made through Fleet and ECS, by name.
	APICalls map[string]int `json:"api_calls"`
	Warnings []string       `json:"warnings,omitempty"`
	// Error is the error Run returned, as text.
	Error string `json:"error,omitempty"`
	// ExitCode is ExitCode(result, err) for the error Run returned: the process exit code.
	ExitCode int `json:"exit_code"`
}

// Settings is the part of Config worth reporting.
type Settings struct {
	RedisURL         string        `json:"redis_url"`
	DrainTimeout     time.Duration `json:"drain_timeout"`
	OnTimeout        OnTimeout     `json:"on_timeout"`
	RolloutTimeout   time.Duration `json:"rollout_timeout"`
	ExitTimeout      time.Duration `json:"exit_timeout"`
	PollInterval     time.Duration `json:"poll_interval"`
	Rescue           bool          `json:"rescue"`
	TaskDefinition   string        `json:"task_definition,omitempty"`
	OnRolloutFailure string        `json:"on_rollout_failure"`
	Strict           bool          `json:"strict"`
}

// PhaseRecord is one phase's span.
type PhaseRecord struct {
	Phase     Phase     `json:"phase"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	Error     string    `json:"error,omitempty"`
}

// Duration is the phase's length.
func (p PhaseRecord) Duration() time.Duration { return p.EndedAt.Sub(p.StartedAt) }

// ProcessResult is one selected process and how it ended.
type ProcessResult struct {
	Identity string   `json:"identity"`
	Hostname string   `json:"hostname"`
	Tag      string   `json:"tag,omitempty"`
	Version  string   `json:"version,omitempty"`
	Queues   []string `json:"queues,omitempty"`
	// TaskARN is the task the process runs in, when placed.
	TaskARN string `json:"task_arn,omitempty"`
	Service string `json:"service,omitempty"`
	// State is the last observed state.
	State    sidekiq.State `json:"state"`
	Evidence string        `json:"evidence,omitempty"`
	LastBeat time.Time     `json:"last_beat"`
	// BusyAtQuiet is the number of jobs it ran when quieted.
	BusyAtQuiet int `json:"busy_at_quiet"`
	// Exit is how the process left (clean, killed) or "unknown" while that is not known.
	Exit ExitVerdict `json:"exit,omitempty"`
	// The process's timeline: quieted, seen idle (quiet, nothing in flight), its task's
	// scale-in protection released (overlap), seen gone or dead. Zero when it did not happen.
	QuietAt    time.Time `json:"quiet_at,omitzero"`
	IdleAt     time.Time `json:"idle_at,omitzero"`
	ReleasedAt time.Time `json:"released_at,omitzero"`
	ExitedAt   time.Time `json:"exited_at,omitzero"`
}

// Metrics are what users feel of a deploy, sampled at every poll.
type Metrics struct {
	// LongestQueueWait is the largest latency (age of the oldest job) seen in the selection's
	// queues during the run.
	LongestQueueWait time.Duration `json:"longest_queue_wait"`
	// ProcessingGap is the longest time in which no live, non-quiet process worked the
	// selection's queues (old or new).
	ProcessingGap time.Duration `json:"processing_gap"`
	// InterruptedJobs counts jobs that were cut and will run again: requeued by a shutdown
	// or rescued.
	InterruptedJobs int `json:"interrupted_jobs"`
	// Samples is how many polls the figures come from.
	Samples int `json:"samples"`
}

// ProtectionRecord is one task whose scale-in protection this run set (overlap), or found set
// by someone else and left alone.
type ProtectionRecord struct {
	TaskARN string `json:"task_arn"`
	Service string `json:"service"`
	// Foreign is a task protected by someone else before the run: never touched.
	Foreign     bool      `json:"foreign,omitempty"`
	ProtectedAt time.Time `json:"protected_at,omitzero"`
	// ExpiresAt is when ECS drops the protection by itself (what a killed drainctl leaves).
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	ReleasedAt time.Time `json:"released_at,omitzero"`
	// Note says why it was released (idle, drain timeout, end of run) or failed.
	Note string `json:"note,omitempty"`
}

// JobCounts counts jobs by fate.
type JobCounts struct {
	Finished       int `json:"finished"`
	Requeued       int `json:"requeued"`
	Rescued        int `json:"rescued"`
	AlreadyRescued int `json:"already_rescued"`
	Safe           int `json:"safe"`
	StillRunning   int `json:"still_running"`
	Lost           int `json:"lost"`
}

// Total is the number of jobs counted.
func (c JobCounts) Total() int {
	return c.Finished + c.Requeued + c.Rescued + c.AlreadyRescued + c.Safe + c.StillRunning + c.Lost
}

// JobRecord is one job in flight at quiet and its fate.
type JobRecord struct {
	JID     string          `json:"jid"`
	Class   string          `json:"class"`
	Queue   string          `json:"queue"`
	Process string          `json:"process"`
	RunAt   time.Time       `json:"run_at"`
	Args    json.RawMessage `json:"args,omitempty"`
	Fate    JobFate         `json:"fate"`
	// Note explains a fate that needs it (a skipped rescue, who rescued it before).
	Note string `json:"note,omitempty"`
}

// ServiceResult is one service's part of the run.
type ServiceResult struct {
	Ref ecs.ServiceRef `json:"ref"`
	// State is the service as preflight read it.
	State ecs.ServiceState `json:"state"`
	// Target is the task definition the deployment runs, as preflight described it.
	Target *ecs.TaskDefinitionInfo `json:"target,omitempty"`
	// TasksAtStart are the service's running tasks at preflight.
	TasksAtStart []ecs.Task `json:"tasks_at_start"`
	// Deployed is true once UpdateService was sent.
	Deployed bool             `json:"deployed"`
	Rollout  ecs.DeployResult `json:"rollout"`
	// Polls is the rollout timeline.
	Polls   []RolloutPoll   `json:"polls,omitempty"`
	Outcome *RolloutOutcome `json:"outcome,omitempty"`
	// OldTasksStopped are the tasks of TasksAtStart that had stopped by the end of the exits
	// phase, with stop codes and exit codes.
	OldTasksStopped []ecs.Task `json:"old_tasks_stopped,omitempty"`
	// ReplacedTasks are the tasks stopped after a failed rollout because their processes
	// were quiet; KeptQuietTasks are those left running (OnRolloutFailureLeave or an error).
	ReplacedTasks  []string `json:"replaced_tasks,omitempty"`
	KeptQuietTasks []string `json:"kept_quiet_tasks,omitempty"`
}

// RolloutResult is how a rollout ended.
type RolloutResult string

// Rollout results; the zero value means the rollout is still running.
const (
	RolloutSucceeded  RolloutResult = "succeeded"
	RolloutFailed     RolloutResult = "failed"
	RolloutRolledBack RolloutResult = "rolled_back"
	RolloutTimedOut   RolloutResult = "timed_out"
)

// RolloutOutcome is the end of a watched rollout.
type RolloutOutcome struct {
	Result RolloutResult `json:"result"`
	// Reason says why, in one line (ECS's rolloutStateReason, the rollback target, …).
	Reason string      `json:"reason,omitempty"`
	Events []ecs.Event `json:"events,omitempty"`
	// StoppedTasks are the tasks of our deployment that stopped during the rollout.
	StoppedTasks []ecs.Task `json:"stopped_tasks,omitempty"`
	// ServiceDeployment is the Service Deployments API's view, when it could be read.
	ServiceDeployment *ecs.ServiceDeploymentInfo `json:"service_deployment,omitempty"`
	Polls             int                        `json:"polls"`
}

// LockRecord says what happened to the deploy lock.
type LockRecord struct {
	Name     string `json:"name"`
	Acquired bool   `json:"acquired"`
	Released bool   `json:"released"`
	// Holder is the other run holding the lock, when it was held.
	Holder *sidekiq.LockOwner `json:"holder,omitempty"`
	// TookOver is the stale holder whose lock this run took over.
	TookOver *sidekiq.LockOwner `json:"took_over,omitempty"`
}

// Leftover is the state a run left behind when it stopped early, re-read at the end.
type Leftover struct {
	// QuietProcesses are selected processes still alive and quiet: they need a restart.
	QuietProcesses []string `json:"quiet_processes"`
	// DeploymentStarted is true when UpdateService was sent for at least one service.
	DeploymentStarted bool `json:"deployment_started"`
	// DeploymentIDs maps "cluster/service" to our deployment ID.
	DeploymentIDs map[string]string `json:"deployment_ids,omitempty"`
	// Hint is what to run next.
	Hint string `json:"hint,omitempty"`
}
