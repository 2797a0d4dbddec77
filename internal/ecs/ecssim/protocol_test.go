package ecssim_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/drainctl/drainctl/internal/ecs/ecssim"
)

var deploymentID = regexp.MustCompile(`^ecs-svc/[1-9][0-9]{18}$`)

func TestDescribeClustersAndServices(t *testing.T) {
	t.Parallel()
	s := startSim(t, ecssim.Options{})
	tdARN := setup(t, s, ecssim.ServiceSpec{DesiredCount: 2, CircuitBreaker: &ecssim.CircuitBreaker{Enable: true, Rollback: true}})
	api := client(s, 3)
	ctx := ctxT(t)

	cc, err := api.CreateCluster(ctx, &awsecs.CreateClusterInput{ClusterName: aws.String("other")})
	if err != nil || aws.ToString(cc.Cluster.ClusterArn) != "arn:aws:ecs:us-east-1:123456789012:cluster/other" {
		t.Errorf("create cluster: %+v, %v", cc, err)
	}
	cl, err := api.DescribeClusters(ctx, &awsecs.DescribeClustersInput{Clusters: []string{"c", "nope"}})
	if err != nil {
		t.Fatalf("describe clusters: %v", err)
	}
	if len(cl.Clusters) != 1 || aws.ToString(cl.Clusters[0].ClusterName) != "c" || aws.ToString(cl.Clusters[0].Status) != "ACTIVE" ||
		aws.ToString(cl.Clusters[0].ClusterArn) != "arn:aws:ecs:us-east-1:123456789012:cluster/c" || cl.Clusters[0].ActiveServicesCount != 1 {
		t.Errorf("clusters = %+v", cl.Clusters)
	}
	if len(cl.Failures) != 1 || aws.ToString(cl.Failures[0].Reason) != "MISSING" {
		t.Errorf("cluster failures = %+v", cl.Failures)
	}

	out, err := api.DescribeServices(ctx, &awsecs.DescribeServicesInput{Cluster: aws.String("c"), Services: []string{"svc", "ghost"}})
	if err != nil {
		t.Fatalf("describe services: %v", err)
	}
	if len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "MISSING" ||
		aws.ToString(out.Failures[0].Arn) != "arn:aws:ecs:us-east-1:123456789012:service/c/ghost" {
		t.Errorf("failures = %+v", out.Failures)
	}
	if len(out.Services) != 1 {
		t.Fatalf("services = %+v", out.Services)
	}
	svc := out.Services[0]
	dc := svc.DeploymentConfiguration
	switch {
	case aws.ToString(svc.ServiceName) != "svc", aws.ToString(svc.Status) != "ACTIVE", svc.DesiredCount != 2,
		aws.ToString(svc.TaskDefinition) != tdARN, svc.LaunchType != ecstypes.LaunchTypeFargate,
		svc.DeploymentController == nil || svc.DeploymentController.Type != ecstypes.DeploymentControllerTypeEcs,
		dc == nil || aws.ToInt32(dc.MinimumHealthyPercent) != 100 || aws.ToInt32(dc.MaximumPercent) != 200,
		dc.DeploymentCircuitBreaker == nil || !dc.DeploymentCircuitBreaker.Enable || !dc.DeploymentCircuitBreaker.Rollback,
		svc.CreatedAt == nil || time.Since(*svc.CreatedAt) > time.Minute:
		t.Errorf("service = %+v, config %+v", svc, dc)
	}
	if len(svc.Deployments) != 1 {
		t.Fatalf("deployments = %+v", svc.Deployments)
	}
	d := svc.Deployments[0]
	if !deploymentID.MatchString(aws.ToString(d.Id)) || aws.ToString(d.Status) != "PRIMARY" || d.RolloutState != ecstypes.DeploymentRolloutStateInProgress ||
		d.DesiredCount != 2 || aws.ToString(d.TaskDefinition) != tdARN || d.CreatedAt == nil || d.UpdatedAt == nil {
		t.Errorf("deployment = %+v", d)
	}

	_, err = api.DescribeServices(ctx, &awsecs.DescribeServicesInput{Cluster: aws.String("nope"), Services: []string{"svc"}})
	var cnf *ecstypes.ClusterNotFoundException
	if !errors.As(err, &cnf) {
		t.Errorf("unknown cluster: err = %v, want ClusterNotFoundException", err)
	}
	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = "svc"
	}
	_, err = api.DescribeServices(ctx, &awsecs.DescribeServicesInput{Cluster: aws.String("c"), Services: eleven})
	var ipe *ecstypes.InvalidParameterException
	if !errors.As(err, &ipe) {
		t.Errorf("11 services: err = %v, want InvalidParameterException", err)
	}
}

func TestTaskDefinitions(t *testing.T) {
	t.Parallel()
	s := startSim(t, ecssim.Options{})
	api := client(s, 3)
	ctx := ctxT(t)
	reg, err := api.RegisterTaskDefinition(ctx, &awsecs.RegisterTaskDefinitionInput{
		Family:                  aws.String("worker"),
		NetworkMode:             ecstypes.NetworkModeAwsvpc,
		RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate},
		Cpu:                     aws.String("256"),
		Memory:                  aws.String("512"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{
			Name: aws.String("sidekiq"), Image: aws.String("app:1"), Essential: aws.Bool(true),
			EntryPoint: []string{"sh", "-c"}, Command: []string{"cd /app; bundle exec sidekiq"},
			StopTimeout:     aws.Int32(45),
			LinuxParameters: &ecstypes.LinuxParameters{InitProcessEnabled: aws.Bool(true)},
			Environment:     []ecstypes.KeyValuePair{{Name: aws.String("RAILS_ENV"), Value: aws.String("production")}},
		}},
		Tags: []ecstypes.Tag{{Key: aws.String("team"), Value: aws.String("jobs")}},
	})
	if err != nil {
		t.Fatalf("register task definition: %v", err)
	}
	if got := aws.ToString(reg.TaskDefinition.TaskDefinitionArn); got != "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:1" {
		t.Errorf("arn = %s", got)
	}
	if _, err := s.RegisterTaskDefinition(ecssim.TaskDefinition{Family: "worker", Containers: []ecssim.Container{{Name: "x", Image: "y"}}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, ref string
		rev       int32
	}{
		{"family:revision", "worker:1", 1},
		{"arn", "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:1", 1},
		{"family means latest", "worker", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := api.DescribeTaskDefinition(ctx, &awsecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(tc.ref)})
			if err != nil {
				t.Fatalf("describe task definition: %v", err)
			}
			if out.TaskDefinition.Revision != tc.rev || out.TaskDefinition.Status != ecstypes.TaskDefinitionStatusActive {
				t.Errorf("revision %d status %s, want %d ACTIVE", out.TaskDefinition.Revision, out.TaskDefinition.Status, tc.rev)
			}
		})
	}
	out, err := api.DescribeTaskDefinition(ctx, &awsecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("worker:1")})
	if err != nil {
		t.Fatal(err)
	}
	c := out.TaskDefinition.ContainerDefinitions[0]
	if aws.ToInt32(c.StopTimeout) != 45 || strings.Join(c.EntryPoint, " ") != "sh -c" || c.Command[0] != "cd /app; bundle exec sidekiq" ||
		c.LinuxParameters == nil || !aws.ToBool(c.LinuxParameters.InitProcessEnabled) || !aws.ToBool(c.Essential) ||
		len(c.Environment) != 1 || out.TaskDefinition.NetworkMode != ecstypes.NetworkModeAwsvpc || aws.ToString(out.TaskDefinition.Cpu) != "256" {
		t.Errorf("container = %+v", c)
	}
	_, err = api.DescribeTaskDefinition(ctx, &awsecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("worker:9")})
	var ce *ecstypes.ClientException
	if !errors.As(err, &ce) {
		t.Errorf("unknown revision: err = %v, want ClientException", err)
	}
}

func TestUpdateService(t *testing.T) {
	t.Parallel()
	s := startSim(t, ecssim.Options{})
	tdARN := setup(t, s, ecssim.ServiceSpec{DesiredCount: 1})
	if err := s.CreateService(ecssim.ServiceSpec{Cluster: "c", Name: "bg", TaskDefinition: tdARN, DesiredCount: 1, DeploymentController: "CODE_DEPLOY"}); err != nil {
		t.Fatal(err)
	}
	api := client(s, 3)
	ctx := ctxT(t)
	first := aws.ToString(describe(t, api, "svc").Deployments[0].Id)

	out, err := api.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("svc"), ForceNewDeployment: true})
	if err != nil {
		t.Fatalf("update service: %v", err)
	}
	deps := out.Service.Deployments
	if len(deps) != 2 || aws.ToString(deps[0].Status) != "PRIMARY" || aws.ToString(deps[1].Id) != first || aws.ToString(deps[1].Status) != "ACTIVE" ||
		!deploymentID.MatchString(aws.ToString(deps[0].Id)) || aws.ToString(deps[0].Id) == first {
		t.Errorf("deployments after update = %+v", deps)
	}
	if got := s.Calls("UpdateService"); got != 1 {
		t.Errorf("Calls(UpdateService) = %d, want 1", got)
	}

	tests := []struct {
		name   string
		in     awsecs.UpdateServiceInput
		target any
	}{
		{"unknown service", awsecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("ghost"), ForceNewDeployment: true}, new(*ecstypes.ServiceNotFoundException)},
		{"unknown cluster", awsecs.UpdateServiceInput{Cluster: aws.String("x"), Service: aws.String("svc"), ForceNewDeployment: true}, new(*ecstypes.ClusterNotFoundException)},
		{"code deploy with task definition", awsecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("bg"), TaskDefinition: aws.String(tdARN)}, new(*ecstypes.InvalidParameterException)},
		{"unknown task definition", awsecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("svc"), TaskDefinition: aws.String("nope:3")}, new(*ecstypes.ClientException)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := api.UpdateService(ctx, &tc.in)
			if !errors.As(err, tc.target) {
				t.Errorf("err = %v, want %T", err, tc.target)
			}
		})
	}
}

func TestTasksOverTheWire(t *testing.T) {
	t.Parallel()
	s := startSim(t, ecssim.Options{})
	tdARN := setup(t, s, ecssim.ServiceSpec{DesiredCount: 2})
	api := client(s, 3)
	ctx := ctxT(t)
	dep := aws.ToString(describe(t, api, "svc").Deployments[0].Id)
	waitFor(t, 10*time.Second, "2 running tasks", func() bool { return describe(t, api, "svc").RunningCount == 2 })

	lt, err := api.ListTasks(ctx, &awsecs.ListTasksInput{Cluster: aws.String("c"), ServiceName: aws.String("svc"), StartedBy: aws.String(dep)})
	if err != nil {
		t.Fatalf("list tasks: %v", err)
	}
	if len(lt.TaskArns) != 2 {
		t.Fatalf("task arns = %v", lt.TaskArns)
	}
	dt, err := api.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: append(lt.TaskArns, "arn:aws:ecs:us-east-1:123456789012:task/c/0123")})
	if err != nil {
		t.Fatalf("describe tasks: %v", err)
	}
	if len(dt.Tasks) != 2 || len(dt.Failures) != 1 || aws.ToString(dt.Failures[0].Reason) != "MISSING" {
		t.Fatalf("tasks %d, failures %+v", len(dt.Tasks), dt.Failures)
	}
	infos := map[string]ecssim.TaskInfo{}
	for _, ti := range s.Tasks("c", "svc") {
		infos[ti.ARN] = ti
	}
	for _, task := range dt.Tasks {
		ti := infos[aws.ToString(task.TaskArn)]
		details := map[string]string{}
		for _, a := range task.Attachments {
			if aws.ToString(a.Type) == "ElasticNetworkInterface" {
				for _, kv := range a.Details {
					details[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
				}
			}
		}
		switch {
		case aws.ToString(task.LastStatus) != "RUNNING", aws.ToString(task.DesiredStatus) != "RUNNING",
			aws.ToString(task.StartedBy) != dep, aws.ToString(task.Group) != "service:svc",
			aws.ToString(task.TaskDefinitionArn) != tdARN, task.StartedAt == nil, task.CreatedAt == nil,
			!regexp.MustCompile(`^arn:aws:ecs:us-east-1:123456789012:task/c/[0-9a-f]{32}$`).MatchString(aws.ToString(task.TaskArn)):
			t.Errorf("task = %+v", task)
		}
		if details["privateIPv4Address"] != ti.PrivateIPv4 || !strings.HasPrefix(ti.PrivateIPv4, "10.0.") ||
			details["privateDnsName"] != ti.Hostname+".ec2.internal" || "ip-"+strings.ReplaceAll(ti.PrivateIPv4, ".", "-") != ti.Hostname {
			t.Errorf("eni details %v, sim %+v", details, ti)
		}
		if len(task.Containers) != 1 || aws.ToString(task.Containers[0].RuntimeId) != ti.RuntimeID ||
			!regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(ti.RuntimeID) || aws.ToString(task.Containers[0].Name) != "sidekiq" {
			t.Errorf("containers = %+v", task.Containers)
		}
	}

	victim := lt.TaskArns[0]
	st, err := api.StopTask(ctx, &awsecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(victim), Reason: aws.String("drainctl: replace quieted task")})
	if err != nil {
		t.Fatalf("stop task: %v", err)
	}
	if aws.ToString(st.Task.DesiredStatus) != "STOPPED" || st.Task.StopCode != ecstypes.TaskStopCodeUserInitiated {
		t.Errorf("stopped task = %+v", st.Task)
	}
	waitFor(t, 10*time.Second, "the stopped task in ListTasks STOPPED", func() bool {
		out, err := api.ListTasks(ctx, &awsecs.ListTasksInput{Cluster: aws.String("c"), ServiceName: aws.String("svc"), DesiredStatus: ecstypes.DesiredStatusStopped})
		return err == nil && len(out.TaskArns) == 1 && out.TaskArns[0] == victim
	})
	waitFor(t, 10*time.Second, "the stopped task STOPPED", func() bool {
		out, err := api.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: []string{victim}})
		if err != nil || len(out.Tasks) != 1 {
			return false
		}
		tk := out.Tasks[0]
		return aws.ToString(tk.LastStatus) == "STOPPED" && aws.ToString(tk.StoppedReason) == "drainctl: replace quieted task" &&
			tk.StoppedAt != nil && tk.StoppingAt != nil && tk.Containers[0].ExitCode != nil
	})
	waitFor(t, 10*time.Second, "a replacement task", func() bool { return describe(t, api, "svc").RunningCount == 2 })

	_, err = api.StopTask(ctx, &awsecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String("ffff")})
	var ipe *ecstypes.InvalidParameterException
	if !errors.As(err, &ipe) {
		t.Errorf("stop unknown task: err = %v, want InvalidParameterException", err)
	}
	_, err = api.ListTasks(ctx, &awsecs.ListTasksInput{Cluster: aws.String("c"), ServiceName: aws.String("ghost")})
	var snf *ecstypes.ServiceNotFoundException
	if !errors.As(err, &snf) {
		t.Errorf("list tasks of unknown service: err = %v, want ServiceNotFoundException", err)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		inject   func(s *ecssim.Sim)
		attempts int
		wantCode string // "" = success
		calls    int
	}{
		{"throttling burst survived by retries", func(s *ecssim.Sim) { s.Throttle("DescribeServices", 2) }, 3, "", 3},
		{"throttling storm beyond retries", func(s *ecssim.Sim) { s.Throttle("", 5) }, 3, "ThrottlingException", 3},
		{"server errors retried", func(s *ecssim.Sim) { s.ServerErrors("DescribeServices", 1) }, 3, "", 2},
		{"server error without retries", func(s *ecssim.Sim) { s.ServerErrors("", 1) }, 1, "ServerException", 1},
		{"access denied", func(s *ecssim.Sim) { s.Deny("DescribeServices") }, 3, "AccessDeniedException", 1},
		{"unimplemented", func(s *ecssim.Sim) { s.Unimplemented("DescribeServices") }, 3, "UnknownOperationException", 1},
		{"other op throttled", func(s *ecssim.Sim) { s.Throttle("UpdateService", 5) }, 1, "", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, ecssim.Options{})
			setup(t, s, ecssim.ServiceSpec{DesiredCount: 1})
			tc.inject(s)
			_, err := client(s, tc.attempts).DescribeServices(ctxT(t), &awsecs.DescribeServicesInput{Cluster: aws.String("c"), Services: []string{"svc"}})
			var ae smithy.APIError
			switch {
			case tc.wantCode == "" && err != nil:
				t.Errorf("err = %v, want success", err)
			case tc.wantCode != "" && (!errors.As(err, &ae) || ae.ErrorCode() != tc.wantCode):
				t.Errorf("err = %v, want code %s", err, tc.wantCode)
			}
			if got := s.Calls("DescribeServices"); got != tc.calls {
				t.Errorf("Calls(DescribeServices) = %d, want %d", got, tc.calls)
			}
		})
	}
	t.Run("typed access denied", func(t *testing.T) {
		t.Parallel()
		s := startSim(t, ecssim.Options{})
		setup(t, s, ecssim.ServiceSpec{DesiredCount: 1})
		s.Deny("UpdateService")
		_, err := client(s, 3).UpdateService(ctxT(t), &awsecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("svc"), ForceNewDeployment: true})
		var ad *ecstypes.AccessDeniedException
		if !errors.As(err, &ad) || !strings.Contains(ad.ErrorMessage(), "ecs:UpdateService") {
			t.Errorf("err = %v, want AccessDeniedException naming ecs:UpdateService", err)
		}
	})
	t.Run("latency", func(t *testing.T) {
		t.Parallel()
		s := startSim(t, ecssim.Options{})
		setup(t, s, ecssim.ServiceSpec{DesiredCount: 1})
		s.SetLatency(150 * time.Millisecond)
		start := time.Now()
		describe(t, client(s, 1), "svc")
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("call took %s, want at least the 150ms latency", d)
		}
	})
}

func TestServiceNotActive(t *testing.T) {
	t.Parallel()
	s := startSim(t, ecssim.Options{})
	setup(t, s, ecssim.ServiceSpec{DesiredCount: 1})
	const svcName = "svc"
	api := client(s, 1)
	s.SetServiceStatus("c", svcName, "DRAINING")
	if got := aws.ToString(describe(t, api, svcName).Status); got != "DRAINING" {
		t.Fatalf("status = %q, want DRAINING", got)
	}
	_, err := api.UpdateService(ctxT(t), &awsecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String(svcName), ForceNewDeployment: true})
	var na *ecstypes.ServiceNotActiveException
	if !errors.As(err, &na) {
		t.Fatalf("UpdateService on a DRAINING service: %v, want ServiceNotActiveException", err)
	}
	s.SetServiceStatus("c", svcName, "ACTIVE")
	if _, err := api.UpdateService(ctxT(t), &awsecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String(svcName), ForceNewDeployment: true}); err != nil {
		t.Fatalf("UpdateService once ACTIVE again: %v", err)
	}
}
