package drain

import (
	"context"
	"fmt"
	"strings"
)

// interrupted ends a cancelled run: re-read what is left with a fresh short context.
func (x *run) interrupted(ctx context.Context, p Phase) (Result, error) {
	return x.stopEarly(ctx, OutcomeInterrupted, fmt.Errorf("%w during %s: %w", ErrInterrupted, p, ctx.Err()))
}

// stopEarly records the state left behind (re-read from Redis) with what to run next, and
// ends the run.
func (x *run) stopEarly(ctx context.Context, outcome Outcome, err error) (Result, error) {
	left := &Leftover{DeploymentIDs: map[string]string{}}
	for _, s := range x.res.Services {
		if s.Deployed {
			left.DeploymentStarted = true
			left.DeploymentIDs[s.Ref.String()] = s.Rollout.DeploymentID
		}
	}
	if x.quietSent {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), x.cfg.CleanupTimeout)
		x.count("redis.SnapshotOf")
		snap, rerr := x.fleet.SnapshotOf(cctx, identities(x.selected))
		cancel()
		if rerr != nil {
			x.warn("re-read the selected processes: %v; assume all %d are quiet", rerr, len(x.selected))
			left.QuietProcesses = identities(x.selected)
		} else {
			// Alive and sent TSTP: quiet now, or at its next heartbeat.
			for _, p := range snap.Processes {
				if p.HashExists && p.Listed && (x.ov == nil || x.ov.quieted[p.Identity]) {
					left.QuietProcesses = append(left.QuietProcesses, p.Identity)
				}
			}
		}
	}
	left.Hint = x.hint(outcome, left)
	if left.DeploymentStarted || len(left.QuietProcesses) > 0 {
		x.res.Left = left
	}
	return x.end(ctx, outcome, err)
}

// hint says what to run next after an early stop.
func (x *run) hint(outcome Outcome, left *Leftover) string {
	switch {
	case left.DeploymentStarted && x.rolloutSucceeded():
		return "the rollout succeeded; if an old process was killed, run drainctl rescue to requeue its jobs"
	case left.DeploymentStarted:
		var ws []string
		for _, s := range x.res.Services {
			if s.Deployed {
				ws = append(ws, fmt.Sprintf("aws ecs describe-services --cluster %s --services %s (deployment %s)",
					s.Ref.Cluster, s.Ref.Service, s.Rollout.DeploymentID))
			}
		}
		return "the deployment continues without drainctl; watch it with: " + strings.Join(ws, "; ")
	case len(left.QuietProcesses) == 0:
		return ""
	case outcome == OutcomeDrainTimeout && x.cfg.Strategy == StrategyDrainOnly:
		return fmt.Sprintf("%d process(es) stay quiet until restarted (quiet cannot be undone); finish with: drainctl drain --on-timeout stop %s",
			len(left.QuietProcesses), identityFlags(left.QuietProcesses))
	case outcome == OutcomeDrainTimeout:
		return fmt.Sprintf("%d process(es) stay quiet until restarted (quiet cannot be undone): finish with the same command and --on-timeout deploy (or stop), or restart them",
			len(left.QuietProcesses))
	}
	return fmt.Sprintf("%d process(es) stay quiet until restarted: re-run the same command to finish (quiet is idempotent)",
		len(left.QuietProcesses))
}

func identityFlags(ids []string) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = "--identity " + id
	}
	return strings.Join(parts, " ")
}

// end settles the jobs and processes, releases the lock and returns the Result.
func (x *run) end(ctx context.Context, outcome Outcome, err error) (Result, error) {
	x.releaseAll(ctx, "end of run")
	x.releaseLock(ctx)
	for i, pr := range x.res.Processes {
		o, ok := x.last[pr.Identity]
		if !ok {
			continue
		}
		x.res.Processes[i].State = o.State
		x.res.Processes[i].Evidence = o.Evidence
		if !o.LastBeat.IsZero() {
			x.res.Processes[i].LastBeat = o.LastBeat
		}
		if x.quietSent {
			x.res.Processes[i].Exit, _ = exitVerdict(o, x.stoppedTaskOf(pr.Identity))
		}
	}
	if outcome == OutcomeDryRun {
		for _, rec := range x.jobs.jobs {
			rec.Fate = JobStillRunning
		}
	} else {
		x.jobs.settle(x.last, x.rescued)
	}
	x.res.JobList = x.jobs.records()
	x.res.Jobs = count(x.res.JobList)
	x.res.Metrics.InterruptedJobs = x.res.Jobs.Requeued + x.res.Jobs.Rescued + x.res.Jobs.AlreadyRescued
	x.res.Outcome = outcome
	x.res.EndedAt = x.cfg.Now()
	if err != nil {
		x.res.Error = err.Error()
	}
	x.res.ExitCode = int(ExitCode(err))
	return x.res, err
}
