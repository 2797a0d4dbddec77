// Package drain runs drainctl's deploy sequence: quiet the Sidekiq processes of an ECS
// service, wait for their jobs to finish, force the rollout, watch it to the end, watch the old
// processes leave, and rescue the jobs of any process that was killed instead of stopping.
//
// The package never prints. It reads and writes the fleet through the small [Fleet] interface
// and each ECS service through [Service] (the command wires *sidekiq.Client and *ecs.Client in
// through thin adapters), emits events to an [Observer] while it runs, and returns a [Result]
// that says what happened — or, when it stopped early, what it left behind.
//
// # The phases
//
// [Runner.Run] is one straight function; each phase is a named step with early returns:
//
//  1. Preflight ([PhasePreflight]): read every service (Service.Preflight) and its running
//     tasks, check Redis is reachable and writable (Fleet.Ping), read the fleet
//     (Fleet.Snapshot); fix the selection (the processes running in the
//     services' own tasks unless Config.Select is given); refuse an empty selection, stale
//     heartbeats and a held lock. Nothing has been changed when a preflight check fails
//     ([PreflightError], exit code 2).
//  2. Lock ([PhaseLock]): take the deploy lock in Redis, one per cluster/service set. Another
//     live run holds it → [LockedError] naming the holder (exit 6). A lock whose holder stopped
//     refreshing expires by itself and is taken over with a warning. The lock is refreshed at
//     every poll and released at the end, whatever the outcome.
//  3. Quiet ([PhaseQuiet]): send TSTP to the selection — fixed at preflight, so processes that
//     appear later (the new tasks' workers with the same tag) are never quieted — and wait up to
//     Config.AckTimeout for each process to report quiet.
//  4. Drain ([PhaseDrain]): wait for the in-flight jobs to finish, reporting the remaining jobs
//     and the longest-running ones at every poll, bounded by Config.DrainTimeout.
//  5. On drain timeout, Config.OnTimeout decides: [OnTimeoutDeploy] continues (ECS's SIGTERM
//     and Sidekiq's own shutdown requeue what is left), [OnTimeoutStop] sends TERM through Redis
//     first, [OnTimeoutFail] stops with [ErrDrainTimeout] (exit 3) and lists the processes left
//     quiet.
//  6. Deploy ([PhaseDeploy]): exactly one Service.Deploy (UpdateService) per service; the
//     deployment ID is recorded at once.
//  7. Rollout ([PhaseRollout]): Service.Watch until our deployment succeeded, failed, was rolled
//     back, or Config.RolloutTimeout passed.
//  8. Exits ([PhaseExits]): watch every selected process leave — gone (clean) or dead (killed,
//     with the ECS evidence of a container exit code 137) — bounded by Config.ExitTimeout, then
//     rescue the jobs of the dead ones exactly once (Fleet.Rescue) when Config.Rescue is on.
//  9. Recover ([PhaseRecover]): after a failed or rolled-back rollout, quieted processes still
//     running in the tasks ECS kept can never work again; their tasks are stopped (Service.
//     StopTasks) so the service starts fresh ones, unless Config.OnRolloutFailure is "leave".
//     With several services, each is deployed before any is watched (ECS rolls them out
//     together) and they share the rollout deadline. When some roll back or time out, the
//     failed ones are recovered first, then the old processes of those that succeeded are
//     still watched leaving and their killed processes' jobs rescued.
//  10. The Result: [Outcome], job counts, per-process end states, per-service rollout record,
//     phase durations, API call counts and warnings. [ExitCode] maps it to the process exit code.
//
// # Dry run
//
// With Config.DryRun the Runner performs phase 1 (every read and every check, including
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
