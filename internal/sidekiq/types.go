package sidekiq

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Layout is the Redis key layout a Sidekiq process writes, which differs by major version.
type Layout int

// Layouts drainctl reads. Layout6 covers 6.0–6.4.1 (`<id>:workers`); from 6.4.2 the work hash
// is `<id>:work`, which Layout6 readers must also accept.
const (
	LayoutUnknown Layout = iota
	Layout6
	Layout7
	Layout8
)

// Client reads and signals a Sidekiq fleet through Redis, with Sidekiq's own key layout.
type Client struct {
	rdb       redis.UniversalClient
	namespace string // key prefix without the trailing colon; "" for none
	redacted  string // the connection URL with any password replaced, for messages
	// forced is the layout assumed for processes of a Sidekiq major drainctl does not know;
	// LayoutUnknown means none: they are reported and refused for writes.
	forced Layout
	// tried describes the connection for errors; password is redacted from them.
	tried    string
	password string
}

// ForceLayout makes the Client treat processes of an unknown Sidekiq major (9 or later) as
// layout l (Layout6, Layout7 or Layout8) instead of refusing to write for them; LayoutUnknown
// undoes it. Call it before using the Client.
func (c *Client) ForceLayout(l Layout) { c.forced = l }

// CheckLayouts returns an *UnknownVersionError for each process (joined) whose Sidekiq major
// drainctl does not know, unless a layout is forced; nil when all are known. Callers check it
// before writing (quiet, stop) and may print it as a warning on reads. Rescue applies it
// itself (OutcomeUnknownVersion).
func (c *Client) CheckLayouts(ps []Process) error {
	var errs []error
	for _, p := range ps {
		if p.HashExists && p.Layout == LayoutUnknown {
			errs = append(errs, &UnknownVersionError{Identity: p.Identity, Version: p.Version})
		}
	}
	return errors.Join(errs...)
}

// NewClient wraps an existing go-redis client; namespace is the redis-namespace prefix
// without its colon ("" for none).
func NewClient(rdb redis.UniversalClient, namespace string) *Client {
	return &Client{rdb: rdb, namespace: namespace}
}

// key prefixes a full key name with the namespace, as redis-namespace does.
func (c *Client) key(name string) string {
	if c.namespace == "" {
		return name
	}
	return c.namespace + ":" + name
}

// Close releases the Redis connections.
func (c *Client) Close() error { return c.rdb.Close() }

// Process is one Sidekiq process as its heartbeat describes it.
type Process struct {
	Identity    string         `json:"identity"`
	Hostname    string         `json:"hostname"`
	PID         int            `json:"pid"`
	Tag         string         `json:"tag,omitempty"`
	Labels      []string       `json:"labels,omitempty"`
	Queues      []string       `json:"queues"`            // 6.x queues, or derived from weights/capsules on 7+
	Weights     map[string]int `json:"weights,omitempty"` // 7+
	Concurrency int            `json:"concurrency"`
	Version     string         `json:"version,omitempty"` // absent before 7.0.2
	Layout      Layout         `json:"layout"`
	Embedded    bool           `json:"embedded,omitempty"` // ignores remote signals
	StartedAt   time.Time      `json:"started_at"`
	Busy        int            `json:"busy"`
	Beat        time.Time      `json:"beat"`
	Quiet       bool           `json:"quiet"`
	RSSKB       int64          `json:"rss_kb"`
	RTTMicros   int64          `json:"rtt_us"`
	// HashExists is false when the identity is listed in `processes` but its heartbeat hash
	// has expired: the process died without cleaning up (SIGKILL).
	HashExists bool `json:"hash_exists"`
	// Listed is true when the identity is a member of the `processes` set at the time of the
	// read; a process that stopped cleanly (or was pruned) is no longer listed.
	Listed bool `json:"listed"`
	// SuperFetch is true when Sidekiq Pro's super_fetch owns this process's jobs; drainctl
	// never requeues them.
	SuperFetch bool  `json:"super_fetch,omitempty"`
	Jobs       []Job `json:"jobs"`
	// Capsules names the 7+/8 capsules the process runs, when its heartbeat says so.
	Capsules []string `json:"capsules,omitempty"`
	// Err describes heartbeat data that could not be decoded; the rest is best effort.
	Err string `json:"error,omitempty"`
}

// Job is one job in flight on a process, from its work hash.
type Job struct {
	JID        string          `json:"jid"`
	Class      string          `json:"class"` // the wrapped class for ActiveJob
	Queue      string          `json:"queue"`
	Args       json.RawMessage `json:"args,omitempty"`
	EnqueuedAt time.Time       `json:"enqueued_at"`
	CreatedAt  time.Time       `json:"created_at"`
	RunAt      time.Time       `json:"run_at"` // when the process started running it
	Thread     string          `json:"thread"` // the work hash field (base-36 thread id)
	Process    string          `json:"process"`
	// Payload is the job's exact JSON bytes as Sidekiq wrote them; a requeue pushes these.
	// Treat it as read-only: JID and Args share its memory.
	Payload []byte `json:"-"`
}

// Snapshot is the fleet at one moment.
type Snapshot struct {
	At        time.Time `json:"at"`
	Processes []Process `json:"processes"`
}
