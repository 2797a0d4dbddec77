// Package report turns a drain.Result into what people and programs read: text for the
// terminal, JSON with a stable schema (docs/report-schema.md), Markdown for PR comments and
// CI summaries, GitHub Actions annotations, and the live progress on stderr.
package report

import (
	"encoding/json"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/finding"
)

// Schema identifies the JSON documents drainctl writes (docs/report-schema.md); every
// document carries it with its kind. It changes only with an incompatible change.
const Schema = "drainctl/v2"

// Options tunes FromResult and the renderers.
type Options struct {
	// Command names the subcommand that ran ("deploy", "drain"); empty means "deploy".
	Command string
	// Version is drainctl's version, recorded in the report.
	Version string
	// ShowArgs keeps job arguments in the report; they are hidden by default (they may hold
	// personal data).
	ShowArgs bool
	// Color adds ANSI colours to the text rendering; the caller decides (TTY, NO_COLOR).
	Color bool
}

// Report is the run as the renderers show it. It holds only redacted Redis URLs and, unless
// Options.ShowArgs, no job arguments.
type Report struct {
	Schema string `json:"schema"`
	// DocKind is the command that wrote the document: deploy, drain or quiet.
	DocKind   string            `json:"kind"`
	Command   string            `json:"command"`
	Strategy  Strategy          `json:"strategy"`
	Version   string            `json:"drainctl_version,omitempty"`
	Outcome   string            `json:"outcome"`
	ExitCode  int               `json:"exit_code"`
	Error     string            `json:"error,omitempty"`
	DryRun    bool              `json:"dry_run"`
	StartedAt time.Time         `json:"started_at"`
	EndedAt   time.Time         `json:"ended_at"`
	Duration  Seconds           `json:"duration_seconds"`
	Settings  Settings          `json:"settings"`
	Findings  []finding.Finding `json:"findings"`
	Jobs      Jobs              `json:"jobs"`
	JobList   []Job             `json:"job_list"`
	Processes []Process         `json:"processes"`
	Unplaced  []string          `json:"unplaced"`
	Services  []Service         `json:"services"`
	Queues    []Queue           `json:"queues"`
	Phases    []Phase           `json:"phases"`
	Lock      Lock              `json:"lock"`
	Metrics   Metrics           `json:"metrics"`
	// Protection lists the tasks the run protected from scale-in (overlap), or found
	// protected by someone else.
	Protection []Protection   `json:"protection"`
	Plan       []string       `json:"plan"`
	Left       *Left          `json:"left"`
	APICalls   map[string]int `json:"api_calls"`
	Warnings   []string       `json:"warnings"`
}

// Strategy is the strategy a run used and why.
type Strategy struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
	// Requested is what was asked for (auto, overlap) when the run used another.
	Requested string `json:"requested,omitempty"`
}

// Metrics are what users feel of a deploy.
type Metrics struct {
	LongestQueueWait Seconds `json:"longest_queue_wait_seconds"`
	ProcessingGap    Seconds `json:"processing_gap_seconds"`
	InterruptedJobs  int     `json:"interrupted_jobs"`
	Samples          int     `json:"samples"`
}

// Protection is one task's scale-in protection during the run.
type Protection struct {
	Task        string    `json:"task"`
	Service     string    `json:"service"`
	Foreign     bool      `json:"foreign"`
	ProtectedAt time.Time `json:"protected_at,omitzero"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	ReleasedAt  time.Time `json:"released_at,omitzero"`
	Note        string    `json:"note,omitempty"`
}

// Kind names the document: the command that ran.
func (r *Report) Kind() string { return r.DocKind }

func (r *Report) writeText(w io.Writer, o Options) error { return WriteText(w, *r, o) }

func (r *Report) writeMarkdown(w io.Writer, _ Options) error { return WriteMarkdown(w, *r) }

// Seconds is a duration written as a number of seconds in JSON.
type Seconds float64

func secs(d time.Duration) Seconds { return Seconds(d.Round(time.Millisecond).Seconds()) }

// Duration converts back to a time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(float64(s) * float64(time.Second)) }

// Settings is the run's configuration.
type Settings struct {
	RedisURL         string  `json:"redis_url"`
	DrainTimeout     Seconds `json:"drain_timeout_seconds"`
	OnTimeout        string  `json:"on_timeout"`
	RolloutTimeout   Seconds `json:"rollout_timeout_seconds"`
	ExitTimeout      Seconds `json:"exit_timeout_seconds"`
	PollInterval     Seconds `json:"poll_interval_seconds"`
	Rescue           bool    `json:"rescue"`
	TaskDefinition   string  `json:"task_definition"`
	OnRolloutFailure string  `json:"on_rollout_failure"`
	Strict           bool    `json:"strict"`
}

// Jobs counts the jobs that were in flight on the selection when it was quieted.
type Jobs struct {
	Finished int `json:"finished"`
	// Requeued jobs were pushed back by Sidekiq's own shutdown.
	Requeued int `json:"requeued"`
	// Rescued jobs were pushed back by this run; AlreadyRescued by an earlier (or
	// concurrent) rescue of the same death; Safe were found queued, scheduled, in retry or
	// running elsewhere.
	Rescued        int `json:"rescued"`
	AlreadyRescued int `json:"already_rescued"`
	Safe           int `json:"safe"`
	StillRunning   int `json:"still_running"`
	Lost           int `json:"lost"`
}

// Job is one of those jobs and its fate.
type Job struct {
	JID     string          `json:"jid"`
	Class   string          `json:"class"`
	Queue   string          `json:"queue"`
	Process string          `json:"process"`
	RunAt   time.Time       `json:"run_at"`
	Fate    string          `json:"fate"`
	Note    string          `json:"note,omitempty"`
	Args    json.RawMessage `json:"args,omitempty"`
}

// Process is one selected process and its end state.
type Process struct {
	Identity    string    `json:"identity"`
	Hostname    string    `json:"hostname"`
	Tag         string    `json:"tag"`
	Version     string    `json:"version"`
	Queues      []string  `json:"queues"`
	Task        string    `json:"task"`
	Service     string    `json:"service"`
	State       string    `json:"state"`
	Exit        string    `json:"exit"`
	Evidence    string    `json:"evidence"`
	LastBeat    time.Time `json:"last_beat"`
	BusyAtQuiet int       `json:"busy_at_quiet"`
	// The timeline: quieted, seen idle, task released (overlap), seen gone or dead.
	QuietAt    time.Time `json:"quiet_at,omitzero"`
	IdleAt     time.Time `json:"idle_at,omitzero"`
	ReleasedAt time.Time `json:"released_at,omitzero"`
	ExitedAt   time.Time `json:"exited_at,omitzero"`
}

// Queue is one Sidekiq queue's backlog at preflight.
type Queue struct {
	Name    string  `json:"name"`
	Size    int64   `json:"size"`
	Latency Seconds `json:"latency_seconds"`
}

// Service is one ECS service's section.
type Service struct {
	Cluster                string        `json:"cluster"`
	Service                string        `json:"service"`
	Deployed               bool          `json:"deployed"`
	DeploymentID           string        `json:"deployment_id"`
	PreviousTaskDefinition string        `json:"previous_task_definition"`
	TaskDefinition         string        `json:"task_definition"`
	Config                 ServiceConfig `json:"config"`
	Result                 string        `json:"result"`
	Reason                 string        `json:"reason"`
	Timeline               []Poll        `json:"timeline"`
	Events                 []Event       `json:"events"`
	StoppedTasks           []StoppedTask `json:"stopped_tasks"`
	ReplacedTasks          []string      `json:"replaced_tasks"`
	KeptQuietTasks         []string      `json:"kept_quiet_tasks"`
}

// ServiceConfig is the service as preflight read it: counts and deployment configuration.
type ServiceConfig struct {
	Status                string `json:"status"`
	Desired               int32  `json:"desired_count"`
	Running               int32  `json:"running_count"`
	MinimumHealthyPercent int32  `json:"minimum_healthy_percent"`
	MaximumPercent        int32  `json:"maximum_percent"`
	CircuitBreaker        bool   `json:"circuit_breaker"`
	Rollback              bool   `json:"circuit_breaker_rollback"`
	Controller            string `json:"deployment_controller"`
	// Strategy is deploymentConfiguration's strategy (ROLLING, BLUE_GREEN, LINEAR, CANARY)
	// with its bake time, lifecycle hooks, alarms and early success criteria.
	Strategy DeployStrategy `json:"strategy"`
}

// DeployStrategy is a service's deployment strategy as the report shows it.
type DeployStrategy struct {
	Name         string        `json:"name"`
	BakeTime     Seconds       `json:"bake_time_seconds"`
	Hooks        []Hook        `json:"hooks"`
	Alarms       bool          `json:"alarms"`
	EarlySuccess *EarlySuccess `json:"early_success"`
}

// Hook is one lifecycle hook.
type Hook struct {
	Type          string   `json:"type"`
	Stages        []string `json:"stages"`
	Timeout       Seconds  `json:"timeout_seconds"`
	TimeoutAction string   `json:"timeout_action"`
}

// EarlySuccess is a rolling deployment's early success criteria.
type EarlySuccess struct {
	HealthyPercent int32  `json:"healthy_percent"`
	Cleanup        string `json:"cleanup"`
}

// Poll is one point of the rollout timeline.
type Poll struct {
	At           time.Time `json:"at"`
	RolloutState string    `json:"rollout_state"`
	Running      int32     `json:"running"`
	Desired      int32     `json:"desired"`
	Pending      int32     `json:"pending"`
	Deployments  int       `json:"deployments"`
	// Status and LifecycleStage are the Service Deployments API's view, when it answered.
	Status         string `json:"status,omitempty"`
	LifecycleStage string `json:"lifecycle_stage,omitempty"`
	Error          string `json:"error,omitempty"`
}

// Event is one service event.
type Event struct {
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

// StoppedTask is a task that stopped during the run.
type StoppedTask struct {
	ARN           string          `json:"arn"`
	ID            string          `json:"id"`
	StopCode      string          `json:"stop_code"`
	StoppedReason string          `json:"stopped_reason"`
	Containers    []ContainerExit `json:"containers"`
}

// ContainerExit is one container's exit.
type ContainerExit struct {
	Name     string `json:"name"`
	ExitCode *int32 `json:"exit_code"`
	Reason   string `json:"reason,omitempty"`
}

// Phase is one phase's span.
type Phase struct {
	Name      string    `json:"name"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	Duration  Seconds   `json:"duration_seconds"`
	Error     string    `json:"error,omitempty"`
}

// Lock is what happened to the deploy lock.
type Lock struct {
	Name     string     `json:"name"`
	Acquired bool       `json:"acquired"`
	Released bool       `json:"released"`
	Holder   *LockOwner `json:"holder"`
	TookOver *LockOwner `json:"took_over"`
}

// LockOwner names a run that held the lock.
type LockOwner struct {
	Owner     string    `json:"owner"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
}

// Left is the state a run left behind when it stopped early.
type Left struct {
	QuietProcesses    []string          `json:"quiet_processes"`
	DeploymentStarted bool              `json:"deployment_started"`
	DeploymentIDs     map[string]string `json:"deployment_ids"`
	Hint              string            `json:"hint"`
}

// FromResult builds the Report of a run from its Result (which carries the error text and
// the exit code Run concluded).
func FromResult(res drain.Result, opts Options) Report {
	cmd := res.Command
	if cmd == "" {
		cmd = "deploy"
	}
	r := Report{
		Schema: Schema, DocKind: cmd, Command: cmd,
		Strategy: Strategy{Name: string(res.Strategy.Name), Reason: res.Strategy.Reason, Requested: string(res.Strategy.Requested)},
		Metrics: Metrics{LongestQueueWait: secs(res.Metrics.LongestQueueWait), ProcessingGap: secs(res.Metrics.ProcessingGap),
			InterruptedJobs: res.Metrics.InterruptedJobs, Samples: res.Metrics.Samples},
		Protection: []Protection{},
		Findings:   append([]finding.Finding{}, res.Findings...),
		Version:    opts.Version, Outcome: string(res.Outcome),
		ExitCode: res.ExitCode, Error: res.Error, DryRun: res.DryRun,
		StartedAt: res.StartedAt.UTC(), EndedAt: res.EndedAt.UTC(), Duration: secs(res.EndedAt.Sub(res.StartedAt)),
		Settings: Settings{
			RedisURL: res.Settings.RedisURL, DrainTimeout: secs(res.Settings.DrainTimeout),
			OnTimeout: string(res.Settings.OnTimeout), RolloutTimeout: secs(res.Settings.RolloutTimeout),
			ExitTimeout: secs(res.Settings.ExitTimeout), PollInterval: secs(res.Settings.PollInterval),
			Rescue: res.Settings.Rescue, TaskDefinition: res.Settings.TaskDefinition,
			OnRolloutFailure: res.Settings.OnRolloutFailure, Strict: res.Settings.Strict,
		},
		Jobs: Jobs(res.Jobs), JobList: make([]Job, 0, len(res.JobList)), Processes: make([]Process, 0, len(res.Processes)), Unplaced: nonNil(res.Unplaced),
		Services: []Service{}, Phases: []Phase{}, Plan: nonNil(res.Plan), APICalls: map[string]int{},
		Warnings: nonNil(res.Warnings),
		Lock:     Lock{Name: res.Lock.Name, Acquired: res.Lock.Acquired, Released: res.Lock.Released},
	}
	for k, v := range res.APICalls {
		r.APICalls[k] = v
	}
	for _, j := range res.JobList {
		rj := Job{JID: j.JID, Class: j.Class, Queue: j.Queue, Process: j.Process, RunAt: j.RunAt.UTC(),
			Fate: string(j.Fate), Note: j.Note}
		if opts.ShowArgs {
			rj.Args = j.Args
		}
		r.JobList = append(r.JobList, rj)
	}
	for _, p := range res.Processes {
		r.Processes = append(r.Processes, Process{Identity: p.Identity, Hostname: p.Hostname, Tag: p.Tag,
			Version: p.Version, Queues: nonNil(p.Queues), Task: taskID(p.TaskARN), Service: p.Service,
			State: string(p.State), Exit: string(p.Exit), Evidence: p.Evidence, LastBeat: p.LastBeat.UTC(), BusyAtQuiet: p.BusyAtQuiet,
			QuietAt: utc(p.QuietAt), IdleAt: utc(p.IdleAt), ReleasedAt: utc(p.ReleasedAt), ExitedAt: utc(p.ExitedAt)})
	}
	for _, p := range res.Protection {
		r.Protection = append(r.Protection, Protection{Task: taskID(p.TaskARN), Service: p.Service, Foreign: p.Foreign,
			ProtectedAt: utc(p.ProtectedAt), ExpiresAt: utc(p.ExpiresAt), ReleasedAt: utc(p.ReleasedAt), Note: p.Note})
	}
	for _, s := range res.Services {
		rs := Service{Cluster: s.Ref.Cluster, Service: s.Ref.Service, Deployed: s.Deployed,
			DeploymentID: s.Rollout.DeploymentID, PreviousTaskDefinition: s.PreviousTaskDefinition(),
			TaskDefinition: s.Rollout.TaskDefinition, Timeline: []Poll{}, Events: []Event{},
			StoppedTasks: []StoppedTask{}, ReplacedTasks: nonNil(s.ReplacedTasks), KeptQuietTasks: nonNil(s.KeptQuietTasks),
			Config: ServiceConfig{Status: s.State.Status, Desired: s.State.Desired, Running: s.State.Running,
				MinimumHealthyPercent: s.State.MinHealthy, MaximumPercent: s.State.MaxPercent,
				CircuitBreaker: s.State.BreakerEnabled, Rollback: s.State.BreakerRollback, Controller: s.State.Controller,
				Strategy: NewDeployStrategy(s.State.Strategy)}}
		if !s.Deployed {
			rs.TaskDefinition = res.Settings.TaskDefinition
			if rs.TaskDefinition == "" {
				rs.TaskDefinition = rs.PreviousTaskDefinition
			}
		}
		for _, p := range s.Polls {
			rs.Timeline = append(rs.Timeline, Poll{At: p.At.UTC(), RolloutState: p.RolloutState, Running: p.Running,
				Desired: p.Desired, Pending: p.Pending, Deployments: p.Deployments, Error: p.Err, Status: p.Status, LifecycleStage: p.LifecycleStage})
			for _, e := range p.Events {
				rs.Events = append(rs.Events, Event{At: e.At.UTC(), Message: e.Message})
			}
		}
		if o := s.Outcome; o != nil {
			rs.Result, rs.Reason = string(o.Result), o.Reason
			if len(rs.Events) == 0 {
				for _, e := range o.Events {
					rs.Events = append(rs.Events, Event{At: e.At.UTC(), Message: e.Message})
				}
			}
		}
		// Our deployment's stopped tasks (from the rollout watch), then the old tasks that
		// stopped during the run, each once.
		seen := map[string]bool{}
		var stopped []ecs.Task
		if s.Outcome != nil {
			stopped = append(stopped, s.Outcome.StoppedTasks...)
		}
		for _, t := range append(stopped, s.OldTasksStopped...) {
			if seen[t.ARN] {
				continue
			}
			seen[t.ARN] = true
			st := StoppedTask{ARN: t.ARN, ID: t.ID, StopCode: t.StopCode, StoppedReason: t.StoppedReason,
				Containers: []ContainerExit{}}
			for _, c := range t.Containers {
				st.Containers = append(st.Containers, ContainerExit{Name: c.Name, ExitCode: c.ExitCode, Reason: c.Reason})
			}
			rs.StoppedTasks = append(rs.StoppedTasks, st)
		}
		sort.SliceStable(rs.Events, func(a, b int) bool { return rs.Events[a].At.Before(rs.Events[b].At) })
		r.Services = append(r.Services, rs)
	}
	r.Queues = []Queue{}
	for _, q := range res.Queues {
		r.Queues = append(r.Queues, Queue{Name: q.Name, Size: q.Size, Latency: secs(q.Latency)})
	}
	for _, p := range res.Phases {
		r.Phases = append(r.Phases, Phase{Name: string(p.Phase), StartedAt: p.StartedAt.UTC(), EndedAt: p.EndedAt.UTC(),
			Duration: secs(p.Duration()), Error: p.Error})
	}
	if h := res.Lock.Holder; h != nil {
		r.Lock.Holder = &LockOwner{Owner: h.Owner, Host: h.Host, PID: h.PID, StartedAt: h.StartedAt.UTC()}
	}
	if h := res.Lock.TookOver; h != nil {
		r.Lock.TookOver = &LockOwner{Owner: h.Owner, Host: h.Host, PID: h.PID, StartedAt: h.StartedAt.UTC()}
	}
	if l := res.Left; l != nil {
		r.Left = &Left{QuietProcesses: nonNil(l.QuietProcesses), DeploymentStarted: l.DeploymentStarted,
			DeploymentIDs: l.DeploymentIDs, Hint: l.Hint}
		if r.Left.DeploymentIDs == nil {
			r.Left.DeploymentIDs = map[string]string{}
		}
	}
	r.redact()
	return r
}

// NewDeployStrategy is the documents' view of a service's deployment strategy.
func NewDeployStrategy(st ecs.DeploymentStrategy) DeployStrategy {
	d := DeployStrategy{Name: st.Name, BakeTime: secs(st.BakeTime), Alarms: st.Alarms, Hooks: []Hook{}}
	for _, h := range st.Hooks {
		d.Hooks = append(d.Hooks, Hook{Type: h.Type, Stages: nonNil(h.Stages), Timeout: secs(h.Timeout), TimeoutAction: h.TimeoutAction})
	}
	if es := st.EarlySuccess; es != nil {
		d.EarlySuccess = &EarlySuccess{HealthyPercent: es.HealthyPercent, Cleanup: es.Cleanup}
	}
	return d
}

// utc is t in UTC, zero staying zero.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return append([]string(nil), s...)
}

// taskID shortens a task ARN to its ID.
func taskID(arn string) string {
	if i := strings.LastIndex(arn, "/"); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

// redisURLPattern finds Redis URLs inside any text (errors may quote the URL they failed on).
var redisURLPattern = regexp.MustCompile(`(?i)(?:rediss?|redis\+sentinel|unix)://[^\s"'<>]+`)

// RedactURL replaces the password of a URL with "xxxxx"; a URL that does not parse is cut
// to its scheme.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.Index(raw, "://"); i >= 0 {
			return raw[:i+3] + "xxxxx"
		}
		return "xxxxx"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	changed := false
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Set(k, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// redactText redacts every Redis URL inside s.
func redactText(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return redisURLPattern.ReplaceAllStringFunc(s, RedactURL)
}

// redact applies redactText to every free-text field, so a password that reached an error
// message never reaches a report.
func (r *Report) redact() {
	r.Settings.RedisURL = redactText(r.Settings.RedisURL)
	if r.Settings.RedisURL != "" && !strings.Contains(r.Settings.RedisURL, "://") {
		r.Settings.RedisURL = RedactURL(r.Settings.RedisURL)
	}
	r.Error = redactText(r.Error)
	for i := range r.Findings {
		r.Findings[i].Message = redactText(r.Findings[i].Message)
		r.Findings[i].Subject = redactText(r.Findings[i].Subject)
	}
	for i := range r.Warnings {
		r.Warnings[i] = redactText(r.Warnings[i])
	}
	for i := range r.Plan {
		r.Plan[i] = redactText(r.Plan[i])
	}
	for i := range r.Phases {
		r.Phases[i].Error = redactText(r.Phases[i].Error)
	}
	for i := range r.Processes {
		r.Processes[i].Evidence = redactText(r.Processes[i].Evidence)
	}
	for i := range r.JobList {
		r.JobList[i].Note = redactText(r.JobList[i].Note)
	}
	if r.Left != nil {
		r.Left.Hint = redactText(r.Left.Hint)
	}
}
