package ecs_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/drainctl/drainctl/internal/ecs"
)

// TestDeployServerErrorNotRetried: a 5xx on UpdateService is not retried (a deployment may
// have started) and the error says so.
func TestDeployServerErrorNotRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ref := e.service(t, "worker", nil)
	e.sim.ServerErrors("UpdateService", 1)
	_, err := e.c.Deploy(context.Background(), ref, "")
	if err == nil || !strings.Contains(err.Error(), "a deployment may have started") {
		t.Fatalf("Deploy = %v, want an error saying a deployment may have started", err)
	}
	if n := e.sim.Calls("UpdateService"); n != 1 {
		t.Errorf("UpdateService calls = %d, want 1", n)
	}
	// Throttling is retried: the throttled request was not processed.
	e.sim.Throttle("UpdateService", 2)
	if _, err := e.c.Deploy(context.Background(), ref, ""); err != nil {
		t.Fatalf("Deploy after 2 throttles: %v", err)
	}
}

// TestDeployErrors checks Deploy's own refusals.
func TestDeployErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ref := e.service(t, "worker", nil)
	gone := e.service(t, "gone", nil)
	e.sim.SetServiceStatus("prod", "gone", "DRAINING")
	tests := []struct {
		name    string
		ref     ecs.ServiceRef
		deny    bool
		kind    error
		message string
	}{
		{"missing service", ecs.ServiceRef{Cluster: "prod", Service: "ghost"}, false, ecs.ErrNotFound, `service "ghost" not found in cluster "prod" (region us-east-1)`},
		{"missing cluster", ecs.ServiceRef{Cluster: "nope", Service: "worker"}, false, ecs.ErrNotFound, `cluster "nope" not found (region us-east-1)`},
		{"not active", gone, false, ecs.ErrRefused, `service "gone" in cluster "prod" is not ACTIVE (region us-east-1)`},
		{"access denied", ref, true, ecs.ErrAccessDenied, `access denied to ecs:UpdateService (service "worker" in cluster "prod", region us-east-1): the IAM policy must allow ecs:UpdateService`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.deny {
				e.sim.Deny("UpdateService")
			}
			_, err := e.c.Deploy(context.Background(), tt.ref, "")
			if !errors.Is(err, tt.kind) || err.Error() != tt.message {
				t.Errorf("Deploy = %v, want %q", err, tt.message)
			}
		})
	}
}
