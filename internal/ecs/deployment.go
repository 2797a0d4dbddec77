package ecs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Event is one service event.
type Event struct {
	// ID is ECS's event ID; empty where the endpoint gives none.
	ID      string    `json:"id,omitempty"`
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

// Key identifies the event across reads (its ID, else its time and text).
func (e Event) Key() string {
	if e.ID != "" {
		return e.ID
	}
	return e.At.Format(time.RFC3339Nano) + " " + e.Message
}

// ServiceDeploymentInfo is the Service Deployments API's view of one deployment.
type ServiceDeploymentInfo struct {
	ARN            string `json:"arn"`
	Status         string `json:"status"`
	StatusReason   string `json:"statusReason,omitempty"`
	RollbackReason string `json:"rollbackReason,omitempty"`
	FailureCount   int32  `json:"failureCount,omitempty"`
	Threshold      int32  `json:"threshold,omitempty"`
	// LifecycleStage is where the deployment is (SCALE_UP, POST_SCALE_UP, BAKE_TIME, …).
	LifecycleStage string `json:"lifecycleStage,omitempty"`
	// Hooks are the lifecycle hooks of the current stage.
	Hooks []HookDetail `json:"hooks,omitempty"`
}

// ServiceDeploymentOf finds our deployment in the Service Deployments API: by the ARN's last
// segment matching the deployment ID's digits, else the first one created since StartedAt.
// It returns nil, nil when there is none yet; errors are the API's (callers that only enrich
// a report ignore them: the API may be denied or unimplemented).
func (c *Client) ServiceDeploymentOf(ctx context.Context, dep DeployResult) (*ServiceDeploymentInfo, error) {
	after := dep.StartedAt.Add(-time.Minute)
	list, err := c.api.ListServiceDeployments(ctx, &awsecs.ListServiceDeploymentsInput{
		Cluster:   aws.String(dep.Ref.Cluster),
		Service:   aws.String(dep.Ref.Service),
		CreatedAt: &ecstypes.CreatedAt{After: &after},
	})
	if err != nil {
		return nil, c.wrapAPIError(err, "ListServiceDeployments", fmt.Sprintf("deployments of service %q in cluster %q", shortName(dep.Ref.Service), shortName(dep.Ref.Cluster)), dep.Ref)
	}
	briefs := list.ServiceDeployments
	digits := dep.DeploymentID[strings.LastIndexByte(dep.DeploymentID, '/')+1:]
	arn := ""
	for _, b := range briefs {
		if a := aws.ToString(b.ServiceDeploymentArn); shortName(a) == digits {
			arn = a
		}
	}
	if arn == "" {
		since := dep.StartedAt.Add(-2 * time.Second)
		slices.SortFunc(briefs, func(a, b ecstypes.ServiceDeploymentBrief) int {
			return aws.ToTime(a.CreatedAt).Compare(aws.ToTime(b.CreatedAt))
		})
		for _, b := range briefs {
			if !aws.ToTime(b.CreatedAt).Before(since) {
				arn = aws.ToString(b.ServiceDeploymentArn)
				break
			}
		}
	}
	if arn == "" {
		return nil, nil
	}
	return c.ServiceDeployment(ctx, dep.Ref, arn)
}

// ServiceDeployment describes one service deployment by ARN (status, lifecycle stage, the
// current stage's hooks); nil, nil when ECS does not know it.
func (c *Client) ServiceDeployment(ctx context.Context, ref ServiceRef, arn string) (*ServiceDeploymentInfo, error) {
	out, err := c.api.DescribeServiceDeployments(ctx, &awsecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{arn}})
	if err != nil {
		return nil, c.wrapAPIError(err, "DescribeServiceDeployments", "service deployment "+shortName(arn), ref)
	}
	for _, sd := range out.ServiceDeployments {
		info := &ServiceDeploymentInfo{
			ARN:          aws.ToString(sd.ServiceDeploymentArn),
			Status:       string(sd.Status),
			StatusReason: aws.ToString(sd.StatusReason),
		}
		if sd.Rollback != nil {
			info.RollbackReason = aws.ToString(sd.Rollback.Reason)
		}
		if cb := sd.DeploymentCircuitBreaker; cb != nil {
			info.FailureCount, info.Threshold = cb.FailureCount, cb.Threshold
		}
		info.LifecycleStage = string(sd.LifecycleStage)
		for _, h := range sd.LifecycleHookDetails {
			info.Hooks = append(info.Hooks, HookDetail{ID: aws.ToString(h.HookId), Type: string(h.TargetType), Status: string(h.Status),
				ExpiresAt: aws.ToTime(h.ExpiresAt), TimeoutAction: string(h.TimeoutAction)})
		}
		return info, nil
	}
	return nil, nil
}
