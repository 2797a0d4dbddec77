package drain

import (
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/sidekiq"
)

func TestLedgerFates(t *testing.T) {
	p := proc(1)
	a := job("a", p.Identity, t0)
	b := job("b", p.Identity, t0)
	type polls = [][]sidekiq.Observation
	tests := []struct {
		name    string
		polls   polls
		rescued map[string]rescueFate
		want    map[string]JobFate
	}{
		{name: "finish while alive, then requeued at clean exit",
			polls: polls{{obs(p, stQuiet, a, b)}, {obs(p, stQuiet, b)}, {obs(p, stGone)}},
			want:  map[string]JobFate{"a": JobFinished, "b": JobRequeued}},
		{name: "unknown says nothing",
			polls: polls{{obs(p, stUnknown)}, {obs(p, stQuiet, a, b)}},
			want:  map[string]JobFate{"a": JobStillRunning, "b": JobStillRunning}},
		{name: "dead keeps its last work for rescue",
			polls:   polls{{obs(p, stQuiet, a, b)}, {obs(p, stQuiet, b)}, {obs(p, stDead, b)}},
			rescued: map[string]rescueFate{"b": {fate: JobRescued}},
			want:    map[string]JobFate{"a": JobFinished, "b": JobRescued}},
		{name: "dead and examined: safe elsewhere",
			polls:   polls{{obs(p, stQuiet, a)}, {obs(p, stDead, a)}},
			rescued: map[string]rescueFate{"a": {fate: JobSafe, note: "retry"}},
			want:    map[string]JobFate{"a": JobSafe}},
		{name: "dead and not rescued is lost",
			polls: polls{{obs(p, stQuiet, a)}, {obs(p, stDead)}},
			want:  map[string]JobFate{"a": JobLost}},
		{name: "job started after quiet is tracked",
			polls: polls{{obs(p, stRunning)}, {obs(p, stRunning, a)}, {obs(p, stDrained)}},
			want:  map[string]JobFate{"a": JobFinished}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLedger()
			last := map[string]sidekiq.Observation{}
			for _, ps := range tt.polls {
				l.observe(ps)
				for _, o := range ps {
					last[o.Identity] = o
				}
			}
			l.settle(last, tt.rescued)
			got := map[string]JobFate{}
			for _, r := range l.records() {
				got[r.JID] = r.Fate
			}
			if len(got) != len(tt.want) {
				t.Fatalf("fates = %v, want %v", got, tt.want)
			}
			for jid, f := range tt.want {
				if got[jid] != f {
					t.Errorf("job %s: %s, want %s", jid, got[jid], f)
				}
			}
		})
	}
}

func TestRescueFateOf(t *testing.T) {
	j := job("a", "p", t0)
	tests := []struct {
		outcome  sidekiq.Outcome
		reason   string
		want     JobFate
		wantNote string
		wantOK   bool
	}{
		{sidekiq.OutcomePushed, "", JobRescued, "", true},
		{sidekiq.OutcomeAlreadyRescued, "marker of run x", JobAlreadyRescued, "marker of run x", true},
		{sidekiq.OutcomeRetry, "", JobSafe, "retry", true},
		{sidekiq.OutcomeRunning, "on p2", JobSafe, "on p2", true},
		{sidekiq.OutcomeDuplicate, "", "", "", false},
		{sidekiq.OutcomeSuperFetch, "", JobLost, "not rescued: super-fetch", true},
		{sidekiq.OutcomeError, "READONLY", JobLost, "not rescued: READONLY", true},
	}
	for _, tt := range tests {
		f, ok := rescueFateOf(sidekiq.JobRescue{Job: j, Outcome: tt.outcome, Reason: tt.reason})
		if ok != tt.wantOK || f.fate != tt.want || f.note != tt.wantNote {
			t.Errorf("rescueFateOf(%s, %q) = %+v %v, want %s %q %v", tt.outcome, tt.reason, f, ok, tt.want, tt.wantNote, tt.wantOK)
		}
	}
}

func TestLongest(t *testing.T) {
	p := proc(1)
	now := t0.Add(time.Minute)
	got := longest([]sidekiq.Observation{obs(p, stQuiet, job("x", "", t0.Add(30*time.Second)), job("y", "", t0))}, now, 1)
	if len(got) != 1 || got[0].JID != "y" || got[0].Running != time.Minute {
		t.Errorf("longest = %+v, want y running 1m", got)
	}
}
