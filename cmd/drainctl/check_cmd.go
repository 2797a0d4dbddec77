package main

import (
	"errors"
	"fmt"

	"github.com/drainctl/drainctl/internal/check"
	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/report"
	"github.com/urfave/cli/v2"
)

func checkCommand(getenv env) *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "check how SIGTERM reaches Sidekiq when ECS stops a task (shell wrappers, init, stopTimeout vs -t, ...)",
		UsageText: `drainctl check --task-definition-file F|- [--task-definition-file F2 ...] [--entrypoint-file SCRIPT] [--container NAME] [--launch-type FARGATE|EC2] [--agent-stop-timeout 2m]
   drainctl check --cluster C --service S [--redis-url URL]`,
		Description: `Offline, check reads task definitions as 'aws ecs describe-task-definition' prints them or
as a register-task-definition input ('-' reads one from stdin), and entry point scripts from
the image's source tree; each file at most 1 MiB of text.
Live, it reads the service's current task definition and deployment configuration, its
recently stopped tasks (a Sidekiq container that exited 137 was killed after stopTimeout) and,
with --redis-url, the Sidekiq processes that vanished without removing themselves.

Exit 0 when no error-level finding, 7 when there are errors (or warnings with --strict),
2 for bad input.

EXAMPLES:
   drainctl check --task-definition-file taskdef.json --entrypoint-file docker/entrypoint.sh
   aws ecs describe-task-definition --task-definition worker | drainctl check --task-definition-file -
   drainctl check --cluster prod --service worker --redis-url "$REDIS_URL"`,
		Flags: flags(ecsFlags(), redisFlags(), outputFlags(), []cli.Flag{
			sliceFlag("task-definition-file", "task definition JSON file, - for stdin"),
			sliceFlag("entrypoint-file", "entry point script the image runs"),
			strFlag("container", "", "the Sidekiq container's name (default: the container whose command mentions sidekiq, else the only one)"),
			strFlag("launch-type", "", "FARGATE or EC2 (default: from requiresCompatibilities, or the service)"),
			durFlag("agent-stop-timeout", 0, "the EC2 container agent's ECS_CONTAINER_STOP_TIMEOUT, for containers without stopTimeout (default: the agent's 30s)"),
			boolFlag("strict", false, "warnings fail the check too (exit 7)"),
			boolFlag("brief", false, "leave out the why/fix explanations in text output"),
		}),
		Action: func(c *cli.Context) error { return runCheck(c, getenv) },
	}
}

func runCheck(c *cli.Context, getenv env) error {
	o := opts{c, getenv}
	if err := noArgs(c); err != nil {
		return err
	}
	u, err := newUI(o, c.App.Writer, c.App.ErrWriter)
	if err != nil {
		return err
	}
	if err := u.checkReportPath(); err != nil {
		return err
	}
	strict, err := o.boolean("strict")
	if err != nil {
		return err
	}
	brief, err := o.boolean("brief")
	if err != nil {
		return err
	}
	launchType, err := check.ParseLaunchType(o.str("launch-type"))
	if err != nil {
		return usageErr("--launch-type %q: %w", o.str("launch-type"), err)
	}
	agentStop, err := o.duration("agent-stop-timeout")
	if err != nil {
		return err
	}
	agentSecs, err := check.AgentStopSeconds(agentStop)
	if err != nil {
		return usageErr("--agent-stop-timeout %s: %w", agentStop, err)
	}
	refs, err := o.serviceRefs(false)
	if err != nil {
		return err
	}
	files := o.strs("task-definition-file")
	if len(files) == 0 && len(refs) == 0 {
		return &exitError{code: exitUsage, err: errors.New("nothing to check: give --task-definition-file, or --cluster and --service"),
			hint: "aws ecs describe-task-definition --task-definition worker > td.json; drainctl check --task-definition-file td.json"}
	}
	container := o.str("container")
	var scripts []check.ScriptFile
	for _, p := range o.strs("entrypoint-file") {
		sf, err := check.ReadScriptFile(p)
		if err != nil {
			return usageErr("--entrypoint-file: %w", err)
		}
		scripts = append(scripts, sf)
	}
	inputs, err := check.ReadInputs(files, c.App.Reader,
		check.Input{Container: container, EntrypointScripts: scripts, LaunchType: launchType, AgentStopTimeout: agentSecs})
	if errors.Is(err, check.ErrStdinTwice) {
		return usageErr("--task-definition-file -: %w", err)
	} else if err != nil {
		return usageErr("--task-definition-file: %w", err)
	}
	if len(refs) > 0 {
		live, err := liveInputs(c, o, u, refs, container, scripts, launchType)
		if err != nil {
			return err
		}
		for i := range live {
			live[i].AgentStopTimeout = agentSecs
		}
		inputs = append(inputs, live...)
	}

	res, err := check.Run(inputs...)
	if err != nil {
		return &exitError{code: exitUsage, err: err, hint: "name the Sidekiq container with --container"}
	}
	doc := report.NewCheck(res, report.FindingsOptions{Strict: strict, Brief: brief})
	if err := u.emitDoc(doc); err != nil {
		return err
	}
	if path := u.getenv(report.StepSummaryEnv); path != "" {
		if err := report.AppendMarkdown(path, doc, report.Options{Command: doc.Kind(), Version: versionString()}); err != nil {
			u.warn("append to $%s: %v", report.StepSummaryEnv, err)
		}
	}
	if err := report.WriteFindingAnnotations(u.stderr, u.getenv, res); err != nil {
		u.warn("%v", err)
	}
	if code := res.ExitCode(strict); code != exitOK {
		what := fmt.Sprintf("%d error(s)", res.Summary.Errors)
		if strict {
			what += fmt.Sprintf(", %d warning(s) (--strict)", res.Summary.Warnings)
		}
		return &exitError{code: exitCheckFindings, err: fmt.Errorf("check found %s in the signal path", what)}
	}
	return nil
}

// liveInputs wires `check --cluster --service`: the ECS client, the fleet when a Redis URL is
// given, and internal/drain's reading of the live evidence.
func liveInputs(c *cli.Context, o opts, u *ui, refs []ecs.ServiceRef, container string, scripts []check.ScriptFile, launchType string) ([]check.Input, error) {
	ctx := c.Context
	ec, err := openECS(ctx, o)
	if err != nil {
		return nil, err
	}
	opt := drain.LiveCheckOptions{Container: container, Scripts: scripts, LaunchType: launchType}
	if ro, err := o.redisOptions(); err == nil {
		cl, err := openRedis(ctx, ro, false)
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		if opt.Fleet, err = snapshot(ctx, cl, ro); err != nil {
			return nil, err
		}
	}
	inputs, warnings, err := drain.LiveCheckInputs(ctx, ec, refs, opt)
	for _, w := range warnings {
		u.warn("%s", w)
	}
	var noContainer *drain.NoContainerError
	switch {
	case errors.As(err, &noContainer):
		return nil, &exitError{code: exitUsage, err: err, hint: "name the Sidekiq container with --container"}
	case err != nil:
		return nil, ecsErr(err)
	}
	return inputs, nil
}
