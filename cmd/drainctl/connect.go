package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// openRedis connects to the fleet's Redis. With ping, it also checks that Redis is
// reachable and writable (commands that signal); otherwise the first read is the check.
// Failures are bad input (exit 2): nothing was changed.
func openRedis(ctx context.Context, ro *sidekiq.Options, ping bool) (*sidekiq.Client, error) {
	cl, err := sidekiq.Open(ro)
	if err != nil {
		return nil, usageErr("redis %s: %w", ro.Redacted(), err)
	}
	if !ping {
		return cl, nil
	}
	pctx, cancel := context.WithTimeout(ctx, ro.ConnectTimeout())
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, redisErr(ro, err)
	}
	return cl, nil
}

// redisErr makes a Redis failure at the start of a command a usage error naming the
// (redacted) server, with a hint.
func redisErr(ro *sidekiq.Options, err error) error {
	if !strings.Contains(err.Error(), ro.Redacted()) {
		err = fmt.Errorf("redis %s: %w", ro.Redacted(), err)
	}
	return &exitError{code: exitUsage, err: err,
		hint: "check --redis-url (host, port, password, db) and that Redis is reachable from here"}
}

// snapshot reads the fleet; a failure is a usage error (unreachable, wrong password).
func snapshot(ctx context.Context, cl *sidekiq.Client, ro *sidekiq.Options) (*sidekiq.Snapshot, error) {
	sctx, cancel := context.WithTimeout(ctx, ro.ConnectTimeout())
	defer cancel()
	snap, err := cl.Snapshot(sctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, redisErr(ro, err)
	}
	return snap, nil
}

// selectionErr makes an empty selection (or none) bad input, with a hint that shows what the
// fleet holds; other errors pass unchanged.
func selectionErr(err error) error {
	var empty *sidekiq.EmptySelectionError
	if errors.As(err, &empty) || errors.Is(err, sidekiq.ErrNoSelector) {
		return &exitError{code: exitUsage, err: err, hint: "run 'drainctl status --all' to see the fleet"}
	}
	return err
}

// noSelectorErr is the usage error of a command that needs a selection.
func noSelectorErr() error {
	return &exitError{code: exitUsage, err: errors.New("no processes selected: give --tag, --hostname, --queue, --identity, --label, or --all"),
		hint: "drainctl never selects the whole fleet by default"}
}

// serviceRefs reads --cluster and --service; required says both must be present.
func (o opts) serviceRefs(required bool) ([]ecs.ServiceRef, error) {
	cluster, services := o.str("cluster"), o.strs("service")
	switch {
	case cluster == "" && len(services) == 0 && !required:
		return nil, nil
	case cluster == "" && len(services) == 0:
		return nil, usageErr("--cluster and --service are required")
	case cluster == "":
		return nil, usageErr("--cluster is required with --service")
	case len(services) == 0:
		return nil, usageErr("--service is required with --cluster")
	}
	refs := make([]ecs.ServiceRef, 0, len(services))
	seen := map[string]bool{}
	for _, s := range services {
		if seen[s] {
			return nil, usageErr("--service %q given twice", s)
		}
		seen[s] = true
		refs = append(refs, ecs.ServiceRef{Cluster: cluster, Service: s})
	}
	return refs, nil
}

// openECS builds the ECS client the SDK's way (region, profile, AWS_ENDPOINT_URL_ECS, the
// credential chain); a configuration error is bad input.
func openECS(ctx context.Context, o opts) (*ecs.Client, error) {
	c, err := ecs.New(ctx, ecs.Options{Region: o.str("region"), Profile: o.str("profile")})
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err, hint: "set --region/--profile or AWS_REGION/AWS_PROFILE"}
	}
	return c, nil
}

// ecsErr makes an ECS preflight refusal (unknown cluster or service, CODE_DEPLOY, access
// denied, a rollout in progress) a usage error: nothing was changed.
func ecsErr(err error) error {
	if errors.Is(err, ecs.ErrNotFound) || errors.Is(err, ecs.ErrRefused) || errors.Is(err, ecs.ErrAccessDenied) || errors.Is(err, ecs.ErrInProgress) {
		return &exitError{code: exitUsage, err: err}
	}
	return err
}
