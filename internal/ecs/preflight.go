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

// BreakerOffWarning is the preflight warning for a service without a deployment circuit breaker.
const BreakerOffWarning = "deployment circuit breaker is off: a bad rollout then only ends by --rollout-timeout"

// PreflightOptions tunes Preflight.
type PreflightOptions struct {
	// AllowInProgress proceeds (with a warning) when a rollout is already running, instead of
	// refusing with ErrInProgress.
	AllowInProgress bool
}

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

// ServiceState is what preflight learned about one service.
type ServiceState struct {
	Ref             ServiceRef          `json:"ref"`
	ARN             string              `json:"arn"`
	Status          string              `json:"status"`
	TaskDefinition  string              `json:"taskDefinition"`
	Desired         int32               `json:"desired"`
	Running         int32               `json:"running"`
	Pending         int32               `json:"pending"`
	Deployments     []Deployment        `json:"deployments"`
	MinHealthy      int32               `json:"minimumHealthyPercent"`
	MaxPercent      int32               `json:"maximumPercent"`
	BreakerEnabled  bool                `json:"circuitBreaker"`
	BreakerRollback bool                `json:"circuitBreakerRollback"`
	Controller      string              `json:"deploymentController"`
	LaunchType      string              `json:"launchType,omitempty"`
	TaskDef         *TaskDefinitionInfo `json:"taskDefinitionDetail,omitempty"`
	// Warnings are findings that do not stop a deploy.
	Warnings []string `json:"warnings,omitempty"`
}

// TaskDefinitionInfo is a plain copy of the parts of a task definition the signal-path checks
// read, so SDK types stay inside this package.
type TaskDefinitionInfo struct {
	ARN                     string                `json:"arn"`
	Family                  string                `json:"family"`
	Revision                int32                 `json:"revision"`
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

// Preflight reads every service of refs (batched DescribeServices by cluster, at most 10 per
// call), checks each can take a forced rolling deployment, and reads its task definition.
// Refusals come back joined (errors.Join), one line each, matching ErrNotFound, ErrRefused,
// ErrInProgress or ErrAccessDenied; the states of the services that could be read are
// returned either way.
func (c *Client) Preflight(ctx context.Context, refs []ServiceRef, opt PreflightOptions) ([]ServiceState, error) {
	clusters := groupByCluster(refs)
	var errs []error

	missing, err := c.missingClusters(ctx, clusters.order)
	if err != nil {
		return nil, err
	}
	var states []ServiceState
	tdCache := map[string]*TaskDefinitionInfo{}
	for _, cluster := range clusters.order {
		if why, ok := missing[cluster]; ok {
			errs = append(errs, newKindError(ErrNotFound, nil, "cluster %q not found (region %s)%s", shortName(cluster), c.region, why))
			continue
		}
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
			st := stateOf(ref, svc)
			if err := c.checkService(&st, opt); err != nil {
				errs = append(errs, err)
			}
			if st.TaskDefinition != "" {
				td, ok := tdCache[st.TaskDefinition]
				if !ok {
					td, err = c.taskDefinition(ctx, st.TaskDefinition, ref)
					if err != nil {
						errs = append(errs, err)
					}
					tdCache[st.TaskDefinition] = td
				}
				st.TaskDef = td
			}
			states = append(states, st)
		}
	}
	return states, errors.Join(errs...)
}

// checkService applies the refusals and warnings to one described service.
func (c *Client) checkService(st *ServiceState, opt PreflightOptions) error {
	name, cluster := shortName(st.Ref.Service), shortName(st.Ref.Cluster)
	if st.Status != "ACTIVE" {
		return newKindError(ErrRefused, nil, "service %q in cluster %q is %s, not ACTIVE: only an active service can be deployed", name, cluster, st.Status)
	}
	switch st.Controller {
	case "ECS", "":
	case "CODE_DEPLOY":
		return newKindError(ErrRefused, nil, "service %q in cluster %q uses the CODE_DEPLOY deployment controller: drainctl forces rolling (ECS controller) deployments only; deploy it through CodeDeploy", name, cluster)
	default:
		return newKindError(ErrRefused, nil, "service %q in cluster %q uses the %s deployment controller: drainctl forces rolling (ECS controller) deployments only; deploy it through its own controller", name, cluster, st.Controller)
	}
	if busy := inProgress(st.Deployments); busy != "" {
		if !opt.AllowInProgress {
			return newKindError(ErrInProgress, nil, "service %q in cluster %q already has a rollout in progress (%s): wait for it to end, or use --allow-in-progress", name, cluster, busy)
		}
		st.Warnings = append(st.Warnings, "a rollout is already in progress ("+busy+"): the forced deployment replaces it")
	}
	if !st.BreakerEnabled {
		st.Warnings = append(st.Warnings, BreakerOffWarning)
	} else if !st.BreakerRollback {
		st.Warnings = append(st.Warnings, "deployment circuit breaker has rollback off: a failed rollout is marked FAILED and left in place")
	}
	if st.MinHealthy < 100 {
		st.Warnings = append(st.Warnings, fmt.Sprintf("minimumHealthyPercent is %d: ECS may stop old tasks before new ones are healthy", st.MinHealthy))
	}
	if st.Desired == 0 {
		st.Warnings = append(st.Warnings, "desired count is 0: the rollout starts no task")
	}
	return nil
}

// inProgress describes a rollout already under way, or returns "".
func inProgress(deps []Deployment) string {
	if len(deps) > 1 {
		return fmt.Sprintf("%d deployments", len(deps))
	}
	for _, d := range deps {
		if d.Status == "PRIMARY" && d.RolloutState == "IN_PROGRESS" {
			return fmt.Sprintf("deployment %s is IN_PROGRESS", d.ID)
		}
	}
	return ""
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

// taskDefinition reads one task definition.
func (c *Client) taskDefinition(ctx context.Context, arn string, ref ServiceRef) (*TaskDefinitionInfo, error) {
	out, err := c.api.DescribeTaskDefinition(ctx, &awsecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn)})
	if err != nil {
		return nil, c.wrapAPIError(err, "DescribeTaskDefinition", fmt.Sprintf("task definition %q of service %q", shortName(arn), shortName(ref.Service)), ref)
	}
	if out.TaskDefinition == nil {
		return nil, fmt.Errorf("describe task definition %q: empty response", shortName(arn))
	}
	return taskDefinitionInfo(out.TaskDefinition), nil
}

func taskDefinitionInfo(td *ecstypes.TaskDefinition) *TaskDefinitionInfo {
	info := &TaskDefinitionInfo{
		ARN:         aws.ToString(td.TaskDefinitionArn),
		Family:      aws.ToString(td.Family),
		Revision:    td.Revision,
		NetworkMode: string(td.NetworkMode),
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
