package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/redis/go-redis/v9"

	"github.com/drainctl/drainctl/internal/testenv"
)

// pollEvery is how often the Wait helpers look again.
const pollEvery = 100 * time.Millisecond

// Enqueue pushes n SleepJob jobs of the given seconds onto the default queue, as Sidekiq's
// client does, and returns their jids in order.
func (s *Stack) Enqueue(ctx context.Context, n int, seconds float64) ([]string, error) {
	jids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		jid, err := testenv.Enqueue(ctx, s.RDB, "", "default", "SleepJob", seconds, fmt.Sprintf("job-%d", i))
		if err != nil {
			return jids, fmt.Errorf("enqueue job %d of %d: %w", i+1, n, err)
		}
		jids = append(jids, jid)
	}
	return jids, nil
}

// EnqueueRerun pushes n RerunJob jobs that sleep first seconds on their first run and again
// seconds on any later run (after a requeue or a rescue), and returns their jids in order.
func (s *Stack) EnqueueRerun(ctx context.Context, n int, first, again float64) ([]string, error) {
	jids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		jid, err := testenv.Enqueue(ctx, s.RDB, "", "default", "RerunJob", first, again, fmt.Sprintf("job-%d", i))
		if err != nil {
			return jids, fmt.Errorf("enqueue job %d of %d: %w", i+1, n, err)
		}
		jids = append(jids, jid)
	}
	return jids, nil
}

// EnqueueRerunLong pushes one RerunJob that sleeps first seconds on each of its first
// longRuns runs and again seconds after: a job that can be orphaned more than once.
func (s *Stack) EnqueueRerunLong(ctx context.Context, first, again float64, longRuns int) (string, error) {
	jid, err := testenv.Enqueue(ctx, s.RDB, "", "default", "RerunJob", first, again, "long", longRuns)
	if err != nil {
		return "", fmt.Errorf("enqueue a long job: %w", err)
	}
	return jid, nil
}

// Runs returns how many times the RerunJob jid has started.
func (s *Stack) Runs(ctx context.Context, jid string) (int, error) {
	n, err := s.RDB.Get(ctx, "drainctl:test:runs:"+jid).Int()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("read runs of %s: %w", jid, err)
	}
	return n, nil
}

// DoneCounts returns how many times each jid finished (the job file's done list).
func (s *Stack) DoneCounts(ctx context.Context) (map[string]int, error) {
	m, err := testenv.DoneCounts(ctx, s.RDB)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", testenv.DoneList, err)
	}
	return m, nil
}

// StartedCounts returns how many times each jid started (the job file's started list).
func (s *Stack) StartedCounts(ctx context.Context) (map[string]int, error) {
	ids, err := s.RDB.LRange(ctx, testenv.StartedList, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", testenv.StartedList, err)
	}
	m := make(map[string]int, len(ids))
	for _, id := range ids {
		m[id]++
	}
	return m, nil
}

// Lost returns the jids that have not finished even once. Only once nothing can run them any
// more (the queue is empty and the processes that held them are gone) are they lost for good.
func (s *Stack) Lost(ctx context.Context, jids []string) ([]string, error) {
	done, err := s.DoneCounts(ctx)
	if err != nil {
		return nil, err
	}
	var lost []string
	for _, j := range jids {
		if done[j] == 0 {
			lost = append(lost, j)
		}
	}
	return lost, nil
}

// Settle waits until every RerunJob jid is done or lost for good — not done, in no queue, and
// every task that ran it has stopped, so nothing can finish it any more — and returns the
// lost ones. Jobs fetched but not yet started keep it waiting, until ctx ends.
func (s *Stack) Settle(ctx context.Context, jids []string) ([]string, error) {
	var lost []string
	err := s.poll(ctx, func() (bool, string, error) {
		lost = lost[:0]
		done, err := s.DoneCounts(ctx)
		if err != nil {
			return false, "", err
		}
		raw, err := s.RDB.LRange(ctx, "queue:default", 0, -1).Result()
		if err != nil {
			return false, "", fmt.Errorf("read queue:default: %w", err)
		}
		queued := map[string]bool{}
		for _, r := range raw {
			var job struct {
				JID string `json:"jid"`
			}
			if json.Unmarshal([]byte(r), &job) == nil {
				queued[job.JID] = true
			}
		}
		stopped := map[string]bool{}
		for _, t := range s.Tasks() {
			stopped[t.Hostname] = t.LastStatus == "STOPPED"
		}
		pending := 0
		for _, j := range jids {
			if done[j] > 0 {
				continue
			}
			hosts, err := s.RDB.LRange(ctx, "drainctl:test:hosts:"+j, 0, -1).Result()
			if err != nil {
				return false, "", fmt.Errorf("read hosts of %s: %w", j, err)
			}
			dead := len(hosts) > 0 && !queued[j]
			for _, h := range hosts {
				dead = dead && stopped[h]
			}
			if dead {
				lost = append(lost, j)
			} else {
				pending++
			}
		}
		return pending == 0, fmt.Sprintf("%d of %d jobs neither done nor lost", pending, len(jids)), nil
	})
	return lost, err
}

// WaitAllDone waits until every jid has finished at least once.
func (s *Stack) WaitAllDone(ctx context.Context, jids []string) error {
	return s.poll(ctx, func() (bool, string, error) {
		lost, err := s.Lost(ctx, jids)
		return len(lost) == 0, fmt.Sprintf("%d of %d jobs not done", len(lost), len(jids)), err
	})
}

// WaitStarted waits until every jid has started at least once.
func (s *Stack) WaitStarted(ctx context.Context, jids []string) error {
	return s.poll(ctx, func() (bool, string, error) {
		started, err := s.StartedCounts(ctx)
		n := 0
		for _, j := range jids {
			if started[j] > 0 {
				n++
			}
		}
		return n == len(jids), fmt.Sprintf("%d of %d jobs started", n, len(jids)), err
	})
}

// QueueSize is the length of the default queue.
func (s *Stack) QueueSize(ctx context.Context) (int64, error) {
	n, err := s.RDB.LLen(ctx, "queue:default").Result()
	if err != nil {
		return 0, fmt.Errorf("read queue:default: %w", err)
	}
	return n, nil
}

// Process is one Sidekiq process as its heartbeat shows it.
type Process struct {
	Identity string
	Quiet    bool // acknowledged a quiet signal
	Signals  int  // signals sent and not yet read by the process
	Busy     string
}

// Processes lists the processes registered in Redis (the "processes" set) with their quiet
// state and pending signals.
func (s *Stack) Processes(ctx context.Context) ([]Process, error) {
	ids, err := s.RDB.SMembers(ctx, "processes").Result()
	if err != nil {
		return nil, fmt.Errorf("read processes: %w", err)
	}
	out := make([]Process, 0, len(ids))
	for _, id := range ids {
		vals, err := s.RDB.HMGet(ctx, id, "quiet", "busy").Result()
		if err != nil {
			return nil, fmt.Errorf("read process %s: %w", id, err)
		}
		n, err := s.RDB.LLen(ctx, id+"-signals").Result()
		if err != nil {
			return nil, fmt.Errorf("read signals of %s: %w", id, err)
		}
		p := Process{Identity: id, Signals: int(n)}
		if q, ok := vals[0].(string); ok {
			p.Quiet = q == "true"
		}
		if b, ok := vals[1].(string); ok {
			p.Busy = b
		}
		out = append(out, p)
	}
	return out, nil
}

// Touched lists the processes that are quiet or have a signal waiting: after a run that must
// change nothing, it is empty.
func (s *Stack) Touched(ctx context.Context) ([]string, error) {
	ps, err := s.Processes(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range ps {
		if p.Quiet || p.Signals > 0 {
			out = append(out, p.Identity)
		}
	}
	return out, nil
}

// WaitRegistered waits until n processes running in RUNNING tasks of the service have a
// heartbeat in Redis, and returns their identities.
func (s *Stack) WaitRegistered(ctx context.Context, n int) ([]string, error) {
	var got []string
	err := s.poll(ctx, func() (bool, string, error) {
		var err error
		got, err = s.TaskProcesses(ctx)
		return len(got) >= n, fmt.Sprintf("%d of %d Sidekiq processes registered", len(got), n), err
	})
	if err != nil {
		for _, t := range s.Tasks() {
			if log := s.TaskLog(t.ID); log != "" {
				err = fmt.Errorf("%w; task %s log: %s", err, t.ID, tail(log, 1500))
				break
			}
		}
	}
	return got, err
}

// TaskProcesses lists the identities of registered processes that run in RUNNING tasks.
func (s *Stack) TaskProcesses(ctx context.Context) ([]string, error) {
	ids, err := s.RDB.SMembers(ctx, "processes").Result()
	if err != nil {
		return nil, fmt.Errorf("read processes: %w", err)
	}
	var out []string
	for _, t := range s.RunningTasks() {
		for _, id := range ids {
			if strings.HasPrefix(id, t.Hostname+":") {
				out = append(out, id)
			}
		}
	}
	return out, nil
}

// WaitBusy waits until the heartbeats of the service's running processes show at least n
// jobs in flight in total (Sidekiq writes its work to Redis with each heartbeat, every 5 s).
func (s *Stack) WaitBusy(ctx context.Context, n int) error {
	return s.poll(ctx, func() (bool, string, error) {
		ids, err := s.TaskProcesses(ctx)
		if err != nil {
			return false, "", err
		}
		busy := 0
		for _, id := range ids {
			b, err := s.RDB.HGet(ctx, id, "busy").Int()
			if err != nil && !errors.Is(err, redis.Nil) {
				return false, "", fmt.Errorf("read busy of %s: %w", id, err)
			}
			busy += b
		}
		return busy >= n, fmt.Sprintf("%d of %d jobs busy in heartbeats", busy, n), nil
	})
}

// WaitQuiet waits until every process in ids has acknowledged quiet.
func (s *Stack) WaitQuiet(ctx context.Context, ids []string) error {
	return s.poll(ctx, func() (bool, string, error) {
		ps, err := s.Processes(ctx)
		quiet := map[string]bool{}
		for _, p := range ps {
			quiet[p.Identity] = p.Quiet
		}
		n := 0
		for _, id := range ids {
			if quiet[id] {
				n++
			}
		}
		return n == len(ids), fmt.Sprintf("%d of %d processes quiet", n, len(ids)), err
	})
}

// ForceNewDeployment is the naive deploy: UpdateService with forceNewDeployment through the
// SDK, no drain. It returns the new deployment's ID.
func (s *Stack) ForceNewDeployment(ctx context.Context) (string, error) {
	out, err := s.ECS().UpdateService(ctx, &awsecs.UpdateServiceInput{
		Cluster: aws.String(s.Opts.Cluster), Service: aws.String(s.Opts.Service), ForceNewDeployment: true,
	})
	if err != nil {
		return "", fmt.Errorf("update service %q: %w", s.Opts.Service, err)
	}
	for _, d := range out.Service.Deployments {
		if aws.ToString(d.Status) == "PRIMARY" {
			return aws.ToString(d.Id), nil
		}
	}
	return "", fmt.Errorf("update service %q: no PRIMARY deployment in the answer", s.Opts.Service)
}

// WaitSteady waits until the service has a single deployment whose rollout COMPLETED, as a
// service is between deploys (a deploy refuses to start while a rollout is in progress).
func (s *Stack) WaitSteady(ctx context.Context) error {
	return s.WaitRolloutCompleted(ctx, "")
}

// WaitRolloutCompleted waits until deployment id (any when empty) is the service's only deployment and its
// rollout state is COMPLETED.
func (s *Stack) WaitRolloutCompleted(ctx context.Context, id string) error {
	return s.waitCompleted(ctx, s.Opts.Service, id)
}

// waitCompleted waits until service has one deployment, COMPLETED (and with ID id, unless
// id is empty).
func (s *Stack) waitCompleted(ctx context.Context, service, id string) error {
	api := s.ECS()
	return s.poll(ctx, func() (bool, string, error) {
		out, err := api.DescribeServices(ctx, &awsecs.DescribeServicesInput{
			Cluster: aws.String(s.Opts.Cluster), Services: []string{service},
		})
		if err != nil {
			return false, "", fmt.Errorf("describe service %q: %w", service, err)
		}
		if len(out.Services) != 1 {
			return false, "service not found", nil
		}
		deps := out.Services[0].Deployments
		var states []string
		for _, d := range deps {
			states = append(states, aws.ToString(d.Id)+"="+string(d.RolloutState))
		}
		ok := len(deps) == 1 && (id == "" || aws.ToString(deps[0].Id) == id) &&
			deps[0].RolloutState == ecstypes.DeploymentRolloutStateCompleted
		return ok, "deployments " + strings.Join(states, ", "), nil
	})
}

// WaitTasksStopped waits until every task in arns is STOPPED and returns them.
func (s *Stack) WaitTasksStopped(ctx context.Context, arns []string) ([]TaskExit, error) {
	var exits []TaskExit
	err := s.poll(ctx, func() (bool, string, error) {
		want := map[string]bool{}
		for _, a := range arns {
			want[a] = true
		}
		exits = exits[:0]
		for _, t := range s.Tasks() {
			if want[t.ARN] && t.LastStatus == "STOPPED" {
				exits = append(exits, TaskExit{ARN: t.ARN, ID: t.ID, ExitCode: t.ExitCode, StopCode: t.StopCode})
			}
		}
		return len(exits) == len(arns), fmt.Sprintf("%d of %d tasks stopped", len(exits), len(arns)), nil
	})
	return exits, err
}

// TaskExit is how a task ended.
type TaskExit struct {
	ARN, ID, StopCode string
	// ExitCode is the container's exit code (137: SIGKILL); nil when unknown.
	ExitCode *int32
}

// poll calls cond every 100 ms until it holds, it fails, or ctx ends; the error then carries
// cond's last description.
func (s *Stack) poll(ctx context.Context, cond func() (bool, string, error)) error {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		ok, what, err := cond()
		if err != nil && ctx.Err() == nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting: %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
