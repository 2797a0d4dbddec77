package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/drainctl/drainctl/internal/finding"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/report")

// goldenDir is the repository's testdata/report.
const goldenDir = "../../testdata/report"

var t0 = time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func phases(spans ...any) []drain.PhaseRecord {
	var out []drain.PhaseRecord
	for i := 0; i+2 < len(spans); i += 3 {
		p := drain.PhaseRecord{Phase: drain.Phase(spans[i].(string)), StartedAt: at(spans[i+1].(float64)), EndedAt: at(spans[i+2].(float64))}
		out = append(out, p)
	}
	return out
}

func settings() drain.Settings {
	return drain.Settings{RedisURL: "redis://:hunter2@redis.internal:6379/0", DrainTimeout: 10 * time.Minute,
		OnTimeout: drain.OnTimeoutDeploy, RolloutTimeout: 15 * time.Minute, ExitTimeout: 3 * time.Minute,
		PollInterval: 2 * time.Second, Rescue: true, OnRolloutFailure: "replace"}
}

const (
	id1  = "ip-10-0-1-11:7:a1b2c3d4e5f6"
	id2  = "ip-10-0-1-12:7:0a9b8c7d6e5f"
	arn1 = "arn:aws:ecs:us-east-1:123456789012:task/prod/1f2e3d4c5b6a"
	arn2 = "arn:aws:ecs:us-east-1:123456789012:task/prod/6a5b4c3d2e1f"
	td7  = "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:7"
	td8  = "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:8"
)

// exitOf is the exit verdict the Runner gives a process last seen in state s.
func exitOf(s sidekiq.State) drain.ExitVerdict {
	switch s {
	case sidekiq.StateGone:
		return drain.ExitClean
	case sidekiq.StateDead:
		return drain.ExitKilled
	case sidekiq.StateRunning:
		return "" // never quieted: nothing to judge
	}
	return drain.ExitUnknown
}

func procs(s1, s2 sidekiq.State, ev2 string) []drain.ProcessResult {
	ps := procList(s1, s2, ev2)
	for i := range ps {
		ps[i].Exit = exitOf(ps[i].State)
	}
	return ps
}

func procList(s1, s2 sidekiq.State, ev2 string) []drain.ProcessResult {
	return []drain.ProcessResult{
		{Identity: id1, Hostname: "ip-10-0-1-11", Tag: "worker", Version: "7.3.2", Queues: []string{"default"},
			TaskARN: arn1, Service: "prod/worker", State: s1, LastBeat: at(40), BusyAtQuiet: 2},
		{Identity: id2, Hostname: "ip-10-0-1-12", Tag: "worker", Version: "7.3.2", Queues: []string{"default", "mailers"},
			TaskARN: arn2, Service: "prod/worker", State: s2, Evidence: ev2, LastBeat: at(41), BusyAtQuiet: 1},
	}
}

func jobs(f1, f2, f3 drain.JobFate) []drain.JobRecord {
	args := json.RawMessage(`["user@example.com",42]`)
	return []drain.JobRecord{
		{JID: "b1946ac92492d2347c6235b4", Class: "ShortJob", Queue: "default", Process: id1, RunAt: at(-5), Args: args, Fate: f1},
		{JID: "591785b794601e212b260e25", Class: "LongJob", Queue: "default", Process: id1, RunAt: at(-40), Args: args, Fate: f2},
		{JID: "e5fa44f2b31c1fb553b6021e", Class: "MailerJob", Queue: "mailers", Process: id2, RunAt: at(-70), Args: args, Fate: f3},
	}
}

func counts(recs []drain.JobRecord) drain.JobCounts {
	var c drain.JobCounts
	for _, r := range recs {
		switch r.Fate {
		case drain.JobFinished:
			c.Finished++
		case drain.JobRequeued:
			c.Requeued++
		case drain.JobRescued:
			c.Rescued++
		case drain.JobStillRunning:
			c.StillRunning++
		case drain.JobLost:
			c.Lost++
		}
	}
	return c
}

func exit(n int32) *int32 { return &n }

func service(deployed bool, out *drain.RolloutOutcome, polls ...drain.RolloutPoll) drain.ServiceResult {
	s := drain.ServiceResult{Ref: ecs.ServiceRef{Cluster: "prod", Service: "worker"},
		State: ecs.ServiceState{Status: "ACTIVE", TaskDefinition: td7, Desired: 2, Running: 2, Controller: "ECS",
			MinHealthy: 100, MaxPercent: 200, BreakerEnabled: true, BreakerRollback: true},
		Deployed: deployed, Polls: polls, Outcome: out}
	if deployed {
		s.Rollout = ecs.DeployResult{DeploymentID: "ecs-svc/8374650192837465", TaskDefinition: td8, StartedAt: at(45),
			Previous: []ecs.Deployment{{ID: "ecs-svc/1111111111111111", Status: "PRIMARY", TaskDefinition: td7}}}
	}
	return s
}

func poll(t float64, state string, running int32, deps int, events ...string) drain.RolloutPoll {
	p := drain.RolloutPoll{At: at(t), DeploymentID: "ecs-svc/8374650192837465", RolloutState: state, Desired: 2,
		Running: running, Pending: 2 - running, Deployments: deps}
	for _, e := range events {
		p.Events = append(p.Events, ecs.Event{At: at(t - 1), Message: e})
	}
	return p
}

func calls(extra map[string]int) map[string]int {
	m := map[string]int{"ecs.CheckClusters": 1, "ecs.Describe": 1, "ecs.TaskDefinition": 1, "ecs.Tasks": 1, "redis.Ping": 1, "redis.Snapshot": 1, "redis.LockHolder": 1}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// results are the runs the golden files show.
func results() []struct {
	name string
	res  drain.Result
	err  error
} {
	lock := drain.LockRecord{Name: "deploy:prod/worker", Acquired: true, Released: true}
	killed := ecs.Task{ARN: arn2, ID: "6a5b4c3d2e1f", LastStatus: "STOPPED", StopCode: "ServiceSchedulerInitiated",
		StoppedReason: "Scaling activity initiated by (deployment ecs-svc/8374650192837465)",
		Containers:    []ecs.Container{{Name: "sidekiq", ExitCode: exit(137)}}}
	clean := ecs.Task{ARN: arn1, ID: "1f2e3d4c5b6a", LastStatus: "STOPPED", StopCode: "ServiceSchedulerInitiated",
		StoppedReason: "Scaling activity initiated by (deployment ecs-svc/8374650192837465)",
		Containers:    []ecs.Container{{Name: "sidekiq", ExitCode: exit(0)}}}

	success := jobs(drain.JobFinished, drain.JobRequeued, drain.JobRescued)
	rolled := jobs(drain.JobFinished, drain.JobFinished, drain.JobFinished)
	timeout := jobs(drain.JobFinished, drain.JobStillRunning, drain.JobStillRunning)
	dry := jobs(drain.JobStillRunning, drain.JobStillRunning, drain.JobStillRunning)
	intr := jobs(drain.JobFinished, drain.JobStillRunning, drain.JobFinished)

	failTimeout := settings()
	failTimeout.OnTimeout = drain.OnTimeoutFail
	failTimeout.DrainTimeout = 30 * time.Second

	return []struct {
		name string
		res  drain.Result
		err  error
	}{
		{name: "success_rescued", res: drain.Result{
			Outcome: drain.OutcomeSucceeded, StartedAt: t0, EndedAt: at(170), Settings: settings(),
			Phases:    phases("preflight", 0.0, 0.4, "lock", 0.4, 0.5, "quiet", 0.5, 12.0, "drain", 12.0, 45.0, "deploy", 45.0, 45.3, "rollout", 45.3, 110.0, "exits", 110.0, 170.0),
			Processes: procs(sidekiq.StateGone, sidekiq.StateDead, "task 6a5b4c3d2e1f container sidekiq exited 137 (SIGKILL after stopTimeout)"),
			JobList:   success, Jobs: counts(success),
			Services: []drain.ServiceResult{func() drain.ServiceResult {
				s := service(true, &drain.RolloutOutcome{Result: drain.RolloutSucceeded, Polls: 3},
					poll(50, "IN_PROGRESS", 0, 2, "(service worker) has started 2 tasks: (task 9c8b) (task 7d6e)."),
					poll(80, "IN_PROGRESS", 2, 2),
					poll(110, "COMPLETED", 2, 1, "(service worker) has reached a steady state."))
				s.OldTasksStopped = []ecs.Task{clean, killed}
				return s
			}()},
			Lock:     lock,
			Metrics:  drain.Metrics{LongestQueueWait: 71 * time.Second, ProcessingGap: 64 * time.Second, InterruptedJobs: 2, Samples: 40},
			APICalls: calls(map[string]int{"redis.Lock": 1, "redis.Quiet": 1, "redis.Poll": 40, "ecs.Deploy": 1, "ecs.Describe": 3, "redis.Rescue": 1, "redis.LockRelease": 1}),
			Warnings: []string{"1 process(es) were killed instead of stopping: " + id2 + "; the signal path likely does not deliver SIGTERM to Sidekiq (shell wrapper as PID 1, no init, or stopTimeout below sidekiq -t + 5s)",
				"rescued 1 job(s) of killed processes: nothing lost, but they run again from the start"},
		}},
		{name: "overlap", res: func() drain.Result {
			ps := procs(sidekiq.StateGone, sidekiq.StateGone, "")
			ps[0].QuietAt, ps[0].IdleAt, ps[0].ReleasedAt, ps[0].ExitedAt = at(20), at(31), at(31), at(36)
			ps[1].QuietAt, ps[1].IdleAt, ps[1].ReleasedAt, ps[1].ExitedAt = at(24), at(52), at(52), at(57)
			done := jobs(drain.JobFinished, drain.JobFinished, drain.JobFinished)
			s := service(true, &drain.RolloutOutcome{Result: drain.RolloutSucceeded, Polls: 30},
				poll(20, "IN_PROGRESS", 1, 2, "(service worker) has started 2 tasks: (task 9c8b) (task 7d6e)."),
				poll(60, "COMPLETED", 2, 1, "(service worker) has reached a steady state."))
			s.OldTasksStopped = []ecs.Task{clean}
			return drain.Result{Command: "deploy", Outcome: drain.OutcomeSucceeded, StartedAt: t0, EndedAt: at(70), Settings: settings(),
				Strategy: drain.Strategy{Name: drain.StrategyOverlap, Requested: drain.StrategyAuto,
					Reason: "protect the old tasks from scale-in, deploy, quiet one old process per new worker that heartbeats, release each old task once idle: prod/worker: 2 new task(s) start at once beside 2 protected old one(s) (desired 2, maximumPercent 200)"},
				Phases:    phases("preflight", 0.0, 0.4, "lock", 0.4, 0.5, "protect", 0.5, 0.6, "deploy", 0.6, 0.8, "handover", 0.8, 60.0, "exits", 60.0, 65.0),
				Processes: ps, JobList: done, Jobs: counts(done), Services: []drain.ServiceResult{s}, Lock: lock,
				Metrics: drain.Metrics{LongestQueueWait: 3 * time.Second, Samples: 30},
				Protection: []drain.ProtectionRecord{
					{TaskARN: arn1, Service: "prod/worker", ProtectedAt: at(0.5), ExpiresAt: at(0.5).Add(28 * time.Minute), ReleasedAt: at(31), Note: "idle: its processes were quiet with nothing in flight"},
					{TaskARN: arn2, Service: "prod/worker", ProtectedAt: at(0.5), ExpiresAt: at(0.5).Add(28 * time.Minute), ReleasedAt: at(52), Note: "idle: its processes were quiet with nothing in flight"},
				},
				APICalls: calls(map[string]int{"redis.Lock": 1, "ecs.ProtectTasks": 1, "ecs.UnprotectTasks": 2, "ecs.Deploy": 1, "redis.Quiet": 2, "redis.Poll": 30, "redis.LockRelease": 1}),
			}
		}()},
		{name: "pause_hook", res: func() drain.Result {
			ps := procs(sidekiq.StateGone, sidekiq.StateGone, "")
			ps[0].QuietAt, ps[0].IdleAt, ps[0].ExitedAt = at(20), at(25), at(40)
			ps[1].QuietAt, ps[1].IdleAt, ps[1].ExitedAt = at(20), at(33), at(40)
			done := jobs(drain.JobFinished, drain.JobFinished, drain.JobFinished)
			s := service(true, &drain.RolloutOutcome{Result: drain.RolloutSucceeded, Polls: 20},
				drain.RolloutPoll{At: at(20), DeploymentID: "ecs-svc/8374650192837465", RolloutState: "IN_PROGRESS", Desired: 2, Running: 2, Deployments: 2,
					Status: "IN_PROGRESS", LifecycleStage: "POST_SCALE_UP"},
				drain.RolloutPoll{At: at(40), DeploymentID: "ecs-svc/8374650192837465", RolloutState: "COMPLETED", Desired: 2, Running: 2, Deployments: 1,
					Status: "SUCCESSFUL", LifecycleStage: "CLEAN_UP"})
			s.State.Strategy = ecs.DeploymentStrategy{Name: "BLUE_GREEN", BakeTime: 5 * time.Minute,
				Hooks: []ecs.LifecycleHook{{Type: "PAUSE", Stages: []string{"POST_SCALE_UP"}, Timeout: 30 * time.Minute, TimeoutAction: "ROLLBACK"}}}
			s.OldTasksStopped = []ecs.Task{clean}
			return drain.Result{Command: "deploy", Outcome: drain.OutcomeSucceeded, StartedAt: t0, EndedAt: at(45), Settings: settings(),
				Strategy: drain.Strategy{Name: drain.StrategyPauseHook, Requested: drain.StrategyAuto,
					Reason: "BLUE_GREEN with a PAUSE hook at POST_SCALE_UP: once green heartbeats, quiet blue and wait for its jobs, then CONTINUE; CLEAN_UP stops idle blue tasks"},
				Phases:    phases("preflight", 0.0, 0.4, "lock", 0.4, 0.5, "deploy", 0.5, 0.7, "hook", 0.7, 40.0, "exits", 40.0, 41.0),
				Processes: ps, JobList: done, Jobs: counts(done), Services: []drain.ServiceResult{s}, Lock: lock,
				Metrics:  drain.Metrics{LongestQueueWait: 2 * time.Second, Samples: 20},
				APICalls: calls(map[string]int{"redis.Lock": 1, "ecs.Deploy": 1, "ecs.ContinueDeployment": 1, "ecs.ServiceDeployment": 19, "ecs.ServiceDeploymentOf": 1, "redis.Quiet": 1, "redis.Poll": 20, "redis.LockRelease": 1}),
			}
		}()},
		{name: "rolled_back", res: drain.Result{
			Outcome: drain.OutcomeRolledBack, StartedAt: t0, EndedAt: at(200), Settings: settings(),
			Phases:    phases("preflight", 0.0, 0.4, "lock", 0.4, 0.5, "quiet", 0.5, 12.0, "drain", 12.0, 30.0, "deploy", 30.0, 30.2, "rollout", 30.2, 195.0, "recover", 195.0, 200.0),
			Processes: procs(sidekiq.StateDrained, sidekiq.StateDrained, ""),
			JobList:   rolled, Jobs: counts(rolled),
			Services: []drain.ServiceResult{func() drain.ServiceResult {
				s := service(true, &drain.RolloutOutcome{Result: drain.RolloutRolledBack, Reason: "ECS deployment circuit breaker: tasks failed to start.", Polls: 4},
					poll(40, "IN_PROGRESS", 0, 2, "(service worker) has started 2 tasks: (task 9c8b) (task 7d6e)."),
					poll(120, "IN_PROGRESS", 0, 2, "(service worker) deployment ecs-svc/8374650192837465 deployment failed: tasks failed to start."),
					poll(195, "FAILED", 0, 2, "(service worker) rolling back to deployment ecs-svc/1111111111111111."))
				s.ReplacedTasks = []string{arn1, arn2}
				return s
			}()},
			Lock:     lock,
			APICalls: calls(map[string]int{"redis.Lock": 1, "redis.Quiet": 1, "ecs.Deploy": 1, "ecs.StopTasks": 1}),
			Warnings: []string{"prod/worker: stopped 2 task(s) kept by the failed rollout whose processes were quiet; the service starts fresh ones"},
			Error:    "rollout failed: prod/worker deployment ecs-svc/8374650192837465 rolled_back (ECS deployment circuit breaker: tasks failed to start.)",
		}, err: fmt.Errorf("%w: prod/worker deployment ecs-svc/8374650192837465 rolled_back", drain.ErrRolloutFailed)},
		{name: "drain_timeout_fail", res: drain.Result{
			Outcome: drain.OutcomeDrainTimeout, StartedAt: t0, EndedAt: at(43), Settings: failTimeout,
			Phases:    phases("preflight", 0.0, 0.4, "lock", 0.4, 0.5, "quiet", 0.5, 12.0, "drain", 12.0, 42.0),
			Processes: procs(sidekiq.StateQuiet, sidekiq.StateQuiet, ""),
			JobList:   timeout, Jobs: counts(timeout),
			Services: []drain.ServiceResult{service(false, nil)},
			Lock:     lock,
			Left: &drain.Leftover{QuietProcesses: []string{id1, id2},
				Hint: "2 process(es) stay quiet until restarted: re-run the same command to finish (quiet is idempotent)"},
			APICalls: calls(map[string]int{"redis.Lock": 1, "redis.Quiet": 1, "redis.SnapshotOf": 1}),
			Error:    "drain timed out after 30s: 2 job(s) still running on " + id1 + ", " + id2,
		}, err: drain.ErrDrainTimeout},
		{name: "dry_run_blue_green", res: func() drain.Result {
			svc := service(false, nil)
			svc.State.Strategy = ecs.DeploymentStrategy{Name: "BLUE_GREEN", BakeTime: 2 * time.Minute}
			return drain.Result{Command: "deploy", Outcome: drain.OutcomeDryRun, DryRun: true, StartedAt: t0, EndedAt: at(0.6), Settings: settings(),
				Strategy: drain.Strategy{Name: drain.StrategyBlueGreen, Requested: drain.StrategyAuto,
					Reason: "BLUE_GREEN without a PAUSE hook at POST_SCALE_UP: quiet blue as green heartbeats, during the bake; CLEAN_UP stops blue"},
				Findings: []finding.Finding{{Code: "PF032", Name: "bake-shorter-than-drain", Severity: finding.Warning, Subject: "prod/worker",
					Message: "bake time 2m0s is shorter than the drain budget 10m0s: a job running longer than the bake plus stopTimeout is cut at CLEAN_UP (Sidekiq requeues it, or drainctl rescues it)",
					Fix:     `add to deploymentConfiguration: "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"], "timeoutConfiguration": {"timeoutInMinutes": 15, "action": "ROLLBACK"}}]`}},
				Phases:    phases("preflight", 0.0, 0.6),
				Processes: procs(sidekiq.StateRunning, sidekiq.StateRunning, ""),
				JobList:   jobs(drain.JobStillRunning, drain.JobStillRunning, drain.JobStillRunning),
				Jobs:      counts(jobs(drain.JobStillRunning, drain.JobStillRunning, drain.JobStillRunning)),
				Services:  []drain.ServiceResult{svc}, Lock: drain.LockRecord{Name: "deploy:prod/worker"},
				Plan: []string{`would take the deploy lock "deploy:prod/worker" (free now)`,
					"would force a new deployment of worker:7 on prod/worker",
					"would quiet one of the 2 old process(es) (least work first) for each new worker that heartbeats from the new deployment's tasks",
					"blue keeps running through the bake (2m0s); CLEAN_UP then stops it: a job still running after bake + stopTimeout is cut and requeued (3 job(s) in flight now)",
					"may be cut at CLEAN_UP unless it ends within the bake: MailerJob e5fa44f2b31c1fb553b6021e on " + id2 + ", running 1m10s",
					"would watch the rollout for up to 15m0s and the old processes' exits for up to 3m0s"},
				Warnings: []string{"PF032 prod/worker: bake time 2m0s is shorter than the drain budget 10m0s: a job running longer than the bake plus stopTimeout is cut at CLEAN_UP (Sidekiq requeues it, or drainctl rescues it)"},
				APICalls: calls(nil),
			}
		}()},
		{name: "dry_run", res: drain.Result{
			Outcome: drain.OutcomeDryRun, DryRun: true, StartedAt: t0, EndedAt: at(0.6), Settings: settings(),
			Phases:    phases("preflight", 0.0, 0.6),
			Processes: procs(sidekiq.StateRunning, sidekiq.StateRunning, ""),
			Unplaced:  []string{"ip-10-0-9-9:3:ffffffffffff"},
			Queues: []sidekiq.QueueStat{{Name: "default", Size: 1250, Latency: 42 * time.Second},
				{Name: "mailers", Size: 3, Latency: 800 * time.Millisecond}},
			JobList: dry, Jobs: counts(dry),
			Services: []drain.ServiceResult{service(false, nil)},
			Lock:     drain.LockRecord{Name: "deploy:prod/worker"},
			Plan: []string{`would take the deploy lock "deploy:prod/worker" (free now)`,
				"would quiet 2 process(es): " + id1 + ", " + id2,
				"would wait up to 10m0s for 3 in-flight job(s), then deploy anyway (ECS's SIGTERM lets Sidekiq requeue what is left)",
				"would force a new deployment of worker:7 on prod/worker",
				"would watch the rollout for up to 15m0s and the old processes' exits for up to 3m0s",
				"would rescue the jobs of killed processes, once each"},
			APICalls: calls(nil),
		}},
		{name: "interrupted", res: drain.Result{
			Outcome: drain.OutcomeInterrupted, StartedAt: t0, EndedAt: at(60), Settings: settings(),
			Phases: func() []drain.PhaseRecord {
				ps := phases("preflight", 0.0, 0.4, "lock", 0.4, 0.5, "quiet", 0.5, 12.0, "drain", 12.0, 30.0, "deploy", 30.0, 30.2, "rollout", 30.2, 59.5)
				ps[5].Error = "watch the rollout of prod/worker (deployment ecs-svc/8374650192837465): context canceled"
				return ps
			}(),
			Processes: procs(sidekiq.StateQuiet, sidekiq.StateDrained, ""),
			JobList:   intr, Jobs: counts(intr),
			Services: []drain.ServiceResult{service(true, nil, poll(40, "IN_PROGRESS", 1, 2))},
			Lock:     lock,
			Left: &drain.Leftover{QuietProcesses: []string{id1, id2}, DeploymentStarted: true,
				DeploymentIDs: map[string]string{"prod/worker": "ecs-svc/8374650192837465"},
				Hint:          "the deployment continues without drainctl; watch it with: aws ecs describe-services --cluster prod --services worker (deployment ecs-svc/8374650192837465)"},
			APICalls: calls(map[string]int{"redis.Lock": 1, "redis.Quiet": 1, "ecs.Deploy": 1, "redis.SnapshotOf": 1}),
			Error:    "interrupted during rollout: context canceled",
		}, err: fmt.Errorf("%w during rollout: %w", drain.ErrInterrupted, errors.New("context canceled"))},
	}
}

// resultNamed is the golden run of that name.
func resultNamed(name string) struct {
	name string
	res  drain.Result
	err  error
} {
	for _, r := range results() {
		if r.name == name {
			return r
		}
	}
	panic("no result " + name)
}

// withExit sets the exit code as drain.Runner does.
func withExit(res drain.Result, err error) drain.Result {
	res.ExitCode = int(drain.ExitCode(err))
	if res.Strategy.Name == "" {
		res.Command = "deploy"
		res.Strategy = drain.Strategy{Name: drain.StrategyDrainFirst, Reason: "quiet every selected process and wait for its jobs before the deployment starts"}
	}
	return res
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden %s: %v (run go test ./internal/report -update)", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from its golden file (go test ./internal/report -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range results() {
		t.Run(tc.name, func(t *testing.T) {
			rep := FromResult(withExit(tc.res, tc.err), Options{Version: "v0.1.0-test"})
			var txt, js, md bytes.Buffer
			if err := WriteText(&txt, rep, Options{}); err != nil {
				t.Fatal(err)
			}
			if err := WriteJSON(&js, rep); err != nil {
				t.Fatal(err)
			}
			if err := WriteMarkdown(&md, rep); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".txt", txt.Bytes())
			golden(t, tc.name+".json", js.Bytes())
			golden(t, tc.name+".md", md.Bytes())
		})
	}
}

// TestStoppedTasksMerged: the report lists our deployment's stopped tasks and the old tasks
// that stopped during the run, each once.
func TestStoppedTasksMerged(t *testing.T) {
	fresh := ecs.Task{ARN: "arn:aws:ecs:us-east-1:1:task/prod/fresh", ID: "fresh", StopCode: "TaskFailedToStart"}
	old := ecs.Task{ARN: "arn:aws:ecs:us-east-1:1:task/prod/old", ID: "old", StopCode: "ServiceSchedulerInitiated"}
	res := drain.Result{Outcome: drain.OutcomeSucceeded, StartedAt: t0, EndedAt: t0, Services: []drain.ServiceResult{{
		Ref:             ecs.ServiceRef{Cluster: "prod", Service: "worker"},
		Outcome:         &drain.RolloutOutcome{Result: drain.RolloutSucceeded, StoppedTasks: []ecs.Task{fresh, old}},
		OldTasksStopped: []ecs.Task{old},
	}}}
	r := FromResult(res, Options{})
	var ids []string
	for _, st := range r.Services[0].StoppedTasks {
		ids = append(ids, st.ID)
	}
	if !slices.Equal(ids, []string{"fresh", "old"}) {
		t.Errorf("stopped tasks = %v, want [fresh old]", ids)
	}
}

func TestOutcomeAndExitCodes(t *testing.T) {
	want := map[string]struct {
		outcome string
		code    int
	}{
		"success_rescued":    {"succeeded", 0},
		"rolled_back":        {"rolled_back", 4},
		"drain_timeout_fail": {"drain_timeout", 3},
		"dry_run":            {"dry_run", 0},
		"interrupted":        {"interrupted", 130},
		"overlap":            {"succeeded", 0},
		"pause_hook":         {"succeeded", 0},
		"dry_run_blue_green": {"dry_run", 0},
	}
	for _, tc := range results() {
		rep := FromResult(withExit(tc.res, tc.err), Options{})
		if w := want[tc.name]; rep.Outcome != w.outcome || rep.ExitCode != w.code {
			t.Errorf("%s: outcome %s exit %d, want %s %d", tc.name, rep.Outcome, rep.ExitCode, w.outcome, w.code)
		}
		if rep.Schema != Schema || rep.DocKind != "deploy" {
			t.Errorf("schema, kind = %q, %q; want %q, deploy", rep.Schema, rep.DocKind, Schema)
		}
	}
}

func TestNoPasswordAnywhere(t *testing.T) {
	const pw = "s3cr3t-Pa55"
	res := resultNamed("rolled_back").res
	res.Settings.RedisURL = "rediss://default:" + pw + "@redis.internal:6380/2?password=" + pw
	res.Error = "read the sidekiq fleet: dial redis://:" + pw + "@10.0.0.5:6379/0: connection refused"
	res.Warnings = append(res.Warnings, "poll sidekiq processes: redis://user:"+pw+"@host:1/0 timeout")
	res.Phases[0].Error = "redis://:" + pw + "@h:1"
	res.Left = &drain.Leftover{Hint: "redis+sentinel://:" + pw + "@s1:26379/mymaster"}
	rep := FromResult(res, Options{})
	var all bytes.Buffer
	_ = WriteText(&all, rep, Options{Color: true})
	_ = WriteJSON(&all, rep)
	_ = WriteMarkdown(&all, rep)
	_ = WriteAnnotations(&all, func(k string) string { return map[string]string{"GITHUB_ACTIONS": "true"}[k] }, rep)
	p := NewProgress(&all, ProgressOptions{})
	for _, w := range res.Warnings {
		p.Warning(w)
	}
	if strings.Contains(all.String(), pw) {
		t.Fatalf("the password leaked into a rendering:\n%s", all.String())
	}
	if !strings.Contains(all.String(), "rediss://default:xxxxx@redis.internal:6380/2") {
		t.Errorf("the redacted URL is missing:\n%s", rep.Settings.RedisURL)
	}
}

func TestArgsHiddenUnlessShowArgs(t *testing.T) {
	res := results()[0].res
	for _, show := range []bool{false, true} {
		rep := FromResult(res, Options{ShowArgs: show})
		var all bytes.Buffer
		_ = WriteJSON(&all, rep)
		_ = WriteText(&all, rep, Options{})
		_ = WriteMarkdown(&all, rep)
		got := strings.Contains(all.String(), "user@example.com")
		if got != show {
			t.Errorf("ShowArgs=%v: args present = %v", show, got)
		}
	}
}

func TestTextColorOnlyWhenAsked(t *testing.T) {
	rep := FromResult(results()[0].res, Options{})
	for _, color := range []bool{false, true} {
		var b bytes.Buffer
		_ = WriteText(&b, rep, Options{Color: color})
		if got := strings.Contains(b.String(), "\x1b["); got != color {
			t.Errorf("Color=%v: ANSI codes present = %v", color, got)
		}
	}
}

func TestJSONSchemaFields(t *testing.T) {
	rep := FromResult(results()[0].res, Options{})
	var b bytes.Buffer
	if err := WriteJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"schema", "outcome", "exit_code", "jobs", "processes", "services", "phases", "api_calls", "warnings", "lock", "left", "plan"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	jobs := doc["jobs"].(map[string]any)
	for _, k := range []string{"finished", "requeued", "rescued", "still_running", "lost"} {
		if _, ok := jobs[k]; !ok {
			t.Errorf("jobs lacks %q", k)
		}
	}
	svc := doc["services"].([]any)[0].(map[string]any)
	for _, k := range []string{"deployment_id", "previous_task_definition", "task_definition", "timeline", "events", "stopped_tasks"} {
		if _, ok := svc[k]; !ok {
			t.Errorf("service lacks %q", k)
		}
	}
}

func TestAnnotations(t *testing.T) {
	rep := FromResult(withExit(resultNamed("rolled_back").res, resultNamed("rolled_back").err), Options{})
	rep.Warnings = append(rep.Warnings, "100% done\nnext line")
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{name: "not on actions", env: map[string]string{}, want: nil},
		{name: "on actions", env: map[string]string{"GITHUB_ACTIONS": "true"}, want: []string{
			"::error title=drainctl deploy::drainctl deploy: rollout rolled back (exit 4): rollout failed: prod/worker deployment ecs-svc/8374650192837465 rolled_back (ECS deployment circuit breaker: tasks failed to start.)",
			"::warning title=drainctl deploy::prod/worker: stopped 2 task(s) kept by the failed rollout whose processes were quiet; the service starts fresh ones",
			"::warning title=drainctl deploy::100%25 done%0Anext line",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteAnnotations(&b, func(k string) string { return tt.env[k] }, rep); err != nil {
				t.Fatal(err)
			}
			var got []string
			if s := strings.TrimSuffix(b.String(), "\n"); s != "" {
				got = strings.Split(s, "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("annotations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestAppendStepSummary(t *testing.T) {
	rep := FromResult(results()[0].res, Options{})
	if err := AppendStepSummary(func(string) string { return "" }, rep); err != nil {
		t.Fatalf("unset GITHUB_STEP_SUMMARY: %v", err)
	}
	path := filepath.Join(t.TempDir(), "summary.md")
	if err := os.WriteFile(path, []byte("# earlier step\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if k == StepSummaryEnv {
			return path
		}
		return ""
	}
	if err := AppendStepSummary(env, rep); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "# earlier step\n### ✅") && !strings.HasPrefix(string(b), "# earlier step\n### ⚠️") {
		t.Errorf("summary does not keep the earlier content then append the report:\n%s", b)
	}
	if !strings.Contains(string(b), "```mermaid\ngantt") {
		t.Errorf("summary lacks the gantt chart")
	}
}

func TestProgressPlainLines(t *testing.T) {
	var b bytes.Buffer
	p := NewProgress(&b, ProgressOptions{TTY: false})
	ref := ecs.ServiceRef{Cluster: "prod", Service: "worker"}
	long := []drain.RunningJob{{JID: "j2", Class: "LongJob", Process: id1, Running: 95 * time.Second}}
	p.PhaseStarted(drain.PhaseDrain, t0)
	p.DrainProgress(drain.DrainProgress{Phase: drain.PhaseDrain, Total: 3, Remaining: 2, Processes: map[sidekiq.State]int{sidekiq.StateQuiet: 2}, Longest: long})
	p.DrainProgress(drain.DrainProgress{Phase: drain.PhaseDrain, Total: 3, Remaining: 2, Processes: map[sidekiq.State]int{sidekiq.StateQuiet: 2}, Longest: long}) // no change: no line
	longer := []drain.RunningJob{{JID: "j2", Class: "LongJob", Process: id1, Running: 97 * time.Second}}
	p.DrainProgress(drain.DrainProgress{Phase: drain.PhaseDrain, Total: 3, Remaining: 2, Processes: map[sidekiq.State]int{sidekiq.StateQuiet: 2}, Longest: longer}) // the same job, only older: no line
	p.DrainProgress(drain.DrainProgress{Phase: drain.PhaseDrain, Total: 3, Remaining: 0, Processes: map[sidekiq.State]int{sidekiq.StateDrained: 2}})
	p.PhaseEnded(drain.PhaseDrain, t0.Add(33*time.Second), nil)
	p.RolloutPoll(drain.RolloutPoll{Ref: ref, DeploymentID: "ecs-svc/1", RolloutState: "IN_PROGRESS", Desired: 2, Running: 1, Pending: 1, Deployments: 2,
		Events: []ecs.Event{{At: t0, Message: "(service worker) has started 2 tasks."}}})
	p.RolloutPoll(drain.RolloutPoll{Ref: ref, DeploymentID: "ecs-svc/1", RolloutState: "IN_PROGRESS", Desired: 2, Running: 1, Pending: 1, Deployments: 2})
	p.Warning("something odd")
	want := `drainctl: drain ...
drainctl: drain: 2 of 3 job(s) still running; processes quiet 2; longest LongJob j2 on ip-10-0-1-11:7:a1b2c3d4e5f6 for 1m35s
drainctl: drain: 0 of 3 job(s) still running; processes drained 2
drainctl: drain done in 33s
drainctl: prod/worker event: (service worker) has started 2 tasks.
drainctl: rollout prod/worker ecs-svc/1: 1/2 running, 1 pending, IN_PROGRESS, 2 deployment(s)
drainctl: warning: something odd
`
	if b.String() != want {
		t.Errorf("plain progress:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestProgressBarsOnTTYOnly(t *testing.T) {
	tests := []struct {
		name     string
		opt      ProgressOptions
		wantBars bool
	}{
		{name: "tty", opt: ProgressOptions{TTY: true}, wantBars: true},
		{name: "tty with json output", opt: ProgressOptions{TTY: true, JSONOutput: true}},
		{name: "not a tty", opt: ProgressOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			p := NewProgress(&b, tt.opt)
			p.PhaseStarted(drain.PhaseDrain, t0)
			p.DrainProgress(drain.DrainProgress{Phase: drain.PhaseDrain, Total: 4, Remaining: 3, Processes: map[sidekiq.State]int{sidekiq.StateQuiet: 1}})
			p.DrainProgress(drain.DrainProgress{Phase: drain.PhaseDrain, Total: 4, Remaining: 1, Processes: map[sidekiq.State]int{sidekiq.StateQuiet: 1}})
			p.PhaseEnded(drain.PhaseDrain, t0.Add(time.Second), nil)
			out := b.String()
			// A bar redraws with carriage returns and shows the count; lines never do.
			gotBars := strings.Contains(out, "\r") && strings.Contains(out, "/4")
			if gotBars != tt.wantBars {
				t.Errorf("bars drawn = %v, want %v; output %q", gotBars, tt.wantBars, out)
			}
			if !strings.Contains(out, "drain done in 1s") {
				t.Errorf("phase end line missing: %q", out)
			}
		})
	}
}

// Keep the sidekiq import honest: lock owners in a Result come from sidekiq.
func TestLockHolderInReport(t *testing.T) {
	res := drain.Result{Outcome: drain.OutcomeFailed, StartedAt: t0, EndedAt: t0,
		Lock: drain.LockRecord{Name: "deploy:prod/worker", Holder: &sidekiq.LockOwner{Owner: "ci-41", Host: "runner-2", PID: 9, StartedAt: t0, Token: "secret-token"}}}
	rep := FromResult(withExit(res, &drain.LockedError{Name: "deploy:prod/worker", Holder: *res.Lock.Holder}), Options{})
	if rep.ExitCode != 6 || rep.Lock.Holder == nil || rep.Lock.Holder.Owner != "ci-41" {
		t.Fatalf("report = exit %d holder %+v, want 6 and ci-41", rep.ExitCode, rep.Lock.Holder)
	}
	var b bytes.Buffer
	_ = WriteJSON(&b, rep)
	_ = WriteText(&b, rep, Options{})
	if strings.Contains(b.String(), "secret-token") {
		t.Errorf("the lock token leaked into the report")
	}
	if !strings.Contains(b.String(), "held by ci-41 on runner-2") {
		t.Errorf("text does not name the holder:\n%s", b.String())
	}
}

// TestProgressQuietAndEmptyLines pins the quiet phase's lines, which lead with the processes
// still to acknowledge, and the line for no job seen, which never says "0 of 0".
func TestProgressQuietAndEmptyLines(t *testing.T) {
	long := []drain.RunningJob{{JID: "j2", Class: "LongJob", Process: id1, Running: 95 * time.Second}}
	tests := []struct {
		name string
		dp   drain.DrainProgress
		want string
	}{
		{
			name: "first quiet poll: nothing acknowledged, no work in the heartbeats yet",
			dp:   drain.DrainProgress{Phase: drain.PhaseQuiet, Processes: map[sidekiq.State]int{sidekiq.StateRunning: 3}},
			want: "drainctl: quiet: waiting for 3 of 3 process(es) to acknowledge; processes running 3; no job in flight seen yet\n",
		},
		{
			name: "quiet with jobs, partly acknowledged",
			dp: drain.DrainProgress{Phase: drain.PhaseQuiet, Total: 4, Remaining: 4, Longest: long,
				Processes: map[sidekiq.State]int{sidekiq.StateRunning: 1, sidekiq.StateQuiet: 2}},
			want: "drainctl: quiet: waiting for 1 of 3 process(es) to acknowledge; processes running 1, quiet 2; 4 of 4 job(s) still running; longest LongJob j2 on ip-10-0-1-11:7:a1b2c3d4e5f6 for 1m35s\n",
		},
		{
			name: "quiet acknowledged by all (a dead one waits for nothing)",
			dp:   drain.DrainProgress{Phase: drain.PhaseQuiet, Total: 1, Remaining: 1, Processes: map[sidekiq.State]int{sidekiq.StateQuiet: 2, sidekiq.StateDead: 1}},
			want: "drainctl: quiet: none of 3 process(es) left to acknowledge; processes quiet 2, dead 1; 1 of 1 job(s) still running\n",
		},
		{
			name: "drain with no job ever seen",
			dp:   drain.DrainProgress{Phase: drain.PhaseDrain, Processes: map[sidekiq.State]int{sidekiq.StateDrained: 2}},
			want: "drainctl: drain: no job in flight seen yet; processes drained 2\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			NewProgress(&b, ProgressOptions{}).DrainProgress(tt.dp)
			if b.String() != tt.want {
				t.Errorf("line:\n%q\nwant:\n%q", b.String(), tt.want)
			}
		})
	}
}

// TestProgressQuietBarCountsProcesses: on a terminal the quiet bar counts acknowledged
// processes, not jobs (of which none may be known yet).
func TestProgressQuietBarCountsProcesses(t *testing.T) {
	var b bytes.Buffer
	p := NewProgress(&b, ProgressOptions{TTY: true})
	p.DrainProgress(drain.DrainProgress{Phase: drain.PhaseQuiet, Processes: map[sidekiq.State]int{sidekiq.StateRunning: 3}})
	p.DrainProgress(drain.DrainProgress{Phase: drain.PhaseQuiet, Processes: map[sidekiq.State]int{sidekiq.StateRunning: 1, sidekiq.StateQuiet: 2}})
	out := b.String()
	if !strings.Contains(out, "3 process(es) to acknowledge") || !strings.Contains(out, "/3") {
		t.Errorf("quiet bar does not count processes: %q", out)
	}
	if strings.Contains(out, "/1") {
		t.Errorf("quiet bar is sized by jobs: %q", out)
	}
}
