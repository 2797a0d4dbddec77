package ecs

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestEvaluate pins Watch's decision on one described service for the cases the simulator
// does not produce: rolloutState not reported, a service leaving ACTIVE, placement events, a
// FAILED deployment whose rollback never comes.
func TestEvaluate(t *testing.T) {
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	dep := func(id, status, rollout string, desired, running int32) ecstypes.Deployment {
		return ecstypes.Deployment{Id: aws.String(id), Status: aws.String(status), RolloutState: ecstypes.DeploymentRolloutState(rollout),
			DesiredCount: desired, RunningCount: running, TaskDefinition: aws.String("arn:aws:ecs:us-east-1:1:task-definition/worker:7")}
	}
	event := func(at time.Time, msg string) ecstypes.ServiceEvent {
		return ecstypes.ServiceEvent{Id: aws.String(msg), CreatedAt: aws.Time(at), Message: aws.String(msg)}
	}
	tests := []struct {
		name     string
		rollback bool
		polls    int // evaluate the same service this many times
		svc      ecstypes.Service
		result   Result
		reason   string
		warning  string
		events   int
	}{
		{name: "rolloutState not reported", svc: ecstypes.Service{Status: aws.String("ACTIVE"),
			Deployments: []ecstypes.Deployment{dep("ecs-svc/2", "PRIMARY", "", 2, 2)}},
			result: Succeeded, reason: "deployment ecs-svc/2 completed: 2/2 tasks running"},
		{name: "IN_PROGRESS although all running", svc: ecstypes.Service{Status: aws.String("ACTIVE"),
			Deployments: []ecstypes.Deployment{dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 2, 2)}}},
		{name: "COMPLETED with an old deployment left", svc: ecstypes.Service{Status: aws.String("ACTIVE"),
			Deployments: []ecstypes.Deployment{dep("ecs-svc/2", "PRIMARY", "COMPLETED", 2, 2), dep("ecs-svc/1", "ACTIVE", "COMPLETED", 2, 1)}}},
		{name: "service draining", svc: ecstypes.Service{Status: aws.String("DRAINING"),
			Deployments: []ecstypes.Deployment{dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 2, 0)}},
			result: Failed, reason: `service "worker" became DRAINING during the rollout`},
		{name: "our deployment gone, previous PRIMARY", svc: ecstypes.Service{Status: aws.String("ACTIVE"),
			Deployments: []ecstypes.Deployment{dep("ecs-svc/1", "PRIMARY", "IN_PROGRESS", 2, 2)}},
			result: RolledBack, reason: "deployment ecs-svc/2 failed and ECS rolled back to deployment ecs-svc/1 (worker:7)"},
		{name: "unable to place, old events ignored", svc: ecstypes.Service{Status: aws.String("ACTIVE"),
			Deployments: []ecstypes.Deployment{dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 2, 0), dep("ecs-svc/1", "ACTIVE", "COMPLETED", 2, 2)},
			Events: []ecstypes.ServiceEvent{
				event(start.Add(time.Second), "(service worker) was unable to place a task because no container instance met all of its requirements."),
				event(start.Add(-time.Hour), "(service worker) has reached a steady state."),
			}},
			warning: "ECS cannot place tasks: (service worker) was unable to place a task", events: 1},
		{name: "FAILED, rollback awaited", rollback: true, polls: 1, svc: ecstypes.Service{Status: aws.String("ACTIVE"),
			Deployments: []ecstypes.Deployment{dep("ecs-svc/2", "PRIMARY", "FAILED", 2, 0), dep("ecs-svc/1", "ACTIVE", "COMPLETED", 2, 2)}},
			warning: "deployment ecs-svc/2 FAILED (rolloutState FAILED): waiting for ECS to roll back"},
		{name: "FAILED, rollback never came", rollback: true, polls: rollbackPatience + 1, svc: ecstypes.Service{Status: aws.String("ACTIVE"),
			Deployments: []ecstypes.Deployment{dep("ecs-svc/2", "PRIMARY", "FAILED", 2, 0), dep("ecs-svc/1", "ACTIVE", "COMPLETED", 2, 2)}},
			result: Failed, reason: "deployment ecs-svc/2 FAILED: rolloutState FAILED; no rollback seen within 5 polls",
			warning: "deployment ecs-svc/2 FAILED (rolloutState FAILED): waiting for ECS to roll back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := &watchState{
				dep: DeployResult{Ref: ServiceRef{Cluster: "prod", Service: "worker"}, DeploymentID: "ecs-svc/2", StartedAt: start,
					BreakerEnabled: true, BreakerRollback: tt.rollback},
				seenEvents: map[string]bool{}, seenStopped: map[string]bool{},
				prevIDs: map[string]bool{"ecs-svc/1": true},
			}
			c := &Client{region: "us-east-1"}
			for range max(tt.polls, 1) {
				if ws.out.Result != "" {
					break
				}
				c.evaluate(context.Background(), ws, tt.svc)
			}
			if ws.out.Result != tt.result || ws.out.Reason != tt.reason {
				t.Errorf("outcome = %q %q, want %q %q", ws.out.Result, ws.out.Reason, tt.result, tt.reason)
			}
			if tt.warning != "" && !slices.ContainsFunc(ws.out.Warnings, func(w string) bool { return strings.HasPrefix(w, tt.warning) }) {
				t.Errorf("warnings = %q, want one starting %q", ws.out.Warnings, tt.warning)
			}
			if tt.warning == "" && len(ws.out.Warnings) > 0 {
				t.Errorf("warnings = %q, want none", ws.out.Warnings)
			}
			if len(ws.out.Events) != tt.events {
				t.Errorf("events = %+v, want %d", ws.out.Events, tt.events)
			}
		})
	}
}

// TestCheckServiceInactive pins the refusal of a service that is not ACTIVE, for both
// statuses (TestPreflightInactive runs DRAINING through the simulator).
func TestCheckServiceInactive(t *testing.T) {
	c := &Client{region: "us-east-1"}
	for _, status := range []string{"DRAINING", "INACTIVE"} {
		t.Run(status, func(t *testing.T) {
			st := ServiceState{Ref: ServiceRef{Cluster: "prod", Service: "worker"}, Status: status, Controller: "ECS"}
			err := c.checkService(&st, PreflightOptions{AllowInProgress: true})
			want := `service "worker" in cluster "prod" is ` + status + `, not ACTIVE: only an active service can be deployed`
			if !errors.Is(err, ErrRefused) || err.Error() != want {
				t.Errorf("checkService = %v, want %q", err, want)
			}
		})
	}
}
