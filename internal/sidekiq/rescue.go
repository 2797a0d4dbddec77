package sidekiq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultMarkerTTL is how long a rescue marker keeps one death's job from being pushed again
// when RescueOptions.MarkerTTL is zero.
const DefaultMarkerTTL = 7 * 24 * time.Hour

// RescueOptions tunes Client.Rescue.
type RescueOptions struct {
	// RunID names this rescue run (a deploy or rescue invocation) in the markers it writes, so
	// a later run can say who rescued a job. Empty means a random "run-<hex>", returned in
	// RescueResult.RunID.
	RunID string
	// Now is the clock stamped into markers. Nil means time.Now.
	Now func() time.Time
	// MarkerTTL is how long a per-death marker lives. Zero means DefaultMarkerTTL.
	MarkerTTL time.Duration
	// DryRun performs every read and check and reports OutcomeWouldPush instead of writing.
	DryRun bool
	// Dead lists further identities known to be dead; their work hashes do not count as
	// "running on a live process". The processes the jobs came from always count as dead.
	Dead []string
}

// Outcome is what Rescue did with one job.
type Outcome string

// Rescue outcomes. Only OutcomePushed writes to Redis.
const (
	OutcomePushed         Outcome = "pushed"          // pushed back to queue:<name> by this run
	OutcomeWouldPush      Outcome = "would-push"      // dry run: would have been pushed
	OutcomeAlreadyRescued Outcome = "already-rescued" // another run rescued this job from this death (RescuedBy, RescuedAt)
	OutcomeQueued         Outcome = "queued"          // the exact payload is already in its queue
	OutcomeScheduled      Outcome = "scheduled"       // the jid is in the schedule set
	OutcomeRetry          Outcome = "retry"           // the jid is in the retry set
	OutcomeRunning        Outcome = "running"         // the jid is in a live process's work hash
	OutcomeSuperFetch     Outcome = "super-fetch"     // Sidekiq Pro's super_fetch owns it: left to Pro
	OutcomeDuplicate      Outcome = "duplicate"       // the same jid appeared earlier in the input
	OutcomeUnknownVersion Outcome = "unknown-version" // its process runs a Sidekiq major drainctl does not know; see Client.ForceLayout
	OutcomeInvalid        Outcome = "invalid"         // no jid, queue or payload to push
	OutcomeError          Outcome = "error"           // Redis failed for this job; see Reason
)

// JobRescue is the outcome of one job.
type JobRescue struct {
	Job     Job     `json:"job"`
	Outcome Outcome `json:"outcome"`
	// Reason explains the outcome in words (where the jid was found, which marker, …).
	Reason string `json:"reason,omitempty"`
	// RescuedBy and RescuedAt name the run that pushed the job back from this death, and
	// when: this run for OutcomePushed, an earlier or concurrent one for
	// OutcomeAlreadyRescued. RescuedBy is empty when a marker cannot be read (written by
	// another program); Reason then quotes it.
	RescuedBy string    `json:"rescued_by,omitempty"`
	RescuedAt time.Time `json:"rescued_at,omitzero"`
}

// SuperFetchOrphans describes a process whose jobs Sidekiq Pro's super_fetch holds in private
// lists: drainctl leaves them to Pro.
type SuperFetchOrphans struct {
	Identity string `json:"identity"`
	// Lists maps each private list key (queue:sq|<identity>|<queue>) to its length.
	Lists map[string]int64 `json:"lists,omitempty"`
	// Hint says how to make Pro recover them.
	Hint string `json:"hint"`
}

// RescueResult lists, per job, what Rescue did, and the super_fetch processes it left alone.
type RescueResult struct {
	// RunID is the run named in the markers this rescue wrote (RescueOptions.RunID or a
	// random one).
	RunID      string              `json:"run_id"`
	Jobs       []JobRescue         `json:"jobs"`
	SuperFetch []SuperFetchOrphans `json:"super_fetch,omitempty"`
}

// Count returns how many jobs had outcome o.
func (r RescueResult) Count(o Outcome) int {
	n := 0
	for _, j := range r.Jobs {
		if j.Outcome == o {
			n++
		}
	}
	return n
}

// rescueScript pushes one orphan back exactly once per death. It runs atomically in Redis,
// so the marker and the push are written together or not at all: a drainctl that dies after
// sending it either finds the marker (and the job in its queue) on its next run, or neither;
// two rescuers running it for the same death push once. (SET NX followed by a separate MULTI
// would leave a marker without a push if drainctl died between the two, losing the job for
// the marker's lifetime.) The "already queued" check is LPOS on the exact payload bytes
// (Redis >= 6.0.6); older servers get a chunked LRANGE scan.
//
// KEYS: marker, queue:<name>, queues. ARGV: payload, marker TTL ms, queue name, marker
// value, "1" to use LPOS, "1" for a dry run.
const rescueScript = `
local marker = redis.call('GET', KEYS[1])
if marker then return {'marked', marker} end
if ARGV[5] == '1' then
  local pos = redis.call('LPOS', KEYS[2], ARGV[1])
  if pos then return {'queued', tostring(pos)} end
else
  local n = redis.call('LLEN', KEYS[2])
  local i = 0
  while i < n do
    local chunk = redis.call('LRANGE', KEYS[2], i, i + 999)
    for j = 1, #chunk do
      if chunk[j] == ARGV[1] then return {'queued', tostring(i + j - 1)} end
    end
    i = i + 1000
  end
end
if ARGV[6] == '1' then return {'would-push', ''} end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[3])
return {'pushed', ''}
`

// Rescue pushes orphaned jobs — the last seen work of processes that died, see Orphans — back
// to queue:<name> the way Sidekiq's BasicFetch requeue does (RPUSH of the exact payload
// bytes, so they are fetched next), plus SADD queues as Sidekiq's client does.
//
// The unit of exactly-once is one death of one process running one job: the jid together
// with the dead process's identity (Job.Process) and the work entry's start (Job.RunAt). Each
// such death is pushed at most once, by this or any concurrent or later run, thanks to a
// marker (drainctl:rescued:<jid>:<identity>:<run_at ms> under the namespace, living
// MarkerTTL, recording RunID and the time) written in the same atomic step as the push. The
// same job orphaned again by another death (another process, or the same identity running it
// again later) is pushed again. Markers of drainctl versions that keyed by jid alone are
// ignored: they cannot tell one death from the next.
//
// A job is skipped, with the reason, when its jid is already queued (its exact payload),
// scheduled, in retry, or running on a live process, and never touched when Sidekiq Pro's
// super_fetch owns its process (reported in SuperFetch with how to trigger Pro's recovery).
// Within one call a jid is pushed at most once (later entries are OutcomeDuplicate).
//
// Round trips: a fixed handful plus one per 1,000 keys scanned for super_fetch lists and per
// 1,000 members of the schedule and retry sets. Needs a non-cluster Redis, as Sidekiq does.
// The error joins every Redis failure; the result still lists every job.
func (c *Client) Rescue(ctx context.Context, jobs []Job, opt RescueOptions) (RescueResult, error) {
	ttl := opt.MarkerTTL
	if ttl <= 0 {
		ttl = DefaultMarkerTTL
	}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	runID := opt.RunID
	if runID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		runID = "run-" + hex.EncodeToString(b[:])
	}
	res := RescueResult{RunID: runID, Jobs: make([]JobRescue, len(jobs))}
	var pending []int // indexes into res.Jobs still to decide
	seen := make(map[string]int, len(jobs))
	dead := make(map[string]bool, len(opt.Dead))
	for _, id := range opt.Dead {
		dead[id] = true
	}
	for i, j := range jobs {
		res.Jobs[i].Job = j
		switch {
		case j.JID == "" || j.Queue == "" || len(j.Payload) == 0:
			res.Jobs[i].Outcome, res.Jobs[i].Reason = OutcomeInvalid, "job has no jid, queue or payload to push"
			continue
		}
		if first, dup := seen[j.JID]; dup {
			res.Jobs[i].Outcome = OutcomeDuplicate
			res.Jobs[i].Reason = fmt.Sprintf("same jid as job %d of the input", first)
			continue
		}
		seen[j.JID] = i
		if j.Process != "" {
			dead[j.Process] = true
		}
		pending = append(pending, i)
	}
	if len(pending) == 0 {
		return res, nil
	}
	decided := func(i int, o Outcome, reason string) {
		res.Jobs[i].Outcome, res.Jobs[i].Reason = o, reason
	}
	keep := func(filter func(i int) bool) {
		out := pending[:0]
		for _, i := range pending {
			if filter(i) {
				out = append(out, i)
			}
		}
		pending = out
	}
	var errs []error
	fail := func(err error) (RescueResult, error) {
		for _, i := range pending {
			decided(i, OutcomeError, err.Error())
		}
		return res, errors.Join(append(errs, err)...)
	}

	// 1. Sidekiq Pro super_fetch: its private lists hold the jobs; never requeue those.
	super, err := c.superFetchOrphans(ctx, dead, jobs, pending)
	if err != nil {
		return fail(err)
	}
	for _, s := range super {
		res.SuperFetch = append(res.SuperFetch, s)
	}
	sort.Slice(res.SuperFetch, func(a, b int) bool { return res.SuperFetch[a].Identity < res.SuperFetch[b].Identity })
	keep(func(i int) bool {
		if s, ok := super[jobs[i].Process]; ok {
			decided(i, OutcomeSuperFetch, s.Hint)
			return false
		}
		return true
	})

	// 2. Markers of earlier rescues of the same deaths.
	markers := make([]*redis.StringCmd, len(pending))
	pipe := c.rdb.Pipeline()
	for k, i := range pending {
		markers[k] = pipe.Get(ctx, c.markerKey(jobs[i]))
	}
	if _, err := pipe.Exec(ctx); err != nil && !isNil(err) {
		return fail(fmt.Errorf("read rescue markers on %s: %w", c.Redacted(), err))
	}
	marked := make(map[int]string)
	for k, i := range pending {
		if v, err := markers[k].Result(); err == nil {
			marked[i] = v
		}
	}
	alreadyRescued := func(i int, value string) {
		m, ok := decodeMarker(value)
		res.Jobs[i].RescuedBy, res.Jobs[i].RescuedAt = m.Run, m.At
		reason := "rescued from this death by run " + m.Run + " at " + m.At.UTC().Format(time.RFC3339)
		if !ok {
			reason = "rescued from this death by another program: marker says " + strconv.Quote(safeShort(value))
		}
		decided(i, OutcomeAlreadyRescued, reason+" (marker "+c.markerKey(jobs[i])+")")
	}
	keep(func(i int) bool {
		if v, ok := marked[i]; ok {
			alreadyRescued(i, v)
			return false
		}
		return true
	})

	// 3. Running on a live process. A work entry whose own death was already rescued is a
	// dead process's leftover (its hash lives 60 s after the kill), not a live run.
	if len(pending) > 0 {
		snap, err := c.Snapshot(ctx)
		if err != nil {
			return fail(fmt.Errorf("rescue: %w", err))
		}
		wanted := make(map[string]bool, len(pending))
		for _, i := range pending {
			wanted[jobs[i].JID] = true
		}
		var entries []Job
		for _, p := range snap.Processes {
			if !p.HashExists || dead[p.Identity] {
				continue
			}
			for _, j := range p.Jobs {
				if wanted[j.JID] {
					entries = append(entries, j)
				}
			}
		}
		unknown := map[string]error{}
		for _, p := range snap.Processes {
			if dead[p.Identity] {
				if err := c.CheckLayouts([]Process{p}); err != nil {
					unknown[p.Identity] = err
				}
			}
		}
		keep(func(i int) bool {
			if err, ok := unknown[jobs[i].Process]; ok {
				decided(i, OutcomeUnknownVersion, err.Error())
				return false
			}
			return true
		})
		running := make(map[string]string)
		if len(entries) > 0 {
			pipe := c.rdb.Pipeline()
			exists := make([]*redis.IntCmd, len(entries))
			for k, j := range entries {
				exists[k] = pipe.Exists(ctx, c.markerKey(j))
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return fail(fmt.Errorf("read rescue markers on %s: %w", c.Redacted(), err))
			}
			for k, j := range entries {
				if exists[k].Val() == 0 {
					running[j.JID] = j.Process
				}
			}
		}
		keep(func(i int) bool {
			if id, ok := running[jobs[i].JID]; ok {
				decided(i, OutcomeRunning, "running on live process "+id)
				return false
			}
			return true
		})
	}

	// 4. Scheduled or in retry.
	for _, set := range []struct {
		name    string
		outcome Outcome
	}{{keySchedule, OutcomeScheduled}, {keyRetry, OutcomeRetry}} {
		if len(pending) == 0 {
			break
		}
		jids := make([]string, len(pending))
		for k, i := range pending {
			jids[k] = jobs[i].JID
		}
		found, err := c.findInSortedSet(ctx, c.key(set.name), jids)
		if err != nil {
			return fail(err)
		}
		keep(func(i int) bool {
			if found[jobs[i].JID] {
				decided(i, set.outcome, "jid found in "+c.key(set.name))
				return false
			}
			return true
		})
	}
	if len(pending) == 0 {
		return res, nil
	}

	// 5. Push (or, dry, check the queue), atomically with the marker, in one pipeline.
	lpos, err := c.hasLPOS(ctx)
	if err != nil {
		return fail(err)
	}
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	at := now().UTC().Truncate(time.Millisecond)
	cmds := make([]*redis.Cmd, len(pending))
	pipe = c.rdb.Pipeline()
	for k, i := range pending {
		j := jobs[i]
		value := encodeMarker(rescueMarker{Run: runID, At: at, Process: j.Process, RunAt: j.RunAt, Queue: j.Queue})
		cmds[k] = pipe.Eval(ctx, rescueScript,
			[]string{c.markerKey(j), c.key(queueKey(j.Queue)), c.key(keyQueues)},
			string(j.Payload), ttl.Milliseconds(), j.Queue, value, flag(lpos), flag(opt.DryRun))
	}
	_, _ = pipe.Exec(ctx) // errors are read per command below
	for k, i := range pending {
		reply, err := cmds[k].StringSlice()
		if err != nil || len(reply) != 2 {
			if err == nil {
				err = fmt.Errorf("unexpected reply %v", cmds[k].Val())
			}
			err = fmt.Errorf("rescue job %s to %s on %s: %w", jobs[i].JID, c.key(queueKey(jobs[i].Queue)), c.Redacted(), err)
			errs = append(errs, err)
			decided(i, OutcomeError, err.Error())
			continue
		}
		switch reply[0] {
		case "marked":
			alreadyRescued(i, reply[1])
		case "queued":
			decided(i, OutcomeQueued, "exact payload at index "+reply[1]+" of "+c.key(queueKey(jobs[i].Queue)))
		case "would-push":
			decided(i, OutcomeWouldPush, "dry run: would RPUSH to "+c.key(queueKey(jobs[i].Queue)))
		case "pushed":
			res.Jobs[i].RescuedBy, res.Jobs[i].RescuedAt = runID, at
			decided(i, OutcomePushed, "RPUSH to "+c.key(queueKey(jobs[i].Queue)))
		default:
			err := fmt.Errorf("rescue job %s: unexpected script reply %q", jobs[i].JID, reply[0])
			errs = append(errs, err)
			decided(i, OutcomeError, err.Error())
		}
	}
	return res, errors.Join(errs...)
}

// rescueMarker is the value of a rescue marker: which run pushed which death's job back, and
// when.
type rescueMarker struct {
	Run     string    `json:"run"`
	At      time.Time `json:"at"`
	Process string    `json:"process"`
	RunAt   time.Time `json:"run_at,omitzero"`
	Queue   string    `json:"queue"`
}

func encodeMarker(m rescueMarker) string {
	b, _ := json.Marshal(m) // plain strings and times: cannot fail
	return string(b)
}

// decodeMarker reads a marker value; ok is false for a value drainctl did not write.
func decodeMarker(s string) (rescueMarker, bool) {
	var m rescueMarker
	if json.Unmarshal([]byte(s), &m) != nil || m.Run == "" {
		return rescueMarker{}, false
	}
	return m, true
}

// superFetchOrphans finds which of the pending jobs' processes Sidekiq Pro's super_fetch owns:
// members of super_processes, or owners of private lists queue:sq|<identity>|<queue> (found
// with one SCAN pass over the keyspace, 1,000 keys per round trip).
func (c *Client) superFetchOrphans(ctx context.Context, dead map[string]bool, jobs []Job, pending []int) (map[string]SuperFetchOrphans, error) {
	var ids []string
	seen := map[string]bool{}
	for _, i := range pending {
		if id := jobs[i].Process; id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	out := map[string]SuperFetchOrphans{}
	if len(ids) == 0 {
		return out, nil
	}
	pipe := c.rdb.Pipeline()
	member := make([]*redis.BoolCmd, len(ids))
	for k, id := range ids {
		member[k] = pipe.SIsMember(ctx, c.key(keySuperProcesses), id)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read %s on %s: %w", c.key(keySuperProcesses), c.Redacted(), err)
	}
	lists := map[string]map[string]int64{}
	prefix := c.key(superListPrefix)
	var cursor uint64
	for {
		keys, next, err := c.rdb.Scan(ctx, cursor, globEscape(prefix)+"*", 1000).Result()
		if err != nil {
			return nil, fmt.Errorf("scan %s* on %s: %w", prefix, c.Redacted(), err)
		}
		for _, k := range keys {
			owner, _, ok := strings.Cut(strings.TrimPrefix(k, prefix), "|")
			if ok && seen[owner] {
				if lists[owner] == nil {
					lists[owner] = map[string]int64{}
				}
				lists[owner][k] = 0
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	if len(lists) > 0 {
		type lenCmd struct {
			owner, key string
			cmd        *redis.IntCmd
		}
		var lens []lenCmd
		pipe := c.rdb.Pipeline()
		for owner, ks := range lists {
			for k := range ks {
				lens = append(lens, lenCmd{owner, k, pipe.LLen(ctx, k)})
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("measure super_fetch lists on %s: %w", c.Redacted(), err)
		}
		for _, l := range lens {
			lists[l.owner][l.key] = l.cmd.Val()
		}
	}
	for k, id := range ids {
		if !member[k].Val() && lists[id] == nil {
			continue
		}
		out[id] = SuperFetchOrphans{Identity: id, Lists: lists[id], Hint: fmt.Sprintf(
			"Sidekiq Pro super_fetch owns the jobs of %s (its private lists %s*): drainctl leaves them to Pro, "+
				"which recovers them when any super_fetch process starts after %s's heartbeat hash expired "+
				"(60 s after its last beat); start or restart one Sidekiq Pro process to trigger it", id, prefix+id+"|", id)}
	}
	return out, nil
}

// findInSortedSet reports which jids occur in the members (whole job payloads) of a sorted set
// such as schedule or retry. Like Sidekiq's own find_job it ZSCANs with MATCH *<jid>*, here one
// cursor per jid advanced together in one pipeline per round, and confirms each hit by the
// member's decoded jid.
func (c *Client) findInSortedSet(ctx context.Context, key string, jids []string) (map[string]bool, error) {
	found := make(map[string]bool)
	cursors := make(map[string]uint64, len(jids))
	active := append([]string(nil), jids...)
	for len(active) > 0 {
		pipe := c.rdb.Pipeline()
		cmds := make([]*redis.ScanCmd, len(active))
		for k, jid := range active {
			cmds[k] = pipe.ZScan(ctx, key, cursors[jid], "*"+globEscape(jid)+"*", 1000)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("scan %s on %s: %w", key, c.Redacted(), err)
		}
		next := active[:0]
		for k, jid := range active {
			members, cursor := cmds[k].Val()
			for m := 0; m+1 < len(members); m += 2 { // member, score pairs
				var p struct {
					JID string `json:"jid"`
				}
				if json.Unmarshal([]byte(members[m]), &p) == nil && p.JID == jid {
					found[jid] = true
				}
			}
			if cursor != 0 && !found[jid] {
				cursors[jid] = cursor
				next = append(next, jid)
			}
		}
		active = next
	}
	return found, nil
}

// hasLPOS reports whether the server has LPOS (Redis >= 6.0.6), from INFO server. When the
// version cannot be read, LPOS is assumed.
func (c *Client) hasLPOS(ctx context.Context) (bool, error) {
	info, err := c.rdb.Info(ctx, "server").Result()
	if err != nil {
		if isReplyError(err) { // INFO disabled or renamed: assume a modern server
			return true, nil
		}
		return false, fmt.Errorf("read server version on %s: %w", c.Redacted(), err)
	}
	return versionAtLeast(infoField(info, "redis_version"), 6, 0, 6), nil
}

// infoField returns the value of name in an INFO reply, "" when absent.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// versionAtLeast compares a dotted version with major.minor.patch; unreadable means yes.
func versionAtLeast(v string, want ...int) bool {
	parts := strings.Split(v, ".")
	for k, w := range want {
		if k >= len(parts) {
			return false
		}
		n, err := strconv.Atoi(parts[k])
		if err != nil {
			return true
		}
		if n != w {
			return n > w
		}
	}
	return true
}

// globEscape escapes the characters Redis MATCH patterns treat specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
