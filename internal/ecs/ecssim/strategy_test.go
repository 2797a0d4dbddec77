package ecssim_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/drainctl/drainctl/internal/ecs/ecssim"
)

// pauseAt is a PAUSE hook at stage with a timeout and its action.
func pauseAt(stage ecstypes.DeploymentLifecycleHookStage, minutes int32, action ecstypes.DeploymentLifecycleHookAction) ecstypes.DeploymentLifecycleHook {
	return ecstypes.DeploymentLifecycleHook{
		TargetType: ecstypes.DeploymentLifecycleHookTargetTypePause, LifecycleStages: []ecstypes.DeploymentLifecycleHookStage{stage},
		TimeoutConfiguration: &ecstypes.DeploymentLifecycleHookTimeoutConfiguration{TimeoutInMinutes: aws.Int32(minutes), Action: action},
	}
}

// deploy forces a new deployment with dc and returns our deployment ID and service deployment ARN.
func deploy(t *testing.T, api *awsecs.Client, dc *ecstypes.DeploymentConfiguration) (id, sdARN string) {
	t.Helper()
	ctx := ctxT(t)
	out, err := api.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("svc"),
		ForceNewDeployment: true, DeploymentConfiguration: dc})
	if err != nil {
		t.Fatalf("update service: %v", err)
	}
	list, err := api.ListServiceDeployments(ctx, &awsecs.ListServiceDeploymentsInput{Cluster: aws.String("c"), Service: aws.String("svc")})
	if err != nil || len(list.ServiceDeployments) == 0 {
		t.Fatalf("list service deployments: %+v, %v", list, err)
	}
	return aws.ToString(out.Service.Deployments[0].Id), aws.ToString(list.ServiceDeployments[0].ServiceDeploymentArn)
}

// sd describes one service deployment.
func sd(t *testing.T, api *awsecs.Client, arn string) ecstypes.ServiceDeployment {
	t.Helper()
	out, err := api.DescribeServiceDeployments(ctxT(t), &awsecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{arn}})
	if err != nil || len(out.ServiceDeployments) != 1 {
		t.Fatalf("describe service deployment: %+v, %v", out, err)
	}
	return out.ServiceDeployments[0]
}

// awaiting waits for the service deployment to pause at stage and returns the hook's ID.
func awaiting(t *testing.T, api *awsecs.Client, arn string, stage ecstypes.ServiceDeploymentLifecycleStage) string {
	t.Helper()
	var id string
	waitFor(t, 20*time.Second, "a hook awaiting action at "+string(stage), func() bool {
		d := sd(t, api, arn)
		for _, h := range d.LifecycleHookDetails {
			if d.LifecycleStage == stage && h.Status == ecstypes.DeploymentLifecycleHookStatusAwaitingAction {
				id = aws.ToString(h.HookId)
				return h.TargetType == ecstypes.DeploymentLifecycleHookTargetTypePause && h.ExpiresAt != nil
			}
		}
		return false
	})
	return id
}

func atStage(t *testing.T, api *awsecs.Client, arn string, stage ecstypes.ServiceDeploymentLifecycleStage) {
	t.Helper()
	waitFor(t, 20*time.Second, "stage "+string(stage), func() bool { return sd(t, api, arn).LifecycleStage == stage })
}

func arnsOf(ts []ecssim.TaskInfo) []string {
	var out []string
	for _, ti := range ts {
		out = append(out, ti.ARN)
	}
	return out
}

func TestBlueGreenPauseHook(t *testing.T) {
	t.Parallel()
	s := startSim(t, ecssim.Options{})
	setup(t, s, ecssim.ServiceSpec{DesiredCount: 2})
	api := client(s, 1)
	ctx := ctxT(t)
	first, blue := settled(t, s, api)
	ours, arn := deploy(t, api, &ecstypes.DeploymentConfiguration{
		Strategy: ecstypes.DeploymentStrategyBlueGreen, BakeTimeInMinutes: aws.Int32(60),
		LifecycleHooks: []ecstypes.DeploymentLifecycleHook{pauseAt(ecstypes.DeploymentLifecycleHookStagePostScaleUp, 600, ecstypes.DeploymentLifecycleHookActionRollback)},
	})
	hook := awaiting(t, api, arn, ecstypes.ServiceDeploymentLifecycleStagePostScaleUp)
	s.Step()
	s.Step()
	if g := tasksOf(s, ours); healthyCount(g) != 2 || len(g) != 2 {
		t.Errorf("green tasks at POST_SCALE_UP = %+v", g)
	}
	if b := arnsOf(tasksOf(s, first)); !slices.Equal(b, blue) {
		t.Errorf("blue tasks at POST_SCALE_UP = %q, want %q", b, blue)
	}
	svc := describe(t, api, "svc")
	if dc := svc.DeploymentConfiguration; dc.Strategy != ecstypes.DeploymentStrategyBlueGreen || aws.ToInt32(dc.BakeTimeInMinutes) != 60 ||
		len(dc.LifecycleHooks) != 1 || dc.LifecycleHooks[0].LifecycleStages[0] != ecstypes.DeploymentLifecycleHookStagePostScaleUp {
		t.Errorf("deployment configuration = %+v", dc)
	}
	if len(svc.Deployments) != 2 || aws.ToString(svc.Deployments[0].Id) != ours || svc.Deployments[0].RolloutState != ecstypes.DeploymentRolloutStateInProgress {
		t.Errorf("deployments = %+v", svc.Deployments)
	}
	if d := sd(t, api, arn); d.Status != ecstypes.ServiceDeploymentStatusInProgress || d.DeploymentConfiguration.Strategy != ecstypes.DeploymentStrategyBlueGreen ||
		d.LifecycleHookDetails[0].TimeoutAction != ecstypes.DeploymentLifecycleHookActionRollback {
		t.Errorf("service deployment = %+v", d)
	}

	var ipe *ecstypes.InvalidParameterException
	if _, err := api.ContinueServiceDeployment(ctx, &awsecs.ContinueServiceDeploymentInput{ServiceDeploymentArn: aws.String(arn), HookId: aws.String("nope")}); !errors.As(err, &ipe) {
		t.Errorf("continue with an unknown hook: err = %v, want InvalidParameterException", err)
	}
	var nf *ecstypes.ServiceDeploymentNotFoundException
	if _, err := api.ContinueServiceDeployment(ctx, &awsecs.ContinueServiceDeploymentInput{ServiceDeploymentArn: aws.String(arn + "9"), HookId: aws.String(hook)}); !errors.As(err, &nf) {
		t.Errorf("continue an unknown deployment: err = %v, want ServiceDeploymentNotFoundException", err)
	}
	out, err := api.ContinueServiceDeployment(ctx, &awsecs.ContinueServiceDeploymentInput{ServiceDeploymentArn: aws.String(arn), HookId: aws.String(hook),
		Action: ecstypes.DeploymentLifecycleHookActionContinue})
	if err != nil || aws.ToString(out.ServiceDeploymentArn) != arn {
		t.Fatalf("continue: %+v, %v", out, err)
	}

	// Traffic shifts at once; blue keeps running through the bake.
	atStage(t, api, arn, ecstypes.ServiceDeploymentLifecycleStageBakeTime)
	d := sd(t, api, arn)
	if w := d.TargetServiceRevision.RequestedProductionTrafficWeight; w == nil || *w != 100 || len(d.SourceServiceRevisions) != 1 ||
		aws.ToFloat64(d.SourceServiceRevisions[0].RequestedProductionTrafficWeight) != 0 {
		t.Errorf("traffic weights = %+v / %+v", d.TargetServiceRevision, d.SourceServiceRevisions)
	}
	if b := arnsOf(tasksOf(s, first)); len(b) != 2 {
		t.Errorf("blue tasks in the bake = %q", b)
	}
	s.Advance(61 * time.Minute)
	waitFor(t, 20*time.Second, "the blue/green deployment to complete", func() bool { return completed(describe(t, api, "svc"), ours) })
	d = sd(t, api, arn)
	if d.Status != ecstypes.ServiceDeploymentStatusSuccessful || d.LifecycleStage != ecstypes.ServiceDeploymentLifecycleStageCleanUp || d.FinishedAt == nil {
		t.Errorf("service deployment after clean-up = %s %s", d.Status, d.LifecycleStage)
	}
	for _, ti := range s.Tasks("c", "svc") {
		if ti.DeploymentID == first && (ti.LastStatus != "STOPPED" || ti.StopCode != "ServiceSchedulerInitiated") {
			t.Errorf("blue task %s: %s %s", ti.ID, ti.LastStatus, ti.StopCode)
		}
	}
	var ce *ecstypes.ConflictException
	if _, err := api.ContinueServiceDeployment(ctx, &awsecs.ContinueServiceDeploymentInput{ServiceDeploymentArn: aws.String(arn), HookId: aws.String(hook)}); !errors.As(err, &ce) && !errors.As(err, &ipe) {
		t.Errorf("continue a finished deployment: err = %v, want ConflictException or InvalidParameterException", err)
	}
	ops := strings.Join(s.Ops(), " ")
	if strings.Count(ops, "ContinueServiceDeployment") != 4 || strings.Count(ops, "UpdateService") != 1 {
		t.Errorf("ops = %s", ops)
	}
}

func TestBlueGreenHookRollbackAndTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		timeout  ecstypes.DeploymentLifecycleHookAction
		act      func(t *testing.T, s *ecssim.Sim, api *awsecs.Client, arn, hook string)
		rollback bool
	}{
		{"ROLLBACK", ecstypes.DeploymentLifecycleHookActionContinue, func(t *testing.T, s *ecssim.Sim, api *awsecs.Client, arn, hook string) {
			if _, err := api.ContinueServiceDeployment(ctxT(t), &awsecs.ContinueServiceDeploymentInput{ServiceDeploymentArn: aws.String(arn),
				HookId: aws.String(hook), Action: ecstypes.DeploymentLifecycleHookActionRollback}); err != nil {
				t.Fatalf("continue with ROLLBACK: %v", err)
			}
		}, true},
		{"timeout rolls back", ecstypes.DeploymentLifecycleHookActionRollback, func(t *testing.T, s *ecssim.Sim, api *awsecs.Client, arn, hook string) {
			s.Advance(31 * time.Minute)
		}, true},
		{"timeout continues", ecstypes.DeploymentLifecycleHookActionContinue, func(t *testing.T, s *ecssim.Sim, api *awsecs.Client, arn, hook string) {
			s.Advance(31 * time.Minute)
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, ecssim.Options{})
			setup(t, s, ecssim.ServiceSpec{DesiredCount: 2, Strategy: "BLUE_GREEN", BakeTimeInMinutes: i32(0),
				LifecycleHooks: []ecssim.LifecycleHook{{TargetType: "PAUSE", LifecycleStages: []string{"POST_SCALE_UP"},
					TimeoutConfiguration: &ecssim.HookTimeout{TimeoutInMinutes: i32(30), Action: string(tc.timeout)}}}})
			api := client(s, 3)
			first, blue := settled(t, s, api)
			ours, arn := deploy(t, api, nil)
			hook := awaiting(t, api, arn, ecstypes.ServiceDeploymentLifecycleStagePostScaleUp)
			green := arnsOf(tasksOf(s, ours))
			tc.act(t, s, api, arn, hook)
			want := ours
			if tc.rollback {
				want = first
			}
			waitFor(t, 20*time.Second, "the deployment to settle", func() bool { return completed(describe(t, api, "svc"), want) })
			d := sd(t, api, arn)
			if !tc.rollback {
				if d.Status != ecstypes.ServiceDeploymentStatusSuccessful || len(tasksOf(s, first)) != 0 {
					t.Errorf("service deployment %s, blue left %d", d.Status, len(tasksOf(s, first)))
				}
				return
			}
			waitFor(t, 5*time.Second, "ROLLBACK_SUCCESSFUL", func() bool { return sd(t, api, arn).Status == ecstypes.ServiceDeploymentStatusRollbackSuccessful })
			d = sd(t, api, arn)
			if d.Rollback == nil || !strings.Contains(aws.ToString(d.Rollback.Reason), "hook") || aws.ToString(d.StatusReason) == "" {
				t.Errorf("rollback = %+v, reason %q", d.Rollback, aws.ToString(d.StatusReason))
			}
			if b := arnsOf(tasksOf(s, first)); !slices.Equal(b, blue) {
				t.Errorf("blue tasks after rollback = %q, want the same %q", b, blue)
			}
			for _, ti := range s.Tasks("c", "svc") {
				if slices.Contains(green, ti.ARN) && ti.LastStatus != "STOPPED" {
					t.Errorf("green task %s still %s", ti.ID, ti.LastStatus)
				}
			}
			svc := describe(t, api, "svc")
			var msgs []string
			for _, e := range svc.Events {
				msgs = append(msgs, aws.ToString(e.Message))
			}
			if !strings.Contains(strings.Join(msgs, "\n"), "rolling back to deployment "+first) {
				t.Errorf("events:\n%s", strings.Join(msgs, "\n"))
			}
		})
	}
}

func TestLinearAndCanaryShiftTrafficInSteps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dc   *ecstypes.DeploymentConfiguration
		want []float64
	}{
		{"linear 25%", &ecstypes.DeploymentConfiguration{Strategy: ecstypes.DeploymentStrategyLinear, BakeTimeInMinutes: aws.Int32(30),
			LinearConfiguration: &ecstypes.LinearConfiguration{StepPercent: aws.Float64(25), StepBakeTimeInMinutes: aws.Int32(10)}}, []float64{25, 50, 75, 100}},
		{"canary 10%", &ecstypes.DeploymentConfiguration{Strategy: ecstypes.DeploymentStrategyCanary, BakeTimeInMinutes: aws.Int32(30),
			CanaryConfiguration: &ecstypes.CanaryConfiguration{CanaryPercent: aws.Float64(10), CanaryBakeTimeInMinutes: aws.Int32(5)}}, []float64{10, 100}},
		{"linear with a pause before each step", &ecstypes.DeploymentConfiguration{Strategy: ecstypes.DeploymentStrategyLinear, BakeTimeInMinutes: aws.Int32(30),
			LinearConfiguration: &ecstypes.LinearConfiguration{StepPercent: aws.Float64(50), StepBakeTimeInMinutes: aws.Int32(0)},
			LifecycleHooks:      []ecstypes.DeploymentLifecycleHook{pauseAt(ecstypes.DeploymentLifecycleHookStagePreProductionTrafficShift, 60, ecstypes.DeploymentLifecycleHookActionRollback)}},
			[]float64{50, 100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, ecssim.Options{})
			setup(t, s, ecssim.ServiceSpec{DesiredCount: 2})
			api := client(s, 3)
			first, _ := settled(t, s, api)
			ours, arn := deploy(t, api, tc.dc)
			var seen []float64
			waitFor(t, 30*time.Second, "the deployment to complete", func() bool {
				d := sd(t, api, arn)
				if w := aws.ToFloat64(d.TargetServiceRevision.RequestedProductionTrafficWeight); w > 0 && (len(seen) == 0 || seen[len(seen)-1] != w) {
					seen = append(seen, w)
					if len(tasksOf(s, first)) != 2 {
						t.Errorf("blue has %d tasks at %v%% traffic", len(tasksOf(s, first)), w)
					}
				}
				for _, h := range d.LifecycleHookDetails {
					if h.Status == ecstypes.DeploymentLifecycleHookStatusAwaitingAction {
						if _, err := api.ContinueServiceDeployment(ctxT(t), &awsecs.ContinueServiceDeploymentInput{ServiceDeploymentArn: aws.String(arn), HookId: h.HookId}); err != nil {
							t.Fatalf("continue: %v", err)
						}
					}
				}
				if d.LifecycleStage == ecstypes.ServiceDeploymentLifecycleStageProductionTrafficShift && len(seen) > 0 && seen[len(seen)-1] < 100 {
					s.Advance(10 * time.Minute) // the step's bake
				}
				// A bake after the last step keeps blue up until a poll has seen 100%: without
				// it CLEAN_UP may stop blue before a slow poll samples that step.
				if d.LifecycleStage == ecstypes.ServiceDeploymentLifecycleStageBakeTime && len(seen) > 0 && seen[len(seen)-1] == 100 {
					s.Advance(30 * time.Minute)
				}
				return completed(describe(t, api, "svc"), ours)
			})
			// The events record every step; the polls above only sample them.
			var steps []string
			for _, e := range describe(t, api, "svc").Events {
				if m := aws.ToString(e.Message); strings.Contains(m, "of production traffic") {
					steps = append([]string{m[strings.Index(m, "shifted ")+8 : strings.Index(m, "%")]}, steps...)
				}
			}
			var want []string
			for _, w := range tc.want {
				want = append(want, strconv.FormatFloat(w, 'f', 1, 64))
			}
			if !slices.Equal(steps, want) {
				t.Errorf("traffic steps = %v, want %v (polls saw %v)", steps, want, seen)
			}
		})
	}
}

func TestDeploymentConfigurationValidation(t *testing.T) {
	t.Parallel()
	s := startSim(t, ecssim.Options{})
	setup(t, s, ecssim.ServiceSpec{DesiredCount: 1})
	api := client(s, 1)
	lambda := ecstypes.DeploymentLifecycleHook{TargetType: ecstypes.DeploymentLifecycleHookTargetTypeAwsLambda,
		LifecycleStages: []ecstypes.DeploymentLifecycleHookStage{ecstypes.DeploymentLifecycleHookStagePostScaleUp}}
	tests := []struct {
		name string
		dc   ecstypes.DeploymentConfiguration
	}{
		{"unknown strategy", ecstypes.DeploymentConfiguration{Strategy: "RAINBOW"}},
		{"PAUSE at PRODUCTION_TRAFFIC_SHIFT", ecstypes.DeploymentConfiguration{Strategy: ecstypes.DeploymentStrategyBlueGreen,
			LifecycleHooks: []ecstypes.DeploymentLifecycleHook{pauseAt(ecstypes.DeploymentLifecycleHookStageProductionTrafficShift, 60, "")}}},
		{"PAUSE at TEST_TRAFFIC_SHIFT", ecstypes.DeploymentConfiguration{Strategy: ecstypes.DeploymentStrategyBlueGreen,
			LifecycleHooks: []ecstypes.DeploymentLifecycleHook{pauseAt(ecstypes.DeploymentLifecycleHookStageTestTrafficShift, 60, "")}}},
		{"hook at SCALE_UP", ecstypes.DeploymentConfiguration{LifecycleHooks: []ecstypes.DeploymentLifecycleHook{pauseAt("SCALE_UP", 60, "")}}},
		{"hook at BAKE_TIME", ecstypes.DeploymentConfiguration{LifecycleHooks: []ecstypes.DeploymentLifecycleHook{pauseAt("BAKE_TIME", 60, "")}}},
		{"hook at CLEAN_UP", ecstypes.DeploymentConfiguration{LifecycleHooks: []ecstypes.DeploymentLifecycleHook{pauseAt("CLEAN_UP", 60, "")}}},
		{"Lambda hook without a target", ecstypes.DeploymentConfiguration{LifecycleHooks: []ecstypes.DeploymentLifecycleHook{lambda}}},
		{"hook timeout 0", ecstypes.DeploymentConfiguration{LifecycleHooks: []ecstypes.DeploymentLifecycleHook{pauseAt(ecstypes.DeploymentLifecycleHookStagePostScaleUp, 0, "")}}},
		{"bake 1441", ecstypes.DeploymentConfiguration{Strategy: ecstypes.DeploymentStrategyBlueGreen, BakeTimeInMinutes: aws.Int32(1441)}},
		{"linear step 2%", ecstypes.DeploymentConfiguration{Strategy: ecstypes.DeploymentStrategyLinear, LinearConfiguration: &ecstypes.LinearConfiguration{StepPercent: aws.Float64(2)}}},
		{"early success with blue/green", ecstypes.DeploymentConfiguration{Strategy: ecstypes.DeploymentStrategyBlueGreen,
			EarlySuccessCriteria: &ecstypes.DeploymentEarlySuccessCriteria{Enable: true, HealthyPercent: aws.Int32(100), SourceServiceRevisionCleanup: ecstypes.ServiceRevisionCleanupDeferred}}},
		{"early success below minimumHealthyPercent", ecstypes.DeploymentConfiguration{
			EarlySuccessCriteria: &ecstypes.DeploymentEarlySuccessCriteria{Enable: true, HealthyPercent: aws.Int32(50), SourceServiceRevisionCleanup: ecstypes.ServiceRevisionCleanupDeferred}}},
		{"early success without clean-up", ecstypes.DeploymentConfiguration{
			EarlySuccessCriteria: &ecstypes.DeploymentEarlySuccessCriteria{Enable: true, HealthyPercent: aws.Int32(100)}}},
	}
	for _, tc := range tests {
		dc := tc.dc
		_, err := api.UpdateService(ctxT(t), &awsecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("svc"), DeploymentConfiguration: &dc})
		var ipe *ecstypes.InvalidParameterException
		if !errors.As(err, &ipe) {
			t.Errorf("%s: err = %v, want InvalidParameterException", tc.name, err)
		}
	}
	if n := len(describe(t, api, "svc").Deployments); n != 1 {
		t.Errorf("a refused update made a deployment: %d deployments", n)
	}
	if dc := describe(t, api, "svc").DeploymentConfiguration; dc.Strategy != ecstypes.DeploymentStrategyRolling || len(dc.LifecycleHooks) != 0 {
		t.Errorf("a refused update changed the configuration: %+v", dc)
	}
	if err := s.CreateService(ecssim.ServiceSpec{Cluster: "c", Name: "bad", TaskDefinition: "worker", Strategy: "BLUE_GREEN", DeploymentController: "CODE_DEPLOY"}); err == nil {
		t.Errorf("CreateService accepted BLUE_GREEN with the CODE_DEPLOY controller")
	}
}

func TestRollingPauseHookAndEarlySuccess(t *testing.T) {
	t.Parallel()
	t.Run("PAUSE at PRE_SCALE_UP holds the rollout", func(t *testing.T) {
		t.Parallel()
		s := startSim(t, ecssim.Options{})
		setup(t, s, ecssim.ServiceSpec{DesiredCount: 2})
		api := client(s, 3)
		_, _ = settled(t, s, api)
		ours, arn := deploy(t, api, &ecstypes.DeploymentConfiguration{
			LifecycleHooks: []ecstypes.DeploymentLifecycleHook{pauseAt(ecstypes.DeploymentLifecycleHookStagePreScaleUp, 60, ecstypes.DeploymentLifecycleHookActionRollback)}})
		hook := awaiting(t, api, arn, ecstypes.ServiceDeploymentLifecycleStagePreScaleUp)
		s.Step()
		if n := len(tasksOf(s, ours)); n != 0 {
			t.Errorf("%d new tasks started while paused before SCALE_UP", n)
		}
		if _, err := api.ContinueServiceDeployment(ctxT(t), &awsecs.ContinueServiceDeploymentInput{ServiceDeploymentArn: aws.String(arn), HookId: aws.String(hook)}); err != nil {
			t.Fatalf("continue: %v", err)
		}
		waitFor(t, 20*time.Second, "the rollout to complete", func() bool { return completed(describe(t, api, "svc"), ours) })
		if d := sd(t, api, arn); d.Status != ecstypes.ServiceDeploymentStatusSuccessful {
			t.Errorf("service deployment status %s", d.Status)
		}
	})
	for _, cleanup := range []ecstypes.ServiceRevisionCleanup{ecstypes.ServiceRevisionCleanupDeferred, ecstypes.ServiceRevisionCleanupBlocking} {
		t.Run("early success "+string(cleanup), func(t *testing.T) {
			t.Parallel()
			s := startSim(t, ecssim.Options{})
			setup(t, s, ecssim.ServiceSpec{DesiredCount: 2, MinimumHealthyPercent: i32(50)})
			api := client(s, 3)
			first, old := settled(t, s, api)
			// The old tasks are protected, so they are certainly still there when the new ones are healthy.
			protect(t, api, true, 60, old...)
			ours, arn := deploy(t, api, &ecstypes.DeploymentConfiguration{EarlySuccessCriteria: &ecstypes.DeploymentEarlySuccessCriteria{
				Enable: true, HealthyPercent: aws.Int32(50), SourceServiceRevisionCleanup: cleanup}})
			waitFor(t, 20*time.Second, "the new tasks to be healthy", func() bool { return healthyCount(tasksOf(s, ours)) == 2 })
			s.Step()
			s.Step()
			svc := describe(t, api, "svc")
			state := svc.Deployments[0].RolloutState
			if cleanup == ecstypes.ServiceRevisionCleanupDeferred {
				if state != ecstypes.DeploymentRolloutStateCompleted || len(svc.Deployments) != 2 || sd(t, api, arn).Status != ecstypes.ServiceDeploymentStatusSuccessful {
					t.Errorf("DEFERRED: deployments %+v, want ours COMPLETED beside the old one", svc.Deployments)
				}
				if n := len(tasksOf(s, first)); n != 2 {
					t.Errorf("DEFERRED: %d old tasks left at COMPLETED, want 2", n)
				}
			} else if state != ecstypes.DeploymentRolloutStateInProgress {
				t.Errorf("BLOCKING: rollout %s while the old tasks run", state)
			}
			protect(t, api, false, 0, old...)
			waitFor(t, 20*time.Second, "the old tasks to be gone", func() bool { return completed(describe(t, api, "svc"), ours) })
		})
	}
}

func TestBlueGreenCleanUpStopsBlueProcesses(t *testing.T) {
	t.Parallel()
	const stopTimeout = 1500 * time.Millisecond
	tests := []struct {
		name     string
		script   string
		wantExit int32
	}{
		{"blue handles SIGTERM", `trap "exit 0" TERM; touch "$OUT/$DYNO"; while :; do sleep 0.05; done`, 0},
		{"blue ignores SIGTERM", `trap "" TERM; touch "$OUT/$DYNO"; while :; do sleep 0.05; done`, 137},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, ecssim.Options{})
			out := t.TempDir()
			setup(t, s, ecssim.ServiceSpec{DesiredCount: 2, Strategy: "BLUE_GREEN",
				LifecycleHooks: []ecssim.LifecycleHook{{TargetType: "PAUSE", LifecycleStages: []string{"POST_SCALE_UP"}}},
				Process: &ecssim.ProcessTemplate{Argv: []string{"sh", "-c", tc.script}, Env: []string{"OUT=" + out},
					HostnameEnv: "DYNO", StopTimeout: stopTimeout, LogDir: t.TempDir()}})
			api := client(s, 3)
			first, blue := settled(t, s, api)
			for _, ti := range tasksOf(s, first) {
				waitFor(t, 10*time.Second, "blue task "+ti.ID+" to be up", func() bool {
					_, err := os.Stat(filepath.Join(out, ti.Hostname))
					return err == nil
				})
			}
			_, arn := deploy(t, api, nil)
			hook := awaiting(t, api, arn, ecstypes.ServiceDeploymentLifecycleStagePostScaleUp)
			for _, ti := range tasksOf(s, first) {
				if ti.LastStatus != "RUNNING" || ti.PID == 0 {
					t.Errorf("blue task %s at the pause: %s pid %d", ti.ID, ti.LastStatus, ti.PID)
				}
			}
			if _, err := api.ContinueServiceDeployment(ctxT(t), &awsecs.ContinueServiceDeploymentInput{ServiceDeploymentArn: aws.String(arn), HookId: aws.String(hook)}); err != nil {
				t.Fatalf("continue: %v", err)
			}
			for _, b := range blue {
				tk := stoppedTask(t, api, b, 20*time.Second)
				if c := tk.Containers[0]; c.ExitCode == nil || *c.ExitCode != tc.wantExit || tk.StopCode != ecstypes.TaskStopCodeServiceSchedulerInitiated {
					t.Errorf("blue task %s: exit %s, stop code %s", aws.ToString(tk.TaskArn), exitText(c.ExitCode), tk.StopCode)
				}
				if took := tk.StoppedAt.Sub(*tk.StoppingAt); (tc.wantExit == 137) != (took >= stopTimeout-10*time.Millisecond) {
					t.Errorf("blue task %s stopped after %s (stop timeout %s)", aws.ToString(tk.TaskArn), took, stopTimeout)
				}
			}
			waitFor(t, 20*time.Second, "SUCCESSFUL", func() bool { return sd(t, api, arn).Status == ecstypes.ServiceDeploymentStatusSuccessful })
		})
	}
}
