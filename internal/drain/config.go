package drain

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// OnTimeout is what the Runner does when in-flight jobs outlast Config.DrainTimeout.
type OnTimeout string

// Drain-timeout policies.
const (
	// OnTimeoutDeploy continues: ECS's SIGTERM and Sidekiq's shutdown requeue what still runs.
	OnTimeoutDeploy OnTimeout = "deploy"
	// OnTimeoutStop sends TERM through Redis so Sidekiq requeues now, then continues.
	OnTimeoutStop OnTimeout = "stop"
	// OnTimeoutFail stops the run with ErrDrainTimeout; the processes stay quiet.
	OnTimeoutFail OnTimeout = "fail"
)

// Rollout-failure policies for Config.OnRolloutFailure.
const (
	// OnRolloutFailureReplace stops the tasks the rollback kept whose processes are quiet.
	OnRolloutFailureReplace = "replace"
	// OnRolloutFailureLeave reports those tasks and leaves them running (quiet).
	OnRolloutFailureLeave = "leave"
)

// StrategyName names an ordering of the phases.
type StrategyName string

// The strategies.
const (
	// StrategyDrainFirst quiets the selection, waits for its jobs, then deploys: nothing is
	// lost, at the price of a processing gap from the quiet to the first new worker.
	StrategyDrainFirst StrategyName = "drain-first"
	// StrategyDrainOnly is `drainctl drain`: quiet and wait, no ECS.
	StrategyDrainOnly StrategyName = "drain"
	// StrategyQuietOnly is `drainctl quiet`: quiet and wait for the acknowledgement.
	StrategyQuietOnly StrategyName = "quiet"
	// StrategyOverlap protects the old tasks from scale-in, deploys, and quiets each old
	// process only once a new worker heartbeats, releasing its task when it is idle: no
	// processing gap and no interrupted job, given room in maximumPercent.
	StrategyOverlap StrategyName = "overlap"
	// StrategyAuto is overlap when the preflight finds room, permission and every selected
	// process placed in a task, else drain-first; the Result says which and why.
	StrategyAuto StrategyName = "auto"
	// StrategyPauseHook drains a blue/green (linear, canary) deployment at its PAUSE hook at
	// POST_SCALE_UP: once green heartbeats, blue is quieted and waited for, then drainctl
	// answers the hook with CONTINUE and CLEAN_UP stops idle blue tasks.
	StrategyPauseHook StrategyName = "pause-hook"
	// StrategyBlueGreen hands a blue/green deployment without a PAUSE hook over like overlap,
	// without protection: blue is quieted as green heartbeats, during the bake; a job longer
	// than the bake and stopTimeout is cut (and requeued).
	StrategyBlueGreen StrategyName = "blue-green"
)

// Strategy is the strategy a run used and why.
type Strategy struct {
	Name   StrategyName `json:"name"`
	Reason string       `json:"reason,omitempty"`
	// Requested is what the configuration asked for (auto, overlap) when it differs from Name.
	Requested StrategyName `json:"requested,omitempty"`
}

// Defaults for zero Config fields.
const (
	DefaultDrainTimeout   = 10 * time.Minute
	DefaultRolloutTimeout = 15 * time.Minute
	DefaultExitTimeout    = 3 * time.Minute
	DefaultPollInterval   = 2 * time.Second
	DefaultStaleAfter     = 30 * time.Second
	DefaultLockTTL        = 60 * time.Second
)

// Config is one run's settings. The zero value of each field is usable; Runner.Run fills the
// defaults documented on each field.
type Config struct {
	// Strategy orders the phases. Empty means StrategyDrainFirst when services are given,
	// else StrategyDrainOnly.
	Strategy StrategyName
	// Services are the ECS services to deploy; empty for drain and quiet.
	Services []ecs.ServiceRef
	// NoWait makes the quiet strategy return once the signals are sent.
	NoWait bool
	// AllowInProgress proceeds (with a warning) when a rollout is already running on a
	// service, instead of refusing.
	AllowInProgress bool
	// DrainTimeout bounds the wait for in-flight jobs after quiet. Zero means 10m; negative
	// means no limit.
	DrainTimeout time.Duration
	// OnTimeout is the drain-timeout policy. Empty means OnTimeoutDeploy (OnTimeoutFail for
	// StrategyDrainOnly, which has no deploy step).
	OnTimeout OnTimeout
	// RolloutTimeout bounds the rollout watch. Zero means 15m; negative means no limit.
	RolloutTimeout time.Duration
	// ExitTimeout bounds the wait for the old processes to leave after the rollout. Zero
	// means 3m (the 60 s heartbeat expiry proves death; ECS evidence proves it sooner).
	ExitTimeout time.Duration
	// AckTimeout bounds the wait for every process to acknowledge quiet. Zero means what the
	// selection's heartbeats need (Sidekiq acknowledges within two beats: about 15 s on 6.x,
	// 27 s on 7+) plus one poll interval.
	AckTimeout time.Duration
	// PollInterval is the time between polls of Redis and ECS. Zero means 2s.
	PollInterval time.Duration
	// StaleAfter is how old a selected process's last heartbeat may be at preflight. Zero
	// means 30s (three beats of Sidekiq 7).
	StaleAfter time.Duration
	// NoRescue turns off the rescue of dead processes' jobs (drainctl's --rescue=false).
	// The zero value rescues.
	NoRescue bool
	// DryRun performs every read and check and no write.
	DryRun bool
	// TaskDefinition is deployed (family:revision or ARN). Empty means a forced new
	// deployment of the current task definition.
	TaskDefinition string
	// OnRolloutFailure is OnRolloutFailureReplace (the default when empty) or
	// OnRolloutFailureLeave.
	OnRolloutFailure string
	// Strict turns preflight warnings into refusals.
	Strict bool
	// Selector picks the processes to drain when the user gave selectors. Nil means the
	// default of a deploy: the processes running in the services' own tasks; drain and quiet
	// require one.
	Selector *sidekiq.Selector
	// LockName names the deploy lock. Empty means "deploy:" plus the sorted services.
	LockName string
	// LockOwner describes this run in the lock (owner, host, pid, start time).
	LockOwner sidekiq.LockOwner
	// LockTTL is the lock key's TTL, refreshed at every poll once a third of it has passed.
	// Zero means 60s; it must exceed three PollIntervals.
	LockTTL time.Duration
	// RedisURL is the redacted Redis URL, recorded in the Result. Never pass a password.
	RedisURL string
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// After waits, like time.After. Nil means time.After.
	After func(time.Duration) <-chan time.Time
	// CleanupTimeout bounds the re-read and lock release after an interrupt. Zero means 10s.
	CleanupTimeout time.Duration
}

// withDefaults returns c with every zero field set and checks the combination.
func (c Config) withDefaults() (Config, error) {
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.RolloutTimeout == 0 {
		c.RolloutTimeout = DefaultRolloutTimeout
	}
	if c.ExitTimeout == 0 {
		c.ExitTimeout = DefaultExitTimeout
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = DefaultStaleAfter
	}
	if c.LockTTL == 0 {
		c.LockTTL = DefaultLockTTL
	}
	if c.CleanupTimeout == 0 {
		c.CleanupTimeout = 10 * time.Second
	}
	if c.Strategy == "" {
		c.Strategy = StrategyDrainFirst
		if len(c.Services) == 0 {
			c.Strategy = StrategyDrainOnly
		}
	}
	if c.OnTimeout == "" {
		c.OnTimeout = OnTimeoutDeploy
		if c.Strategy == StrategyDrainOnly {
			c.OnTimeout = OnTimeoutFail
		}
	}
	if c.OnRolloutFailure == "" {
		c.OnRolloutFailure = OnRolloutFailureReplace
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.After == nil {
		c.After = time.After
	}
	var errs []error
	switch c.OnTimeout {
	case OnTimeoutDeploy, OnTimeoutStop, OnTimeoutFail:
	default:
		errs = append(errs, fmt.Errorf("on-timeout %q: want deploy, stop or fail", c.OnTimeout))
	}
	switch c.OnRolloutFailure {
	case OnRolloutFailureReplace, OnRolloutFailureLeave:
	default:
		errs = append(errs, fmt.Errorf("on-rollout-failure %q: want replace or leave", c.OnRolloutFailure))
	}
	if c.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("poll interval %v: must be positive", c.PollInterval))
	}
	if c.LockTTL < 3*c.PollInterval {
		errs = append(errs, fmt.Errorf("lock ttl %v: must be at least three poll intervals (%v)", c.LockTTL, 3*c.PollInterval))
	}
	switch c.Strategy {
	case StrategyDrainFirst, StrategyOverlap, StrategyAuto, StrategyPauseHook, StrategyBlueGreen:
		if len(c.Services) == 0 {
			errs = append(errs, errors.New("no service given (use --service)"))
		}
	case StrategyDrainOnly, StrategyQuietOnly:
		if c.Strategy == StrategyDrainOnly && c.OnTimeout == OnTimeoutDeploy {
			errs = append(errs, errors.New("on-timeout deploy: drain has no deploy step; use fail or stop (or drainctl deploy)"))
		}
		if c.Selector == nil {
			errs = append(errs, errors.New("no processes selected: give --tag, --hostname, --queue, --identity, --label, or --all"))
		}
	default:
		errs = append(errs, fmt.Errorf("strategy %q: want %s, %s, %s, %s or %s", c.Strategy, StrategyAuto, StrategyOverlap,
			StrategyPauseHook, StrategyBlueGreen, StrategyDrainFirst))
	}
	if err := errors.Join(errs...); err != nil {
		return c, usageError(err)
	}
	return c, nil
}

// LockName is the deploy lock's name: one per set of services (drainctl unlock names it the same way).
func LockName(refs []ecs.ServiceRef) string {
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.String()
	}
	sort.Strings(names)
	return "deploy:" + strings.Join(names, ",")
}
