package drain

import (
	"testing"
	"time"
)

func TestLedgerFates(t *testing.T) {
	p := proc(1)
	a := job("a", p.Identity, t0)
	b := job("b", p.Identity, t0)
	tests := []struct {
		name    string
		polls   [][]Observation
		rescued map[string]bool
		want    map[string]JobFate
	}{
		{name: "finish while alive, then requeued at clean exit",
			polls: [][]Observation{{obs(p, StateQuiet, a, b)}, {obs(p, StateQuiet, b)}, {obs(p, StateGone)}},
			want:  map[string]JobFate{"a": JobFinished, "b": JobRequeued}},
		{name: "unknown says nothing",
			polls: [][]Observation{{obs(p, StateUnknown)}, {obs(p, StateQuiet, a, b)}},
			want:  map[string]JobFate{"a": JobStillRunning, "b": JobStillRunning}},
		{name: "dead keeps its last work for rescue",
			polls:   [][]Observation{{obs(p, StateQuiet, a, b)}, {obs(p, StateQuiet, b)}, {obs(p, StateDead, b)}},
			rescued: map[string]bool{"b": true},
			want:    map[string]JobFate{"a": JobFinished, "b": JobRescued}},
		{name: "dead and not rescued is lost",
			polls: [][]Observation{{obs(p, StateQuiet, a)}, {obs(p, StateDead)}},
			want:  map[string]JobFate{"a": JobLost}},
		{name: "job started after quiet is tracked",
			polls: [][]Observation{{obs(p, StateRunning)}, {obs(p, StateRunning, a)}, {obs(p, StateDrained)}},
			want:  map[string]JobFate{"a": JobFinished}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLedger()
			last := map[string]Observation{}
			for _, ps := range tt.polls {
				l.observe(ps)
				for _, o := range ps {
					last[o.Identity] = o
				}
			}
			l.settle(last, tt.rescued, nil, nil)
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

func TestLongest(t *testing.T) {
	p := proc(1)
	now := t0.Add(time.Minute)
	got := longest([]Observation{obs(p, StateQuiet, job("x", "", t0.Add(30*time.Second)), job("y", "", t0))}, now, 1)
	if len(got) != 1 || got[0].JID != "y" || got[0].Running != time.Minute {
		t.Errorf("longest = %+v, want y running 1m", got)
	}
}
