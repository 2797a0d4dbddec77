// Package drain runs drainctl's sequences: quiet the Sidekiq processes of an ECS service,
// wait for their jobs to finish, force the rollout, watch it to the end, watch the old
// processes leave, and rescue the jobs of any process that was killed instead of stopping.
// `drainctl deploy`, `drainctl drain` and `drainctl quiet` all run this package's [Runner].
//
// The package never prints. It reads and writes the fleet through the small [Fleet] interface
// and the services through [ECS]; their methods take and return the types of
// internal/sidekiq and internal/ecs, so *sidekiq.Client and *ecs.Client satisfy them with no
// adapter. It emits events to an [Observer] while it runs and returns a [Result] that says what
// happened — or, when it stopped early, what it left behind. Time comes from one injected
// clock (Config.Now and Config.After).
//
// # Strategies and phases
//
// A strategy is an ordering of the same named phases, each in its own file (phase_*.go), and
// reads like its description (strategy.go):
//
//   - [StrategyDrainFirst] (`deploy`): preflight, lock, quiet, drain, deploy, rollout, exits,
//     rescue (and recover after a failed rollout). Nothing is lost; the price is a processing
//     gap from the quiet to the first new worker.
//   - [StrategyDrainOnly] (`drain`): preflight, quiet, drain; with [OnTimeoutStop], exits and
//     rescue. No ECS.
//   - [StrategyQuietOnly] (`quiet`): preflight and quiet (waiting for the acknowledgement
//     unless Config.NoWait).
//
// The phases:
//
//  1. Preflight ([PhasePreflight], phase_preflight.go): read every service (ECS.Describe) and
//     its running tasks, the **target** task definition (Config.TaskDefinition or the service's
//     current one: it must exist, be ACTIVE and of the service's family), lint the target's
//     signal path (internal/check), check Redis is reachable and writable (Fleet.Ping), read the
//     fleet (Fleet.Snapshot) and fix the selection (the processes running in the services' own
//     tasks unless Config.Selector is given); refuse an empty selection, stale heartbeats and
//     what UpdateService would refuse (a service not ACTIVE, another controller, desired count
//     0). Every check is a typed finding (internal/finding) with a PF (preflight) or SP (signal path)
//     code; errors refuse the run, warnings too with Config.Strict. Nothing has been changed
//     when preflight refuses ([PreflightError], exit code 2).
//  2. Lock ([PhaseLock]): take the deploy lock in Redis, one per cluster/service set. Another
//     live run holds it → [LockedError] naming the holder (exit 6). A lock whose holder stopped
//     refreshing expires by itself and is taken over with a warning. The lock is refreshed at
//     every poll and released at the end, whatever the outcome.
//  3. Quiet ([PhaseQuiet]): send TSTP to the selection — fixed at preflight, so processes that
//     appear later (the new tasks' workers with the same tag) are never quieted — and wait for
//     each process to report quiet.
//  4. Drain ([PhaseDrain]): wait for the in-flight jobs to finish, bounded by
//     Config.DrainTimeout. One rule says a process is drained: quiet with nothing in flight,
//     gone, or dead. On timeout Config.OnTimeout decides: [OnTimeoutDeploy] continues (ECS's
//     SIGTERM and Sidekiq's own shutdown requeue what is left), [OnTimeoutStop] sends TERM
//     through Redis first, [OnTimeoutFail] stops with [ErrDrainTimeout] (exit 3) and lists the
//     processes left quiet.
//  5. Deploy ([PhaseDeploy]): exactly one ECS.Deploy (UpdateService) per service; the
//     deployment ID is recorded at once.
//  6. Rollout ([PhaseRollout]): poll every service together until our deployment succeeded,
//     failed, was rolled back, or Config.RolloutTimeout passed. The verdict of each poll is the
//     pure function judge (verdict.go), table-tested on every state the simulator produces.
//  7. Exits ([PhaseExits]): watch every selected process leave — gone (clean) or dead (killed,
//     with the ECS evidence of a container exit code 137) — bounded by Config.ExitTimeout. The
//     pure exitVerdict says clean, killed or unknown yet.
//  8. Rescue ([PhaseRescue]): requeue the jobs of the dead processes, exactly once per death
//     (Fleet.Rescue), unless Config.NoRescue.
//  9. Recover ([PhaseRecover]): after a failed or rolled-back rollout, quieted processes still
//     running in the tasks ECS kept can never work again; their tasks are stopped
//     (ECS.StopTasks) so the service starts fresh ones, unless Config.OnRolloutFailure is
//     "leave".
//
// # Dry run
//
// With Config.DryRun the Runner performs the preflight (every read and every check, including
// whether the lock is free) and stops before the first write: no signal, no lock, no
// UpdateService, no StopTask. The Result has Outcome [OutcomeDryRun] and Plan lines saying what
// would happen ("would quiet 4 processes", "would force a new deployment of worker:7").
//
// # What cannot be undone
//
// Quiet (TSTP) is one-way: a quieted Sidekiq process fetches nothing new until it restarts. A
// TERM (OnTimeoutStop) ends the process. UpdateService starts a deployment ECS will finish (or
// roll back) whatever drainctl does next. StopTasks ends tasks. Everything before the lock —
// preflight and the whole dry run — only reads.
//
// # Interrupts
//
// When ctx is cancelled (SIGINT/SIGTERM of drainctl itself) the Runner stops at the next safe
// point — it never abandons a write half-way — re-reads the selected processes from Redis with a
// fresh short context, releases the lock, and returns [ErrInterrupted] with Result.Left
// listing what is left: the processes now quiet, whether the deployment started and its ID. A
// re-run of the same command completes the job: quiet is idempotent.
package drain
