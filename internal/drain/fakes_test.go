package drain

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/sidekiq"
	"github.com/drainctl/drainctl/internal/testenv"
)

// t0 is the fake clock's start.
var t0 = testenv.ClockStart

// fakeClock never sleeps: After advances the time by d and fires at once (testenv's one fake
// clock).
type fakeClock = testenv.FakeClock

func newClock() *fakeClock { return testenv.NewFakeClock() }

// calls records every call of the fakes made with a live context, in order, as "name args".
// A call made with a cancelled context is not recorded and fails as the real one would.
type calls struct {
	mu   sync.Mutex
	list []string
	// hook runs after a call is recorded (e.g. to cancel the run's context at phase k).
	hook func(call string)
}

// add records a call; it returns ctx's error, without recording, when ctx is already done.
func (c *calls) add(ctx context.Context, format string, args ...any) error {
	if ctx != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	s := fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.list = append(c.list, s)
	hook := c.hook
	c.mu.Unlock()
	if hook != nil {
		hook(s)
	}
	return nil
}

func (c *calls) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.list...)
}

// named returns the calls whose name (first word, or first words) is name.
func (c *calls) named(name string) []string {
	var out []string
	for _, s := range c.all() {
		if s == name || strings.HasPrefix(s, name+" ") {
			out = append(out, s)
		}
	}
	return out
}

// writeCalls are the calls that change Redis or ECS.
var writeCalls = []string{"Quiet", "Stop", "Rescue", "AcquireLock", "Refresh", "Release", "Deploy", "StopTasks"}

func (c *calls) writes() []string {
	var out []string
	for _, s := range c.all() {
		for _, w := range writeCalls {
			if s == w || strings.HasPrefix(s, w+" ") {
				out = append(out, s)
			}
		}
	}
	return out
}

// ---- the deploy lock ----------------------------------------------------------------------

// lockServer is the real redis-server the deploy lock of every fake fleet lives in (one per
// test binary, each fleet in a namespace of its own); nil when redis-server is missing.
var (
	lockServer   *testenv.Redis
	lockServerMu sync.Mutex
	lockSeq      atomic.Int64
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "drain-lock-redis")
	if err == nil {
		lockServer, err = testenv.StartRedisServer(dir)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "drain tests: no redis-server for the deploy lock: %v\n", err)
	}
	code := m.Run()
	if lockServer != nil {
		lockServer.Stop()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// requireLockServer skips (or, with DRAINCTL_REQUIRE_INTEGRATION=1, fails) a test that needs
// the real Redis of the deploy lock.
func requireLockServer(t *testing.T) {
	t.Helper()
	lockServerMu.Lock()
	defer lockServerMu.Unlock()
	if lockServer == nil {
		testenv.Missing(t, "redis-server not available for the deploy lock")
	}
}

// lockSpy records the deploy lock's refreshes and releases on their way to the real Redis,
// telling the scripts apart by their number of keys and arguments; it answers nothing itself.
type lockSpy struct{ calls *calls }

func (h *lockSpy) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *lockSpy) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *lockSpy) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		args := cmd.Args()
		name := strings.ToLower(fmt.Sprint(args[0]))
		if (name != "evalsha" && name != "eval") || len(args) < 3 || err != nil {
			return err
		}
		nkeys, _ := args[2].(int)
		switch rest := len(args) - 3 - nkeys; {
		case nkeys == 1 && rest == 2:
			_ = h.calls.add(nil, "Refresh")
		case nkeys == 2 && rest == 1:
			_ = h.calls.add(nil, "Release")
		}
		return nil
	}
}

// newLockClient is a sidekiq.Client on the real lock server, in a namespace of its own, whose
// lock calls the spy records. Without a server it points nowhere (requireLockServer skips).
func newLockClient(c *calls) *sidekiq.Client {
	addr := "127.0.0.1:1"
	if lockServer != nil {
		addr = lockServer.Addr
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	rdb.AddHook(&lockSpy{calls: c})
	return sidekiq.NewClient(rdb, fmt.Sprintf("drain-test-%d", lockSeq.Add(1)))
}

// ---- the fleet ----------------------------------------------------------------------------

// fakeFleet is a scripted Sidekiq fleet: it implements Fleet, and watch starts its
// ProcessWatcher.
type fakeFleet struct {
	calls *calls
	clock *fakeClock
	// snapshots are returned by successive Snapshot calls (the last one repeats).
	snapshots []*sidekiq.Snapshot
	// script returns the observations of poll n (0-based) of the watched identities.
	script func(n int, ids []string) []sidekiq.Observation
	// holder is who LockHolder reports; heldOnAcquire makes AcquireLock fail with it.
	holder        *sidekiq.LockOwner
	heldOnAcquire *sidekiq.LockOwner
	// locker holds the deploy lock in the real Redis.
	locker *sidekiq.Client
	// rescue answers Rescue; nil pushes every job.
	rescue func(jobs []sidekiq.Job) sidekiq.RescueResult
	// quiet is the set of identities Quiet was sent to, for SnapshotOf; gone are those
	// SnapshotOf reports no longer listed (they left).
	quiet, gone map[string]bool

	pingErr error
	nSnap   int
}

func newFakeFleet(c *calls, clock *fakeClock) *fakeFleet {
	return &fakeFleet{calls: c, clock: clock, locker: newLockClient(c)}
}

// Processes is Snapshot without the jobs.
func (f *fakeFleet) Processes(ctx context.Context) (*sidekiq.Snapshot, error) {
	snap, err := f.Snapshot(ctx)
	if err != nil || snap == nil {
		return snap, err
	}
	out := *snap
	out.Processes = append([]sidekiq.Process(nil), snap.Processes...)
	for i := range out.Processes {
		out.Processes[i].Busy = len(out.Processes[i].Jobs)
		out.Processes[i].Jobs = nil
	}
	return &out, nil
}

func (f *fakeFleet) Ping(ctx context.Context) error {
	if err := f.calls.add(ctx, "Ping"); err != nil {
		return err
	}
	return f.pingErr
}

func (f *fakeFleet) QueueStats(ctx context.Context, queues []string, now time.Time) ([]sidekiq.QueueStat, error) {
	if err := f.calls.add(ctx, "QueueStats %s", strings.Join(queues, ",")); err != nil {
		return nil, err
	}
	out := make([]sidekiq.QueueStat, len(queues))
	for i, q := range queues {
		out[i] = sidekiq.QueueStat{Name: q, Size: int64(10 * (i + 1)), Latency: time.Duration(i+1) * time.Second}
	}
	return out, nil
}

func (f *fakeFleet) Snapshot(ctx context.Context) (*sidekiq.Snapshot, error) {
	if err := f.calls.add(ctx, "Snapshot"); err != nil {
		return nil, err
	}
	s := f.snapshots[min(f.nSnap, len(f.snapshots)-1)]
	f.nSnap++
	return s, nil
}

func (f *fakeFleet) SnapshotOf(ctx context.Context, ids []string) (*sidekiq.Snapshot, error) {
	if err := f.calls.add(ctx, "SnapshotOf %s", strings.Join(ids, ",")); err != nil {
		return nil, err
	}
	snap := &sidekiq.Snapshot{At: f.clock.Now()}
	for _, id := range ids {
		snap.Processes = append(snap.Processes, sidekiq.Process{Identity: id, HashExists: true, Listed: !f.gone[id], Quiet: f.quiet[id]})
	}
	return snap, nil
}

func (f *fakeFleet) Quiet(ctx context.Context, ids []string) error {
	if err := f.calls.add(ctx, "Quiet %s", strings.Join(ids, ",")); err != nil {
		return err
	}
	if f.quiet == nil {
		f.quiet = map[string]bool{}
	}
	for _, id := range ids {
		f.quiet[id] = true
	}
	return nil
}

func (f *fakeFleet) Stop(ctx context.Context, ids []string) error {
	return f.calls.add(ctx, "Stop %s", strings.Join(ids, ","))
}

func (f *fakeFleet) Rescue(ctx context.Context, jobs []sidekiq.Job, opt sidekiq.RescueOptions) (sidekiq.RescueResult, error) {
	jids := make([]string, len(jobs))
	for i, j := range jobs {
		jids[i] = j.JID
	}
	if err := f.calls.add(ctx, "Rescue %s", strings.Join(jids, ",")); err != nil {
		return sidekiq.RescueResult{}, err
	}
	if f.rescue != nil {
		return f.rescue(jobs), nil
	}
	res := sidekiq.RescueResult{}
	for _, j := range jobs {
		res.Jobs = append(res.Jobs, sidekiq.JobRescue{Job: j, Outcome: sidekiq.OutcomePushed})
	}
	return res, nil
}

func (f *fakeFleet) AcquireLock(ctx context.Context, name string, owner sidekiq.LockOwner, ttl time.Duration) (*sidekiq.Lock, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if f.heldOnAcquire != nil {
		_ = f.calls.add(ctx, "AcquireLock %s (held)", name)
		return nil, &sidekiq.LockHeldError{Name: name, Holder: *f.heldOnAcquire, ExpiresIn: 42 * time.Second}
	}
	l, err := f.locker.AcquireLock(ctx, name, owner, ttl)
	if err != nil {
		return nil, err
	}
	_ = f.calls.add(ctx, "AcquireLock %s", name)
	return l, nil
}

func (f *fakeFleet) LockHolder(ctx context.Context, name string) (*sidekiq.LockOwner, error) {
	if err := f.calls.add(ctx, "LockHolder %s", name); err != nil {
		return nil, err
	}
	return f.holder, nil
}

// watch is the Runner's Watch: a fakeWatcher playing the script.
func (f *fakeFleet) watch(ps []sidekiq.Process) ProcessWatcher {
	_ = f.calls.add(nil, "Watch %s", strings.Join(identities(ps), ","))
	return &fakeWatcher{f: f, ids: identities(ps), dead: map[string]string{}}
}

// fakeWatcher plays the fleet's script and applies MarkDead evidence.
type fakeWatcher struct {
	f    *fakeFleet
	ids  []string
	n    int
	dead map[string]string
}

func (w *fakeWatcher) Poll(ctx context.Context) ([]sidekiq.Observation, error) {
	if err := w.f.calls.add(ctx, "Poll %d", w.n); err != nil {
		return nil, err
	}
	obs := append([]sidekiq.Observation(nil), w.f.script(w.n, w.ids)...)
	w.n++
	for i, o := range obs {
		if ev, ok := w.dead[o.Identity]; ok && o.State != sidekiq.StateGone {
			obs[i].State = sidekiq.StateDead
			obs[i].Evidence = ev
		}
	}
	return obs, nil
}

func (w *fakeWatcher) MarkDead(id, evidence string) {
	_ = w.f.calls.add(nil, "MarkDead %s", id)
	w.dead[id] = evidence
}

// ---- ECS ----------------------------------------------------------------------------------

// rollout scripts how a deployed fakeService's rollout goes.
type rollout struct {
	// result is where the rollout ends once took has passed since the deploy: succeeded
	// (the default), rolled back, failed (FAILED without rollback) or "" kept with never.
	result RolloutResult
	// never keeps the rollout IN_PROGRESS for ever.
	never bool
	// took is the fake time from the deploy to the end; zero ends it at the second poll.
	took time.Duration
	// reason is our deployment's rolloutStateReason when it fails.
	reason string
}

// fakeService is one scripted ECS service.
type fakeService struct {
	ref   ecs.ServiceRef
	state ecs.ServiceState
	// running are the RUNNING tasks before the deploy; runningAfter after it (when set).
	running, runningAfter []ecs.Task
	// stopped are the service's STOPPED tasks; stoppedOfDeployment our deployment's.
	stopped, stoppedOfDeployment []ecs.Task
	// deploymentID is what Deploy returns; empty means "ecs-svc/2".
	deploymentID string
	rollout      rollout
	// sd is what ServiceDeploymentOf answers.
	sd *ecs.ServiceDeploymentInfo

	deployed   bool
	deployedAt time.Time
	polls      int // Describe reads after the deploy
	target     string
	ended      bool // the last read showed the rollout's end
}

// serviceDeployment is the Service Deployments API's view: IN_PROGRESS until the rollout
// ended, then sd (nil: the API knows nothing).
func (s *fakeService) serviceDeployment() *ecs.ServiceDeploymentInfo {
	if s.sd == nil || s.ended {
		return s.sd
	}
	return &ecs.ServiceDeploymentInfo{ARN: s.sd.ARN, Status: "IN_PROGRESS"}
}

func (s *fakeService) ourID() string {
	if s.deploymentID == "" {
		return "ecs-svc/2"
	}
	return s.deploymentID
}

// read is the service as Describe shows it now.
func (s *fakeService) read(now time.Time) ecs.ServiceState {
	st := s.state
	st.Ref = s.ref
	old := ecs.Deployment{ID: "ecs-svc/1", Status: "PRIMARY", TaskDefinition: s.state.TaskDefinition, RolloutState: "COMPLETED",
		Desired: st.Desired, Running: st.Desired}
	if !s.deployed {
		st.Deployments = []ecs.Deployment{old}
		return st
	}
	s.polls++
	ours := ecs.Deployment{ID: s.ourID(), Status: "PRIMARY", TaskDefinition: s.target, RolloutState: "IN_PROGRESS",
		Desired: st.Desired, Running: st.Desired / 2, Pending: st.Desired - st.Desired/2, CreatedAt: s.deployedAt}
	old.Status = "ACTIVE"
	ended := s.polls >= 2
	if s.rollout.took > 0 {
		ended = now.Sub(s.deployedAt) >= s.rollout.took
	}
	s.ended = ended && !s.rollout.never
	if s.rollout.never || !ended {
		st.Deployments = []ecs.Deployment{ours, old}
		return st
	}
	switch s.rollout.result {
	case RolloutRolledBack:
		ours.Status, ours.RolloutState, ours.RolloutStateReason, ours.Failed = "ACTIVE", "FAILED", s.rollout.reason, 3
		ours.Running, ours.Pending = 0, 0
		old.Status, old.RolloutState = "PRIMARY", "IN_PROGRESS"
		st.Deployments = []ecs.Deployment{old, ours}
	case RolloutFailed:
		ours.RolloutState, ours.RolloutStateReason, ours.Failed = "FAILED", s.rollout.reason, 3
		ours.Running, ours.Pending = 0, 0
		st.Deployments = []ecs.Deployment{ours, old}
	default:
		ours.RolloutState, ours.Running, ours.Pending = "COMPLETED", st.Desired, 0
		st.Deployments = []ecs.Deployment{ours}
	}
	return st
}

// fakeECS is a scripted ECS: it implements ECS over a few fakeServices and task definitions.
type fakeECS struct {
	calls *calls
	clock *fakeClock
	svcs  []*fakeService
	// tds are the registered task definitions; TaskDefinition finds them by ARN,
	// family:revision, or family (its latest ACTIVE revision).
	tds []*ecs.TaskDefinitionInfo
	// protectErr fails the protection calls (AccessDenied, an endpoint without them);
	// protectErrOnSet fails only UpdateTaskProtection's enabling calls.
	protectErr, protectErrOnSet error
	// foreign are tasks someone else protected before the run.
	foreign map[string]bool
}

func (e *fakeECS) service(ref ecs.ServiceRef) *fakeService {
	for _, s := range e.svcs {
		if s.ref == ref {
			return s
		}
	}
	return nil
}

func refList(refs []ecs.ServiceRef) string {
	var out []string
	for _, r := range refs {
		out = append(out, r.String())
	}
	return strings.Join(out, ",")
}

func (e *fakeECS) CheckClusters(ctx context.Context, clusters []string) error {
	return e.calls.add(ctx, "CheckClusters %s", strings.Join(clusters, ","))
}

func (e *fakeECS) Describe(ctx context.Context, refs []ecs.ServiceRef) ([]ecs.ServiceState, error) {
	if err := e.calls.add(ctx, "Describe %s", refList(refs)); err != nil {
		return nil, err
	}
	if ctx.Err() != nil { // cancelled by the hook: the response is lost
		return nil, ctx.Err()
	}
	var out []ecs.ServiceState
	var errs []error
	for _, r := range refs {
		s := e.service(r)
		if s == nil {
			errs = append(errs, fmt.Errorf("service %q in cluster %q: %w", r.Service, r.Cluster, ecs.ErrNotFound))
			continue
		}
		out = append(out, s.read(e.clock.Now()))
	}
	return out, errors.Join(errs...)
}

func (e *fakeECS) TaskDefinition(ctx context.Context, name string) (*ecs.TaskDefinitionInfo, error) {
	if err := e.calls.add(ctx, "TaskDefinition %s", name); err != nil {
		return nil, err
	}
	var latest *ecs.TaskDefinitionInfo
	for _, td := range e.tds {
		switch {
		case td.ARN == name || fmt.Sprintf("%s:%d", td.Family, td.Revision) == name:
			return td, nil
		case td.Family == name && td.Status == "ACTIVE" && (latest == nil || td.Revision > latest.Revision):
			latest = td
		}
	}
	if latest != nil {
		return latest, nil
	}
	return nil, fmt.Errorf("task definition %q: %w", name, ecs.ErrNotFound)
}

func (e *fakeECS) Deploy(ctx context.Context, ref ecs.ServiceRef, taskDefinition string) (ecs.DeployResult, error) {
	if err := e.calls.add(ctx, "Deploy %s %s", ref, taskDefinition); err != nil {
		return ecs.DeployResult{}, err
	}
	s := e.service(ref)
	if s == nil {
		return ecs.DeployResult{}, fmt.Errorf("deploy %s: %w", ref, ecs.ErrNotFound)
	}
	s.deployed, s.deployedAt = true, e.clock.Now()
	s.target = taskDefinition
	if s.target == "" {
		s.target = s.state.TaskDefinition
	}
	prev := ecs.Deployment{ID: "ecs-svc/1", Status: "ACTIVE", TaskDefinition: s.state.TaskDefinition, RolloutState: "COMPLETED",
		Desired: s.state.Desired, Running: s.state.Desired}
	return ecs.DeployResult{Ref: ref, DeploymentID: s.ourID(), Previous: []ecs.Deployment{prev}, TaskDefinition: s.target,
		StartedAt: s.deployedAt, Desired: s.state.Desired, BreakerEnabled: s.state.BreakerEnabled,
		BreakerRollback: s.state.BreakerRollback}, nil
}

func (e *fakeECS) Tasks(ctx context.Context, ref ecs.ServiceRef, desired string) ([]ecs.Task, error) {
	if err := e.calls.add(ctx, "Tasks %s %s", ref, desired); err != nil {
		return nil, err
	}
	s := e.service(ref)
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

func (e *fakeECS) StoppedTasksOf(ctx context.Context, ref ecs.ServiceRef, deploymentID string) ([]ecs.Task, error) {
	if err := e.calls.add(ctx, "StoppedTasksOf %s %s", ref, deploymentID); err != nil {
		return nil, err
	}
	return e.service(ref).stoppedOfDeployment, nil
}

func (e *fakeECS) StopTasks(ctx context.Context, cluster string, arns []string, reason string) error {
	sorted := append([]string(nil), arns...)
	sort.Strings(sorted)
	return e.calls.add(ctx, "StopTasks %s %s", cluster, strings.Join(sorted, ","))
}

func (e *fakeECS) ServiceDeploymentOf(ctx context.Context, dep ecs.DeployResult) (*ecs.ServiceDeploymentInfo, error) {
	if err := e.calls.add(ctx, "ServiceDeploymentOf %s %s", dep.Ref, dep.DeploymentID); err != nil {
		return nil, err
	}
	return e.service(dep.Ref).serviceDeployment(), nil
}

func (e *fakeECS) ServiceDeployment(ctx context.Context, ref ecs.ServiceRef, arn string) (*ecs.ServiceDeploymentInfo, error) {
	if err := e.calls.add(ctx, "ServiceDeployment %s %s", ref, arn); err != nil {
		return nil, err
	}
	return e.service(ref).serviceDeployment(), nil
}

func (e *fakeECS) ContinueDeployment(ctx context.Context, ref ecs.ServiceRef, arn, hookID, action string) error {
	return e.calls.add(ctx, "ContinueDeployment %s %s %s", ref, hookID, action)
}

// ProtectTasks records the call; protectErr makes it fail as a whole (AccessDenied).
func (e *fakeECS) ProtectTasks(ctx context.Context, cluster string, arns []string, expiresIn time.Duration) ([]ecs.TaskProtection, []ecs.ProtectionFailure, error) {
	if err := e.calls.add(ctx, "ProtectTasks %s %s", cluster, strings.Join(arns, ",")); err != nil {
		return nil, nil, err
	}
	if e.protectErr != nil {
		return nil, nil, e.protectErr
	}
	if e.protectErrOnSet != nil {
		return nil, nil, e.protectErrOnSet
	}
	var out []ecs.TaskProtection
	for _, a := range arns {
		out = append(out, ecs.TaskProtection{TaskARN: a, Protected: true, ExpiresAt: e.clock.Now().Add(expiresIn)})
	}
	return out, nil, nil
}

func (e *fakeECS) UnprotectTasks(ctx context.Context, cluster string, arns []string) ([]ecs.ProtectionFailure, error) {
	return nil, e.calls.add(ctx, "UnprotectTasks %s %s", cluster, strings.Join(arns, ","))
}

func (e *fakeECS) TaskProtections(ctx context.Context, cluster string, arns []string) ([]ecs.TaskProtection, []ecs.ProtectionFailure, error) {
	if err := e.calls.add(ctx, "TaskProtections %s", cluster); err != nil {
		return nil, nil, err
	}
	if e.protectErr != nil {
		return nil, nil, e.protectErr
	}
	var out []ecs.TaskProtection
	for _, a := range arns {
		tp := ecs.TaskProtection{TaskARN: a}
		if e.foreign[a] {
			tp.Protected, tp.ExpiresAt = true, e.clock.Now().Add(time.Hour)
		}
		out = append(out, tp)
	}
	return out, nil, nil
}

// ---- builders -----------------------------------------------------------------------------

const tdARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/"

// taskDef is a registered revision with an exec-form sidekiq command (a clean signal path),
// or with good false a `sh -c` wrapper without exec (finding SP001).
func taskDef(family string, rev int32, good bool) *ecs.TaskDefinitionInfo {
	stop, init := int32(30), true
	c := ecs.ContainerDefinition{Name: "sidekiq", Image: "example/" + family + ":1", Essential: true,
		Command: []string{"bundle", "exec", "sidekiq", "-t", "20"}, StopTimeout: &stop, InitProcessEnabled: &init}
	if !good {
		c.Command, c.InitProcessEnabled = []string{"sh", "-c", "cd /app && bundle exec sidekiq -t 20"}, nil
	}
	return &ecs.TaskDefinitionInfo{ARN: fmt.Sprintf("%s%s:%d", tdARN, family, rev), Family: family, Revision: rev, Status: "ACTIVE",
		NetworkMode: "awsvpc", RequiresCompatibilities: []string{"FARGATE"}, Containers: []ecs.ContainerDefinition{c}}
}

// serviceState is an ACTIVE service of the ECS controller running family:rev, with the
// circuit breaker and its rollback on and minimumHealthyPercent 100: no preflight warning.
func serviceState(family string, rev int) ecs.ServiceState {
	return ecs.ServiceState{Status: "ACTIVE", TaskDefinition: fmt.Sprintf("%s%s:%d", tdARN, family, rev), Desired: 2, Running: 2,
		MinHealthy: 100, MaxPercent: 200, BreakerEnabled: true, BreakerRollback: true, Controller: "ECS", LaunchType: "FARGATE"}
}

func task(n int) ecs.Task {
	return ecs.Task{ARN: fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task/prod/t%d", n), ID: fmt.Sprintf("t%d", n),
		PrivateIPv4: fmt.Sprintf("10.0.0.%d", n), LastStatus: "RUNNING", DesiredStatus: "RUNNING", DeploymentID: "ecs-svc/1"}
}

func killedTask(n int) ecs.Task {
	t := task(n)
	code := int32(137)
	t.LastStatus, t.DesiredStatus, t.StopCode = "STOPPED", "STOPPED", "ServiceSchedulerInitiated"
	t.Containers = []ecs.Container{{Name: "sidekiq", ExitCode: &code}}
	return t
}

func job(jid, process string, runAt time.Time) sidekiq.Job {
	return sidekiq.Job{JID: jid, Class: "HardJob", Queue: "default", Process: process, RunAt: runAt, Args: []byte(`["secret"]`)}
}

// proc is a live process in task n (hostname ip-10-0-0-n) with the given jobs.
func proc(n int, jobs ...sidekiq.Job) sidekiq.Process {
	id := fmt.Sprintf("ip-10-0-0-%d:1:abc%d", n, n)
	for i := range jobs {
		jobs[i].Process = id
	}
	return sidekiq.Process{Identity: id, Hostname: fmt.Sprintf("ip-10-0-0-%d", n), PID: 1, Tag: "worker",
		Version: "7.3.2", Layout: sidekiq.Layout7, Queues: []string{"default"}, Concurrency: 5, Busy: len(jobs),
		Beat: t0.Add(-2 * time.Second), HashExists: true, Listed: true, Jobs: jobs}
}

func obs(p sidekiq.Process, st sidekiq.State, jobs ...sidekiq.Job) sidekiq.Observation {
	p.Jobs = jobs
	return sidekiq.Observation{Identity: p.Identity, State: st, Process: p, Jobs: jobs, LastBeat: t0,
		Listed: st != sidekiq.StateGone && st != sidekiq.StateDead, HashExists: st != sidekiq.StateDead}
}

// Short names for the states.
const (
	stUnknown = sidekiq.StateUnknown
	stRunning = sidekiq.StateRunning
	stQuiet   = sidekiq.StateQuiet
	stDrained = sidekiq.StateDrained
	stGone    = sidekiq.StateGone
	stDead    = sidekiq.StateDead
)
