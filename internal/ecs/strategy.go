package ecs

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// The deployment strategies of deploymentConfiguration.strategy (ECS controller).
const (
	StrategyRolling   = "ROLLING"
	StrategyBlueGreen = "BLUE_GREEN"
	StrategyLinear    = "LINEAR"
	StrategyCanary    = "CANARY"
)

// StagePostScaleUp is the lifecycle stage where green is up and blue still runs: the natural
// point for a drain.
const StagePostScaleUp = "POST_SCALE_UP"

// HookPause is a lifecycle hook that stops the deployment at its stage until
// ContinueServiceDeployment (or its timeout).
const HookPause = "PAUSE"

// DeploymentStrategy is how the service deploys: the strategy, bake time, lifecycle hooks,
// alarms and (rolling) early success criteria.
type DeploymentStrategy struct {
	// Name is ROLLING (also when the service does not say), BLUE_GREEN, LINEAR or CANARY.
	Name     string          `json:"name"`
	BakeTime time.Duration   `json:"bakeTime,omitempty"`
	Hooks    []LifecycleHook `json:"hooks,omitempty"`
	// Alarms is true when CloudWatch alarms can fail (and roll back) a deployment.
	Alarms bool `json:"alarms,omitempty"`
	// EarlySuccess is nil unless early success criteria are enabled (rolling only).
	EarlySuccess *EarlySuccess `json:"earlySuccess,omitempty"`
}

// LifecycleHook is one deploymentConfiguration.lifecycleHooks entry.
type LifecycleHook struct {
	// Type is AWS_LAMBDA or PAUSE.
	Type   string   `json:"type"`
	Stages []string `json:"stages"`
	Target string   `json:"target,omitempty"`
	// Timeout is how long the hook may wait; zero when ECS's default applies.
	Timeout time.Duration `json:"timeout,omitempty"`
	// TimeoutAction is what ECS does then (CONTINUE or ROLLBACK).
	TimeoutAction string `json:"timeoutAction,omitempty"`
}

// EarlySuccess is a rolling deployment's early success criteria.
type EarlySuccess struct {
	HealthyPercent int32 `json:"healthyPercent"`
	// Cleanup is DEFERRED (the old tasks stop after the deployment completed) or BLOCKING.
	Cleanup string `json:"cleanup"`
}

// PauseHookAt returns the PAUSE hook at the given stage, or nil.
func (s DeploymentStrategy) PauseHookAt(stage string) *LifecycleHook {
	for i, h := range s.Hooks {
		if h.Type != HookPause {
			continue
		}
		for _, st := range h.Stages {
			if st == stage {
				return &s.Hooks[i]
			}
		}
	}
	return nil
}

// BlueGreenLike is true for the strategies that start the whole new revision beside the old
// one and stop the old one at CLEAN_UP: blue/green, linear and canary.
func (s DeploymentStrategy) BlueGreenLike() bool {
	return s.Name == StrategyBlueGreen || s.Name == StrategyLinear || s.Name == StrategyCanary
}

// strategyOf reads the deployment configuration's strategy part.
func strategyOf(dc *ecstypes.DeploymentConfiguration) DeploymentStrategy {
	s := DeploymentStrategy{Name: StrategyRolling}
	if dc == nil {
		return s
	}
	if dc.Strategy != "" {
		s.Name = string(dc.Strategy)
	}
	if dc.BakeTimeInMinutes != nil {
		s.BakeTime = time.Duration(*dc.BakeTimeInMinutes) * time.Minute
	}
	if dc.Alarms != nil {
		s.Alarms = dc.Alarms.Enable
	}
	for _, h := range dc.LifecycleHooks {
		lh := LifecycleHook{Type: string(h.TargetType), Target: aws.ToString(h.HookTargetArn)}
		for _, st := range h.LifecycleStages {
			lh.Stages = append(lh.Stages, string(st))
		}
		if tc := h.TimeoutConfiguration; tc != nil {
			if tc.TimeoutInMinutes != nil {
				lh.Timeout = time.Duration(*tc.TimeoutInMinutes) * time.Minute
			}
			lh.TimeoutAction = string(tc.Action)
		}
		s.Hooks = append(s.Hooks, lh)
	}
	if es := dc.EarlySuccessCriteria; es != nil && es.Enable {
		s.EarlySuccess = &EarlySuccess{HealthyPercent: aws.ToInt32(es.HealthyPercent), Cleanup: string(es.SourceServiceRevisionCleanup)}
	}
	return s
}

// HookDetail is one lifecycle hook of the current stage of a service deployment.
type HookDetail struct {
	ID            string    `json:"id"`
	Type          string    `json:"type"`
	Status        string    `json:"status"` // AWAITING_ACTION, …
	ExpiresAt     time.Time `json:"expiresAt,omitzero"`
	TimeoutAction string    `json:"timeoutAction,omitempty"`
}

// AwaitingPause returns the PAUSE hook waiting for ContinueServiceDeployment, or nil.
func (sd *ServiceDeploymentInfo) AwaitingPause() *HookDetail {
	if sd == nil {
		return nil
	}
	for i, h := range sd.Hooks {
		if h.Type == HookPause && h.Status == "AWAITING_ACTION" {
			return &sd.Hooks[i]
		}
	}
	return nil
}

// ContinueDeployment answers a PAUSE hook: CONTINUE lets the deployment go on (for
// blue/green, to the traffic shift, bake and CLEAN_UP), ROLLBACK rolls it back.
func (c *Client) ContinueDeployment(ctx context.Context, ref ServiceRef, serviceDeploymentARN, hookID, action string) error {
	_, err := c.api.ContinueServiceDeployment(ctx, &awsecs.ContinueServiceDeploymentInput{
		ServiceDeploymentArn: aws.String(serviceDeploymentARN), HookId: aws.String(hookID),
		Action: ecstypes.DeploymentLifecycleHookAction(action),
	})
	if err != nil {
		return c.wrapAPIError(err, "ContinueServiceDeployment", fmt.Sprintf("hook %s of service deployment %s", hookID, shortName(serviceDeploymentARN)), ref)
	}
	return nil
}
