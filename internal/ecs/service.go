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

// maxServicesPerCall is DescribeServices' limit.
const maxServicesPerCall = 10

// Deployment is one entry of a service's deployments list.
type Deployment struct {
	ID                 string    `json:"id"`
	Status             string    `json:"status"` // PRIMARY, ACTIVE, INACTIVE
	TaskDefinition     string    `json:"taskDefinition"`
	RolloutState       string    `json:"rolloutState,omitempty"` // IN_PROGRESS, COMPLETED, FAILED; empty when not reported
	RolloutStateReason string    `json:"rolloutStateReason,omitempty"`
	Desired            int32     `json:"desired"`
	Running            int32     `json:"running"`
	Pending            int32     `json:"pending"`
	Failed             int32     `json:"failedTasks"`
	CreatedAt          time.Time `json:"createdAt,omitzero"`
	UpdatedAt          time.Time `json:"updatedAt,omitzero"`
}

// ServiceState is one read of a service: its deployments, configuration and recent events.
type ServiceState struct {
	Ref             ServiceRef   `json:"ref"`
	ARN             string       `json:"arn"`
	Status          string       `json:"status"`
	TaskDefinition  string       `json:"taskDefinition"`
	Desired         int32        `json:"desired"`
	Running         int32        `json:"running"`
	Pending         int32        `json:"pending"`
	Deployments     []Deployment `json:"deployments"`
	MinHealthy      int32        `json:"minimumHealthyPercent"`
	MaxPercent      int32        `json:"maximumPercent"`
	BreakerEnabled  bool         `json:"circuitBreaker"`
	BreakerRollback bool         `json:"circuitBreakerRollback"`
	Controller      string       `json:"deploymentController"`
	LaunchType      string       `json:"launchType,omitempty"`
	// Strategy is deploymentConfiguration's strategy, bake time, hooks and early success.
	Strategy DeploymentStrategy `json:"strategy"`
	// Events are the service's latest events (ECS keeps 100), oldest first.
	Events []Event `json:"events,omitempty"`
}

// Deployment returns the deployment with the given ID, or nil.
func (s ServiceState) Deployment(id string) *Deployment {
	for i := range s.Deployments {
		if s.Deployments[i].ID == id {
			return &s.Deployments[i]
		}
	}
	return nil
}

// Primary returns the PRIMARY deployment, or nil.
func (s ServiceState) Primary() *Deployment {
	for i := range s.Deployments {
		if s.Deployments[i].Status == "PRIMARY" {
			return &s.Deployments[i]
		}
	}
	return nil
}

// TaskDefinitionInfo is a plain copy of the parts of a task definition the signal-path checks
// read, so SDK types stay inside this package.
type TaskDefinitionInfo struct {
	ARN      string `json:"arn"`
	Family   string `json:"family"`
	Revision int32  `json:"revision"`
	// Status is ACTIVE or INACTIVE (deregistered: a service cannot be updated to it).
	Status                  string                `json:"status"`
	NetworkMode             string                `json:"networkMode,omitempty"`
	RequiresCompatibilities []string              `json:"requiresCompatibilities,omitempty"`
	Containers              []ContainerDefinition `json:"containers"`
}

// ContainerDefinition is one container of a task definition, as the signal-path checks need it.
type ContainerDefinition struct {
	Name       string   `json:"name"`
	Image      string   `json:"image"`
	Essential  bool     `json:"essential"` // ECS's default (unset) is essential
	EntryPoint []string `json:"entryPoint,omitempty"`
	Command    []string `json:"command,omitempty"`
	// StopTimeout is the seconds between SIGTERM and SIGKILL; nil means the platform default.
	StopTimeout *int32 `json:"stopTimeout,omitempty"`
	// InitProcessEnabled is linuxParameters.initProcessEnabled; nil means unset.
	InitProcessEnabled *bool             `json:"initProcessEnabled,omitempty"`
	Hostname           string            `json:"hostname,omitempty"`
	User               string            `json:"user,omitempty"`
	WorkingDirectory   string            `json:"workingDirectory,omitempty"`
	Environment        map[string]string `json:"environment,omitempty"`
	// DependsOn orders start and stop: a container stops before those it depends on.
	DependsOn []ContainerDependency `json:"dependsOn,omitempty"`
}

// ContainerDependency is one dependsOn entry of a container definition.
type ContainerDependency struct {
	ContainerName string `json:"containerName"`
	Condition     string `json:"condition"` // START, COMPLETE, SUCCESS, HEALTHY
}

// Describe reads every service of refs (DescribeServices batched by cluster, at most 10 per
// call) with its deployments, configuration and latest events. A service that does not exist
// is an error matching ErrNotFound (one line each, joined); the states of the services that
// could be read are returned either way.
func (c *Client) Describe(ctx context.Context, refs []ServiceRef) ([]ServiceState, error) {
	clusters := groupByCluster(refs)
	var errs []error
	var states []ServiceState
	for _, cluster := range clusters.order {
		svcs, failures, err := c.describeServices(ctx, cluster, clusters.refs[cluster])
		if err != nil {
			if errors.Is(err, ErrAccessDenied) || errors.Is(err, ErrNotFound) {
				errs = append(errs, err)
				continue
			}
			return states, err
		}
		for _, ref := range clusters.refs[cluster] {
			svc, ok := findService(svcs, ref.Service)
			if !ok {
				reason := "MISSING"
				if f, ok := findFailure(failures, ref.Service); ok && aws.ToString(f.Reason) != "" {
					reason = aws.ToString(f.Reason)
				}
				if reason == "MISSING" {
					errs = append(errs, newKindError(ErrNotFound, nil, "service %q not found in cluster %q (region %s)", shortName(ref.Service), shortName(ref.Cluster), c.region))
				} else {
					errs = append(errs, fmt.Errorf("describe service %q in cluster %q: %s", shortName(ref.Service), shortName(ref.Cluster), reason))
				}
				continue
			}
			states = append(states, stateOf(ref, svc))
		}
	}
	return states, errors.Join(errs...)
}

// CheckClusters returns an error matching ErrNotFound for each cluster that does not exist or
// is no longer ACTIVE (one DescribeClusters call per 100 clusters).
func (c *Client) CheckClusters(ctx context.Context, clusters []string) error {
	missing, err := c.missingClusters(ctx, clusters)
	if err != nil {
		return err
	}
	var errs []error
	for _, cl := range clusters {
		if why, ok := missing[cl]; ok {
			errs = append(errs, newKindError(ErrNotFound, nil, "cluster %q not found (region %s)%s", shortName(cl), c.region, why))
		}
	}
	return errors.Join(errs...)
}

// TaskDefinition describes a task definition by ARN, family:revision, or family (its latest
// ACTIVE revision). One that does not exist is an error matching ErrNotFound.
func (c *Client) TaskDefinition(ctx context.Context, name string) (*TaskDefinitionInfo, error) {
	out, err := c.api.DescribeTaskDefinition(ctx, &awsecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(name)})
	if err != nil {
		if apiCode(err) == "ClientException" || apiCode(err) == "InvalidParameterException" {
			return nil, newKindError(ErrNotFound, err, "task definition %q not found (region %s)", shortName(name), c.region)
		}
		return nil, c.wrapAPIError(err, "DescribeTaskDefinition", fmt.Sprintf("task definition %q", shortName(name)), ServiceRef{})
	}
	if out.TaskDefinition == nil {
		return nil, fmt.Errorf("describe task definition %q: empty response", shortName(name))
	}
	return taskDefinitionInfo(out.TaskDefinition), nil
}

// clusterGroups keeps refs grouped by cluster in first-seen order.
type clusterGroups struct {
	order []string
	refs  map[string][]ServiceRef
}

func groupByCluster(refs []ServiceRef) clusterGroups {
	g := clusterGroups{refs: map[string][]ServiceRef{}}
	for _, r := range refs {
		if _, ok := g.refs[r.Cluster]; !ok {
			g.order = append(g.order, r.Cluster)
		}
		g.refs[r.Cluster] = append(g.refs[r.Cluster], r)
	}
	return g
}

// missingClusters returns the clusters that do not exist (or are no longer ACTIVE), each with
// a note for the message.
func (c *Client) missingClusters(ctx context.Context, clusters []string) (map[string]string, error) {
	const perCall = 100
	missing := map[string]string{}
	for start := 0; start < len(clusters); start += perCall {
		batch := clusters[start:min(start+perCall, len(clusters))]
		out, err := c.api.DescribeClusters(ctx, &awsecs.DescribeClustersInput{Clusters: batch})
		if err != nil {
			return nil, c.wrapAPIError(err, "DescribeClusters", "clusters "+strings.Join(batch, ", "), ServiceRef{Cluster: batch[0]})
		}
		for _, name := range batch {
			found := false
			for _, cl := range out.Clusters {
				if sameName(name, aws.ToString(cl.ClusterName)) || sameName(name, aws.ToString(cl.ClusterArn)) {
					found = true
					if st := aws.ToString(cl.Status); st != "" && st != "ACTIVE" && st != "PROVISIONING" {
						missing[name] = ": it is " + st
					}
				}
			}
			if !found {
				missing[name] = ""
			}
		}
	}
	return missing, nil
}

// describeServices reads refs of one cluster, at most 10 per call.
func (c *Client) describeServices(ctx context.Context, cluster string, refs []ServiceRef) ([]ecstypes.Service, []ecstypes.Failure, error) {
	var svcs []ecstypes.Service
	var failures []ecstypes.Failure
	for start := 0; start < len(refs); start += maxServicesPerCall {
		batch := refs[start:min(start+maxServicesPerCall, len(refs))]
		names := make([]string, len(batch))
		for i, r := range batch {
			names[i] = r.Service
		}
		out, err := c.api.DescribeServices(ctx, &awsecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: names})
		if err != nil {
			return svcs, failures, c.wrapAPIError(err, "DescribeServices", describeWhat(cluster, names), batch[0])
		}
		svcs = append(svcs, out.Services...)
		failures = append(failures, out.Failures...)
	}
	return svcs, failures, nil
}

func describeWhat(cluster string, names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", shortName(n))
	}
	noun := "service"
	if len(names) > 1 {
		noun = "services"
	}
	return fmt.Sprintf("%s %s in cluster %q", noun, strings.Join(q, ", "), shortName(cluster))
}

func findService(svcs []ecstypes.Service, name string) (ecstypes.Service, bool) {
	for _, s := range svcs {
		if sameName(name, aws.ToString(s.ServiceName)) || sameName(name, aws.ToString(s.ServiceArn)) {
			return s, true
		}
	}
	return ecstypes.Service{}, false
}

func findFailure(fs []ecstypes.Failure, name string) (ecstypes.Failure, bool) {
	for _, f := range fs {
		if sameName(name, aws.ToString(f.Arn)) {
			return f, true
		}
	}
	return ecstypes.Failure{}, false
}

// stateOf converts a described service.
func stateOf(ref ServiceRef, s ecstypes.Service) ServiceState {
	st := ServiceState{
		Ref:            ref,
		ARN:            aws.ToString(s.ServiceArn),
		Status:         aws.ToString(s.Status),
		TaskDefinition: aws.ToString(s.TaskDefinition),
		Desired:        s.DesiredCount,
		Running:        s.RunningCount,
		Pending:        s.PendingCount,
		Deployments:    deploymentsOf(s.Deployments),
		MinHealthy:     100,
		MaxPercent:     200,
		Controller:     "ECS",
		LaunchType:     string(s.LaunchType),
		Strategy:       strategyOf(s.DeploymentConfiguration),
	}
	if dc := s.DeploymentConfiguration; dc != nil {
		if dc.MinimumHealthyPercent != nil {
			st.MinHealthy = *dc.MinimumHealthyPercent
		}
		if dc.MaximumPercent != nil {
			st.MaxPercent = *dc.MaximumPercent
		}
		if cb := dc.DeploymentCircuitBreaker; cb != nil {
			st.BreakerEnabled, st.BreakerRollback = cb.Enable, cb.Rollback
		}
	}
	if s.DeploymentController != nil && s.DeploymentController.Type != "" {
		st.Controller = string(s.DeploymentController.Type)
	}
	for i := len(s.Events) - 1; i >= 0; i-- {
		e := s.Events[i]
		st.Events = append(st.Events, Event{ID: aws.ToString(e.Id), At: aws.ToTime(e.CreatedAt), Message: aws.ToString(e.Message)})
	}
	return st
}

func deploymentsOf(ds []ecstypes.Deployment) []Deployment {
	out := make([]Deployment, 0, len(ds))
	for _, d := range ds {
		out = append(out, Deployment{
			ID:                 aws.ToString(d.Id),
			Status:             aws.ToString(d.Status),
			TaskDefinition:     aws.ToString(d.TaskDefinition),
			RolloutState:       string(d.RolloutState),
			RolloutStateReason: aws.ToString(d.RolloutStateReason),
			Desired:            d.DesiredCount,
			Running:            d.RunningCount,
			Pending:            d.PendingCount,
			Failed:             d.FailedTasks,
			CreatedAt:          aws.ToTime(d.CreatedAt),
			UpdatedAt:          aws.ToTime(d.UpdatedAt),
		})
	}
	return out
}

func taskDefinitionInfo(td *ecstypes.TaskDefinition) *TaskDefinitionInfo {
	info := &TaskDefinitionInfo{
		ARN:         aws.ToString(td.TaskDefinitionArn),
		Family:      aws.ToString(td.Family),
		Revision:    td.Revision,
		NetworkMode: string(td.NetworkMode),
		Status:      string(td.Status),
	}
	for _, rc := range td.RequiresCompatibilities {
		info.RequiresCompatibilities = append(info.RequiresCompatibilities, string(rc))
	}
	for _, cd := range td.ContainerDefinitions {
		c := ContainerDefinition{
			Name:             aws.ToString(cd.Name),
			Image:            aws.ToString(cd.Image),
			Essential:        cd.Essential == nil || *cd.Essential,
			EntryPoint:       cd.EntryPoint,
			Command:          cd.Command,
			StopTimeout:      cd.StopTimeout,
			Hostname:         aws.ToString(cd.Hostname),
			User:             aws.ToString(cd.User),
			WorkingDirectory: aws.ToString(cd.WorkingDirectory),
		}
		if cd.LinuxParameters != nil {
			c.InitProcessEnabled = cd.LinuxParameters.InitProcessEnabled
		}
		for _, d := range cd.DependsOn {
			c.DependsOn = append(c.DependsOn, ContainerDependency{ContainerName: aws.ToString(d.ContainerName), Condition: string(d.Condition)})
		}
		if len(cd.Environment) > 0 {
			c.Environment = map[string]string{}
			for _, kv := range cd.Environment {
				c.Environment[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
			}
		}
		info.Containers = append(info.Containers, c)
	}
	return info
}
