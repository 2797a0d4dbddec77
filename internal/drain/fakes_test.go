package drain

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/drainctl/drainctl/internal/sidekiq"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)

// fakeClock never sleeps: After advances the time by d and fires at once.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// calls records every call of the fakes, in order, as "name args".
type calls struct {
	mu   sync.Mutex
	list []string
	// hook runs after a call is recorded (e.g. to cancel the run's context at phase k).
	hook func(call string)
}

func (c *calls) add(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.list = append(c.list, s)
	hook := c.hook
	c.mu.Unlock()
	if hook != nil {
		hook(s)
	}
}

func (c *calls) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.list...)
}

// named returns the calls whose name (first word) is name.
func (c *calls) named(name string) []string {
	var out []string
	for _, s := range c.all() {
		if s == name || strings.HasPrefix(s, name+" ") {
			out = append(out, s)
		}
	}
	return out
}

// writes are the calls that change Redis or ECS.
var writeCalls = []string{"Quiet", "Stop", "Rescue", "AcquireLock", "Refresh", "Release", "Deploy", "StopTasks"}

func (c *calls) writes() []string {
	var out []string
	for _, w := range writeCalls {
		out = append(out, c.named(w)...)
	}
	return out
}

// fakeFleet is a scripted Sidekiq fleet.
type fakeFleet struct {
	calls *calls
	clock *fakeClock
	// snapshots are returned by successive Snapshot calls (the last one repeats).
	snapshots []*sidekiq.Snapshot
	// script returns the observations of poll n (0-based) of the watched identities.
	script func(n int, ids []string) []Observation
	// holder is who LockHolder reports; heldOnAcquire makes AcquireLock fail with it.
	holder        *sidekiq.LockOwner
	heldOnAcquire *sidekiq.LockOwner
	tookOver      *sidekiq.LockOwner
	// rescue answers Rescue; nil requeues every job.
	rescue func(jobs []sidekiq.Job) RescueResult
	// quiet is the set of identities Quiet was sent to, for SnapshotOf; gone are those
	// SnapshotOf reports no longer listed (they left).
	quiet, gone map[string]bool

	pingErr error

	nSnap int
}

func (f *fakeFleet) Ping(ctx context.Context) error {
	f.calls.add("Ping")
	return f.pingErr
}

func (f *fakeFleet) QueueStats(ctx context.Context, queues []string) ([]QueueDepth, error) {
	f.calls.add("QueueStats %s", strings.Join(queues, ","))
	out := make([]QueueDepth, len(queues))
	for i, q := range queues {
		out[i] = QueueDepth{Name: q, Size: int64(10 * (i + 1)), Latency: time.Duration(i+1) * time.Second}
	}
	return out, nil
}

func (f *fakeFleet) Snapshot(ctx context.Context) (*sidekiq.Snapshot, error) {
	f.calls.add("Snapshot")
	s := f.snapshots[min(f.nSnap, len(f.snapshots)-1)]
	f.nSnap++
	return s, nil
}

func (f *fakeFleet) SnapshotOf(ctx context.Context, ids []string) (*sidekiq.Snapshot, error) {
	f.calls.add("SnapshotOf %s", strings.Join(ids, ","))
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	snap := &sidekiq.Snapshot{At: f.clock.Now()}
	for _, id := range ids {
		snap.Processes = append(snap.Processes, sidekiq.Process{Identity: id, HashExists: true, Listed: !f.gone[id], Quiet: f.quiet[id]})
	}
	return snap, nil
}

func (f *fakeFleet) Quiet(ctx context.Context, ids []string) error {
	f.calls.add("Quiet %s", strings.Join(ids, ","))
	if f.quiet == nil {
		f.quiet = map[string]bool{}
	}
	for _, id := range ids {
		f.quiet[id] = true
	}
	return nil
}

func (f *fakeFleet) Stop(ctx context.Context, ids []string) error {
	f.calls.add("Stop %s", strings.Join(ids, ","))
	return nil
}

func (f *fakeFleet) Watch(ps []sidekiq.Process) ProcessWatcher {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.Identity
	}
	f.calls.add("Watch %s", strings.Join(ids, ","))
	return &fakeWatcher{f: f, ids: ids, dead: map[string]string{}}
}

func (f *fakeFleet) Rescue(ctx context.Context, jobs []sidekiq.Job) (RescueResult, error) {
	jids := make([]string, len(jobs))
	for i, j := range jobs {
		jids[i] = j.JID
	}
	f.calls.add("Rescue %s", strings.Join(jids, ","))
	if f.rescue != nil {
		return f.rescue(jobs), nil
	}
	return RescueResult{Requeued: jids}, nil
}

func (f *fakeFleet) AcquireLock(ctx context.Context, name string, owner sidekiq.LockOwner, ttl time.Duration) (Lock, error) {
	f.calls.add("AcquireLock %s", name)
	if f.heldOnAcquire != nil {
		return nil, &sidekiq.LockHeldError{Name: name, Holder: *f.heldOnAcquire}
	}
	return &fakeLock{calls: f.calls, tookOver: f.tookOver}, nil
}

func (f *fakeFleet) LockHolder(ctx context.Context, name string) (*sidekiq.LockOwner, error) {
	f.calls.add("LockHolder %s", name)
	return f.holder, nil
}

type fakeLock struct {
	calls    *calls
	tookOver *sidekiq.LockOwner
}

func (l *fakeLock) Refresh(ctx context.Context) error { l.calls.add("Refresh"); return nil }
func (l *fakeLock) Release(ctx context.Context) error {
	l.calls.add("Release")
	return ctx.Err() // a release with a cancelled context would fail for real
}
func (l *fakeLock) TookOver() *sidekiq.LockOwner { return l.tookOver }

// fakeWatcher plays the fleet's script and applies MarkDead evidence.
type fakeWatcher struct {
	f    *fakeFleet
	ids  []string
	n    int
	dead map[string]string
}

func (w *fakeWatcher) Poll(ctx context.Context) ([]Observation, error) {
	w.f.calls.add("Poll %d", w.n)
	obs := append([]Observation(nil), w.f.script(w.n, w.ids)...)
	w.n++
	for i, o := range obs {
		if ev, ok := w.dead[o.Identity]; ok {
			obs[i].State = StateDead
			obs[i].Evidence = ev
		}
	}
	return obs, nil
}

func (w *fakeWatcher) MarkDead(id, evidence string) {
	w.f.calls.add("MarkDead %s", id)
	w.dead[id] = evidence
}

// fakeService is a scripted ECS service.
type fakeService struct {
	calls *calls
	ref   ServiceRef
	state ServiceState
	// running are the RUNNING tasks before the deploy; runningAfter after the rollout.
	running, runningAfter []Task
	stopped               []Task
	outcome               RolloutOutcome
	preflightErr          error
	deployed              bool
	// deploymentID is what Deploy returns; empty means "ecs-svc/2".
	deploymentID string
	// clock and watchTook make Watch take fake time: it advances clock by watchTook, or by
	// opt.Timeout and ends RolloutTimedOut when that is shorter. Zero takes no time.
	clock     *fakeClock
	watchTook time.Duration
	// timeouts records the opt.Timeout of every Watch call.
	timeouts []time.Duration
}

func (s *fakeService) Ref() ServiceRef { return s.ref }

func (s *fakeService) Preflight(ctx context.Context) (ServiceState, error) {
	s.calls.add("Preflight %s", s.ref)
	st := s.state
	st.Ref = s.ref
	return st, s.preflightErr
}

func (s *fakeService) Deploy(ctx context.Context, td string) (Rollout, error) {
	s.calls.add("Deploy %s %s", s.ref, td)
	s.deployed = true
	id := s.deploymentID
	if id == "" {
		id = "ecs-svc/2"
	}
	return Rollout{DeploymentID: id, TaskDefinition: "worker:8", StartedAt: t0}, nil
}

func (s *fakeService) Watch(ctx context.Context, r Rollout, opt WatchOptions) (RolloutOutcome, error) {
	s.calls.add("Watch %s %s", s.ref, r.DeploymentID)
	if ctx.Err() != nil {
		return RolloutOutcome{}, ctx.Err()
	}
	s.timeouts = append(s.timeouts, opt.Timeout)
	timedOut := false
	if s.clock != nil && s.watchTook > 0 {
		d := s.watchTook
		if opt.Timeout > 0 && opt.Timeout <= d {
			d, timedOut = opt.Timeout, true
		}
		<-s.clock.After(d)
	}
	opt.OnPoll(RolloutPoll{At: t0, DeploymentID: r.DeploymentID, RolloutState: "IN_PROGRESS", Desired: 2, Running: 1, Deployments: 2})
	if ctx.Err() != nil {
		return RolloutOutcome{}, ctx.Err()
	}
	opt.OnPoll(RolloutPoll{At: t0, DeploymentID: r.DeploymentID, RolloutState: "COMPLETED", Desired: 2, Running: 2, Deployments: 1})
	out := s.outcome
	if out.Result == "" {
		out.Result = RolloutSucceeded
	}
	if timedOut {
		out.Result = RolloutTimedOut
	}
	out.Polls = 2
	return out, nil
}

func (s *fakeService) Tasks(ctx context.Context, desired string) ([]Task, error) {
	s.calls.add("Tasks %s %s", s.ref, desired)
	switch desired {
	case "STOPPED":
		return s.stopped, nil
	default:
		if s.deployed && s.runningAfter != nil {
			return s.runningAfter, nil
		}
		return s.running, nil
	}
}

func (s *fakeService) StopTasks(ctx context.Context, arns []string, reason string) error {
	sorted := append([]string(nil), arns...)
	sort.Strings(sorted)
	s.calls.add("StopTasks %s %s", s.ref, strings.Join(sorted, ","))
	return nil
}

// matchIP places a process whose hostname is ip-a-b-c-d in the task with that IPv4: enough
// of sidekiq.MatchTask for the Runner's tests.
func matchIP(p sidekiq.Process, tasks []Task) (Task, bool) {
	for _, t := range tasks {
		if "ip-"+strings.ReplaceAll(t.PrivateIPv4, ".", "-") == p.Hostname {
			return t, true
		}
	}
	return Task{}, false
}

// ---- builders -----------------------------------------------------------------------------

func task(n int) Task {
	return Task{ARN: fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task/prod/t%d", n), ID: fmt.Sprintf("t%d", n),
		PrivateIPv4: fmt.Sprintf("10.0.0.%d", n), LastStatus: "RUNNING", DesiredStatus: "RUNNING", DeploymentID: "ecs-svc/1"}
}

func killedTask(n int) Task {
	t := task(n)
	code := int32(137)
	t.LastStatus, t.DesiredStatus, t.StopCode = "STOPPED", "STOPPED", "ServiceSchedulerInitiated"
	t.Containers = []Container{{Name: "sidekiq", ExitCode: &code}}
	return t
}

func job(jid, process string, runAt time.Time) sidekiq.Job {
	return sidekiq.Job{JID: jid, Class: "HardJob", Queue: "default", Process: process, RunAt: runAt, Args: []byte(`["secret"]`)}
}

// proc is a live process in task n with the given jobs.
func proc(n int, jobs ...sidekiq.Job) sidekiq.Process {
	id := fmt.Sprintf("ip-10-0-0-%d:1:abc%d", n, n)
	for i := range jobs {
		jobs[i].Process = id
	}
	return sidekiq.Process{Identity: id, Hostname: fmt.Sprintf("ip-10-0-0-%d", n), PID: 1, Tag: "worker",
		Version: "7.3.2", Queues: []string{"default"}, Concurrency: 5, Busy: len(jobs), Beat: t0.Add(-2 * time.Second),
		HashExists: true, Listed: true, Jobs: jobs}
}

func obs(p sidekiq.Process, st State, jobs ...sidekiq.Job) Observation {
	p.Jobs = jobs
	return Observation{Identity: p.Identity, State: st, Process: p, Jobs: jobs, LastBeat: t0}
}
