// Package ecssim is a small ECS endpoint for tests and demos: an HTTP server speaking the AWS
// JSON 1.1 protocol of Amazon ECS (X-Amz-Target AmazonEC2ContainerServiceV20141113.<Op>,
// errors as HTTP 400/500 with a "__type" code) that the real aws-sdk-go-v2 ECS client reaches
// through its BaseEndpoint (or AWS_ENDPOINT_URL_ECS).
//
// # Operations
//
// CreateCluster, DescribeClusters, DescribeServices, UpdateService, DescribeTaskDefinition,
// RegisterTaskDefinition, ListTasks, DescribeTasks, StopTask, ListServiceDeployments,
// DescribeServiceDeployments, ContinueServiceDeployment, UpdateTaskProtection and
// GetTaskProtection. Anything else answers UnknownOperationException. Services are
// created through the Go API (CreateService) or the ecssim command's config file.
//
// # What it models
//
//   - Deployments: UpdateService with forceNewDeployment (or a different task definition)
//     makes a new PRIMARY deployment "ecs-svc/<19 digits>"; older ones become ACTIVE and leave
//     the list (INACTIVE) once their last task has stopped. rolloutState IN_PROGRESS →
//     COMPLETED when the primary has desiredCount healthy tasks and no other deployment is
//     left, then the events "deployment completed" and "has reached a steady state".
//     CODE_DEPLOY / EXTERNAL services refuse forceNewDeployment and a task definition with
//     InvalidParameterException.
//   - Rolling update: new tasks start while the service's live tasks (everything not yet
//     STOPPED, stopping ones included) stay within maximumPercent; old tasks are stopped
//     (unhealthy ones first) only while the healthy count stays at or above
//     minimumHealthyPercent. A task goes PROVISIONING (2 s) → PENDING (3 s) → RUNNING and
//     counts healthy HealthyAfter (40 s) later; all simulated times are divided by TimeScale.
//   - Circuit breaker: tasks that stop before they are healthy count as failed; at
//     max(3, min(200, ceil(desired/2))) the primary goes FAILED ("tasks failed to start") and
//     no more of its tasks start. With rollback the most recent deployment that ever reached
//     COMPLETED becomes PRIMARY again (same ID, back to IN_PROGRESS), keeping the tasks it
//     still runs. failedTasks resets to 0 when one of the deployment's tasks becomes healthy.
//     Without the breaker a failing rollout stays IN_PROGRESS for ever.
//   - Service Deployments API: one service deployment per deployment, ARN
//     arn:…:service-deployment/<cluster>/<service>/<the deployment ID's digits> (real ECS uses
//     an unrelated ID: do not rely on the match), status IN_PROGRESS → SUCCESSFUL, STOPPED
//     when superseded or failed without rollback, ROLLBACK_IN_PROGRESS → ROLLBACK_SUCCESSFUL
//     with rollback.reason, and circuit breaker failureCount/threshold.
//   - Tasks: 32-hex IDs, private IPs 10.0.x.y with an ENI attachment (privateIPv4Address,
//     privateDnsName ip-10-0-x-y.ec2.internal), 64-hex container runtime IDs, startedBy = the
//     deployment ID, group "service:<name>", stopCode/stoppedReason ("Scaling activity
//     initiated by (deployment …)" for the scheduler, the caller's reason for StopTask,
//     EssentialContainerExited when the process ended by itself).
//   - Tasks as processes (ServiceSpec.Process): the task's command runs in its own process
//     group with the task's hostname in an env var (DYNO for Sidekiq). Stopping sends SIGTERM
//     to the task's PID 1 only, as `docker stop` does (so `sh -c "cd x && sidekiq"` is as
//     broken here as on ECS), and SIGKILL to the whole group after the stop timeout; the exit code is the status or
//     128+signal (137 for SIGKILL, 143 for SIGTERM). With BrokenSignalPath the command runs
//     under `sh -c 'trap : TERM; "$@"'`, the SIGTERM goes to that shell only and the command
//     never hears it. When the leader exits, the rest of its group is killed (as a container's
//     processes die with its PID 1). Every process is reaped; Close kills what is left.
//   - PID 1 (PID1Semantics: as root, with util-linux unshare): each task's command runs as
//     PID 1 of a PID namespace of its own, with its own /proc, so the kernel's PID 1 rules
//     apply as in a container: PID 1 never dies of a signal it has no handler for (a shell
//     waiting for its child ignores the SIGTERM, so does `sleep`), and when PID 1 exits every
//     other process of the namespace is SIGKILLed. Without it (not root) the command is a
//     plain process-group leader and dies of an unhandled SIGTERM.
//   - initProcessEnabled: when the task definition's first container sets
//     linuxParameters.initProcessEnabled, the command runs as `tini -- <command>`, tini being
//     found in PATH (Docker's --init runs docker-init, which is tini, this way: no -g). tini is
//     then PID 1: it forwards SIGTERM to its one child only and exits, with the child's
//     status (128+signal when the child died of one), as soon as that child exits. So an
//     exec-form command stops cleanly, while `sh -c "a && sidekiq"` under an init exits 143
//     at once: the shell, no longer PID 1, dies of the SIGTERM, tini exits with it and the
//     kernel SIGKILLs Sidekiq. When tini is not installed such a task fails to start
//     (TaskFailedToStart, "CannotStartContainerError: initProcessEnabled is true but the
//     init (tini …) is not installed") rather than running without its init. Without
//     PID1Semantics tini still runs and forwards signals, but is not PID 1 (it warns so).
//   - Strategies (deploymentConfiguration.strategy, bakeTimeInMinutes, lifecycleHooks,
//     linearConfiguration, canaryConfiguration, earlySuccessCriteria; set by UpdateService,
//     field by field, or ServiceSpec; validated as ECS does: hooks only at the hook stages,
//     PAUSE not at TEST_/PRODUCTION_TRAFFIC_SHIFT, AWS_LAMBDA needs hookTargetArn and
//     roleArn, timeouts 1–1440 min (default 1440, action ROLLBACK), bake 0–1440, linear
//     step 3–100 % (10, bake 6), canary 0.1–100 % (5, bake 10), early success only with
//     ROLLING and at least minimumHealthyPercent). A deployment keeps the settings it was
//     made with. The service's first deployment (CreateService) starts directly, with no
//     stages or hooks. BLUE_GREEN, LINEAR and CANARY deployments (no load balancer needed
//     here, unlike ECS for linear/canary) go RECONCILE_SERVICE → PRE_SCALE_UP → SCALE_UP
//     (green starts at the full desired count beside blue, ignoring maximumPercent, and
//     failed green tasks are replaced) → POST_SCALE_UP (once green is all healthy) →
//     TEST_TRAFFIC_SHIFT → POST_TEST_TRAFFIC_SHIFT → PRODUCTION_TRAFFIC_SHIFT (100 % at once;
//     linear steps of stepPercent each followed by its bake; canary canaryPercent, its
//     bake, then 100 %; PRE_PRODUCTION_TRAFFIC_SHIFT hooks run before every step and are
//     reported as stage PRODUCTION_TRAFFIC_SHIFT) → POST_PRODUCTION_TRAFFIC_SHIFT →
//     BAKE_TIME (blue keeps running) → CLEAN_UP (every blue task is stopped as the
//     scheduler does: SIGTERM, SIGKILL after the stop timeout; protected ones wait) →
//     COMPLETED / SUCCESSFUL. Weights show as requestedProductionTrafficWeight in
//     DescribeServiceDeployments. ROLLING deployments run RECONCILE_SERVICE and
//     PRE_SCALE_UP (whose hooks hold them before any task starts), SCALE_UP (the rolling
//     update) and POST_SCALE_UP (hooks hold the completion), then CLEAN_UP.
//   - Hooks: at each stage a hook listed for it runs; AWS_LAMBDA hooks are not invoked and
//     succeed at once; a PAUSE hook is AWAITING_ACTION (lifecycleHookDetails of
//     DescribeServiceDeployments lists the current stage's hooks, with hookId, expiresAt
//     and timeoutAction) until ContinueServiceDeployment CONTINUE (SUCCEEDED) or ROLLBACK
//     (FAILED), or its timeout (TIMED_OUT, then its action). A rollback makes the most
//     recent COMPLETED deployment PRIMARY again and reconciles the rolling way (green is
//     stopped, blue kept): ROLLBACK_IN_PROGRESS → ROLLBACK_SUCCESSFUL with rollback.reason;
//     without such a deployment ours is STOPPED. The circuit breaker works the same way for
//     every strategy. ContinueServiceDeployment: unknown ARN ServiceDeploymentNotFoundException,
//     unknown hookId InvalidParameterException, hook or deployment no longer waiting
//     ConflictException (these codes are ecssim's choice where AWS does not say).
//   - Early success (ROLLING): the rollout is COMPLETED (service deployment SUCCESSFUL) once
//     ceil(desired × healthyPercent / 100) new tasks are healthy; with BLOCKING also only once
//     the old tasks are gone, with DEFERRED at once: the old deployment stays ACTIVE beside
//     the COMPLETED one and its tasks are stopped afterwards.
//   - Task scale-in protection: UpdateTaskProtection (1–10 tasks, expiresInMinutes 1–2880,
//     default 120, every enabling call resets the expiry) and GetTaskProtection (up to 100
//     tasks; none lists the cluster's protected tasks). A task that does not exist or is not
//     running (stopping or stopped) fails with TASK_NOT_VALID; enabling protection fails with
//     DEPLOYMENT_BLOCKED when the service would then hold more protected tasks than its
//     desired count (only possible mid-deployment, when it runs more tasks than desired).
//     Deployments and scale-in never stop a protected task: new tasks still start within
//     maximumPercent, the deployment stays IN_PROGRESS (the circuit breaker does not count
//     it) and an event says protected tasks hold it; once protection is cleared or expires
//     (on the simulator's clock, see Advance) the task is stopped as usual. StopTask ignores
//     protection, as in ECS. TaskInfo.Protected shows it.
//   - Clock: every simulated time runs on the simulator's clock, real time divided by
//     TimeScale plus what Advance added, so tests can jump over expiries and timeouts.
//   - Ops lists every request's operation in order (Calls counts them), for tests that
//     check which ECS actions a client used.
//   - Faults: throttling and 5xx bursts, latency, AccessDenied and UnknownOperation per op,
//     tasks that fail to start, rollouts that never complete. Calls counts requests per op.
//
// # What it does not model
//
// Authentication (SigV4 signatures are not checked), IAM beyond Deny, pagination (every
// list comes in one page), placement, capacity, load balancers and health checks, task
// definition deregistration, task sets, Service Auto Scaling, daemon services, container
// dependencies and non-essential containers (only the first container is a process;
// others are reported alongside it), the image's STOPSIGNAL, the rest of linuxParameters
// (only initProcessEnabled is acted on), launch-rate backoff after failed tasks, retention of stopped tasks (they
// are kept for the simulator's life), the throttling token bucket (only injected bursts),
// and the periodic repetition of steady-state events. A simulated (non-process) task that
// is stopped reports exit code 0.
package ecssim
