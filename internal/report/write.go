package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Format is an output format.
type Format string

// The formats.
const (
	Text     Format = "text"
	JSON     Format = "json"
	Markdown Format = "markdown"
)

// ParseFormat reads a format name, case-insensitively ("md" is Markdown).
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "text", "txt":
		return Text, nil
	case "json":
		return JSON, nil
	case "markdown", "md":
		return Markdown, nil
	}
	return "", fmt.Errorf("unknown format %q: use text, json or markdown", s)
}

// FormatOfPath is the format a file's extension names (.json, .md, .txt).
func FormatOfPath(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return JSON, nil
	case ".md", ".markdown":
		return Markdown, nil
	case ".txt", ".text":
		return Text, nil
	}
	return "", fmt.Errorf("%q: unknown extension: use .json, .md or .txt", path)
}

// Doc is a document drainctl writes: a run (deploy, drain, quiet), the fleet's status, a
// rescue, or a check. Every one carries Schema and its kind in JSON.
type Doc interface {
	// Kind names the document: deploy, drain, quiet, status, rescue or check.
	Kind() string
	writeText(w io.Writer, o Options) error
	writeMarkdown(w io.Writer, o Options) error
}

// Write renders doc in format f.
func Write(w io.Writer, f Format, doc Doc, o Options) error {
	switch f {
	case JSON:
		if r, ok := doc.(*Report); ok && len(r.Processes) > 0 {
			return writeReportJSON(w, r)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(doc); err != nil {
			return fmt.Errorf("write %s document as JSON: %w", doc.Kind(), err)
		}
		return nil
	case Markdown:
		return doc.writeMarkdown(w, o)
	}
	return doc.writeText(w, o)
}

// WriteFile writes doc to path in the format its extension names, replacing the file.
func WriteFile(path string, doc Doc, o Options) error {
	f, err := FormatOfPath(path)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	o.Color = false
	if err := Write(&b, f, doc, o); err != nil {
		return err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// CheckPath makes sure a report can be written to path before anything else happens: its
// extension names a format and the file can be created (it is created, empty, and
// replaced with the report at the end).
func CheckPath(path string) error {
	if _, err := FormatOfPath(path); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("cannot write the report to %s: %w", path, unwrapPath(err))
	}
	return f.Close()
}

// unwrapPath drops the path an *os.PathError repeats.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// AppendMarkdown appends doc as Markdown to the file at path (a CI job summary).
func AppendMarkdown(path string, doc Doc, o Options) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	o.Color = false
	werr := doc.writeMarkdown(f, o)
	if werr == nil {
		_, werr = f.Write([]byte("\n"))
	}
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("append to %s: %w", path, werr)
	}
	if cerr != nil {
		return fmt.Errorf("close %s: %w", path, cerr)
	}
	return nil
}

// processesNull is where the processes of a run report with none are written, unique in the
// document: a JSON string cannot hold a raw newline, and deeper keys are indented further.
var processesNull = []byte("\n  \"processes\": null,")

// writeReportJSON is Write's JSON of a run report, byte for byte, with its processes encoded
// one at a time: encoding a report of 10,000 processes whole held it twice in memory (the
// compact encoding and its indented copy) and was most of `quiet --all`'s time.
func writeReportJSON(w io.Writer, r *Report) error {
	head := *r
	head.Processes = nil
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&head); err != nil {
		return fmt.Errorf("write %s document as JSON: %w", r.Kind(), err)
	}
	at := bytes.Index(b.Bytes(), processesNull)
	if at < 0 {
		return fmt.Errorf("write %s document as JSON: no processes key", r.Kind())
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(b.Bytes()[:at])
	bw.WriteString("\n  \"processes\": [")
	var elem []byte
	for i := range r.Processes {
		elem = appendReportProcess(elem[:0], &r.Processes[i])
		if i == 0 {
			elem = elem[1:] // the first element has no comma before it
		}
		bw.Write(elem)
	}
	bw.WriteString("\n  ],")
	bw.Write(b.Bytes()[at+len(processesNull):])
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s document as JSON: %w", r.Kind(), err)
	}
	return nil
}

// appendReportProcess appends p as an element of a run report's processes, preceded by a
// comma, as encoding/json indents it inside the document (TestWriteReportJSONIsEncodingJSON).
func appendReportProcess(b []byte, p *Process) []byte {
	b = append(b, ",\n    {\n      \"identity\": "...)
	b = appendJSONString(b, p.Identity)
	b = append(b, ",\n      \"hostname\": "...)
	b = appendJSONString(b, p.Hostname)
	b = append(b, ",\n      \"tag\": "...)
	b = appendJSONString(b, p.Tag)
	b = append(b, ",\n      \"version\": "...)
	b = appendJSONString(b, p.Version)
	b = append(b, ",\n      \"queues\": "...)
	b = appendElementQueues(b, p.Queues)
	for _, f := range [...]struct{ key, v string }{{"task", p.Task}, {"service", p.Service}, {"state", p.State},
		{"exit", p.Exit}, {"evidence", p.Evidence}} {
		b = append(b, ",\n      \""...)
		b = append(b, f.key...)
		b = append(b, "\": "...)
		b = appendJSONString(b, f.v)
	}
	b = append(b, ",\n      \"last_beat\": "...)
	b = appendJSONTime(b, p.LastBeat)
	b = append(b, ",\n      \"busy_at_quiet\": "...)
	b = strconv.AppendInt(b, int64(p.BusyAtQuiet), 10)
	for _, f := range [...]struct {
		key string
		at  time.Time
	}{{"quiet_at", p.QuietAt}, {"idle_at", p.IdleAt}, {"released_at", p.ReleasedAt}, {"exited_at", p.ExitedAt}} {
		if !f.at.IsZero() {
			b = append(b, ",\n      \""...)
			b = append(b, f.key...)
			b = append(b, "\": "...)
			b = appendJSONTime(b, f.at)
		}
	}
	return append(b, "\n    }"...)
}
