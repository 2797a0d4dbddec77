package drain

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

var rescueNow = time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)

// rproc is a listed Sidekiq 6 (Layout6) or 7 process whose last beat was silent ago.
func rproc(id string, layout sidekiq.Layout, silent time.Duration, hash bool, jobs ...string) sidekiq.Process {
	p := sidekiq.Process{Identity: id, Hostname: strings.Split(id, ":")[0], Layout: layout, HashExists: hash, Listed: true}
	if silent >= 0 {
		p.Beat = rescueNow.Add(-silent)
	}
	for _, jid := range jobs {
		p.Jobs = append(p.Jobs, sidekiq.Job{JID: jid, Class: "SleepJob", Queue: "default", Process: id, RunAt: rescueNow.Add(-time.Minute),
			Payload: []byte(`{"jid":"` + jid + `"}`)})
	}
	return p
}

func TestClassifyCandidate(t *testing.T) {
	for _, tc := range []struct {
		name       string
		p          sidekiq.Process
		staleAfter time.Duration
		killed     string
		want       RescueState // "" = not a candidate
		certainAt  time.Time
		evidence   string
	}{
		{name: "fresh beat", p: rproc("a:1:x", sidekiq.Layout6, 4*time.Second, true)},
		{name: "6.x stale after 12s", p: rproc("a:1:x", sidekiq.Layout6, 13*time.Second, true, "j1"), want: RescueNotYetKnown,
			certainAt: rescueNow.Add(47 * time.Second), evidence: "not yet known dead: last beat 13 s ago, certain at 04:00:47"},
		{name: "7.x not stale at 13s", p: rproc("a:1:x", sidekiq.Layout7, 13*time.Second, true)},
		{name: "7.x stale at 23s", p: rproc("a:1:x", sidekiq.Layout7, 23*time.Second, true), want: RescueNotYetKnown,
			certainAt: rescueNow.Add(37 * time.Second)},
		{name: "--stale-after shorter than the default", p: rproc("a:1:x", sidekiq.Layout7, 8*time.Second, true), staleAfter: 7 * time.Second,
			want: RescueNotYetKnown, certainAt: rescueNow.Add(52 * time.Second), evidence: "last beat 8 s ago, certain at 04:00:52"},
		{name: "--stale-after longer than the default", p: rproc("a:1:x", sidekiq.Layout6, 25*time.Second, true), staleAfter: 30 * time.Second},
		{name: "beat older than the TTL but hash still there (clock skew)", p: rproc("a:1:x", sidekiq.Layout6, 90*time.Second, true),
			want: RescueNotYetKnown, certainAt: rescueNow.Add(sidekiq.HeartbeatTTL)},
		{name: "no beat read", p: rproc("a:1:x", sidekiq.Layout6, -1, true), want: RescueNotYetKnown,
			certainAt: rescueNow.Add(sidekiq.HeartbeatTTL), evidence: "no heartbeat read"},
		{name: "hash expired", p: rproc("a:1:x", sidekiq.Layout6, 70*time.Second, false), want: RescueExpired, evidence: "jobs it ran (if any) are not visible"},
		{name: "hash expired, work still seen", p: rproc("a:1:x", sidekiq.Layout6, 70*time.Second, false, "j1"), want: RescueExpired, evidence: "died more than ~60 s ago"},
		{name: "ECS evidence on a fresh beat", p: rproc("a:1:x", sidekiq.Layout7, 2*time.Second, true), killed: "ECS task t1 stopped, container sidekiq exited 137",
			want: RescueProven, evidence: "exited 137"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rp, ok := ClassifyCandidate(tc.p, tc.staleAfter, tc.killed, rescueNow)
			if ok != (tc.want != "") {
				t.Fatalf("candidate = %v (%+v), want %v", ok, rp, tc.want != "")
			}
			if !ok {
				return
			}
			if rp.State != tc.want || !rp.CertainAt.Equal(tc.certainAt) || !strings.Contains(rp.Evidence, tc.evidence) {
				t.Errorf("got %s, certain at %v, %q; want %s, %v, containing %q", rp.State, rp.CertainAt, rp.Evidence, tc.want, tc.certainAt, tc.evidence)
			}
		})
	}
}

func TestKilledByECS(t *testing.T) {
	exit := func(n int32) *int32 { return &n }
	stopped := func(id, ip string, code int32, at time.Time) ecs.Task {
		return ecs.Task{ARN: "arn:aws:ecs:us-east-1:1:task/prod/" + id, ID: id, LastStatus: "STOPPED", PrivateIPv4: ip, StoppedAt: at,
			Containers: []ecs.Container{{Name: "sidekiq", ExitCode: exit(code)}}}
	}
	running := ecs.Task{ARN: "arn:aws:ecs:us-east-1:1:task/prod/r1", ID: "r1", LastStatus: "RUNNING", PrivateIPv4: "10.0.1.24"}
	p := rproc("ip-10-0-1-23:7:abc", sidekiq.Layout7, 5*time.Second, true)
	for _, tc := range []struct {
		name  string
		p     sidekiq.Process
		tasks []ecs.Task
		want  string // "" = no evidence
	}{
		{name: "exit 137", p: p, tasks: []ecs.Task{running, stopped("t1", "10.0.1.23", 137, rescueNow.Add(-time.Second))}, want: "ECS task t1 stopped, container sidekiq exited 137"},
		{name: "exit 0", p: p, tasks: []ecs.Task{stopped("t1", "10.0.1.23", 0, rescueNow.Add(-time.Second))}},
		{name: "no task of its own", p: p, tasks: []ecs.Task{running}},
		{name: "its address now belongs to a running task", p: p, tasks: []ecs.Task{stopped("t1", "10.0.1.23", 137, rescueNow.Add(-time.Second)),
			{ARN: "arn:aws:ecs:us-east-1:1:task/prod/r2", ID: "r2", LastStatus: "RUNNING", PrivateIPv4: "10.0.1.23"}}},
		{name: "beat after the task stopped", p: p, tasks: []ecs.Task{stopped("t1", "10.0.1.23", 137, rescueNow.Add(-time.Minute))}},
		{name: "heartbeat hash already gone", p: rproc("ip-10-0-1-23:7:abc", sidekiq.Layout7, 70*time.Second, false),
			tasks: []ecs.Task{stopped("t1", "10.0.1.23", 137, rescueNow.Add(-time.Second))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := KilledByECS([]sidekiq.Process{tc.p}, tc.tasks)[tc.p.Identity]
			if got != tc.want && (tc.want == "" || !strings.Contains(got, tc.want)) {
				t.Errorf("evidence = %q, want %q", got, tc.want)
			}
		})
	}
}

// rescueFake is a RescueFleet and TaskLister recording its calls.
type rescueFake struct {
	calls []string
	// wait answers WaitCertain; nil blocks until ctx ends (then a NotCertainError).
	wait    func(ids []string) ([]sidekiq.Certainty, error)
	snapOf  *sidekiq.Snapshot
	rescued []sidekiq.Job
	opt     sidekiq.RescueOptions
	tasks   []ecs.Task
}

func (f *rescueFake) SnapshotOf(ctx context.Context, ids []string) (*sidekiq.Snapshot, error) {
	f.calls = append(f.calls, "SnapshotOf")
	return f.snapOf, nil
}

func (f *rescueFake) WaitCertain(ctx context.Context, ids []string, opt sidekiq.WaitOptions) ([]sidekiq.Certainty, error) {
	f.calls = append(f.calls, "WaitCertain "+strings.Join(ids, ","))
	if f.wait != nil {
		return f.wait(ids)
	}
	<-ctx.Done()
	var pending []sidekiq.Certainty
	for _, id := range ids {
		pending = append(pending, sidekiq.Certainty{Identity: id, Death: sidekiq.DeathNotYetKnown})
	}
	return pending, &sidekiq.NotCertainError{Pending: pending, Err: ctx.Err()}
}

func (f *rescueFake) Rescue(ctx context.Context, jobs []sidekiq.Job, opt sidekiq.RescueOptions) (sidekiq.RescueResult, error) {
	f.calls = append(f.calls, "Rescue")
	f.rescued, f.opt = jobs, opt
	res := sidekiq.RescueResult{RunID: opt.RunID}
	for _, j := range jobs {
		o := sidekiq.OutcomePushed
		if opt.DryRun {
			o = sidekiq.OutcomeWouldPush
		}
		res.Jobs = append(res.Jobs, sidekiq.JobRescue{Job: j, Outcome: o, RescuedBy: opt.RunID, RescuedAt: opt.Now()})
	}
	return res, nil
}

func (f *rescueFake) Tasks(ctx context.Context, ref ecs.ServiceRef, desired string) ([]ecs.Task, error) {
	f.calls = append(f.calls, "Tasks "+ref.String())
	return f.tasks, nil
}

func certain(ids []string) ([]sidekiq.Certainty, error) {
	var cs []sidekiq.Certainty
	for _, id := range ids {
		cs = append(cs, sidekiq.Certainty{Identity: id, Death: sidekiq.DeathCertain})
	}
	return cs, nil
}

func TestRescueDead(t *testing.T) {
	stale := rproc("ip-10-0-1-23:7:abc", sidekiq.Layout6, 20*time.Second, true, "j1")
	fresh := rproc("ip-10-0-1-24:7:def", sidekiq.Layout6, 2*time.Second, true, "j2")
	gone := rproc("ip-10-0-1-25:7:fff", sidekiq.Layout6, 90*time.Second, false)
	exit137 := int32(137)
	for _, tc := range []struct {
		name       string
		procs      []sidekiq.Process
		cfg        RescueConfig
		fake       rescueFake
		expire     bool // --wait runs out at once
		cancel     bool // the run is interrupted
		wantErr    error
		wantStates map[string]RescueState
		wantCalls  []string
		wantJobs   map[string]sidekiq.Outcome
		wantNote   string
		wantWarn   string
	}{
		{name: "no wait: not yet known, nothing pushed", procs: []sidekiq.Process{stale, fresh, gone},
			wantStates: map[string]RescueState{stale.Identity: RescueNotYetKnown, gone.Identity: RescueExpired},
			wantJobs:   map[string]sidekiq.Outcome{"j1": OutcomeNotYetDead},
			wantNote:   "Run rescue --wait 50s to block until their death is certain (at 04:00:40)"},
		{name: "dry run lists what would be pushed without waiting", procs: []sidekiq.Process{stale, fresh}, cfg: RescueConfig{DryRun: true, Wait: time.Minute},
			wantStates: map[string]RescueState{stale.Identity: RescueNotYetKnown}, wantCalls: []string{"Rescue"},
			wantJobs: map[string]sidekiq.Outcome{"j1": sidekiq.OutcomeWouldPush}},
		{name: "wait until certain, then push", procs: []sidekiq.Process{stale, fresh}, cfg: RescueConfig{Wait: 90 * time.Second},
			fake:       rescueFake{wait: certain},
			wantStates: map[string]RescueState{stale.Identity: RescueProven}, wantCalls: []string{"WaitCertain " + stale.Identity, "Rescue"},
			wantJobs: map[string]sidekiq.Outcome{"j1": sidekiq.OutcomePushed}},
		{name: "it beats again", procs: []sidekiq.Process{stale}, cfg: RescueConfig{Wait: 90 * time.Second},
			fake: rescueFake{wait: func([]string) ([]sidekiq.Certainty, error) { return nil, fmt.Errorf("wait: %w", sidekiq.ErrAlive) },
				snapOf: &sidekiq.Snapshot{Processes: []sidekiq.Process{rproc(stale.Identity, sidekiq.Layout6, time.Second, true)}}},
			wantStates: map[string]RescueState{stale.Identity: RescueAlive}, wantCalls: []string{"WaitCertain " + stale.Identity, "SnapshotOf"},
			wantJobs: map[string]sidekiq.Outcome{}},
		{name: "--wait runs out", procs: []sidekiq.Process{stale}, cfg: RescueConfig{Wait: 5 * time.Second}, expire: true,
			wantStates: map[string]RescueState{stale.Identity: RescueNotYetKnown}, wantCalls: []string{"WaitCertain " + stale.Identity},
			wantJobs: map[string]sidekiq.Outcome{"j1": OutcomeNotYetDead}, wantWarn: "not proven dead within --wait 5s"},
		{name: "interrupted", procs: []sidekiq.Process{stale}, cfg: RescueConfig{Wait: 90 * time.Second}, cancel: true,
			wantErr: ErrRescueInterrupted, wantStates: map[string]RescueState{stale.Identity: RescueNotYetKnown},
			wantCalls: []string{"WaitCertain " + stale.Identity}, wantJobs: map[string]sidekiq.Outcome{}},
		{name: "expired with visible work is rescued at once", procs: []sidekiq.Process{rproc(gone.Identity, sidekiq.Layout6, 61*time.Second, false, "j3")},
			cfg: RescueConfig{Wait: 90 * time.Second}, wantStates: map[string]RescueState{gone.Identity: RescueExpired},
			wantCalls: []string{"Rescue"}, wantJobs: map[string]sidekiq.Outcome{"j3": sidekiq.OutcomePushed}, wantNote: "died before this run"},
		{name: "ECS exit 137 proves death without waiting", procs: []sidekiq.Process{stale, fresh},
			cfg: RescueConfig{Wait: 90 * time.Second, Services: []ecs.ServiceRef{{Cluster: "prod", Service: "worker"}}},
			fake: rescueFake{tasks: []ecs.Task{{ARN: "arn:aws:ecs:us-east-1:1:task/prod/t1", ID: "t1", LastStatus: "STOPPED", PrivateIPv4: "10.0.1.24",
				StoppedAt: rescueNow, Containers: []ecs.Container{{Name: "sidekiq", ExitCode: &exit137}}}}, wait: certain},
			wantStates: map[string]RescueState{stale.Identity: RescueProven, fresh.Identity: RescueProven},
			wantCalls:  []string{"Tasks prod/worker", "WaitCertain " + stale.Identity, "Rescue"},
			wantJobs:   map[string]sidekiq.Outcome{"j1": sidekiq.OutcomePushed, "j2": sidekiq.OutcomePushed}},
		{name: "selection", procs: []sidekiq.Process{stale, gone}, cfg: RescueConfig{Selected: true, Selector: sidekiq.Selector{Identities: []string{gone.Identity}}},
			wantStates: map[string]RescueState{gone.Identity: RescueExpired}, wantJobs: map[string]sidekiq.Outcome{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fake
			cfg := tc.cfg
			cfg.RunID = "host:42:20261125T040000Z"
			cfg.Now = func() time.Time { return rescueNow }
			deadline := make(chan time.Time)
			cfg.After = func(d time.Duration) <-chan time.Time {
				if d == cfg.Wait {
					return deadline
				}
				return make(chan time.Time)
			}
			if cfg.Services != nil {
				cfg.ECS = &f
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			waited := 0
			cfg.OnWait = func(ps []RescueProcess, _ time.Duration) {
				waited = len(ps)
				if tc.expire {
					close(deadline)
				}
				if tc.cancel {
					cancel()
				}
			}
			run, err := RescueDead(ctx, &f, &sidekiq.Snapshot{Processes: tc.procs}, cfg)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			states := map[string]RescueState{}
			for _, p := range run.Processes {
				states[p.Process.Identity] = p.State
			}
			if !reflect.DeepEqual(states, tc.wantStates) {
				t.Errorf("states = %v, want %v", states, tc.wantStates)
			}
			if !reflect.DeepEqual(f.calls, tc.wantCalls) {
				t.Errorf("calls = %q, want %q", f.calls, tc.wantCalls)
			}
			jobs := map[string]sidekiq.Outcome{}
			for _, j := range run.Jobs {
				jobs[j.Job.JID] = j.Outcome
			}
			if len(tc.wantJobs) > 0 || len(jobs) > 0 {
				if !reflect.DeepEqual(jobs, tc.wantJobs) {
					t.Errorf("jobs = %v, want %v", jobs, tc.wantJobs)
				}
			}
			if f.rescued != nil {
				if f.opt.RunID != cfg.RunID || f.opt.DryRun != cfg.DryRun || f.opt.Now == nil || !f.opt.Now().Equal(rescueNow) {
					t.Errorf("rescue options = %+v, want run %s, dry run %v, the injected clock", f.opt, cfg.RunID, cfg.DryRun)
				}
				for _, j := range f.rescued {
					if !strings.Contains(strings.Join(f.opt.Dead, " "), j.Process) {
						t.Errorf("job %s of %s rescued, but its process is not in Dead %v", j.JID, j.Process, f.opt.Dead)
					}
				}
			}
			if run.RunID != cfg.RunID {
				t.Errorf("run ID = %q, want %q", run.RunID, cfg.RunID)
			}
			if tc.wantNote != "" && !strings.Contains(strings.Join(run.Notes, "\n"), tc.wantNote) {
				t.Errorf("notes = %q, want one containing %q", run.Notes, tc.wantNote)
			}
			if tc.wantWarn != "" && !strings.Contains(strings.Join(run.Warnings, "\n"), tc.wantWarn) {
				t.Errorf("warnings = %q, want one containing %q", run.Warnings, tc.wantWarn)
			}
			if (waited > 0) != (len(tc.wantCalls) > 0 && strings.HasPrefix(tc.wantCalls[len(tc.wantCalls)-1], "WaitCertain") ||
				strings.Contains(strings.Join(tc.wantCalls, ","), "WaitCertain")) {
				t.Errorf("OnWait called for %d process(es), calls %q", waited, f.calls)
			}
		})
	}
}

func TestRunID(t *testing.T) {
	if got := RunID("vm", 42, time.Date(2026, 11, 25, 5, 6, 7, 0, time.FixedZone("X", 3600))); got != "vm:42:20261125T040607Z" {
		t.Errorf("RunID = %q", got)
	}
	if got := RunID("", 1, rescueNow); !strings.HasPrefix(got, "drainctl:1:") {
		t.Errorf("RunID without a host = %q", got)
	}
}
