package sidekiq

// Sidekiq's Redis key layout, for every major drainctl speaks (6, 7, 8), and drainctl's own
// keys. No other file names a key or a heartbeat field: they call these. Every key name here
// is the bare name; Client.key adds the redis-namespace prefix.
//
//	                      6.0–6.4.1         6.4.2–6.x    7.x          8.x
//	live identities       processes (SET)   same         same         same
//	heartbeat hash        <id>              same         same         same (+ concurrency field from 8.1.2)
//	in-flight work        <id>:workers      <id>:work    <id>:work    <id>:work
//	remote signals        <id>-signals      same         same         same
//	queues                queues (SET), queue:<name> (LIST), schedule/retry/dead (ZSET)
//	beat interval         5 s               5 s          10 s         10 s
//	heartbeat TTL         60 s              60 s         60 s         60 s
//
// Sidekiq Pro's super_fetch: super_processes (SET), private lists queue:sq|<id>|<queue>.

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Keys shared by every layout.
const (
	keyProcesses      = "processes"       // SET of live identities
	keyQueues         = "queues"          // SET of queue names
	keySchedule       = "schedule"        // ZSET of scheduled jobs
	keyRetry          = "retry"           // ZSET of jobs waiting to retry
	keySuperProcesses = "super_processes" // SET: Sidekiq Pro super_fetch processes
	superListPrefix   = "queue:sq|"       // + <identity>|<queue>: super_fetch private lists
)

// Fields of the heartbeat hash <identity>.
const (
	fieldInfo        = "info"        // JSON: hostname, pid, tag, queues, version (7.0.2+), capsules (8.0.9+)…
	fieldBusy        = "busy"        // running jobs
	fieldBeat        = "beat"        // float epoch seconds of the last beat
	fieldQuiet       = "quiet"       // "true" once TSTP was acted on
	fieldRSS         = "rss"         // KB
	fieldRTT         = "rtt_us"      // Redis round trip, µs
	fieldConcurrency = "concurrency" // 8.1.2+: moved out of info
)

// queueKey is the LIST of a queue's jobs.
func queueKey(name string) string { return "queue:" + name }

// heartbeatKey is a process's heartbeat hash.
func heartbeatKey(identity string) string { return identity }

// signalsKey is the LIST a process pops one remote signal from per beat.
func signalsKey(identity string) string { return identity + "-signals" }

// workKeys are a process's in-flight work hashes: <id>:workers (6.0–6.4.1) and <id>:work
// (6.4.2+, 7, 8). Readers read both: a 6.x process's version is not in its heartbeat.
func workKeys(identity string) (workers, work string) {
	return identity + ":workers", identity + ":work"
}

// Layout facts of each major.
const (
	beatPause6 = 5 * time.Second  // BEAT_PAUSE of 6.x
	beatPause7 = 10 * time.Second // BEAT_PAUSE of 7.x and 8.x
)

// UnknownVersionError is a process whose Sidekiq major drainctl does not know (9 or later,
// or unreadable): its key layout may differ, so writes are refused unless the caller forces
// a layout (Options.ForceLayout, Client.ForceLayout).
type UnknownVersionError struct {
	Identity string
	Version  string
}

// Error names the process and its version.
func (e *UnknownVersionError) Error() string {
	return fmt.Sprintf("process %s runs Sidekiq %s, whose Redis layout drainctl does not know (it knows 6, 7 and 8); "+
		"force a layout to treat it as one of those", e.Identity, e.Version)
}

// ParseLayout reads "6", "7" or "8" (as a --force-sidekiq-layout value); "" is LayoutUnknown.
func ParseLayout(s string) (Layout, error) {
	switch strings.TrimSpace(s) {
	case "":
		return LayoutUnknown, nil
	case "6":
		return Layout6, nil
	case "7":
		return Layout7, nil
	case "8":
		return Layout8, nil
	}
	return LayoutUnknown, fmt.Errorf("sidekiq layout %q: want 6, 7 or 8", s)
}

// String is the layout's major ("6", "7", "8") or "unknown".
func (l Layout) String() string {
	switch l {
	case Layout6:
		return "6"
	case Layout7:
		return "7"
	case Layout8:
		return "8"
	}
	return "unknown"
}

// drainctl's own keys, all under the namespace.

// rescueMarkerPrefix starts the key of a per-death rescue marker.
const rescueMarkerPrefix = "drainctl:rescued:"

// markerKey is the marker of one death of one process running one job:
// drainctl:rescued:<jid>:<identity>:<run_at in ms> (0 when the work entry had no run_at).
func (c *Client) markerKey(j Job) string {
	runAt := int64(0)
	if !j.RunAt.IsZero() {
		runAt = j.RunAt.UnixMilli()
	}
	return c.key(rescueMarkerPrefix + j.JID + ":" + j.Process + ":" + strconv.FormatInt(runAt, 10))
}

// layoutOf maps a Sidekiq version string to its key layout; no version means 6.x (the
// `version` field appeared in 7.0.2). A major after 8, or an unreadable one, is
// LayoutUnknown: never silently taken for 8.
func layoutOf(version string) Layout {
	if version == "" {
		return Layout6
	}
	major, _, _ := strings.Cut(version, ".")
	switch n, err := strconv.Atoi(major); {
	case err != nil:
		return LayoutUnknown
	case n <= 6:
		return Layout6
	case n == 7:
		return Layout7
	case n == 8:
		return Layout8
	default:
		return LayoutUnknown
	}
}

// HeartbeatInterval is how often p writes its heartbeat (Sidekiq's BEAT_PAUSE): 5 s on 6.x,
// 10 s on 7 and later. It sizes how long a signal takes to be acknowledged.
func HeartbeatInterval(p Process) time.Duration {
	if p.Layout == Layout7 || p.Layout == Layout8 {
		return beatPause7
	}
	if p.Layout == LayoutUnknown && p.Version != "" {
		return beatPause7 // a version we cannot read is most likely newer
	}
	return beatPause6
}

// AckWithin is how long to wait for p to acknowledge a signal: a signal is read up to one beat
// after it is pushed and `quiet` shows it the beat after that, so two beats, plus half a beat
// and 2 s for a late beat (a beat's own work delays the next one) and Redis latency. Measured:
// exactly 10.0 s on 6.4.1 and 20.1 s on 7.3.2 in the worst case (signal pushed just after a beat).
func AckWithin(p Process) time.Duration {
	b := HeartbeatInterval(p)
	return 2*b + b/2 + 2*time.Second
}
