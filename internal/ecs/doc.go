// Package ecs forces and watches ECS rollouts through the AWS SDK for Go v2.
//
// A run is three steps:
//
//   - Preflight reads every service (DescribeClusters, then DescribeServices in batches of 10
//     per cluster, then DescribeTaskDefinition) and refuses, one line each, what a forced
//     rolling deployment cannot handle: a missing cluster or service (ErrNotFound), a service
//     that is not ACTIVE or uses the CODE_DEPLOY or EXTERNAL controller (ErrRefused), a
//     rollout already in progress (ErrInProgress, unless allowed), and missing IAM actions
//     (ErrAccessDenied; *AccessDeniedError names the action). It warns about a disabled
//     circuit breaker: a bad rollout then only ends by the watch timeout.
//   - Deploy makes exactly one UpdateService call per service (forceNewDeployment, optionally a
//     new task definition) and keeps the ID of the PRIMARY deployment of the response: our
//     deployment. The call is retried only when throttled, never after a server error, so it
//     cannot create a second deployment.
//   - Watch polls with its own loop (one DescribeServices per cluster per poll, at most 10
//     services a call) and tells success from a rollback by that ID: succeeded means our
//     deployment is PRIMARY, COMPLETED where ECS reports rolloutState, runs the desired count,
//     and is the only one left. "Stable" alone is not success: after a circuit-breaker
//     rollback the service is stable too, on the old deployment. A throttled poll is a
//     skipped tick. When a deployment's failedTasks rises, the stopped tasks it started are
//     fetched (ListTasks + DescribeTasks) and reported with stop codes, reasons and exit codes;
//     an unsuccessful outcome is enriched from the Service Deployments API when it answers.
//
// Tasks lists a service's tasks with what matching Sidekiq processes needs (private IPv4 and
// DNS name, container runtime IDs, deployment ID), and StopTasks stops given tasks so the
// scheduler replaces them.
//
// Configuration is the SDK's own (config.LoadDefaultConfig): environment, shared files,
// profiles, SSO, assume-role. The endpoint is overridden only through the SDK's mechanisms,
// AWS_ENDPOINT_URL_ECS or Options.Endpoint (BaseEndpoint), which is how the tests reach the
// simulator in package ecssim. The retryer makes more attempts than the SDK's default 3 (and is
// adaptive when AWS_RETRY_MODE says so); UpdateService alone retries only throttling. The HTTP
// client hands net/http plain request bodies, working around a smithy-go body wrapper that
// made net/http drop connections under responses and the SDK resend calls (see
// plainBodyClient). SDK types do not leave the package: task definitions are copied into
// TaskDefinitionInfo.
package ecs
