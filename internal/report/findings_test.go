package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/drainctl/drainctl/internal/check"
	"github.com/drainctl/drainctl/internal/finding"
)

// The corpus goldens (testdata/check, written by internal/check's TestCorpus) cover the
// three formats for real results; these tests pin the renderers' edge cases.

func sampleResult() check.Result {
	return check.Result{
		Targets: []check.Target{{TaskDefinition: "worker:7", Container: "sidekiq|main", LaunchType: "FARGATE",
			StopTimeout: 30, StopTimeoutFrom: "unset: the Fargate default", SidekiqTimeout: 25, SidekiqTimeoutFrom: "Sidekiq's default, no -t", SignalPath: "broken"}},
		Findings: []check.Finding{
			{Code: "SP001", Name: "shell-wrapper-no-exec", Severity: finding.Error, Subject: "worker:7 / sidekiq|main", Container: "sidekiq|main",
				Message: "runs `a | b`", Evidence: "sidekiq | tee `date`.log", Why: "why", Fix: "fix"},
			{Code: "SP010", Name: "circuit-breaker-off", Severity: finding.Warning, Subject: "worker:7 / sidekiq|main", Container: "sidekiq|main",
				Message: "breaker off", Why: "why2", Fix: "fix2", Numbers: map[string]int{"b": 2, "a": 1}},
		},
		Summary: finding.Summary{Errors: 1, Warnings: 1},
	}
}

func TestWriteFindingsJSON(t *testing.T) {
	tests := []struct {
		name     string
		res      check.Result
		strict   bool
		wantExit int
	}{
		{name: "errors", res: sampleResult(), wantExit: 7},
		{name: "warnings only", res: check.Result{Summary: finding.Summary{Warnings: 1}}, wantExit: 0},
		{name: "warnings strict", res: check.Result{Summary: finding.Summary{Warnings: 1}}, strict: true, wantExit: 7},
		{name: "empty", res: check.Result{}, wantExit: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteFindingsJSON(&buf, tt.res, FindingsOptions{Strict: tt.strict}); err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, buf.String())
			}
			if doc["schema"] != Schema || doc["kind"] != "check" {
				t.Errorf("schema, kind = %v, %v; want %s, check", doc["schema"], doc["kind"], Schema)
			}
			if got := int(doc["exit_code"].(float64)); got != tt.wantExit {
				t.Errorf("exit_code = %d, want %d", got, tt.wantExit)
			}
			// Lists are never null, so consumers can iterate without checks.
			if _, ok := doc["findings"].([]any); !ok {
				t.Errorf("findings is %T, want a list", doc["findings"])
			}
			if _, ok := doc["targets"].([]any); !ok {
				t.Errorf("targets is %T, want a list", doc["targets"])
			}
		})
	}
}

func TestWriteFindingsMarkdownEscapes(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFindingsMarkdown(&buf, sampleResult(), FindingsOptions{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		`| worker:7 | sidekiq\|main | FARGATE |`,   // a pipe inside a cell is escaped
		"- Evidence: ``sidekiq | tee `date`.log``", // a code span longer than the backquotes inside
		"**1 error, 1 warning, 0 info**",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteFindingsText(t *testing.T) {
	tests := []struct {
		name    string
		opts    FindingsOptions
		want    []string
		notWant []string
	}{
		{name: "full", want: []string{"error     SP001  shell-wrapper-no-exec", "  why: why\n", "  fix: fix2\n", "1 error, 1 warning, 0 info"}},
		{name: "brief", opts: FindingsOptions{Brief: true}, want: []string{"  evidence: sidekiq | tee `date`.log"}, notWant: []string{"why:", "fix:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteFindingsText(&buf, sampleResult(), tt.opts); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(buf.String(), w) {
					t.Errorf("text lacks %q:\n%s", w, buf.String())
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(buf.String(), w) {
					t.Errorf("text has %q:\n%s", w, buf.String())
				}
			}
		})
	}
}

type failWriter struct{ after int }

var errDiskFull = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errDiskFull
	}
	f.after--
	return len(p), nil
}

func TestWriteFindingsReportsWriteErrors(t *testing.T) {
	writers := map[string]func(*failWriter) error{
		"text":     func(w *failWriter) error { return WriteFindingsText(w, sampleResult(), FindingsOptions{}) },
		"json":     func(w *failWriter) error { return WriteFindingsJSON(w, sampleResult(), FindingsOptions{}) },
		"markdown": func(w *failWriter) error { return WriteFindingsMarkdown(w, sampleResult(), FindingsOptions{}) },
	}
	for name, write := range writers {
		afters := []int{0, 3} // text and Markdown write piecemeal: fail at the first and a later write
		if name == "json" {
			afters = []int{0} // one Write of the whole document
		}
		for _, after := range afters {
			if err := write(&failWriter{after: after}); !errors.Is(err, errDiskFull) {
				t.Errorf("%s, failing after %d writes: error = %v, want disk full", name, after, err)
			}
		}
	}
}

// TestWriteFindingAnnotations: one workflow command per error and warning finding, escaped,
// and nothing outside GitHub Actions.
func TestWriteFindingAnnotations(t *testing.T) {
	res := sampleResult()
	res.Findings = append(res.Findings, check.Finding{Code: "SP020", Name: "note", Severity: finding.Info, Subject: "s", Message: "fyi"})
	res.Findings[0].Message = "runs `a | b`\n100% wrong"
	var b bytes.Buffer
	if err := WriteFindingAnnotations(&b, func(string) string { return "" }, res); err != nil || b.Len() != 0 {
		t.Errorf("outside GitHub Actions: %v, wrote %q", err, b.String())
	}
	gh := func(k string) string { return map[string]string{"GITHUB_ACTIONS": "true"}[k] }
	if err := WriteFindingAnnotations(&b, gh, res); err != nil {
		t.Fatal(err)
	}
	want := "::error::SP001 shell-wrapper-no-exec (worker:7 / sidekiq|main): runs `a | b`%0A100%25 wrong\n" +
		"::warning::SP010 circuit-breaker-off (worker:7 / sidekiq|main): breaker off\n"
	if b.String() != want {
		t.Errorf("annotations:\n%s\nwant:\n%s", b.String(), want)
	}
}
