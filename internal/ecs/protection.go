package ecs

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
)

// maxProtectionTasks is UpdateTaskProtection's and GetTaskProtection's limit per call.
const maxProtectionTasks = 10

// MaxProtection is the longest scale-in protection ECS grants in one call (2,880 minutes).
const MaxProtection = 2880 * time.Minute

// ProtectionFailure is one task UpdateTaskProtection or GetTaskProtection did not handle.
type ProtectionFailure struct {
	TaskARN string `json:"taskArn"`
	// Reason is ECS's: TASK_NOT_VALID (unknown, stopping or stopped), DEPLOYMENT_BLOCKED (more
	// protected tasks than the desired count while a deployment runs), …
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// TaskProtection is one task's scale-in protection.
type TaskProtection struct {
	TaskARN   string    `json:"taskArn"`
	Protected bool      `json:"protected"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// ProtectTasks sets scale-in protection on the tasks for the given time (rounded up to whole
// minutes, at most MaxProtection), ten tasks a call, so a deployment cannot stop them. It
// returns the tasks protected and those ECS refused; the error is the API's (AccessDenied,
// unsupported endpoint) for the calls that failed as a whole.
func (c *Client) ProtectTasks(ctx context.Context, cluster string, taskARNs []string, expiresIn time.Duration) ([]TaskProtection, []ProtectionFailure, error) {
	mins := int32((expiresIn + time.Minute - 1) / time.Minute)
	mins = max(1, min(mins, int32(MaxProtection/time.Minute)))
	return c.updateProtection(ctx, cluster, taskARNs, true, &mins)
}

// UnprotectTasks clears the scale-in protection of the tasks, ten a call. A task that has
// stopped meanwhile is no failure worth reporting (TASK_NOT_VALID is dropped).
func (c *Client) UnprotectTasks(ctx context.Context, cluster string, taskARNs []string) ([]ProtectionFailure, error) {
	_, fails, err := c.updateProtection(ctx, cluster, taskARNs, false, nil)
	kept := fails[:0]
	for _, f := range fails {
		if f.Reason != "TASK_NOT_VALID" && f.Reason != "MISSING" {
			kept = append(kept, f)
		}
	}
	return kept, err
}

func (c *Client) updateProtection(ctx context.Context, cluster string, taskARNs []string, enable bool, mins *int32) ([]TaskProtection, []ProtectionFailure, error) {
	var (
		done  []TaskProtection
		fails []ProtectionFailure
	)
	for start := 0; start < len(taskARNs); start += maxProtectionTasks {
		batch := taskARNs[start:min(start+maxProtectionTasks, len(taskARNs))]
		out, err := c.api.UpdateTaskProtection(ctx, &awsecs.UpdateTaskProtectionInput{
			Cluster: aws.String(cluster), Tasks: batch, ProtectionEnabled: enable, ExpiresInMinutes: mins,
		})
		if err != nil {
			return done, fails, c.wrapAPIError(err, "UpdateTaskProtection", fmt.Sprintf("%d task(s) in cluster %q", len(batch), shortName(cluster)), ServiceRef{Cluster: cluster})
		}
		for _, p := range out.ProtectedTasks {
			done = append(done, TaskProtection{TaskARN: aws.ToString(p.TaskArn), Protected: p.ProtectionEnabled, ExpiresAt: aws.ToTime(p.ExpirationDate)})
		}
		for _, f := range out.Failures {
			fails = append(fails, ProtectionFailure{TaskARN: aws.ToString(f.Arn), Reason: aws.ToString(f.Reason), Detail: aws.ToString(f.Detail)})
		}
	}
	return done, fails, nil
}

// TaskProtections reads the scale-in protection of the tasks, ten a call.
func (c *Client) TaskProtections(ctx context.Context, cluster string, taskARNs []string) ([]TaskProtection, []ProtectionFailure, error) {
	var (
		out   []TaskProtection
		fails []ProtectionFailure
	)
	for start := 0; start < len(taskARNs); start += maxProtectionTasks {
		batch := taskARNs[start:min(start+maxProtectionTasks, len(taskARNs))]
		res, err := c.api.GetTaskProtection(ctx, &awsecs.GetTaskProtectionInput{Cluster: aws.String(cluster), Tasks: batch})
		if err != nil {
			return out, fails, c.wrapAPIError(err, "GetTaskProtection", fmt.Sprintf("%d task(s) in cluster %q", len(batch), shortName(cluster)), ServiceRef{Cluster: cluster})
		}
		for _, p := range res.ProtectedTasks {
			out = append(out, TaskProtection{TaskARN: aws.ToString(p.TaskArn), Protected: p.ProtectionEnabled, ExpiresAt: aws.ToTime(p.ExpirationDate)})
		}
		for _, f := range res.Failures {
			fails = append(fails, ProtectionFailure{TaskARN: aws.ToString(f.Arn), Reason: aws.ToString(f.Reason), Detail: aws.ToString(f.Detail)})
		}
	}
	return out, fails, nil
}
