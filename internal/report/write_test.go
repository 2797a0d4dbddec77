package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"
)

// TestWriteReportJSONIsEncodingJSON: the run report's processes are encoded one at a time,
// and the document must stay what encoding/json writes for the whole of it, for every golden
// run and for processes with every field set, none set, and text JSON must escape.
func TestWriteReportJSONIsEncodingJSON(t *testing.T) {
	at := time.Date(2026, 12, 2, 16, 0, 0, 123456789, time.UTC)
	base := resultNamed("success_rescued")
	many := FromResult(withExit(base.res, base.err), Options{Version: "v0.1.0-test"})
	many.Processes = nil
	for i := range 1000 {
		p := Process{Identity: fmt.Sprintf("host-%d:1:%04x", i, i), Hostname: "host", State: "running"}
		switch i % 4 {
		case 0:
			p.Queues = []string{"default", "mail"}
			p.Evidence = "quiet <sent> & \"acknowledged\"\n\tü\u2028"
			p.LastBeat, p.QuietAt, p.IdleAt, p.ReleasedAt, p.ExitedAt = at, at, at, at, at
			p.BusyAtQuiet = 5
		case 1:
			p.Queues = []string{}
			p.LastBeat = at.In(time.FixedZone("X", -5*3600)).Add(-time.Duration(i) * time.Millisecond)
		case 2:
			p.Tag, p.Version, p.Task, p.Service, p.Exit = "app\\1", "6.4.1", "arn:aws:ecs:t/1", "prod/worker", "clean"
		}
		many.Processes = append(many.Processes, p)
	}
	one := many
	one.Processes = many.Processes[:1]
	cases := map[string]Report{"many": many, "one": one}
	for _, tc := range results() {
		cases[tc.name] = FromResult(withExit(tc.res, tc.err), Options{Version: "v0.1.0-test"})
	}
	for name, rep := range cases {
		t.Run(name, func(t *testing.T) {
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			if err := enc.Encode(rep); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := Write(&got, JSON, &rep, Options{}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Errorf("Write differs from encoding/json:\n--- got\n%s\n--- want\n%s", got.Bytes(), want.Bytes())
			}
		})
	}
}

// BenchmarkWriteReportJSON is the JSON report of `quiet --all` at 10,000 processes.
func BenchmarkWriteReportJSON(b *testing.B) {
	at := time.Date(2026, 12, 2, 16, 0, 0, 123456789, time.UTC)
	rep := Report{Schema: Schema, DocKind: "quiet", Command: "quiet"}
	for i := range 10000 {
		rep.Processes = append(rep.Processes, Process{Identity: fmt.Sprintf("ip-10-0-%d-%d:1000:%012x", i/256, i%256, i),
			Hostname: fmt.Sprintf("ip-10-0-%d-%d", i/256, i%256), Tag: "app", Queues: []string{"default", "mail"}, State: "running",
			Evidence: "quiet sent; not waiting for the acknowledgement (--no-wait)", LastBeat: at, BusyAtQuiet: 5})
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Write(io.Discard, JSON, &rep, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
