package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// StatusStream writes a Status as JSON piece by piece — the header, then the processes, then
// the jobs, then the rest — byte for byte what Write(w, JSON, st, _) writes for the same
// document, so `drainctl status --output json` of a large fleet never holds the whole
// document. Processes and jobs are encoded by AppendStatusProcess and AppendStatusJob, which
// may run on other goroutines; the stream only concatenates what they return.
//
// Use: NewStatusStream, WriteProcesses (any number of times, in order), WriteJobs (any number
// of times, in order, after the last WriteProcesses), then Close with the rest of the document.
type StatusStream struct {
	w      *bufio.Writer
	head   bool
	procs  int // elements written to the open array
	inJobs bool
	err    error
}

// NewStatusStream starts a status document on w. at and redis are the header's fields.
func NewStatusStream(w io.Writer, at time.Time, redis string) (*StatusStream, error) {
	s := &StatusStream{w: bufio.NewWriterSize(w, 64<<10)}
	var b bytes.Buffer
	head := struct {
		Schema string    `json:"schema"`
		Kind   string    `json:"kind"`
		At     time.Time `json:"at"`
		Redis  string    `json:"redis_url"`
	}{Schema, "status", at, redis}
	if err := encodeIndented(&b, head); err != nil {
		return nil, err
	}
	// "{\n  …\n}\n" → "{\n  …,\n  \"processes\": ["
	hb := bytes.TrimSuffix(b.Bytes(), []byte("\n}\n"))
	s.write(hb)
	s.write([]byte(",\n  \"processes\": ["))
	return s, s.err
}

func (s *StatusStream) write(b []byte) {
	if s.err == nil {
		_, s.err = s.w.Write(b)
	}
}

// WriteProcesses appends elements made by AppendStatusProcess (n of them, concatenated).
func (s *StatusStream) WriteProcesses(enc []byte, n int) error {
	return s.elements(enc, n)
}

// WriteJobs appends elements made by AppendStatusJob; the first call closes the processes.
func (s *StatusStream) WriteJobs(enc []byte, n int) error {
	if !s.inJobs {
		s.closeArray()
		s.write([]byte(",\n  \"jobs\": ["))
		s.inJobs = true
	}
	return s.elements(enc, n)
}

func (s *StatusStream) elements(enc []byte, n int) error {
	if n == 0 || len(enc) == 0 {
		return s.err
	}
	if s.procs == 0 {
		enc = enc[1:] // the first element has no comma before it
	}
	s.procs += n
	s.write(enc)
	return s.err
}

func (s *StatusStream) closeArray() {
	if s.procs > 0 {
		s.write([]byte("\n  ]"))
	} else {
		s.write([]byte("]"))
	}
	s.procs = 0
}

// Close writes the queues, services and warnings (omitted when empty, as in Status) and
// ends the document.
func (s *StatusStream) Close(queues []StatusQueue, services []StatusService, warnings []string) error {
	if !s.inJobs {
		if err := s.WriteJobs(nil, 0); err != nil {
			return err
		}
	}
	s.closeArray()
	if queues == nil {
		queues = []StatusQueue{}
	}
	tail := struct {
		Queues   []StatusQueue   `json:"queues"`
		Services []StatusService `json:"services,omitempty"`
		Warnings []string        `json:"warnings,omitempty"`
	}{queues, services, warnings}
	var b bytes.Buffer
	if err := encodeIndented(&b, tail); err != nil {
		return err
	}
	// "{\n  \"queues\": …\n}\n" → ",\n  \"queues\": …\n}\n"
	s.write([]byte(","))
	s.write(bytes.TrimPrefix(b.Bytes(), []byte("{")))
	if s.err == nil {
		s.err = s.w.Flush()
	}
	return s.err
}

// encodeIndented is Write's JSON encoding of v.
func encodeIndented(b *bytes.Buffer, v any) error {
	enc := json.NewEncoder(b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write status document as JSON: %w", err)
	}
	return nil
}

// AppendStatusProcess appends p as an element of the document's processes, preceded by a
// comma, indented as Write indents it.
func AppendStatusProcess(b []byte, p *StatusProcess) []byte {
	b = append(b, ",\n    {\n      \"identity\": "...)
	b = appendJSONString(b, p.Identity)
	b = append(b, ",\n      \"hostname\": "...)
	b = appendJSONString(b, p.Hostname)
	if p.Task != "" {
		b = append(b, ",\n      \"task\": "...)
		b = appendJSONString(b, p.Task)
	}
	if p.Tag != "" {
		b = append(b, ",\n      \"tag\": "...)
		b = appendJSONString(b, p.Tag)
	}
	if p.Version != "" {
		b = append(b, ",\n      \"version\": "...)
		b = appendJSONString(b, p.Version)
	}
	b = append(b, ",\n      \"queues\": "...)
	b = appendElementQueues(b, p.Queues)
	b = append(b, ",\n      \"quiet\": "...)
	b = strconv.AppendBool(b, p.Quiet)
	b = append(b, ",\n      \"busy\": "...)
	b = strconv.AppendInt(b, int64(p.Busy), 10)
	b = append(b, ",\n      \"concurrency\": "...)
	b = strconv.AppendInt(b, int64(p.Concurrency), 10)
	if !p.LastBeat.IsZero() {
		b = append(b, ",\n      \"last_beat\": "...)
		b = appendJSONTime(b, p.LastBeat)
	}
	b = append(b, ",\n      \"beat_age_seconds\": "...)
	b = appendJSONFloat(b, p.BeatAge)
	b = append(b, ",\n      \"dead\": "...)
	b = strconv.AppendBool(b, p.Dead)
	if p.Err != "" {
		b = append(b, ",\n      \"error\": "...)
		b = appendJSONString(b, p.Err)
	}
	return append(b, "\n    }"...)
}

// AppendStatusJob appends j as an element of the document's jobs, preceded by a comma,
// indented as Write indents it.
func AppendStatusJob(b []byte, j *StatusJob) []byte {
	var c [256]byte
	return ExpandStatusJob(b, AppendStatusJobCompact(c[:0], j))
}

// AppendStatusJobCompact appends j in a compact form for a job that must be kept until the
// jobs are sorted: its encoded values separated by NUL bytes (never part of encoded JSON),
// about half the size of AppendStatusJob's element. ExpandStatusJob turns it into the element.
func AppendStatusJobCompact(b []byte, j *StatusJob) []byte {
	b = appendJSONString(b, j.Class)
	b = append(b, 0)
	b = appendJSONString(b, j.Queue)
	b = append(b, 0)
	b = appendJSONString(b, j.JID)
	b = append(b, 0)
	b = appendJSONString(b, j.Process)
	b = append(b, 0)
	b = appendJSONTime(b, j.RunAt)
	b = append(b, 0)
	b = appendJSONFloat(b, j.Running)
	if len(j.Args) > 0 {
		b = append(b, 0)
		var c, ind bytes.Buffer
		if json.Compact(&c, j.Args) == nil && json.Indent(&ind, c.Bytes(), "      ", "  ") == nil {
			b = append(b, ind.Bytes()...)
		} else {
			b = append(b, "null"...) // not JSON: Write fails on it; never produced by the decoder
		}
	}
	return b
}

// jobKeys are the members of a job element before each value of the compact form.
var jobKeys = [...]string{",\n    {\n      \"class\": ", ",\n      \"queue\": ", ",\n      \"jid\": ", ",\n      \"process\": ",
	",\n      \"run_at\": ", ",\n      \"running_seconds\": ", ",\n      \"args\": "}

// ExpandStatusJob appends the element AppendStatusJob makes from the compact form c.
func ExpandStatusJob(b, c []byte) []byte {
	for k := 0; k < len(jobKeys); k++ {
		b = append(b, jobKeys[k]...)
		i := bytes.IndexByte(c, 0)
		if i < 0 {
			b = append(b, c...)
			break
		}
		b = append(b, c[:i]...)
		c = c[i+1:]
	}
	return append(b, "\n    }"...)
}

// appendElementQueues appends a list of queue names as encoding/json indents it as a member
// of a top-level array's element (a document's processes).
func appendElementQueues(b []byte, qs []string) []byte {
	switch {
	case qs == nil:
		return append(b, "null"...)
	case len(qs) == 0:
		return append(b, "[]"...)
	}
	b = append(b, '[')
	for i, q := range qs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n        "...)
		b = appendJSONString(b, q)
	}
	return append(b, "\n      ]"...)
}

// appendJSONString is encoding/json's string encoding without HTML escaping: the common
// case (printable ASCII without quote or backslash) is copied, anything else goes through
// encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(s) // a string always encodes
			return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONTime is time.Time's MarshalJSON (RFC 3339 with nanoseconds).
func appendJSONTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y >= 10000 {
		raw, err := json.Marshal(t)
		if err != nil {
			return append(b, "null"...)
		}
		return append(b, raw...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendJSONFloat is encoding/json's float64 encoding.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(b, "null"...) // encoding/json fails on these; never produced here
	}
	abs := math.Abs(f)
	fmt := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		fmt = 'e'
	}
	b = strconv.AppendFloat(b, f, fmt, -1, 64)
	if fmt == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
