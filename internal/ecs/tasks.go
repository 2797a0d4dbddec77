package ecs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// maxTasksPerCall is DescribeTasks' limit.
const maxTasksPerCall = 100

// Task is one ECS task with what matching Sidekiq processes to tasks needs.
type Task struct {
	ARN string `json:"arn"`
	// ID is the last segment of the ARN (some VPCs make it the container's hostname).
	ID string `json:"id"`
	// DeploymentID is startedBy: the deployment (ecs-svc/...) that started the task.
	DeploymentID   string `json:"deploymentId,omitempty"`
	TaskDefinition string `json:"taskDefinition,omitempty"`
	LastStatus     string `json:"lastStatus"`
	DesiredStatus  string `json:"desiredStatus"`
	// PrivateIPv4 and PrivateDNS come from the ENI attachment (awsvpc); empty otherwise.
	PrivateIPv4   string      `json:"privateIPv4,omitempty"`
	PrivateDNS    string      `json:"privateDNS,omitempty"`
	StopCode      string      `json:"stopCode,omitempty"`
	StoppedReason string      `json:"stoppedReason,omitempty"`
	Containers    []Container `json:"containers"`
	StartedAt     time.Time   `json:"startedAt,omitzero"`
	StoppingAt    time.Time   `json:"stoppingAt,omitzero"`
	StoppedAt     time.Time   `json:"stoppedAt,omitzero"`
}

// Container is one container of a Task.
type Container struct {
	Name string `json:"name"`
	// RuntimeID is the container runtime's ID; its first 12 hex digits are the hostname in
	// bridge and host network modes.
	RuntimeID string `json:"runtimeId,omitempty"`
	// ExitCode is nil until the container stopped; 137 means SIGKILL (after stopTimeout).
	ExitCode *int32 `json:"exitCode,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Killed reports whether a container of the task exited with 137 (SIGKILL), the ECS evidence
// that the process inside did not stop within stopTimeout.
func (t Task) Killed() (Container, bool) {
	for _, c := range t.Containers {
		if c.ExitCode != nil && *c.ExitCode == 137 {
			return c, true
		}
	}
	return Container{}, false
}

// Summary is one line about a stopped task: its stop code, reason and exit codes.
func (t Task) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "task %s", t.ID)
	if t.StopCode != "" {
		fmt.Fprintf(&b, " %s", t.StopCode)
	}
	if t.StoppedReason != "" {
		fmt.Fprintf(&b, ": %s", t.StoppedReason)
	}
	var exits []string
	for _, c := range t.Containers {
		switch {
		case c.ExitCode != nil && c.Reason != "":
			exits = append(exits, fmt.Sprintf("%s exit %d (%s)", c.Name, *c.ExitCode, c.Reason))
		case c.ExitCode != nil:
			exits = append(exits, fmt.Sprintf("%s exit %d", c.Name, *c.ExitCode))
		case c.Reason != "":
			exits = append(exits, fmt.Sprintf("%s: %s", c.Name, c.Reason))
		}
	}
	if len(exits) > 0 {
		fmt.Fprintf(&b, " [%s]", strings.Join(exits, "; "))
	}
	return b.String()
}

// Tasks lists the service's tasks with desired status desired ("RUNNING", "STOPPED", or ""
// for both) through ListTasks (paginated) and DescribeTasks (100 per call). Stopped tasks are
// listed by ECS for a limited time only.
func (c *Client) Tasks(ctx context.Context, ref ServiceRef, desired string) ([]Task, error) {
	statuses := []ecstypes.DesiredStatus{ecstypes.DesiredStatus(desired)}
	if desired == "" {
		statuses = []ecstypes.DesiredStatus{ecstypes.DesiredStatusRunning, ecstypes.DesiredStatusStopped}
	}
	var arns []string
	for _, st := range statuses {
		more, err := c.listTasks(ctx, ref, &awsecs.ListTasksInput{
			Cluster:       aws.String(ref.Cluster),
			ServiceName:   aws.String(shortName(ref.Service)),
			DesiredStatus: st,
		})
		if err != nil {
			return nil, err
		}
		arns = append(arns, more...)
	}
	return c.describeTasks(ctx, ref, arns)
}

// StoppedTasksOf lists the stopped tasks a deployment started (ECS lists stopped tasks for
// about an hour).
func (c *Client) StoppedTasksOf(ctx context.Context, ref ServiceRef, deploymentID string) ([]Task, error) {
	arns, err := c.listTasks(ctx, ref, &awsecs.ListTasksInput{
		Cluster:       aws.String(ref.Cluster),
		StartedBy:     aws.String(deploymentID),
		DesiredStatus: ecstypes.DesiredStatusStopped,
	})
	if err != nil {
		return nil, err
	}
	return c.describeTasks(ctx, ref, arns)
}

func (c *Client) listTasks(ctx context.Context, ref ServiceRef, in *awsecs.ListTasksInput) ([]string, error) {
	var arns []string
	p := awsecs.NewListTasksPaginator(c.api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, c.wrapAPIError(err, "ListTasks", fmt.Sprintf("tasks of service %q in cluster %q", shortName(ref.Service), shortName(ref.Cluster)), ref)
		}
		arns = append(arns, page.TaskArns...)
	}
	return arns, nil
}

func (c *Client) describeTasks(ctx context.Context, ref ServiceRef, arns []string) ([]Task, error) {
	tasks := make([]Task, 0, len(arns))
	for start := 0; start < len(arns); start += maxTasksPerCall {
		batch := arns[start:min(start+maxTasksPerCall, len(arns))]
		out, err := c.api.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String(ref.Cluster), Tasks: batch})
		if err != nil {
			return nil, c.wrapAPIError(err, "DescribeTasks", fmt.Sprintf("tasks of service %q in cluster %q", shortName(ref.Service), shortName(ref.Cluster)), ref)
		}
		for _, t := range out.Tasks {
			tasks = append(tasks, taskOf(t))
		}
	}
	return tasks, nil
}

func taskOf(t ecstypes.Task) Task {
	arn := aws.ToString(t.TaskArn)
	out := Task{
		ARN:            arn,
		ID:             arn[strings.LastIndexByte(arn, '/')+1:],
		DeploymentID:   aws.ToString(t.StartedBy),
		TaskDefinition: aws.ToString(t.TaskDefinitionArn),
		LastStatus:     aws.ToString(t.LastStatus),
		DesiredStatus:  aws.ToString(t.DesiredStatus),
		StopCode:       string(t.StopCode),
		StoppedReason:  aws.ToString(t.StoppedReason),
		StartedAt:      aws.ToTime(t.StartedAt),
		StoppingAt:     aws.ToTime(t.StoppingAt),
		StoppedAt:      aws.ToTime(t.StoppedAt),
	}
	for _, a := range t.Attachments {
		if aws.ToString(a.Type) != "ElasticNetworkInterface" && aws.ToString(a.Type) != "eni" {
			continue
		}
		for _, kv := range a.Details {
			switch aws.ToString(kv.Name) {
			case "privateIPv4Address":
				out.PrivateIPv4 = aws.ToString(kv.Value)
			case "privateDnsName":
				out.PrivateDNS = aws.ToString(kv.Value)
			}
		}
	}
	for _, ct := range t.Containers {
		cont := Container{
			Name:      aws.ToString(ct.Name),
			RuntimeID: aws.ToString(ct.RuntimeId),
			ExitCode:  ct.ExitCode,
			Reason:    aws.ToString(ct.Reason),
		}
		if out.PrivateIPv4 == "" {
			for _, ni := range ct.NetworkInterfaces {
				out.PrivateIPv4 = aws.ToString(ni.PrivateIpv4Address)
			}
		}
		out.Containers = append(out.Containers, cont)
	}
	return out
}

// StopTasks stops the given tasks (StopTask, one call each) with reason, so the service's
// scheduler replaces them. Failures are joined; the other tasks are still stopped.
func (c *Client) StopTasks(ctx context.Context, cluster string, taskARNs []string, reason string) error {
	var errs []error
	for _, arn := range taskARNs {
		_, err := c.api.StopTask(ctx, &awsecs.StopTaskInput{Cluster: aws.String(cluster), Task: aws.String(arn), Reason: aws.String(reason)})
		if err != nil {
			errs = append(errs, c.wrapAPIError(err, "StopTask", fmt.Sprintf("task %s in cluster %q", shortName(arn), shortName(cluster)), ServiceRef{Cluster: cluster}))
		}
	}
	return errors.Join(errs...)
}
