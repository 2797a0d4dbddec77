package drain

import (
	"sort"
	"time"

	"github.com/drainctl/drainctl/internal/sidekiq"
)

// ledger follows every job that was in flight on the selection from quiet to the end and
// decides its fate from what the polls show:
//   - a job that leaves the work of a process that is still alive finished;
//   - a job still in flight when its process left cleanly was requeued by Sidekiq's shutdown
//     (a job that finished in the last heartbeat before the exit is counted here too: the
//     heartbeat is the floor of what Redis can tell);
//   - a job in flight on a dead process is rescued, already rescued, safe or lost, by the
//     rescue's answer;
//   - a job in flight on a process alive at the end is still running.
type ledger struct {
	order []string
	jobs  map[string]*JobRecord
	// byProcess holds the jids each process had in flight at its previous poll.
	byProcess map[string]map[string]bool
}

func newLedger() *ledger {
	return &ledger{jobs: map[string]*JobRecord{}, byProcess: map[string]map[string]bool{}}
}

// add tracks a job first seen in flight on process.
func (l *ledger) add(process string, j sidekiq.Job) {
	if _, ok := l.jobs[j.JID]; ok {
		return
	}
	if l.byProcess[process] == nil {
		l.byProcess[process] = map[string]bool{}
	}
	l.byProcess[process][j.JID] = true
	l.order = append(l.order, j.JID)
	l.jobs[j.JID] = &JobRecord{JID: j.JID, Class: j.Class, Queue: j.Queue, Process: process, RunAt: j.RunAt,
		Args: j.Args}
}

// observe updates fates from one poll.
func (l *ledger) observe(obs []sidekiq.Observation) {
	for _, o := range obs {
		if o.State == sidekiq.StateUnknown {
			continue // no heartbeat read yet: its empty work says nothing
		}
		now := map[string]bool{}
		for _, j := range o.Jobs {
			now[j.JID] = true
			l.add(o.Identity, j)
		}
		for jid := range l.byProcess[o.Identity] {
			if now[jid] {
				continue
			}
			rec := l.jobs[jid]
			if rec.Fate != "" {
				continue
			}
			switch {
			case !o.State.Terminal():
				rec.Fate = JobFinished
			case o.State == sidekiq.StateGone:
				rec.Fate = JobRequeued
			}
			// Dead: the watcher keeps the last work snapshot, so a job missing from it
			// finished before the kill; it was marked finished at an earlier poll.
		}
		if o.State == sidekiq.StateDead {
			// Keep the previous set: the dead process's kept snapshot decides at rescue.
			if len(now) == 0 {
				continue
			}
		}
		l.byProcess[o.Identity] = now
	}
}

// settle gives every undecided job its fate from its process's last state and the rescue's
// answer for it.
func (l *ledger) settle(last map[string]sidekiq.Observation, rescued map[string]rescueFate) {
	for _, jid := range l.order {
		rec := l.jobs[jid]
		if rec.Fate != "" {
			continue
		}
		st := last[rec.Process].State
		r, examined := rescued[jid]
		switch {
		case st == sidekiq.StateDead && examined:
			rec.Fate, rec.Note = r.fate, r.note
		case st == sidekiq.StateGone:
			rec.Fate = JobRequeued
		case st == sidekiq.StateDead:
			rec.Fate = JobLost
			rec.Note = "its process died and it was not rescued: run drainctl rescue --identity " + rec.Process
		default:
			rec.Fate = JobStillRunning
		}
	}
}

// records returns the jobs in the order first seen.
func (l *ledger) records() []JobRecord {
	out := make([]JobRecord, 0, len(l.order))
	for _, jid := range l.order {
		out = append(out, *l.jobs[jid])
	}
	return out
}

// count tallies fates.
func count(recs []JobRecord) JobCounts {
	var c JobCounts
	for _, r := range recs {
		switch r.Fate {
		case JobFinished:
			c.Finished++
		case JobRequeued:
			c.Requeued++
		case JobRescued:
			c.Rescued++
		case JobAlreadyRescued:
			c.AlreadyRescued++
		case JobSafe:
			c.Safe++
		case JobStillRunning:
			c.StillRunning++
		case JobLost:
			c.Lost++
		}
	}
	return c
}

// longest returns the n longest-running jobs on alive processes, longest first.
func longest(obs []sidekiq.Observation, now time.Time, n int) []RunningJob {
	var out []RunningJob
	for _, o := range obs {
		if o.State.Terminal() {
			continue
		}
		for _, j := range o.Jobs {
			out = append(out, RunningJob{JID: j.JID, Class: j.Class, Queue: j.Queue, Process: o.Identity,
				Running: now.Sub(j.RunAt)})
		}
	}
	sort.SliceStable(out, func(a, b int) bool {
		if out[a].Running != out[b].Running {
			return out[a].Running > out[b].Running
		}
		return out[a].JID < out[b].JID
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
