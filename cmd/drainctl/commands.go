package main

import (
	"time"

	"github.com/drainctl/drainctl/internal/drain"
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

--dry-run performs every read and check and changes nothing.

EXAMPLES:
   drainctl deploy --cluster prod --service worker --dry-run
   drainctl deploy --cluster prod --service worker --task-definition worker:42 --report deploy.md
   drainctl deploy --cluster prod --service worker --service mailer --strategy drain-first --drain-timeout 15m`,
		Flags: flags(redisFlags(), ecsFlags(), selectionFlags(), outputFlags(), []cli.Flag{
			durFlag("drain-timeout", drain.DefaultDrainTimeout, "how long to wait for in-flight jobs after quiet"),
			strFlag("on-timeout", "deploy", "when jobs outlast --drain-timeout: deploy (continue: Sidekiq's shutdown requeues them), stop (TERM through Redis first) or fail (exit 3, processes left quiet)"),
			durFlag("rollout-timeout", drain.DefaultRolloutTimeout, "how long to watch the rollout"),
			durFlag("exit-timeout", drain.DefaultExitTimeout, "how long to wait for the old processes to leave after the rollout"),
			strFlag("strategy", "auto", "auto (rolling: overlap when the service has room and permission, else drain-first; blue/green: pause-hook with a PAUSE hook at POST_SCALE_UP, else blue-green), overlap, pause-hook, blue-green or drain-first"),
			strFlag("task-definition", "", "deploy this task definition (family:revision or ARN); default: a forced new deployment of the current one"),
			durFlag("poll-interval", drain.DefaultPollInterval, "time between polls of Redis and ECS"),
			boolFlag("rescue", true, "requeue (exactly once) the jobs of old processes that were killed; --rescue=false to only report them"),
			boolFlag("strict", false, "preflight warnings, signal-path findings included, refuse the run"),
			strFlag("on-rollout-failure", drain.OnRolloutFailureReplace, "after a failed or rolled-back rollout: replace (stop the tasks whose processes are quiet) or leave"),
			boolFlag("allow-in-progress", false, "proceed when a rollout is already in progress on the service"),
			boolFlag("dry-run", false, "perform every read and check, change nothing, report what would happen"),
		}),
		Action: func(c *cli.Context) error { return runSequence(c, getenv, drain.StrategyDrainFirst) },
	}
}

func drainCommand(getenv env) *cli.Command {
	return &cli.Command{
		Name:      "drain",
		Usage:     "quiet the selected Sidekiq processes and wait for their in-flight jobs to finish (no ECS)",
		UsageText: "drainctl drain (--tag T | --hostname RE | --queue Q | --identity ID | --label L | --all) [flags]",
		Description: `Quiet (TSTP through Redis, like the Web UI's Quiet button) cannot be undone: a quiet
process fetches nothing new until it restarts. drain waits for every selected process to
acknowledge, then for its jobs to finish, bounded by --drain-timeout. Then, by --on-timeout:
fail (default) exits 3 and lists the processes left quiet; stop sends TERM through Redis so
Sidekiq requeues the unfinished jobs and exits, and waits up to --exit-timeout for them to leave.

EXAMPLES:
   drainctl drain --hostname '^ip-10-0-1-' --drain-timeout 5m
   drainctl drain --tag worker --on-timeout stop`,
		Flags: flags(redisFlags(), selectionFlags(), outputFlags(), []cli.Flag{
			durFlag("drain-timeout", drain.DefaultDrainTimeout, "how long to wait for in-flight jobs after quiet"),
			strFlag("on-timeout", "fail", "when jobs outlast --drain-timeout: fail (exit 3, processes left quiet) or stop (TERM through Redis: Sidekiq requeues and exits)"),
			durFlag("exit-timeout", time.Minute, "with --on-timeout stop: how long to wait for the processes to leave"),
			durFlag("poll-interval", time.Second, "time between polls of Redis"),
			boolFlag("dry-run", false, "read the fleet and report what would be quieted; change nothing"),
		}),
		Action: func(c *cli.Context) error { return runSequence(c, getenv, drain.StrategyDrainOnly) },
	}
}

func quietCommand(getenv env) *cli.Command {
	return &cli.Command{
		Name:      "quiet",
		Usage:     "send quiet (TSTP) to the selected Sidekiq processes and wait for them to acknowledge",
		UsageText: "drainctl quiet (--tag T | --hostname RE | --queue Q | --identity ID | --label L | --all) [--no-wait] [flags]",
		Description: `Quiet cannot be undone: a quiet process fetches nothing new until it restarts. A process
reads the signal at its next heartbeat and shows it at the one after (about 10 s on Sidekiq 6,
20 s on 7). --no-wait returns once the signals are sent.

EXAMPLES:
   drainctl quiet --identity ip-10-0-1-23:7:a1b2c3d4e5f6
   drainctl quiet --all --no-wait`,
		Flags: flags(redisFlags(), selectionFlags(), outputFlags(), []cli.Flag{
			boolFlag("no-wait", false, "return once the signals are sent, without waiting for the acknowledgement"),
			durFlag("poll-interval", time.Second, "time between polls of Redis"),
			boolFlag("dry-run", false, "read the fleet and report what would be quieted; change nothing"),
		}),
		Action: func(c *cli.Context) error { return runSequence(c, getenv, drain.StrategyQuietOnly) },
	}
}
