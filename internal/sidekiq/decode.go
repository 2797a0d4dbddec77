package sidekiq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// msThreshold separates epoch seconds from epoch milliseconds: a timestamp at or above it
// (1e11 s is the year 5138; 1e11 ms is 1973) is read as milliseconds.
const msThreshold = 1e11

// parseTime reads a Sidekiq timestamp: float epoch seconds (6.x/7.x `beat`, `enqueued_at`),
// integer epoch seconds (`run_at` up to 7.x) or integer epoch milliseconds (8.x). Sidekiq tells
// seconds from milliseconds by JSON type; drainctl uses the magnitude instead, because `run_at`
// is an integer in seconds before 8.x. Decimal text (strings, json.Number) is read exactly;
// the result is rounded to the microsecond. Anything unreadable, or before
// 1970-01-01T00:00:01, is the zero time.
func parseTime(v any) time.Time {
	var f float64
	switch x := v.(type) {
	case nil:
		return time.Time{}
	case float64:
		f = x
	case float32:
		f = float64(x)
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case json.Number:
		return parseTime(string(x))
	case []byte:
		return parseTime(string(x))
	case string:
		return epochBytes([]byte(strings.TrimSpace(x)))
	default:
		return time.Time{}
	}
	return floatTime(f)
}

// floatTimeString parses s as a float and reads it as floatTime does.
func floatTimeString(s string) time.Time {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}
	}
	return floatTime(f)
}

// floatTime reads epoch seconds, or milliseconds at or above msThreshold, from a float.
func floatTime(f float64) time.Time {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 1 { // before 1970-01-01T00:00:01: unset or nonsense
		return time.Time{}
	}
	if f >= 1e16 { // beyond year 318857 even in milliseconds: nonsense
		return time.Time{}
	}
	if f >= msThreshold { // milliseconds: split off whole seconds before dividing, for precision
		sec := math.Floor(f / 1000)
		rem := f - sec*1000
		return time.Unix(int64(sec), int64(math.Round(rem*1e3))*1e3).UTC()
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC()
}

// decodeHeartbeat turns the fields of a process's heartbeat hash into a Process. Bad data is
// described in Err and the rest is filled in best effort; it never panics. Empty fields mean
// the hash is gone (HashExists=false), and hostname/pid then come from the identity.
func decodeHeartbeat(identity string, fields map[string]string) Process {
	return decodeHeartbeatWith(interner{}, identity, fields)
}

func decodeHeartbeatWith(in interner, identity string, fields map[string]string) Process {
	var f hbFields
	for k, v := range fields {
		f.set(k, v)
	}
	return decodeHeartbeatFields(in, identity, &f)
}

// hbFields are the fields of a heartbeat hash that decodeHeartbeat reads, each with whether
// it is present; exists says the hash had any field at all. The values may be views of a
// reused buffer: nothing decoded from them keeps them.
type hbFields struct {
	exists                                             bool
	info, busy, beat, quiet, rss, rtt, concurrency     string
	hasInfo, hasBusy, hasBeat, hasRSS, hasRTT, hasConc bool
}

// set records one field of the hash.
func (f *hbFields) set(field, val string) {
	f.exists = true
	switch field {
	case fieldInfo:
		f.info, f.hasInfo = val, true
	case fieldBusy:
		f.busy, f.hasBusy = val, true
	case fieldBeat:
		f.beat, f.hasBeat = val, true
	case fieldQuiet:
		f.quiet = val
	case fieldRSS:
		f.rss, f.hasRSS = val, true
	case fieldRTT:
		f.rtt, f.hasRTT = val, true
	case fieldConcurrency:
		f.concurrency, f.hasConc = val, true
	}
}

func decodeHeartbeatFields(in interner, identity string, f *hbFields) Process {
	p := Process{Identity: identity, Layout: LayoutUnknown}
	p.Hostname, p.PID = splitIdentity(identity)
	if !f.exists {
		return p
	}
	p.HashExists = true
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if !f.hasInfo {
		bad("no info field")
	} else {
		if err := applyInfo(in, &p, readOnlyBytes(f.info), bad); err != nil {
			bad("info: %v", err)
		}
	}
	if v, ok := f.concurrency, f.hasConc; ok { // 8.1.2+: outside info
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			bad("concurrency %q is not an integer", v)
		} else {
			p.Concurrency = n
		}
	}
	if v, ok := f.busy, f.hasBusy; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			bad("busy %q is not an integer", v)
		} else {
			p.Busy = n
		}
	}
	if v, ok := f.beat, f.hasBeat; ok {
		p.Beat = parseTime(v)
		if p.Beat.IsZero() {
			bad("beat %q is not a timestamp", v)
		}
	} else {
		bad("no beat field")
	}
	p.Quiet = f.quiet == "true"
	if v, ok := f.rss, f.hasRSS; ok && v != "" {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			p.RSSKB = n
		} else {
			bad("rss %q is not an integer", v)
		}
	}
	if v, ok := f.rtt, f.hasRTT; ok && v != "" {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			p.RTTMicros = n
		} else {
			bad("rtt_us %q is not an integer", v)
		}
	}
	if len(problems) > 0 {
		p.Err = "heartbeat of " + identity + ": " + strings.Join(problems, "; ")
	}
	return p
}

// applyInfo copies the info JSON (hostname, started_at, pid, tag, concurrency, queues,
// weights, capsules, labels, identity, version, embedded) into p, reporting fields of the
// wrong shape through bad; it returns an error when info is not a JSON object.
func applyInfo(in interner, p *Process, info []byte, bad func(string, ...any)) error {
	var weights, capsules []byte
	err := eachMember(info, func(key, val []byte) error {
		null := string(val) == "null"
		switch string(key) {
		case "hostname":
			if h, ok := jsonStr(val); ok && h != "" {
				p.Hostname = h
			}
		case "pid":
			if n, ok := jsonInt(val); ok {
				p.PID = n
			} else {
				bad("info.pid %s is not an integer", short(val))
			}
		case "tag":
			if t, ok := in.str(val); ok {
				p.Tag = t
			} else if !null {
				bad("info.tag is not a string")
			}
		case "concurrency":
			if n, ok := jsonInt(val); ok {
				p.Concurrency = n
			} else if !null {
				bad("info.concurrency %s is not an integer", short(val))
			}
		case "labels":
			if l, ok := stringList(in, val); ok {
				p.Labels = l
			} else if !null {
				bad("info.labels is not a list of strings")
			}
		case "queues":
			if q, ok := stringList(in, val); ok {
				p.Queues = q
			} else if !null {
				bad("info.queues is not a list of strings")
			}
		case "started_at":
			p.StartedAt = timeValue(val)
		case "version":
			if v, ok := in.str(val); ok {
				p.Version = v
			} else if !null {
				bad("info.version is not a string")
			}
		case "embedded":
			switch string(val) {
			case "true":
				p.Embedded = true
			case "false", "null":
				p.Embedded = false
			default:
				bad("info.embedded is not a boolean")
			}
		case "weights":
			weights = val
		case "capsules":
			capsules = val
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.Layout = layoutOf(p.Version)
	if len(weights) > 0 && string(weights) != "null" {
		w, err := decodeWeights(weights)
		if err != nil {
			bad("info.weights: %v", err)
		}
		p.Weights = mergeWeights(p.Weights, w)
	}
	if len(capsules) > 0 && string(capsules) != "null" {
		names, w, conc, err := decodeCapsules(capsules)
		if err != nil {
			bad("info.capsules: %v", err)
		}
		p.Capsules = names
		p.Weights = mergeWeights(p.Weights, w)
		if p.Concurrency == 0 {
			p.Concurrency = conc
		}
	}
	if p.Queues == nil && len(p.Weights) > 0 {
		p.Queues = sortedKeys(p.Weights)
	}
	return nil
}

// short bounds raw JSON quoted in an error message.
func short(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "…"
	}
	return string(raw)
}

// stringList reads a raw JSON array of strings.
func stringList(in interner, raw []byte) ([]string, bool) {
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return nil, false
	}
	out := []string{}
	i = skipWS(raw, i+1)
	if i < len(raw) && raw[i] == ']' {
		return out, skipWS(raw, i+1) == len(raw)
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return nil, false
		}
		end, err := skipString(raw, i)
		if err != nil {
			return nil, false
		}
		str, ok := in.str(raw[i:end])
		if !ok {
			return nil, false
		}
		out = append(out, str)
		i = skipWS(raw, end)
		if i >= len(raw) {
			return nil, false
		}
		if raw[i] == ']' {
			return out, skipWS(raw, i+1) == len(raw)
		}
		if raw[i] != ',' {
			return nil, false
		}
		i = skipWS(raw, i+1)
	}
}

// decodeWeights reads 7.x `weights`: a list of per-capsule hashes ([{"default":0}], 7.0.3+) or
// one hash (7.0.2).
func decodeWeights(raw []byte) (map[string]int, error) {
	var list []map[string]json.Number
	if err := json.Unmarshal(raw, &list); err == nil {
		out := map[string]int{}
		for _, m := range list {
			if err := addWeights(out, m); err != nil {
				return out, err
			}
		}
		return out, nil
	}
	var one map[string]json.Number
	if err := json.Unmarshal(raw, &one); err != nil {
		return nil, errors.New("neither a hash nor a list of hashes of queue weights")
	}
	out := map[string]int{}
	return out, addWeights(out, one)
}

func addWeights(out map[string]int, m map[string]json.Number) error {
	for q, n := range m {
		i, err := n.Int64()
		if err != nil {
			f, ferr := n.Float64()
			if ferr != nil {
				return fmt.Errorf("weight of %q is %q, not a number", q, n)
			}
			i = int64(f)
		}
		out[q] = int(i)
	}
	return nil
}

// capsuleInfo is one capsule in 8.x's `capsules` (name → {concurrency, mode, weights}).
type capsuleInfo struct {
	Name        string          `json:"name"`
	Concurrency json.RawMessage `json:"concurrency"`
	Weights     json.RawMessage `json:"weights"`
}

// decodeCapsules reads 8.x `capsules`, a hash of capsule name to its settings (a list of
// capsules with a `name` is accepted too). It returns the names, the merged queue weights and
// the summed concurrency.
func decodeCapsules(raw []byte) (names []string, weights map[string]int, concurrency int, err error) {
	caps := map[string]capsuleInfo{}
	if e := json.Unmarshal(raw, &caps); e != nil {
		var list []capsuleInfo
		if e2 := json.Unmarshal(raw, &list); e2 != nil {
			return nil, nil, 0, errors.New("neither a hash nor a list of capsules")
		}
		for i, c := range list {
			name := c.Name
			if name == "" {
				name = strconv.Itoa(i)
			}
			caps[name] = c
		}
	}
	weights = map[string]int{}
	var errs []error
	for _, name := range sortedKeys(caps) {
		c := caps[name]
		names = append(names, name)
		if len(c.Concurrency) > 0 && string(c.Concurrency) != "null" {
			if n, ok := jsonInt(c.Concurrency); ok {
				concurrency += n
			} else {
				errs = append(errs, fmt.Errorf("capsule %q concurrency %s is not an integer", name, c.Concurrency))
			}
		}
		if len(c.Weights) > 0 && string(c.Weights) != "null" {
			w, werr := decodeWeights(c.Weights)
			if werr != nil {
				errs = append(errs, fmt.Errorf("capsule %q weights: %w", name, werr))
			}
			weights = mergeWeights(weights, w)
		}
	}
	return names, weights, concurrency, errors.Join(errs...)
}

func mergeWeights(dst, src map[string]int) map[string]int {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string]int, len(src))
	}
	for k, v := range src {
		dst[k] = v
	}
	return dst
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// splitIdentity takes hostname and pid from `hostname:pid:nonce`, reading from the right
// because a hostname (DYNO) may itself contain colons.
func splitIdentity(identity string) (string, int) {
	i := strings.LastIndexByte(identity, ':')
	if i < 0 {
		return identity, 0
	}
	rest := identity[:i]
	j := strings.LastIndexByte(rest, ':')
	if j < 0 {
		return rest, 0
	}
	pid, err := strconv.Atoi(rest[j+1:])
	if err != nil {
		return rest, 0
	}
	return rest[:j], pid
}

// decodeWork turns a work hash (`<identity>:work` or `:workers`; field = thread id) into Jobs
// sorted by run_at then thread. Entries that cannot be decoded are skipped and reported in the
// joined error; the others are still returned.
func decodeWork(identity string, fields map[string]string) ([]Job, error) {
	return decodeWorkWith(interner{}, identity, fields)
}

// interner shares the strings that repeat across thousands of jobs (queue and class names).
type interner map[string]string

func (in interner) get(b []byte) string {
	if s, ok := in[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(in) < 4096 {
		in[s] = s
	}
	return s
}

// str decodes a raw JSON string token through the interner.
func (in interner) str(raw []byte) (string, bool) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 && utf8Valid(raw) {
		return in.get(raw[1 : len(raw)-1]), true
	}
	return jsonStr(raw)
}

func decodeWorkWith(in interner, identity string, fields map[string]string) ([]Job, error) {
	entries := make([]workEntry, 0, len(fields))
	for tid, raw := range fields {
		entries = append(entries, workEntry{tid, raw})
	}
	return decodeWorkEntries(in, identity, entries)
}

// workEntry is one field of a work hash: the thread id (kept in Job.Thread, so owned) and the
// value (read only while decoding: it may be a view of a reused buffer).
type workEntry struct{ tid, raw string }

// decodeWorkEntries is decodeWork of a hash's entries in any order.
func decodeWorkEntries(in interner, identity string, entries []workEntry) ([]Job, error) {
	jobs := make([]Job, 0, len(entries))
	var errs []error
	for _, e := range entries {
		j, err := decodeWorkEntry(in, identity, e.tid, e.raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		jobs = append(jobs, j)
	}
	slices.SortFunc(jobs, func(a, b Job) int {
		if c := a.RunAt.Compare(b.RunAt); c != 0 {
			return c
		}
		return strings.Compare(a.Thread, b.Thread)
	})
	if len(errs) > 1 {
		sort.Slice(errs, func(a, b int) bool { return errs[a].Error() < errs[b].Error() })
	}
	return jobs, errors.Join(errs...)
}

// decodeWorkEntry reads one work hash value: {"queue":…,"payload":<job JSON as a string, or
// the object itself>,"run_at":<epoch s or ms>}. The payload string is found and unescaped in
// one pass (unquoteAt): it is most of the bytes of a snapshot.
func decodeWorkEntry(in interner, identity, tid, raw string) (Job, error) {
	var queue string
	var payload []byte
	var runAt time.Time
	fail := func(err error) (Job, error) {
		return Job{}, fmt.Errorf("work of %s thread %s: %w", identity, tid, err)
	}
	data := readOnlyBytes(raw)
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return fail(errJSON)
	}
	i = skipWS(data, i+1)
	for first := true; ; first = false {
		if i < len(data) && data[i] == '}' && first {
			i++
			break
		}
		if i >= len(data) || data[i] != '"' {
			return fail(errJSON)
		}
		kend, err := skipString(data, i)
		if err != nil {
			return fail(err)
		}
		key := data[i+1 : kend-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			k, ok := jsonStrBytes(data[i:kend])
			if !ok {
				return fail(errJSON)
			}
			key = k
		}
		i = skipWS(data, kend)
		if i >= len(data) || data[i] != ':' {
			return fail(errJSON)
		}
		i = skipWS(data, i+1)
		if string(key) == "payload" && i < len(data) && data[i] == '"' {
			out, end, ok := unquoteAt(data, i)
			if !ok { // \u escapes, invalid UTF-8, or malformed: the general path
				if end, err = skipString(data, i); err != nil {
					return fail(err)
				}
				if out, ok = jsonStrBytes(data[i:end]); !ok {
					return fail(errors.New("payload is not a valid string"))
				}
				if bytes.IndexByte(data[i:end], '\\') < 0 {
					out = append([]byte(nil), out...) // no escapes: out is a view of raw
				}
			}
			payload = out
			i = end
		} else {
			vend, err := skipValue(data, i, 0)
			if err != nil {
				return fail(err)
			}
			val := data[i:vend]
			null := string(val) == "null"
			switch string(key) {
			case "queue":
				if !null {
					q, ok := in.str(val)
					if !ok {
						return fail(errors.New("queue is not a string"))
					}
					queue = q
				}
			case "payload":
				if null {
					payload = nil
				} else {
					payload = append([]byte(nil), val...) // val is a view of raw: copy what we keep
				}
			case "run_at":
				if !null {
					if val[0] != '-' && (val[0] < '0' || val[0] > '9') {
						return fail(errors.New("run_at is not a number"))
					}
					runAt = epochBytes(val)
				}
			}
			i = vend
		}
		i = skipWS(data, i)
		if i >= len(data) {
			return fail(errJSON)
		}
		if data[i] == '}' {
			i++
			break
		}
		if data[i] != ',' {
			return fail(errJSON)
		}
		i = skipWS(data, i+1)
	}
	if skipWS(data, i) != len(data) {
		return fail(errJSON)
	}
	if len(payload) == 0 {
		return fail(errors.New("no payload"))
	}
	j, err := decodeOwnedPayload(in, payload)
	if err != nil {
		return fail(err)
	}
	if queue != "" {
		j.Queue = queue
	}
	j.RunAt = runAt
	j.Thread = tid
	j.Process = identity
	return j, nil
}

// epochBytes reads a timestamp written as digits with an optional fraction exactly (no float
// rounding) and without allocating; other forms (exponents) go through floatTime.
func epochBytes(b []byte) time.Time {
	var sec int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if sec > 1e15 {
			return floatTimeString(string(b))
		}
		sec = sec*10 + int64(b[i]-'0')
	}
	if i == 0 {
		return floatTimeString(string(b))
	}
	var nanos, scale int64 = 0, 1e9
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if scale > 1 {
				scale /= 10
				nanos += int64(b[i]-'0') * scale
			}
		}
		if i == start {
			return floatTimeString(string(b))
		}
	}
	if i != len(b) { // exponent or garbage: the general path
		return floatTimeString(string(b))
	}
	if sec == 0 { // below one second: unset or nonsense, as in parseTime
		return time.Time{}
	}
	if sec >= msThreshold { // milliseconds
		ns := sec%1000*1e6 + nanos/1000
		sec /= 1000
		if sec >= 1e13/1000*1000 {
			return time.Time{}
		}
		return time.Unix(sec, ns).UTC().Round(time.Microsecond)
	}
	return time.Unix(sec, nanos).UTC().Round(time.Microsecond)
}

// decodePayload reads a job's JSON; Job.Payload keeps a copy of the exact bytes so a requeue
// pushes what Sidekiq wrote. A payload without a jid is an error.
func decodePayload(raw []byte) (Job, error) {
	return decodeOwnedPayload(interner{}, append([]byte(nil), raw...))
}

// decodeOwnedPayload is decodePayload for bytes the Job may keep (Payload and Args point
// into them).
func decodeOwnedPayload(in interner, raw []byte) (Job, error) {
	var j Job
	var class, wrapped string
	err := eachMember(raw, func(key, val []byte) error {
		switch string(key) {
		case "jid":
			if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' && bytes.IndexByte(val, '\\') < 0 && utf8Valid(val) {
				// The usual 24-hex jid: a view of the payload, which is never modified.
				j.JID = unsafe.String(&val[1], len(val)-2)
				if len(val) == 2 {
					j.JID = ""
				}
			} else {
				j.JID, _ = jsonStr(val)
			}
		case "class":
			class, _ = in.str(val)
		case "wrapped":
			wrapped, _ = in.str(val)
		case "queue":
			j.Queue, _ = in.str(val)
		case "args":
			if string(val) == "null" {
				j.Args = nil
			} else {
				j.Args = json.RawMessage(val)
			}
		case "enqueued_at":
			j.EnqueuedAt = timeValue(val)
		case "created_at":
			j.CreatedAt = timeValue(val)
		}
		return nil
	})
	if err != nil {
		return Job{}, fmt.Errorf("decode job payload: %w", err)
	}
	if j.JID == "" {
		return Job{}, errors.New("decode job payload: no jid")
	}
	j.Class = wrapped
	if j.Class == "" {
		j.Class = class
	}
	j.Payload = raw
	return j, nil
}

// timeValue reads a raw JSON timestamp: a number, or a string holding one.
func timeValue(val []byte) time.Time {
	if len(val) > 0 && (val[0] == '-' || val[0] >= '0' && val[0] <= '9') {
		return epochBytes(val)
	}
	if s, ok := jsonStr(val); ok {
		return parseTime(s)
	}
	return time.Time{}
}
