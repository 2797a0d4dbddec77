package main

import (
	"errors"
	"strings"
	"time"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/exitcode"
	"github.com/drainctl/drainctl/internal/report"
	"github.com/drainctl/drainctl/internal/sidekiq"
	"github.com/urfave/cli/v2"
)

// The clients satisfy the Runner's interfaces directly: no adapters.
var (
	_ drain.Fleet = (*sidekiq.Client)(nil)
	_ drain.ECS   = (*ecs.Client)(nil)
)

// runSequence is deploy, drain and quiet: flags → drain.Config → Runner.Run → report → exit
// code. The report path is checked before anything else and the report is written on every
// exit path the Runner returns from.
func runSequence(c *cli.Context, getenv env, strategy drain.StrategyName) (err error) {
	o, u, ro, sel, selGiven, err := fleetFlags(c, getenv)
	if err != nil {
		return err
	}
	cfg, err := sequenceConfig(o, strategy)
	if err != nil {
		return err
	}
	if selGiven {
		cfg.Selector = &sel
	} else if strategy != drain.StrategyDrainFirst {
		return noSelectorErr()
	}
	if err := u.checkReportPath(); err != nil {
		return err
	}
	cfg.RedisURL = ro.Redacted()
	started := time.Now()
	cfg.LockOwner = drain.NewLockOwner(getenv, started)
	// From here on --report exists: a failure before the Runner starts still fills it.
	ran := false
	defer func() {
		if !ran && err != nil && u.reportPath != "" {
			res := drain.RefusedResult(strategy, started, time.Now(), cfg.RedisURL, oneLine(err.Error()), codeOf(err))
			if rerr := u.runReport(res, res.Command, false); rerr != nil {
				u.warn("%v", rerr)
			}
		}
	}()

	ctx := c.Context
	r := &drain.Runner{Config: cfg, Observer: u.observer()}
	if strategy == drain.StrategyDrainFirst {
		ec, err := openECS(ctx, o)
		if err != nil {
			return err
		}
		r.ECS = ec
	}
	// An unreachable Redis is bad input, reported before any progress line.
	cl, err := openRedis(ctx, ro, true)
	if err != nil {
		return err
	}
	defer cl.Close()
	r.Fleet = cl

	ran = true
	res, runErr := r.Run(ctx)
	code := exitcode.Code(res.ExitCode)
	// A refused preflight changed nothing: in text mode on stdout the error line is the whole
	// story, but --report still gets the document.
	refusedText := errors.Is(runErr, drain.ErrPreflight) && u.out == report.Text
	if err := u.runReport(res, string(res.Command), !refusedText); err != nil {
		u.warn("%v", err)
	}
	if runErr == nil && code == exitcode.OK {
		return nil
	}
	if runErr == nil {
		runErr = errors.New(string(res.Outcome))
	}
	if res.Left != nil && len(res.Left.QuietProcesses) > 0 {
		u.warn("left quiet: %s", strings.Join(res.Left.QuietProcesses, ", "))
	}
	return &exitError{code: int(code), err: runErr, hint: drain.FailureHint(ctx, res, runErr, cl)}
}

// sequenceConfig reads the flags of deploy, drain or quiet into a drain.Config; it fails
// only on bad input.
func sequenceConfig(o opts, strategy drain.StrategyName) (cfg drain.Config, err error) {
	cfg.Strategy = strategy
	if cfg.DryRun, err = o.boolean("dry-run"); err != nil {
		return cfg, err
	}
	if cfg.PollInterval, err = o.positive("poll-interval"); err != nil {
		return cfg, err
	}
	if cfg.LockTTL = drain.DefaultLockTTL; cfg.LockTTL < 3*cfg.PollInterval {
		cfg.LockTTL = 4 * cfg.PollInterval
	}
	switch strategy {
	case drain.StrategyQuietOnly:
		cfg.NoWait, err = o.boolean("no-wait")
		return cfg, err
	case drain.StrategyDrainOnly:
		var onTimeout string
		if onTimeout, err = o.oneOf("on-timeout", "fail", "stop"); err != nil {
			if o.str("on-timeout") == "deploy" {
				return cfg, usageErr("--on-timeout deploy: drain has no deploy step; use fail or stop (or drainctl deploy)")
			}
			return cfg, err
		}
		cfg.OnTimeout = drain.OnTimeout(onTimeout)
		if cfg.DrainTimeout, err = o.positive("drain-timeout"); err != nil {
			return cfg, err
		}
		cfg.ExitTimeout, err = o.positive("exit-timeout")
		return cfg, err
	}

	if cfg.Services, err = o.serviceRefs(true); err != nil {
		return cfg, err
	}
	st, err := o.oneOf("strategy", string(drain.StrategyAuto), string(drain.StrategyOverlap), string(drain.StrategyPauseHook),
		string(drain.StrategyBlueGreen), string(drain.StrategyDrainFirst))
	if err != nil {
		return cfg, err
	}
	cfg.Strategy = drain.StrategyName(st)
	onTimeout, err := o.oneOf("on-timeout", "deploy", "stop", "fail")
	if err != nil {
		return cfg, err
	}
	cfg.OnTimeout = drain.OnTimeout(onTimeout)
	if cfg.OnRolloutFailure, err = o.oneOf("on-rollout-failure", drain.OnRolloutFailureReplace, drain.OnRolloutFailureLeave); err != nil {
		return cfg, err
	}
	for _, f := range []struct {
		name string
		d    *time.Duration
	}{{"drain-timeout", &cfg.DrainTimeout}, {"rollout-timeout", &cfg.RolloutTimeout}, {"exit-timeout", &cfg.ExitTimeout}} {
		if *f.d, err = o.positive(f.name); err != nil {
			return cfg, err
		}
	}
	rescue, err := o.boolean("rescue")
	if err != nil {
		return cfg, err
	}
	cfg.NoRescue = !rescue
	if cfg.Strict, err = o.boolean("strict"); err != nil {
		return cfg, err
	}
	if cfg.AllowInProgress, err = o.boolean("allow-in-progress"); err != nil {
		return cfg, err
	}
	cfg.TaskDefinition = o.str("task-definition")
	return cfg, nil
}
