package ecssim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// epoch is a timestamp on the wire: seconds since the epoch as a JSON number, which is what
// AWS JSON 1.1 uses.
type epoch time.Time

func (e epoch) MarshalJSON() ([]byte, error) {
	t := time.Time(e)
	return []byte(strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)), nil
}

func ts(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

type failure struct {
	Arn    string `json:"arn,omitempty"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

func opCreateCluster(s *Sim, body []byte) (any, error) {
	var in struct {
		ClusterName string `json:"clusterName"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.ClusterName == "" {
		in.ClusterName = "default"
	}
	return map[string]any{"cluster": s.clusterJSON(s.createCluster(in.ClusterName))}, nil
}

func (s *Sim) clusterJSON(c *cluster) map[string]any {
	running, pending := 0, 0
	for _, svc := range c.services {
		for _, t := range svc.tasks {
			switch t.lastStatus {
			case statusRunning:
				running++
			case statusProvisioning, statusPending:
				pending++
			}
		}
	}
	return map[string]any{
		"clusterArn": c.arn, "clusterName": c.name, "status": "ACTIVE",
		"runningTasksCount": running, "pendingTasksCount": pending,
		"activeServicesCount": len(c.services), "registeredContainerInstancesCount": 0,
	}
}

func opDescribeClusters(s *Sim, body []byte) (any, error) {
	var in struct {
		Clusters []string `json:"clusters"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.Clusters) == 0 {
		in.Clusters = []string{"default"}
	}
	clusters, failures := []any{}, []failure{}
	for _, ref := range in.Clusters {
		c := s.findCluster(ref)
		if c == nil {
			arn := ref
			if !strings.HasPrefix(ref, "arn:") {
				arn = s.arn("cluster/" + ref)
			}
			failures = append(failures, failure{Arn: arn, Reason: "MISSING"})
			continue
		}
		clusters = append(clusters, s.clusterJSON(c))
	}
	return map[string]any{"clusters": clusters, "failures": failures}, nil
}

func opDescribeServices(s *Sim, body []byte) (any, error) {
	var in struct {
		Cluster  string   `json:"cluster"`
		Services []string `json:"services"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	c := s.findCluster(in.Cluster)
	if c == nil {
		return nil, clusterNotFound()
	}
	if len(in.Services) == 0 {
		return nil, invalidParam("Services cannot be empty.")
	}
	if len(in.Services) > 10 {
		return nil, invalidParam("Too many services: at most 10 may be described at once.")
	}
	services, failures := []any{}, []failure{}
	for _, ref := range in.Services {
		svc := c.findService(ref)
		if svc == nil {
			arn := ref
			if !strings.HasPrefix(ref, "arn:") {
				arn = s.arn("service/" + c.name + "/" + ref)
			}
			failures = append(failures, failure{Arn: arn, Reason: "MISSING"})
			continue
		}
		services = append(services, s.serviceJSON(svc))
	}
	return map[string]any{"services": services, "failures": failures}, nil
}

func (s *Sim) serviceJSON(svc *service) map[string]any {
	running, pending := 0, 0
	for _, t := range svc.tasks {
		if !t.wanted() {
			continue
		}
		switch t.lastStatus {
		case statusRunning:
			running++
		case statusProvisioning, statusPending:
			pending++
		}
	}
	var deps []any
	for _, d := range svc.deployments {
		deps = append(deps, s.deploymentJSON(svc, d))
	}
	var events []any
	for _, e := range svc.events {
		events = append(events, map[string]any{"id": e.id, "createdAt": ts(e.at), "message": e.message})
	}
	out := map[string]any{
		"serviceArn": svc.arn, "serviceName": svc.name, "clusterArn": svc.c.arn, "status": svc.statusOrActive(),
		"desiredCount": svc.desired, "runningCount": running, "pendingCount": pending,
		"launchType": svc.launchType, "taskDefinition": svc.taskDef,
		"deploymentConfiguration": s.deploymentConfigJSON(svc, svc.dc),
		"deployments":             deps, "events": events, "createdAt": ts(svc.createdAt),
		"deploymentController": map[string]any{"type": svc.controller},
		"schedulingStrategy":   "REPLICA", "createdBy": "arn:aws:iam::" + s.o.AccountID + ":role/ecssim",
		"enableECSManagedTags": false, "propagateTags": "NONE", "enableExecuteCommand": false,
	}
	if svc.controller != "ECS" {
		out["deployments"] = []any{}
		out["taskSets"] = []any{}
	}
	return out
}

// deploymentConfigJSON is a deploymentConfiguration on the wire.
func (s *Sim) deploymentConfigJSON(svc *service, dc deployConfig) map[string]any {
	out := map[string]any{
		"deploymentCircuitBreaker": map[string]any{"enable": svc.breaker.Enable, "rollback": svc.breaker.Rollback},
		"maximumPercent":           svc.maxPct, "minimumHealthyPercent": svc.minPct,
	}
	dc.addJSON(out)
	return out
}

func (s *Sim) deploymentJSON(svc *service, d *deployment) map[string]any {
	desired, running, pending := int32(0), 0, 0
	for _, t := range svc.tasks {
		if t.dep != d || !t.wanted() {
			continue
		}
		desired++
		switch t.lastStatus {
		case statusRunning:
			running++
		case statusProvisioning, statusPending:
			pending++
		}
	}
	if d.status == depPrimary {
		desired = svc.desired
	}
	out := map[string]any{
		"id": d.id, "status": d.status, "taskDefinition": d.taskDef, "desiredCount": desired,
		"pendingCount": pending, "runningCount": running, "failedTasks": d.failedTasks,
		"createdAt": ts(d.createdAt), "updatedAt": ts(d.updatedAt), "launchType": svc.launchType,
		"rolloutState": d.rolloutState, "rolloutStateReason": d.rolloutReason,
	}
	if svc.launchType == "FARGATE" {
		out["platformVersion"], out["platformFamily"] = "1.4.0", "Linux"
	}
	return out
}

func opUpdateService(s *Sim, body []byte) (any, error) {
	var in struct {
		Cluster                 string `json:"cluster"`
		Service                 string `json:"service"`
		DesiredCount            *int32 `json:"desiredCount"`
		TaskDefinition          string `json:"taskDefinition"`
		ForceNewDeployment      bool   `json:"forceNewDeployment"`
		DeploymentConfiguration *struct {
			MaximumPercent           *int32 `json:"maximumPercent"`
			MinimumHealthyPercent    *int32 `json:"minimumHealthyPercent"`
			DeploymentCircuitBreaker *struct {
				Enable   bool `json:"enable"`
				Rollback bool `json:"rollback"`
			} `json:"deploymentCircuitBreaker"`
			wireDeployConfig
		} `json:"deploymentConfiguration"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	c := s.findCluster(in.Cluster)
	if c == nil {
		return nil, clusterNotFound()
	}
	svc := c.findService(in.Service)
	if svc == nil {
		return nil, serviceNotFound()
	}
	if svc.statusOrActive() != "ACTIVE" {
		return nil, &apiError{code: "ServiceNotActiveException", msg: "Service was not ACTIVE."}
	}
	if svc.controller != "ECS" && (in.TaskDefinition != "" || in.ForceNewDeployment) {
		return nil, invalidParam("Unable to update task definition on services with a %s deployment controller. Use AWS CodeDeploy to trigger a new deployment.", svc.controller)
	}
	var td *taskDef
	if in.TaskDefinition != "" {
		if td = s.findTaskDef(in.TaskDefinition); td == nil {
			return nil, &apiError{code: "ClientException", msg: "TaskDefinition not found."}
		}
	}
	if dc := in.DeploymentConfiguration; dc != nil {
		minPct, maxPct := svc.minPct, svc.maxPct
		if dc.MinimumHealthyPercent != nil {
			minPct = *dc.MinimumHealthyPercent
		}
		if dc.MaximumPercent != nil {
			maxPct = *dc.MaximumPercent
		}
		if err := checkPercents(minPct, maxPct); err != nil {
			return nil, err
		}
		next := svc.dc.merged(dc.wireDeployConfig)
		if err := next.validate(minPct, svc.controller); err != nil {
			return nil, err
		}
		svc.minPct, svc.maxPct, svc.dc = minPct, maxPct, next
		if b := dc.DeploymentCircuitBreaker; b != nil {
			svc.breaker = CircuitBreaker{Enable: b.Enable, Rollback: b.Rollback}
		}
	}
	if in.DesiredCount != nil {
		if err := checkDesired(*in.DesiredCount); err != nil {
			return nil, err
		}
		svc.desired = *in.DesiredCount
	}
	if in.ForceNewDeployment || (td != nil && td.arn != svc.taskDef) {
		next := svc.taskDef
		if td != nil {
			next = td.arn
		}
		s.newDeployment(svc, next)
	}
	return map[string]any{"service": s.serviceJSON(svc)}, nil
}

func (s *Sim) taskDefJSON(td *taskDef) map[string]any {
	out := make(map[string]any, len(td.raw)+5)
	for k, v := range td.raw {
		out[k] = v
	}
	out["taskDefinitionArn"], out["revision"], out["status"] = td.arn, td.revision, "ACTIVE"
	out["registeredAt"] = ts(td.registered)
	out["registeredBy"] = "arn:aws:iam::" + s.o.AccountID + ":role/ecssim"
	if _, ok := out["compatibilities"]; !ok {
		out["compatibilities"] = []string{"EC2", "FARGATE"}
	}
	return out
}

func opDescribeTaskDefinition(s *Sim, body []byte) (any, error) {
	var in struct {
		TaskDefinition string `json:"taskDefinition"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	td := s.findTaskDef(in.TaskDefinition)
	if td == nil {
		return nil, &apiError{code: "ClientException", msg: "Unable to describe task definition."}
	}
	return map[string]any{"taskDefinition": s.taskDefJSON(td), "tags": []any{}}, nil
}

func opRegisterTaskDefinition(s *Sim, body []byte) (any, error) {
	td, err := s.registerTaskDef(body)
	if err != nil {
		return nil, err
	}
	return map[string]any{"taskDefinition": s.taskDefJSON(td), "tags": []any{}}, nil
}

func opListTasks(s *Sim, body []byte) (any, error) {
	var in struct {
		Cluster       string `json:"cluster"`
		ServiceName   string `json:"serviceName"`
		DesiredStatus string `json:"desiredStatus"`
		StartedBy     string `json:"startedBy"`
		Family        string `json:"family"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	c := s.findCluster(in.Cluster)
	if c == nil {
		return nil, clusterNotFound()
	}
	var svcs []*service
	if in.ServiceName != "" {
		svc := c.findService(in.ServiceName)
		if svc == nil {
			return nil, serviceNotFound()
		}
		svcs = []*service{svc}
	} else {
		for _, n := range c.order {
			svcs = append(svcs, c.services[n])
		}
	}
	want := in.DesiredStatus
	if want == "" {
		want = statusRunning
	}
	arns := []string{}
	for _, svc := range svcs {
		for _, t := range svc.tasks {
			if t.desiredStatus != want && !(want == statusPending && t.wanted()) {
				continue
			}
			if in.StartedBy != "" && t.dep.id != in.StartedBy {
				continue
			}
			if in.Family != "" && (t.td == nil || t.td.family != in.Family) {
				continue
			}
			arns = append(arns, t.arn)
		}
	}
	return map[string]any{"taskArns": arns}, nil
}

func (c *cluster) findTask(ref string) *task {
	id := ref
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		id = ref[i+1:]
	}
	for _, n := range c.order {
		for _, t := range c.services[n].tasks {
			if t.id == id {
				return t
			}
		}
	}
	return nil
}

func (s *Sim) taskJSON(t *task) map[string]any {
	dns := t.hostname() + ".ec2.internal"
	if s.o.Region != "us-east-1" {
		dns = t.hostname() + "." + s.o.Region + ".compute.internal"
	}
	var containers []any
	if t.td != nil {
		for i, cd := range t.td.containers {
			ct := map[string]any{
				"containerArn": s.arn("container/" + t.svc.c.name + "/" + t.id + "/" + randUUIDFor(t, i)),
				"taskArn":      t.arn, "name": cd.Name, "image": cd.Image,
				"lastStatus":        t.lastStatus,
				"networkInterfaces": []any{map[string]any{"attachmentId": t.att, "privateIpv4Address": t.ip}},
				"healthStatus":      "UNKNOWN",
			}
			if t.lastStatus == statusStopping {
				ct["lastStatus"] = statusRunning
			}
			if t.proc != nil || t.lastStatus == statusRunning || t.lastStatus == statusStopping || t.exitCode != nil {
				ct["runtimeId"] = t.rtID
				if i > 0 {
					ct["runtimeId"] = t.rtID[:56] + fmt.Sprintf("%08x", i)
				}
			}
			if t.exitCode != nil {
				ct["exitCode"] = *t.exitCode
			}
			if t.containerReason != "" {
				ct["reason"] = t.containerReason
			}
			containers = append(containers, ct)
		}
	}
	attStatus := "ATTACHED"
	if t.lastStatus == statusStopped {
		attStatus = "DELETED"
	}
	out := map[string]any{
		"taskArn": t.arn, "clusterArn": t.svc.c.arn, "lastStatus": t.lastStatus, "desiredStatus": t.desiredStatus,
		"launchType": t.svc.launchType, "group": "service:" + t.svc.name, "startedBy": t.dep.id,
		"createdAt": ts(t.createdAt), "pullStartedAt": ts(t.pullStartedAt), "startedAt": ts(t.startedAt),
		"stoppingAt": ts(t.stoppingAt), "stoppedAt": ts(t.stoppedAt),
		"availabilityZone": s.o.Region + "a", "connectivity": "CONNECTED", "connectivityAt": ts(t.createdAt),
		"cpu": "256", "memory": "512", "version": 1, "healthStatus": "UNKNOWN",
		"containers": containers,
		"attachments": []any{map[string]any{
			"id": t.att, "type": "ElasticNetworkInterface", "status": attStatus,
			"details": []any{
				map[string]string{"name": "subnetId", "value": "subnet-0ecssim"},
				map[string]string{"name": "networkInterfaceId", "value": t.eni},
				map[string]string{"name": "macAddress", "value": "0a:00:00:00:00:01"},
				map[string]string{"name": "privateDnsName", "value": dns},
				map[string]string{"name": "privateIPv4Address", "value": t.ip},
			},
		}},
	}
	if t.td != nil {
		out["taskDefinitionArn"] = t.td.arn
	}
	if t.stopCode != "" && !t.wanted() {
		out["stopCode"], out["stoppedReason"] = t.stopCode, t.stoppedReason
	}
	for k, v := range out {
		if e, ok := v.(*epoch); ok && e == nil {
			delete(out, k)
		}
	}
	return out
}

// randUUIDFor is a stable UUID-like container id for container i of task t.
func randUUIDFor(t *task, i int) string {
	h := t.rtID[:32]
	return fmt.Sprintf("%s-%s-%s-%s-%s%02x", h[:8], h[8:12], h[12:16], h[16:20], h[20:30], i)
}

func opDescribeTasks(s *Sim, body []byte) (any, error) {
	var in struct {
		Cluster string   `json:"cluster"`
		Tasks   []string `json:"tasks"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	c := s.findCluster(in.Cluster)
	if c == nil {
		return nil, clusterNotFound()
	}
	if len(in.Tasks) == 0 {
		return nil, invalidParam("Tasks cannot be empty.")
	}
	if len(in.Tasks) > 100 {
		return nil, invalidParam("Too many tasks: at most 100 may be described at once.")
	}
	tasks, failures := []any{}, []failure{}
	for _, ref := range in.Tasks {
		t := c.findTask(ref)
		if t == nil {
			failures = append(failures, failure{Arn: ref, Reason: "MISSING"})
			continue
		}
		tasks = append(tasks, s.taskJSON(t))
	}
	return map[string]any{"tasks": tasks, "failures": failures}, nil
}

func opStopTask(s *Sim, body []byte) (any, error) {
	var in struct {
		Cluster string `json:"cluster"`
		Task    string `json:"task"`
		Reason  string `json:"reason"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	c := s.findCluster(in.Cluster)
	if c == nil {
		return nil, clusterNotFound()
	}
	t := c.findTask(in.Task)
	if t == nil {
		return nil, invalidParam("The referenced task was not found.")
	}
	reason := in.Reason
	if reason == "" {
		reason = "Task stopped by user"
	}
	s.stopTask(t, s.now(), "UserInitiated", reason)
	return map[string]any{"task": s.taskJSON(t)}, nil
}

func (s *Sim) sdARN(svc *service, d *deployment) string {
	return s.arn("service-deployment/" + svc.c.name + "/" + svc.name + "/" + strings.TrimPrefix(d.id, "ecs-svc/"))
}

func (s *Sim) revisionARN(svc *service, d *deployment) string {
	return s.arn("service-revision/" + svc.c.name + "/" + svc.name + "/" + strings.TrimPrefix(d.id, "ecs-svc/"))
}

func opListServiceDeployments(s *Sim, body []byte) (any, error) {
	var in struct {
		Cluster string   `json:"cluster"`
		Service string   `json:"service"`
		Status  []string `json:"status"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	c := s.findCluster(in.Cluster)
	if c == nil {
		return nil, clusterNotFound()
	}
	svc := c.findService(in.Service)
	if svc == nil {
		return nil, serviceNotFound()
	}
	out := []any{}
	for i := len(svc.history) - 1; i >= 0; i-- {
		d := svc.history[i]
		if len(in.Status) > 0 && !contains(in.Status, d.sdStatus) {
			continue
		}
		b := map[string]any{
			"serviceDeploymentArn": s.sdARN(svc, d), "serviceArn": svc.arn, "clusterArn": c.arn,
			"createdAt": ts(d.createdAt), "startedAt": ts(d.createdAt), "finishedAt": ts(d.finishedAt),
			"targetServiceRevisionArn": s.revisionARN(svc, d), "status": d.sdStatus,
		}
		if d.sdReason != "" {
			b["statusReason"] = d.sdReason
		}
		if d.finishedAt.IsZero() {
			delete(b, "finishedAt")
		}
		out = append(out, b)
	}
	return map[string]any{"serviceDeployments": out}, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func opDescribeServiceDeployments(s *Sim, body []byte) (any, error) {
	var in struct {
		ServiceDeploymentArns []string `json:"serviceDeploymentArns"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.ServiceDeploymentArns) == 0 || len(in.ServiceDeploymentArns) > 20 {
		return nil, invalidParam("serviceDeploymentArns must hold 1 to 20 ARNs.")
	}
	out, failures := []any{}, []failure{}
	for _, arn := range in.ServiceDeploymentArns {
		svc, d := s.findServiceDeployment(arn)
		if d == nil {
			failures = append(failures, failure{Arn: arn, Reason: "MISSING"})
			continue
		}
		out = append(out, s.serviceDeploymentJSON(svc, d))
	}
	return map[string]any{"serviceDeployments": out, "failures": failures}, nil
}

func (s *Sim) findServiceDeployment(arn string) (*service, *deployment) {
	_, rest, ok := strings.Cut(arn, ":service-deployment/")
	if !ok {
		return nil, nil
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return nil, nil
	}
	c := s.clusters[parts[0]]
	if c == nil || c.services[parts[1]] == nil {
		return nil, nil
	}
	svc := c.services[parts[1]]
	for _, d := range svc.history {
		if d.id == "ecs-svc/"+parts[2] {
			return svc, d
		}
	}
	return nil, nil
}

func (s *Sim) serviceDeploymentJSON(svc *service, d *deployment) map[string]any {
	rev := func(x *deployment) map[string]any {
		requested, running, pending := 0, 0, 0
		for _, t := range svc.tasks {
			if t.dep != x || !t.wanted() {
				continue
			}
			requested++
			switch t.lastStatus {
			case statusRunning:
				running++
			case statusProvisioning, statusPending:
				pending++
			}
		}
		if x.status == depPrimary {
			requested = int(svc.desired)
		}
		return map[string]any{"arn": s.revisionARN(svc, x), "requestedTaskCount": requested,
			"runningTaskCount": running, "pendingTaskCount": pending}
	}
	var sources []any
	for _, src := range d.sources {
		r := rev(src)
		if !d.direct && d.dc.staged() {
			r["requestedProductionTrafficWeight"] = 100 - d.weight
		}
		sources = append(sources, r)
	}
	target := rev(d)
	if !d.direct && d.dc.staged() {
		target["requestedProductionTrafficWeight"] = d.weight
	}
	breakerStatus := "DISABLED"
	if svc.breaker.Enable {
		breakerStatus = "MONITORING"
		if d.breakerTriggered {
			breakerStatus = "TRIGGERED"
		} else if !d.finishedAt.IsZero() || !d.stoppedAt.IsZero() {
			breakerStatus = "MONITORING_COMPLETE"
		}
	}
	threshold := d.threshold
	if threshold == 0 {
		threshold = breakerThreshold(svc.desired)
	}
	out := map[string]any{
		"serviceDeploymentArn": s.sdARN(svc, d), "serviceArn": svc.arn, "clusterArn": svc.c.arn,
		"createdAt": ts(d.createdAt), "startedAt": ts(d.createdAt), "updatedAt": ts(d.updatedAt),
		"sourceServiceRevisions": sources, "targetServiceRevision": target, "status": d.sdStatus,
		"deploymentConfiguration":  s.deploymentConfigJSON(svc, d.dc),
		"deploymentCircuitBreaker": map[string]any{"status": breakerStatus, "failureCount": d.failures, "threshold": threshold},
	}
	if d.sdReason != "" {
		out["statusReason"] = d.sdReason
	}
	if stage := d.stage; stage != "" {
		if stage == stagePreProd {
			stage = stageProdShift
		}
		out["lifecycleStage"] = stage
	}
	if len(d.hooks) > 0 {
		var hooks []any
		for _, h := range d.hooks {
			hd := map[string]any{"hookId": h.id, "targetType": h.targetType, "status": h.status,
				"expiresAt": ts(h.expiresAt), "timeoutAction": h.timeoutAction}
			if h.targetArn != "" {
				hd["targetArn"] = h.targetArn
			}
			hooks = append(hooks, hd)
		}
		out["lifecycleHookDetails"] = hooks
	}
	if !d.finishedAt.IsZero() {
		out["finishedAt"] = ts(d.finishedAt)
	}
	if !d.stoppedAt.IsZero() {
		out["stoppedAt"] = ts(d.stoppedAt)
	}
	if d.rollbackTo != nil {
		out["rollback"] = map[string]any{"reason": d.rollbackReason, "startedAt": ts(d.rollbackAt),
			"serviceRevisionArn": s.revisionARN(svc, d.rollbackTo)}
	}
	return out
}

func opContinueServiceDeployment(s *Sim, body []byte) (any, error) {
	var in struct {
		ServiceDeploymentArn string `json:"serviceDeploymentArn"`
		HookID               string `json:"hookId"`
		Action               string `json:"action"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.ServiceDeploymentArn == "" || in.HookID == "" {
		return nil, invalidParam("serviceDeploymentArn and hookId are required.")
	}
	action := in.Action
	if action == "" {
		action = actionContinue
	}
	if action != actionContinue && action != actionRollback {
		return nil, invalidParam("Invalid action %q: valid values are CONTINUE and ROLLBACK.", in.Action)
	}
	svc, d := s.findServiceDeployment(in.ServiceDeploymentArn)
	if d == nil {
		return nil, &apiError{code: "ServiceDeploymentNotFoundException", msg: "The service deployment " + in.ServiceDeploymentArn + " does not exist."}
	}
	var h *hookRun
	for _, x := range d.hooks {
		if x.id == in.HookID {
			h = x
		}
	}
	if h == nil {
		return nil, invalidParam("The lifecycle hook %s is not a hook of the service deployment's current stage.", in.HookID)
	}
	if h.status != hookAwaiting || d.status != depPrimary || d.rolloutState != rolloutInProgress {
		return nil, &apiError{code: "ConflictException", msg: "The lifecycle hook " + in.HookID + " is not awaiting action (status " + h.status + ")."}
	}
	now := s.now()
	if action == actionContinue {
		h.status = hookSucceeded
		d.updatedAt = now
		svc.addEvent("(service %s) (deployment %s) lifecycle hook %s continued.", svc.name, d.id, h.id)
	} else {
		h.status = hookFailed
		s.hookRollback(svc, d, now, "lifecycle hook "+h.id+" requested a rollback")
	}
	s.logf("ecssim: service %s: lifecycle hook %s: %s", svc.name, h.id, action)
	return map[string]any{"serviceDeploymentArn": s.sdARN(svc, d)}, nil
}
