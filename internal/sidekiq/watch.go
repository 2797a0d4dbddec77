package sidekiq

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// State is where a watched process stands in its drain, as concluded from Redis (and from
// external evidence fed in with MarkDead).
type State string

// The states a Watcher reports. Gone and dead are terminal: once concluded they never change.
const (
	// StateUnknown: no heartbeat of the process has been seen yet.
	StateUnknown State = "unknown"
	// StateRunning: heartbeat present, not quiet.
	StateRunning State = "running"
	// StateQuiet: the heartbeat says quiet == "true": a TSTP was acknowledged.
	StateQuiet State = "quiet"
	// StateDrained: quiet, busy 0 and no work entries; safe to stop.
	StateDrained State = "drained"
	// StateGone: it left `processes` while its heartbeat hash still existed and its work hash
	// was unlinked — Sidekiq's clean shutdown, which pushed unfinished jobs back itself.
	StateGone State = "gone"
	// StateDead: its beat stopped and its heartbeat hash disappeared for good (SIGKILL, OOM),
	// or external evidence said so. Its last seen jobs are orphans to rescue.
	StateDead State = "dead"
)

// Terminal reports whether s is final (gone or dead).
func (s State) Terminal() bool { return s == StateGone || s == StateDead }

// heartbeatTTL is the EXPIRE Sidekiq puts on a heartbeat hash and its work hash at each beat.
const heartbeatTTL = 60 * time.Second

// DefaultWatchInterval is the poll interval a Watcher uses when Interval is zero.
const DefaultWatchInterval = time.Second

// Observation is what a Watcher knows about one process after a tick.
type Observation struct {
	Identity string `json:"identity"`
	State    State  `json:"state"`
	// Process is the process as its heartbeat last described it (kept after the hash is gone).
	Process Process `json:"process"`
	// Jobs is the process's in-flight work as of its last heartbeat that could be read
	// consistently; kept after the process died, because its work hash expires with it.
	// These are the orphans a rescue pushes back when State is StateDead. Shared with the
	// watcher and later observations: treat it as read-only.
	Jobs []Job `json:"jobs"`
	// LastBeat is the process's own `beat` timestamp from its last seen heartbeat.
	LastBeat time.Time `json:"last_beat"`
	// Evidence says why the state was concluded, or what the watcher is waiting for.
	Evidence string `json:"evidence,omitempty"`
	// Since is when (watcher clock) the process entered State.
	Since time.Time `json:"since"`
	// Listed and HashExists are what the last successful tick read: membership in
	// `processes` and existence of the heartbeat hash.
	Listed     bool `json:"listed"`
	HashExists bool `json:"hash_exists"`
}

// Watcher follows selected processes through quiet, drain and exit in at most two round trips
// per tick, whatever the number of processes, reading in full only the processes whose
// heartbeat moved (see Poll). A Redis error makes a tick fail and Until retries it, so a
// dropped connection or a restarted Redis does not end a watch.
//
// Death is concluded from Redis alone when the heartbeat hash has disappeared and either the
// beat had stopped for about the hash's 60 s TTL while every tick in between succeeded (the
// natural expiry after SIGKILL), or the hash stayed missing for three heartbeats plus one poll
// interval (a live process rewrites it at its next successful beat, e.g. after Redis lost its
// data; the first beat after a Redis restart may fail on a stale connection). A
// process that left `processes` while its hash still existed is gone clean. Membership alone
// proves nothing: Sidekiq's ProcessSet cleanup removes dead identities too. While a process's
// heartbeat hash exists it is never concluded dead from Redis.
//
// The 60 s count starts at the process's own last beat as first read (a process whose beat
// stopped 50 s before the watch began is concluded dead as soon as its hash has expired,
// about 10 s later), not at the watcher's first tick. That beat comes from the process's
// clock, so it is only trusted where clock skew cannot turn it against a live process: a
// beat in the future counts as now; a beat older than the hash's TTL while the hash still
// exists proves the clocks disagree and counts as now too; and when the hash is found
// missing after the identity also left `processes` (as after a flush or a restart of Redis),
// or a tick failed before the first read, only the watcher's own clock counts. Later beats
// are timed by the watcher's clock. Death is never concluded later than when counting from
// the first tick.
type Watcher struct {
	// Source reads the processes (a *Client, or anything that reads them the same way).
	Source Source
	// Interval is the time between ticks in Until. Zero means DefaultWatchInterval.
	Interval time.Duration
	// Now is the watcher's clock. Nil means time.Now.
	Now func() time.Time
	// After waits between ticks. Nil means time.After.
	After func(time.Duration) <-chan time.Time
	// OnTick, when set, receives the observations after every successful tick.
	OnTick func([]Observation)
	// OnError, when set, receives the error of every failed tick (Until retries it).
	OnError func(error)

	mu       sync.Mutex
	order    []string
	track    map[string]*tracked
	lastFail time.Time // watcher clock time of the last failed tick
	// moved and compared count, at the last successful tick after the first, the processes
	// whose fields had moved (see tracked.changed) among those compared: when more than half
	// moved, the next tick reads everything in full at once instead of reading Beats first.
	moved, compared int
}

// tracked is the watcher's memory of one process between ticks.
type tracked struct {
	obs         Observation
	seen        bool      // a heartbeat hash of it has been read
	lastAdvance time.Time // when its beat was last seen to change: watcher clock, or its own beat when seeded
	seeded      bool      // lastAdvance is the process's own first-read beat (its clock), not yet confirmed by a change
	firstTick   time.Time // watcher clock of its first successful tick
	absentSince time.Time // watcher clock of the first tick that found its hash missing, since it was last present
}

// Source is what a Watcher reads the processes from; *Client is one.
type Source interface {
	// SnapshotOf reads the given identities whether or not they are still listed.
	SnapshotOf(ctx context.Context, identities []string) (*Snapshot, error)
}

// NewWatcher returns a Watcher for the given processes (typically a selection from a
// Snapshot), seeded with what that snapshot said about each of them.
func (c *Client) NewWatcher(ps []Process) *Watcher { return NewWatcher(c, ps) }

// NewWatcher returns a Watcher reading src, for the given processes, seeded with what the
// snapshot they came from said about each of them.
func NewWatcher(src Source, ps []Process) *Watcher {
	w := &Watcher{Source: src, track: make(map[string]*tracked, len(ps))}
	for _, p := range ps {
		if _, dup := w.track[p.Identity]; dup {
			continue
		}
		t := &tracked{obs: Observation{Identity: p.Identity, State: StateUnknown, Process: p,
			Listed: p.Listed, HashExists: p.HashExists}}
		if p.HashExists {
			t.seen = true
			t.obs.LastBeat = p.Beat
			t.obs.Jobs = p.Jobs
			t.obs.State = liveState(p)
		}
		w.order = append(w.order, p.Identity)
		w.track[p.Identity] = t
	}
	return w
}

func (w *Watcher) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Watcher) interval() time.Duration {
	if w.Interval > 0 {
		return w.Interval
	}
	return DefaultWatchInterval
}

func (w *Watcher) after(d time.Duration) <-chan time.Time {
	if w.After != nil {
		return w.After(d)
	}
	return time.After(d)
}

// MarkDead concludes that a process is dead from evidence outside Redis (for example "ECS task
// stopped, container exit 137"), without waiting for its heartbeat to expire. Its last seen
// jobs become orphans. Feed it only evidence that the process no longer runs. A process already
// gone clean stays gone; an identity the watcher does not follow is ignored.
func (w *Watcher) MarkDead(identity, evidence string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.track[identity]
	if t == nil || t.obs.State.Terminal() {
		return
	}
	w.set(t, StateDead, w.now(), "external evidence: "+evidence)
}

// Observations returns what the watcher knows now, without reading Redis.
func (w *Watcher) Observations() []Observation {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.observations()
}

// Poll runs one tick over the processes not yet gone or dead (gone and dead ones are never
// read again), reading only what changed, in at most two round trips whatever their number:
//
//  1. The first tick of the watcher (or with a Source that is not a BeatReader, every tick),
//     and a tick after one where more than half the processes had moved: one SnapshotOf —
//     SISMEMBER processes, HGETALL <id>, <id>:workers, <id>:work for each. Other ticks: one
//     Beats pipeline — SISMEMBER processes and HMGET <id> beat busy quiet for each, a few
//     bytes per process.
//  2. Only when the first round trip was Beats, and only for the processes it shows changed:
//     one SnapshotOf of those. A process changed when its beat, busy or quiet moved, when it
//     is not listed in `processes` (a clean exit is told from its work hash), when its
//     heartbeat hash was missing at the last tick and holds fields now, or when the hash just
//     disappeared. A process whose fields did not move keeps its last observation, jobs
//     included: Sidekiq rewrites its work hash only in the beat that moves `beat`. A missing
//     hash needs no second read (its last seen jobs are kept, as always).
//
// So a tick where nothing moved costs one small round trip, and at most two are made. On a
// Redis error (in either) it returns the previous observations and the error, having applied
// nothing; the next tick simply tries again.
func (w *Watcher) Poll(ctx context.Context) ([]Observation, error) {
	br, delta := w.Source.(BeatReader)
	w.mu.Lock()
	allFull := w.moved*2 > w.compared
	var full, cheap []string
	n := 0
	for _, id := range w.order {
		t := w.track[id]
		switch {
		case t.obs.State.Terminal():
			continue
		case !delta || allFull || t.firstTick.IsZero():
			full = append(full, id)
		default:
			cheap = append(cheap, id)
		}
		n++
	}
	w.mu.Unlock()

	var beats []Beat
	var reread []bool // parallel to beats: read again in full
	if len(cheap) > 0 {
		var err error
		if beats, err = br.Beats(ctx, cheap); err != nil {
			return w.failed(n, err)
		}
		reread = make([]bool, len(beats))
		w.mu.Lock()
		for i, b := range beats {
			if t := w.track[b.Identity]; t != nil && t.changed(b) {
				reread[i] = true
				full = append(full, b.Identity)
			}
		}
		w.mu.Unlock()
	}
	var snap *Snapshot
	if len(full) > 0 {
		var err error
		if snap, err = w.Source.SnapshotOf(ctx, full); err != nil {
			return w.failed(n, err)
		}
	}
	w.mu.Lock()
	now := w.now()
	moved, compared := 0, len(beats)
	for _, r := range reread {
		if r {
			moved++
		}
	}
	for i, b := range beats {
		if t := w.track[b.Identity]; t != nil && !reread[i] && !b.Fields {
			w.apply(t, now, Process{Identity: b.Identity, Listed: b.Listed})
		}
		// Otherwise unchanged: listed, hash present, beat, busy and quiet as last read, so
		// the last observation stands as it is (apply would conclude the same).
	}
	if snap != nil {
		for _, p := range snap.Processes {
			if t := w.track[p.Identity]; t != nil {
				if len(beats) == 0 && !t.firstTick.IsZero() && !t.obs.State.Terminal() {
					// Read in full at once: would Beats have shown it moved?
					compared++
					if t.changed(Beat{Identity: p.Identity, Listed: p.Listed, Fields: p.HashExists, Beat: p.Beat, Busy: p.Busy, Quiet: p.Quiet}) {
						moved++
					}
				}
				w.apply(t, now, p)
			}
		}
	}
	w.moved, w.compared = moved, compared
	obs := w.observations()
	w.mu.Unlock()
	if w.OnTick != nil {
		w.OnTick(obs)
	}
	return obs, nil
}

// failed records a failed tick of n processes and returns the previous observations with err.
func (w *Watcher) failed(n int, err error) ([]Observation, error) {
	w.mu.Lock()
	w.lastFail = w.now()
	obs := w.observations()
	w.mu.Unlock()
	err = fmt.Errorf("watch %d sidekiq processes: %w", n, err)
	if w.OnError != nil {
		w.OnError(err)
	}
	return obs, err
}

// changed says whether b leaves something to read in full about t (see Poll). Callers hold
// w.mu.
func (t *tracked) changed(b Beat) bool {
	o := &t.obs
	switch {
	case b.Err != "":
		return true // let the full read report it
	case !b.Fields:
		// No state fields: the hash is missing. When the last tick saw it, a full read tells
		// a missing hash from one holding none of the fields, which Sidekiq never writes.
		return o.HashExists
	case !o.HashExists || !t.absentSince.IsZero():
		return true // back after it was missing
	case !b.Listed || !o.Listed:
		return true
	case b.Beat.IsZero() || b.Busy < 0:
		return true // unreadable: only the full read can say
	}
	return !b.Beat.Equal(o.Process.Beat) || b.Busy != o.Process.Busy || b.Quiet != o.Process.Quiet
}

// Until polls every Interval until pred holds for a successful tick's observations, and
// returns them. Failed ticks are retried; only the context ends the wait early, in which case
// the last observations come back with the context's error.
func (w *Watcher) Until(ctx context.Context, pred func([]Observation) bool) ([]Observation, error) {
	for {
		obs, err := w.Poll(ctx)
		if err == nil && pred(obs) {
			return obs, nil
		}
		if ctx.Err() != nil {
			return obs, fmt.Errorf("watch sidekiq processes: %w", ctx.Err())
		}
		select {
		case <-ctx.Done():
			return w.Observations(), fmt.Errorf("watch sidekiq processes: %w", ctx.Err())
		case <-w.after(w.interval()):
		}
	}
}

// Every returns a predicate for Until that holds when every observation is in one of states.
func Every(states ...State) func([]Observation) bool {
	return func(obs []Observation) bool {
		for _, o := range obs {
			ok := false
			for _, s := range states {
				ok = ok || o.State == s
			}
			if !ok {
				return false
			}
		}
		return true
	}
}

// Orphans lists the last seen jobs of every dead process: what a rescue should push back.
// Processes that left cleanly are not included (Sidekiq requeued their jobs itself).
func Orphans(obs []Observation) []Job {
	var out []Job
	for _, o := range obs {
		if o.State == StateDead {
			out = append(out, o.Jobs...)
		}
	}
	return out
}

// observations copies the current observations in selection order. Callers hold w.mu. The
// Jobs slices are shared, not copied (50,000 jobs would be copied at every tick): the
// watcher never changes a slice it handed out, only replaces it, and the capacity is cut to
// the length so a caller's append never writes into it.
func (w *Watcher) observations() []Observation {
	out := make([]Observation, 0, len(w.order))
	for _, id := range w.order {
		o := w.track[id].obs
		o.Jobs = o.Jobs[:len(o.Jobs):len(o.Jobs)]
		out = append(out, o)
	}
	return out
}

// set moves t to state s (keeping Since when the state does not change). Callers hold w.mu.
func (w *Watcher) set(t *tracked, s State, now time.Time, evidence string) {
	if t.obs.State != s || t.obs.Since.IsZero() {
		t.obs.Since = now
	}
	t.obs.State = s
	t.obs.Evidence = evidence
}

// liveState is the state a readable heartbeat of a listed process shows.
func liveState(p Process) State {
	switch {
	case p.Quiet && p.Busy == 0 && len(p.Jobs) == 0:
		return StateDrained
	case p.Quiet:
		return StateQuiet
	default:
		return StateRunning
	}
}

// apply folds one tick's reading of a process into t. Callers hold w.mu.
func (w *Watcher) apply(t *tracked, now time.Time, p Process) {
	o := &t.obs
	if o.State.Terminal() {
		return // concluded; MarkDead may have raced with this tick
	}
	o.Listed, o.HashExists = p.Listed, p.HashExists
	first := t.firstTick.IsZero()
	if first {
		t.firstTick = now
	}
	if p.HashExists {
		t.absentSince = time.Time{}
		advanced := !t.seen || !p.Beat.Equal(o.LastBeat)
		if advanced {
			o.LastBeat = p.Beat
		}
		t.seen = true
		switch {
		case first:
			t.seed(now, true)
		case advanced:
			t.lastAdvance, t.seeded = now, false
		}
		o.Process = p
		// The work hash is rewritten (UNLINK + HSET in one MULTI) at each beat just before
		// the heartbeat hash, in a separate transaction, so a tick can read a work hash one
		// beat newer than `busy`. Take a non-empty work hash as it is; take an empty one only
		// when `busy` agrees, so a torn read never forgets in-flight jobs. Once the process has
		// left `processes` its work hash was unlinked on purpose: keep the last jobs.
		if p.Listed && (len(p.Jobs) > 0 || p.Busy == 0) {
			o.Jobs = p.Jobs
		}
		switch {
		case !p.Listed && len(p.Jobs) == 0:
			w.set(t, StateGone, now, "left processes while its heartbeat hash still existed (clean shutdown)")
		case !p.Listed:
			// Sidekiq's clear_heartbeat pipelines SREM and UNLINK without MULTI: wait a tick
			// for the unlink before calling it clean.
			o.Evidence = "left processes; waiting for its work hash to be unlinked"
		default:
			w.set(t, liveState(p), now, "")
		}
		return
	}

	if first {
		t.seed(now, false)
	}
	if t.absentSince.IsZero() {
		t.absentSince = now
	}
	grace := 3*HeartbeatInterval(o.Process) + w.interval()
	// A hash that expired naturally outlived the last beat we saw by its TTL, less the time
	// that beat may have waited for our next tick.
	expired := heartbeatTTL - w.interval()
	if expired < grace {
		expired = grace
	}
	since := t.lastAdvance
	if t.seeded && (!p.Listed || w.lastFail.After(since)) {
		// Gone from `processes` too: a cleanup after expiry, or Redis lost its data. Only the
		// latter can hit a live process, and then a beat from a lagging clock must not count.
		// Likewise when a tick failed between that beat and our first read. Either way the
		// count falls back to the watcher's own clock, never later than without the seed.
		since = t.firstTick
	}
	stale := now.Sub(since)
	switch {
	case t.seen && !w.lastFail.After(since) && stale >= expired:
		w.set(t, StateDead, now, fmt.Sprintf("heartbeat stopped (last beat %s, none seen for %s) and its hash expired%s",
			o.LastBeat.UTC().Format(time.RFC3339), stale.Round(time.Second), listedNote(p.Listed)))
	case now.Sub(t.absentSince) >= grace:
		what := "heartbeat hash missing"
		if !t.seen {
			what = "no heartbeat hash seen"
		}
		w.set(t, StateDead, now, fmt.Sprintf("%s for %s, longer than three heartbeats%s",
			what, now.Sub(t.absentSince).Round(time.Second), listedNote(p.Listed)))
	default:
		o.Evidence = fmt.Sprintf("heartbeat hash missing since %s; waiting up to %s for the process to rewrite it",
			t.absentSince.UTC().Format(time.RFC3339), grace)
	}
}

// seed starts the "beat stopped" clock at the first successful tick: at the process's own
// last beat when that beat can be trusted, else at now. hashExists is what this tick read.
// Callers hold w.mu.
func (t *tracked) seed(now time.Time, hashExists bool) {
	t.lastAdvance, t.seeded = now, false
	b := t.obs.LastBeat
	switch {
	case !t.seen || b.IsZero() || !b.Before(now):
		return // no beat, or one in the future (the process's clock is ahead): now
	case hashExists && now.Sub(b) > heartbeatTTL:
		return // the hash outlived its TTL after that beat: the process's clock is behind
	}
	t.lastAdvance, t.seeded = b, true
}

func listedNote(listed bool) string {
	if listed {
		return "; still listed in processes"
	}
	return "; already removed from processes (someone's ProcessSet cleanup)"
}
