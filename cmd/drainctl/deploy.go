package main

import (
	"errors"
	"time"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/sidekiq"
	"github.com/urfave/cli/v2"
)

func deployCommand(getenv env) *cli.Command {
	return &cli.Command{
		Name:      "deploy",
		Usage:     "quiet the service's Sidekiq processes, wait for their jobs, force one ECS deployment, watch it, rescue jobs of killed processes",
		UsageText: "drainctl deploy --cluster C --service S [--service S2 ...] [--redis-url URL] [flags]",
		Description: `By default the processes drained are those running in the service's own tasks
(matched by hostname: ip-a-b-c-d ↔ the task's private IP, <task-id>-<n> ↔ the task ARN, a 12-hex
container ID ↔ the container's runtime ID). --tag/--hostname/--queue/--identity/--label select
instead; --all drains every live process.

The preflight also runs drainctl check's signal-path checks on the service's current task
definition and prints the error and warning findings; with --strict any of them (and any other
preflight warning) refuses the run with exit 2 before anything is changed.

--dry-run performs every read and check and changes nothing.`,
		Flags: flags(redisFlags(), ecsFlags(), selectionFlags(), outputFlags(), []cli.Flag{
			durFlag("drain-timeout", drain.DefaultDrainTimeout, "how long to wait for in-flight jobs after quiet"),
			strFlag("on-timeout", "deploy", "when jobs outlast --drain-timeout: deploy (continue: Sidekiq's shutdown requeues them), stop (TERM through Redis first) or fail (exit 3, processes left quiet)"),
			durFlag("rollout-timeout", drain.DefaultRolloutTimeout, "how long to watch the rollout"),
			durFlag("exit-timeout", drain.DefaultExitTimeout, "how long to wait for the old processes to leave after the rollout"),
			strFlag("task-definition", "", "deploy this task definition (family:revision or ARN); default: a forced new deployment of the current one"),
			durFlag("poll-interval", drain.DefaultPollInterval, "time between polls of Redis and ECS"),
			boolFlag("rescue", true, "requeue (exactly once) the jobs of old processes that were killed; --rescue=false to only report them"),
			boolFlag("strict", false, "preflight warnings, signal-path findings included, refuse the run"),
			strFlag("on-rollout-failure", drain.OnRolloutFailureReplace, "after a failed or rolled-back rollout: replace (stop the tasks whose processes are quiet) or leave"),
			boolFlag("allow-in-progress", false, "proceed when a rollout is already in progress on the service"),
			boolFlag("dry-run", false, "perform every read and check, change nothing, report what would happen"),
		}),
		Action: func(c *cli.Context) error { return runDeploy(c, getenv) },
	}
}

func runDeploy(c *cli.Context, getenv env) error {
	o, u, ro, sel, selGiven, err := fleetFlags(c, getenv)
	if err != nil {
		return err
	}
	refs, err := o.serviceRefs(true)
	if err != nil {
		return err
	}
	var cfg drain.Config
	onTimeout, err := o.oneOf("on-timeout", "deploy", "stop", "fail")
	if err != nil {
		return err
	}
	cfg.OnTimeout = drain.OnTimeout(onTimeout)
	if cfg.OnRolloutFailure, err = o.oneOf("on-rollout-failure", drain.OnRolloutFailureReplace, drain.OnRolloutFailureLeave); err != nil {
		return err
	}
	if cfg.DrainTimeout, err = o.positive("drain-timeout"); err != nil {
		return err
	}
	if cfg.RolloutTimeout, err = o.positive("rollout-timeout"); err != nil {
		return err
	}
	if cfg.ExitTimeout, err = o.positive("exit-timeout"); err != nil {
		return err
	}
	if cfg.PollInterval, err = o.positive("poll-interval"); err != nil {
		return err
	}
	rescue, err := o.boolean("rescue")
	if err != nil {
		return err
	}
	cfg.NoRescue = !rescue
	if cfg.Strict, err = o.boolean("strict"); err != nil {
		return err
	}
	if cfg.DryRun, err = o.boolean("dry-run"); err != nil {
		return err
	}
	allowInProgress, err := o.boolean("allow-in-progress")
	if err != nil {
		return err
	}
	cfg.TaskDefinition = o.str("task-definition")
	if cfg.LockTTL = drain.DefaultLockTTL; cfg.LockTTL <= 3*cfg.PollInterval {
		cfg.LockTTL = 4 * cfg.PollInterval
	}
	cfg.RedisURL = ro.Redacted()
	cfg.LockOwner = lockOwner(getenv, time.Now())
	cfg.Match = matchTask
	if selGiven {
		cfg.Select = func(snap *sidekiq.Snapshot) ([]sidekiq.Process, error) {
			s, err := snap.Select(sel)
			return s.Processes, err
		}
	}

	ctx := c.Context
	ec, err := openECS(ctx, o)
	if err != nil {
		return err
	}
	cl, err := sidekiq.Open(ro)
	if err != nil {
		return usageErr("redis %s: %w", ro.Redacted(), err)
	}
	defer cl.Close()

	r := &drain.Runner{Config: cfg, Fleet: fleet{c: cl, interval: cfg.PollInterval}, Observer: u.observer()}
	for _, ref := range refs {
		r.Services = append(r.Services, newService(ec, ref, allowInProgress, true))
	}
	res, runErr := r.Run(ctx)
	code := drain.ExitCode(res, runErr)
	// A refused preflight changed nothing: one error line is the whole story in text mode.
	if !(errors.Is(runErr, drain.ErrPreflight) && u.out == formatText) {
		if err := u.runReport(res, "deploy"); err != nil {
			u.warn("%v", err)
		}
	}
	if runErr == nil && code == exitOK {
		return nil
	}
	if runErr == nil {
		runErr = errors.New(string(res.Outcome))
	}
	hint := ""
	if res.Left != nil {
		hint = res.Left.Hint
	}
	return &exitError{code: code, err: runErr, hint: hint}
}
