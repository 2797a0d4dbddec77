package sidekiq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"
)

// ErrNoSelector is returned by Select when no criterion is given and All is false: drainctl
// never selects the whole fleet by default.
var ErrNoSelector = errors.New("select processes: no selector given (name a tag, hostname, queue, identity, label or task, or select all)")

// Selector says which processes to drain. Different kinds of criteria must all match (AND);
// several values of one kind match any of them (OR). Only processes with a live heartbeat
// hash are selected, except by Identities, which also selects listed processes whose hash is
// gone.
type Selector struct {
	Tags       []string
	Queues     []string
	Identities []string
	Labels     []string
	// Hostname matches the hostname part of the identity (ENV["DYNO"] or the host name).
	Hostname *regexp.Regexp
	// All selects every live process; it cannot be combined with other criteria.
	All bool
	// Tasks restricts the selection to processes that run in one of these ECS tasks.
	Tasks []TaskAddress
}

// TaskAddress is what ECS tells about one task, to find the Sidekiq processes inside it.
type TaskAddress struct {
	TaskARN     string `json:"task_arn"`
	PrivateIPv4 string `json:"private_ipv4,omitempty"`
	PrivateDNS  string `json:"private_dns,omitempty"`
	// ContainerRuntimeIDs are the Docker/containerd IDs of the task's containers; a container's
	// default hostname is the first 12 hex digits of its ID.
	ContainerRuntimeIDs []string `json:"container_runtime_ids,omitempty"`
}

// Selection is the result of Select.
type Selection struct {
	// Processes are the selected processes, sorted by identity.
	Processes []Process `json:"processes"`
	// TaskOf maps a selected identity to the task it runs in (only when Tasks were given).
	TaskOf map[string]TaskAddress `json:"task_of,omitempty"`
	// Unplaced are processes that matched every other criterion but none of the Tasks.
	Unplaced []Process `json:"unplaced,omitempty"`
	// EmptyTasks are the given tasks in which no process was found.
	EmptyTasks []TaskAddress `json:"empty_tasks,omitempty"`
}

// Identities lists the selected identities, for Quiet/Stop/SnapshotOf.
func (s Selection) Identities() []string {
	ids := make([]string, len(s.Processes))
	for i, p := range s.Processes {
		ids[i] = p.Identity
	}
	return ids
}

// EmptySelectionError is a selection that matched nothing; it lists what the fleet contains
// so the user can correct the selector.
type EmptySelectionError struct {
	Selector  string   // the selector, described
	Processes int      // live processes in the fleet
	Hostnames []string // distinct, sorted
	Tags      []string
	Queues    []string
}

// Error describes the selector and the fleet.
func (e *EmptySelectionError) Error() string {
	if e.Processes == 0 {
		return fmt.Sprintf("no process matches %s: the fleet has no live Sidekiq process", e.Selector)
	}
	return fmt.Sprintf("no process matches %s: the fleet has %d processes; hostnames: %s; tags: %s; queues: %s",
		e.Selector, e.Processes, list(e.Hostnames), list(e.Tags), list(e.Queues))
}

func list(v []string) string {
	if len(v) == 0 {
		return "(none)"
	}
	const max = 10
	if len(v) > max {
		return strings.Join(v[:max], ", ") + fmt.Sprintf(" … and %d more", len(v)-max)
	}
	return strings.Join(v, ", ")
}

// describe renders the selector for messages.
func (sel Selector) describe() string {
	var parts []string
	add := func(kind string, v []string) {
		if len(v) > 0 {
			parts = append(parts, kind+" "+strings.Join(quoteAll(v), " or "))
		}
	}
	add("tag", sel.Tags)
	add("queue", sel.Queues)
	add("identity", sel.Identities)
	add("label", sel.Labels)
	if sel.Hostname != nil {
		parts = append(parts, fmt.Sprintf("hostname =~ /%s/", sel.Hostname))
	}
	if len(sel.Tasks) > 0 {
		parts = append(parts, fmt.Sprintf("%d ECS tasks", len(sel.Tasks)))
	}
	if sel.All {
		parts = append(parts, "all")
	}
	return strings.Join(parts, " and ")
}

func quoteAll(v []string) []string {
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// Select picks the processes of the snapshot the selector names. It returns ErrNoSelector
// when the selector is empty, and *EmptySelectionError when it matches nothing.
func (s *Snapshot) Select(sel Selector) (Selection, error) {
	hasCriteria := len(sel.Tags)+len(sel.Queues)+len(sel.Identities)+len(sel.Labels)+len(sel.Tasks) > 0 || sel.Hostname != nil
	if !hasCriteria && !sel.All {
		return Selection{}, ErrNoSelector
	}
	if sel.All && hasCriteria {
		return Selection{}, fmt.Errorf("select processes: all cannot be combined with %s", Selector{
			Tags: sel.Tags, Queues: sel.Queues, Identities: sel.Identities, Labels: sel.Labels,
			Hostname: sel.Hostname, Tasks: sel.Tasks}.describe())
	}
	// Room for every process: a selection is usually most of the fleet, and growing a slice
	// of 10,000 processes by doubling copies it about twenty times.
	res := Selection{Processes: make([]Process, 0, len(s.Processes))}
	placed := map[int]bool{}
	for _, p := range s.Processes {
		if !matches(p, sel) {
			continue
		}
		if len(sel.Tasks) > 0 {
			t, ok := MatchTask(p, sel.Tasks)
			if !ok {
				res.Unplaced = append(res.Unplaced, p)
				continue
			}
			if res.TaskOf == nil {
				res.TaskOf = map[string]TaskAddress{}
			}
			res.TaskOf[p.Identity] = t
			for i := range sel.Tasks {
				if sel.Tasks[i].TaskARN == t.TaskARN {
					placed[i] = true
				}
			}
		}
		res.Processes = append(res.Processes, p)
	}
	for i, t := range sel.Tasks {
		if !placed[i] {
			res.EmptyTasks = append(res.EmptyTasks, t)
		}
	}
	sort.Slice(res.Processes, func(a, b int) bool { return res.Processes[a].Identity < res.Processes[b].Identity })
	if len(res.Processes) == 0 {
		return res, s.emptyError(sel)
	}
	return res, nil
}

func (s *Snapshot) emptyError(sel Selector) *EmptySelectionError {
	e := &EmptySelectionError{Selector: sel.describe()}
	hosts, tags, queues := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, p := range s.Processes {
		if !p.HashExists {
			continue
		}
		e.Processes++
		hosts[p.Hostname] = true
		if p.Tag != "" {
			tags[p.Tag] = true
		}
		for _, q := range p.Queues {
			queues[q] = true
		}
	}
	e.Hostnames, e.Tags, e.Queues = sortedKeys(hosts), sortedKeys(tags), sortedKeys(queues)
	return e
}

// matches applies every criterion except Tasks.
func matches(p Process, sel Selector) bool {
	if len(sel.Identities) > 0 {
		if !contains(sel.Identities, p.Identity) {
			return false
		}
	} else if !p.HashExists {
		return false
	}
	if len(sel.Tags) > 0 && !contains(sel.Tags, p.Tag) {
		return false
	}
	if len(sel.Queues) > 0 && !anyIn(sel.Queues, p.Queues) {
		return false
	}
	if len(sel.Labels) > 0 && !anyIn(sel.Labels, p.Labels) {
		return false
	}
	if sel.Hostname != nil && !sel.Hostname.MatchString(p.Hostname) {
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func anyIn(want, have []string) bool {
	for _, w := range want {
		if contains(have, w) {
			return true
		}
	}
	return false
}

var (
	ipHostname    = regexp.MustCompile(`^ip-(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})(\..*)?$`)
	taskHostname  = regexp.MustCompile(`^([0-9a-f]{32})-\d+$`)
	shortIDHostRe = regexp.MustCompile(`^[0-9a-f]{12}$`)
)

// MatchTask finds the task p runs in, from its hostname: `ip-10-0-1-23` or
// `ip-10-0-1-23.ec2.internal` ↔ the task's private IPv4 10.0.1.23 (or its private DNS name);
// `<32-hex task id>-<digits>` ↔ the last segment of the task ARN; a 12-hex container short ID
// ↔ the prefix of one of the task's container runtime IDs.
func MatchTask(p Process, tasks []TaskAddress) (TaskAddress, bool) {
	if len(tasks) == 0 {
		return TaskAddress{}, false // nothing to match: not even the hostname's patterns
	}
	host := strings.ToLower(p.Hostname)
	var ip net.IP
	if m := ipHostname.FindStringSubmatch(host); m != nil {
		ip = net.ParseIP(m[1] + "." + m[2] + "." + m[3] + "." + m[4])
	}
	var taskID string
	if m := taskHostname.FindStringSubmatch(host); m != nil {
		taskID = m[1]
	}
	shortID := shortIDHostRe.MatchString(host)
	for _, t := range tasks {
		if ip != nil && t.PrivateIPv4 != "" && ip.Equal(net.ParseIP(t.PrivateIPv4)) {
			return t, true
		}
		if dns := strings.ToLower(t.PrivateDNS); dns != "" && host != "" {
			first, _, _ := strings.Cut(dns, ".")
			if host == dns || host == first {
				return t, true
			}
		}
		if taskID != "" && t.TaskARN != "" {
			i := strings.LastIndexByte(t.TaskARN, '/')
			if strings.ToLower(t.TaskARN[i+1:]) == taskID {
				return t, true
			}
		}
		if shortID {
			for _, id := range t.ContainerRuntimeIDs {
				if strings.HasPrefix(strings.ToLower(id), host) {
					return t, true
				}
			}
		}
	}
	return TaskAddress{}, false
}

// NamespaceHint looks for Sidekiq under another key prefix when a selection matched nothing:
// it SCANs for non-empty `<prefix>:processes` sets (and a bare `processes` when the Client has
// a namespace) and returns a hint naming them, such as "found myapp:processes; did you mean
// --redis-namespace myapp?". It returns "" when there is nothing to suggest. One SCAN pass
// over the keyspace, 1,000 keys per round trip.
func (c *Client) NamespaceHint(ctx context.Context) (string, error) {
	own := c.key(keyProcesses)
	var found []string
	var cursor uint64
	for {
		keys, next, err := c.rdb.Scan(ctx, cursor, "*"+keyProcesses, 1000).Result()
		if err != nil {
			return "", fmt.Errorf("scan for Sidekiq keys on %s: %w", c.Redacted(), c.connErr(err))
		}
		for _, k := range keys {
			if k != own && (k == keyProcesses || strings.HasSuffix(k, ":"+keyProcesses)) {
				found = append(found, k)
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	sort.Strings(found)
	var hints []string
	for _, k := range found {
		if n, err := c.rdb.SCard(ctx, k).Result(); err != nil || n == 0 {
			continue // not a set, or empty: no live Sidekiq there
		}
		if k == keyProcesses {
			hints = append(hints, fmt.Sprintf("found %s (no namespace); did you mean to drop --redis-namespace %s?", k, c.namespace))
			continue
		}
		ns := strings.TrimSuffix(k, ":"+keyProcesses)
		hints = append(hints, fmt.Sprintf("found %s; did you mean --redis-namespace %s?", k, ns))
	}
	return strings.Join(hints, "; "), nil
}
