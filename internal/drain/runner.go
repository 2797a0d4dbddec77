package drain

import (
	"context"
	"fmt"
	"time"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// Runner runs one strategy once. See the package documentation for the phases.
type Runner struct {
	Config Config
	Fleet  Fleet
	// ECS reaches the services of Config.Services; nil for drain and quiet.
	ECS ECS
	// Observer receives progress events. Nil means NopObserver.
	Observer Observer
	// Watch starts following the selected processes. Nil means a sidekiq.Watcher reading
	// Fleet with the run's clock.
	Watch func(ps []sidekiq.Process) ProcessWatcher
}

// run is the state of one Run: what was selected, written and observed so far.
type run struct {
	cfg   Config
	fleet Fleet
	ecs   ECS
	obs   Observer
	watch func(ps []sidekiq.Process) ProcessWatcher
	res   Result

	lockName    string
	lock        *sidekiq.Lock
	lastRefresh time.Time

	selected []sidekiq.Process
	// procIndex finds a selected process's entry in res.Processes by identity.
	procIndex map[string]int
	taskOf    map[string]string // identity → task ARN
	// beats is this poll's read of every process's heartbeat (sample and the hand-overs
	// share it); wait clears it before the next tick.
	beats   *sidekiq.Snapshot
	jobs    *ledger
	watcher ProcessWatcher
	last    map[string]sidekiq.Observation

	quietSent bool
	// ov is the overlap strategy's state; nil for the others.
	ov *overlapState
	// metrics samples the queue wait and the processing gap at every poll.
	metrics  metrics
	stopSent bool
	// rescued holds each rescued or examined job's fate and note, by jid.
	rescued map[string]rescueFate
}

// rescueFate is what the rescue did with one job.
type rescueFate struct {
	fate JobFate
	note string
}

// Run performs the configured strategy. It returns the Result in every case; the error is
// nil only for a succeeded run or a dry run, and is one of the package's typed errors
// otherwise (see ExitCode).
func (r *Runner) Run(ctx context.Context) (Result, error) {
	obs := r.Observer
	if obs == nil {
		obs = NopObserver{}
	}
	cfg, cfgErr := r.Config.withDefaults()
	x := &run{cfg: cfg, fleet: r.Fleet, ecs: r.ECS, obs: obs, watch: r.Watch, jobs: newLedger(),
		taskOf: map[string]string{}, procIndex: map[string]int{}, last: map[string]sidekiq.Observation{}, rescued: map[string]rescueFate{}}
	if x.watch == nil {
		x.watch = func(ps []sidekiq.Process) ProcessWatcher {
			w := sidekiq.NewWatcher(r.Fleet, ps)
			w.Interval, w.Now, w.After = cfg.PollInterval, cfg.Now, cfg.After
			return w
		}
	}
	x.res = Result{Command: CommandOf(cfg.Strategy), Strategy: Strategy{Name: cfg.Strategy}, StartedAt: cfg.Now(),
		DryRun: cfg.DryRun, APICalls: map[string]int{}, Settings: Settings{
			RedisURL: cfg.RedisURL, DrainTimeout: cfg.DrainTimeout, OnTimeout: cfg.OnTimeout,
			RolloutTimeout: cfg.RolloutTimeout, ExitTimeout: cfg.ExitTimeout, PollInterval: cfg.PollInterval,
			Rescue: !cfg.NoRescue, TaskDefinition: cfg.TaskDefinition, OnRolloutFailure: cfg.OnRolloutFailure,
			Strict: cfg.Strict,
		}}
	for _, ref := range cfg.Services {
		x.res.Services = append(x.res.Services, ServiceResult{Ref: ref})
	}
	if len(cfg.Services) > 0 {
		x.lockName = cfg.LockName
		if x.lockName == "" {
			x.lockName = LockName(cfg.Services)
		}
		x.res.Lock.Name = x.lockName
	}
	if cfgErr != nil {
		return x.end(ctx, OutcomeRefused, cfgErr)
	}
	switch cfg.Strategy {
	case StrategyQuietOnly:
		return x.quietOnly(ctx)
	case StrategyDrainOnly:
		return x.drainOnly(ctx)
	default:
		return x.deploySequence(ctx)
	}
}

// CommandOf names the command a strategy belongs to: deploy, drain or quiet.
func CommandOf(s StrategyName) string {
	switch s {
	case StrategyQuietOnly:
		return "quiet"
	case StrategyDrainOnly:
		return "drain"
	}
	return "deploy"
}

// phase starts a phase record and returns the func that ends it with the phase's error.
func (x *run) phase(p Phase) func(*error) {
	at := x.cfg.Now()
	x.res.Phases = append(x.res.Phases, PhaseRecord{Phase: p, StartedAt: at})
	i := len(x.res.Phases) - 1
	x.obs.PhaseStarted(p, at)
	return func(errp *error) {
		end := x.cfg.Now()
		x.res.Phases[i].EndedAt = end
		var err error
		if errp != nil {
			err = *errp
		}
		if err != nil {
			x.res.Phases[i].Error = err.Error()
		}
		x.obs.PhaseEnded(p, end, err)
	}
}

func (x *run) count(call string) { x.res.APICalls[call]++ }

func (x *run) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	x.res.Warnings = append(x.res.Warnings, msg)
	x.obs.Warning(msg)
}

// wait sleeps one poll interval, keeping the lock alive; it returns ctx's error when
// cancelled.
func (x *run) wait(ctx context.Context) error {
	x.beats = nil
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-x.cfg.After(x.cfg.PollInterval):
	}
	x.refreshLock(ctx)
	x.sample(ctx)
	return nil
}

// serviceIndex returns the index of ref in the run's services, or -1.
func (x *run) serviceIndex(ref ecs.ServiceRef) int {
	for i, s := range x.res.Services {
		if s.Ref == ref {
			return i
		}
	}
	return -1
}

func identities(ps []sidekiq.Process) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Identity
	}
	return out
}
