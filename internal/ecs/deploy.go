package ecs

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
)

// DeployResult identifies the deployment a Deploy call started: the one to watch.
type DeployResult struct {
	Ref ServiceRef `json:"ref"`
	// DeploymentID is our deployment: the PRIMARY one of UpdateService's response.
	DeploymentID string `json:"deploymentId"`
	// Previous are the other deployments the response listed, the rollback target among them.
	Previous []Deployment `json:"previous,omitempty"`
	// TaskDefinition is the task definition our deployment runs.
	TaskDefinition string `json:"taskDefinition"`
	// StartedAt is our deployment's createdAt by the server's clock (local time if missing);
	// events from then on are the run's.
	StartedAt time.Time `json:"startedAt"`
	// Desired is our deployment's desired count at start.
	Desired int32 `json:"desired"`
	// BreakerEnabled and BreakerRollback are the service's circuit breaker settings.
	BreakerEnabled  bool `json:"circuitBreaker"`
	BreakerRollback bool `json:"circuitBreakerRollback"`
}

// Deploy forces a new deployment of the service with exactly one UpdateService call
// (forceNewDeployment, and taskDefinition when not empty). The call is retried only when
// throttled: after a server error or a lost response it is not repeated, since a deployment
// may have started; the error says so.
func (c *Client) Deploy(ctx context.Context, ref ServiceRef, taskDefinition string) (DeployResult, error) {
	in := &awsecs.UpdateServiceInput{
		Cluster:            aws.String(ref.Cluster),
		Service:            aws.String(ref.Service),
		ForceNewDeployment: true,
	}
	if taskDefinition != "" {
		in.TaskDefinition = aws.String(taskDefinition)
	}
	before := time.Now()
	out, err := c.api.UpdateService(ctx, in, onlyThrottleRetries)
	if err != nil {
		werr := c.wrapAPIError(err, "UpdateService", fmt.Sprintf("service %q in cluster %q", shortName(ref.Service), shortName(ref.Cluster)), ref)
		if isTransient(err) && !isThrottle(err) {
			return DeployResult{}, fmt.Errorf("%w (a deployment may have started: check the service before retrying)", werr)
		}
		return DeployResult{}, werr
	}
	if out.Service == nil {
		return DeployResult{}, fmt.Errorf("update service %q in cluster %q: empty response", shortName(ref.Service), shortName(ref.Cluster))
	}
	res := DeployResult{Ref: ref}
	for _, d := range deploymentsOf(out.Service.Deployments) {
		if d.Status == "PRIMARY" && res.DeploymentID == "" {
			res.DeploymentID, res.TaskDefinition, res.StartedAt, res.Desired = d.ID, d.TaskDefinition, d.CreatedAt, d.Desired
			continue
		}
		res.Previous = append(res.Previous, d)
	}
	if res.DeploymentID == "" {
		return DeployResult{}, fmt.Errorf("update service %q in cluster %q: the response has no PRIMARY deployment", shortName(ref.Service), shortName(ref.Cluster))
	}
	if res.StartedAt.IsZero() {
		res.StartedAt = before
	}
	if dc := out.Service.DeploymentConfiguration; dc != nil && dc.DeploymentCircuitBreaker != nil {
		res.BreakerEnabled = dc.DeploymentCircuitBreaker.Enable
		res.BreakerRollback = dc.DeploymentCircuitBreaker.Rollback
	}
	return res, nil
}
