package report

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/drainctl/drainctl/internal/check"
	"github.com/drainctl/drainctl/internal/finding"
)

// FindingsOptions tunes how check findings are rendered.
type FindingsOptions struct {
	// Strict makes warnings count for the exit code shown in JSON (--strict).
	Strict bool
	// Brief leaves out the why/fix explanations in text output.
	Brief bool
}

// WriteFindingsText renders a check result for a terminal: the checked containers as an
// aligned table, then each finding with its evidence, why it matters and the fix.
func WriteFindingsText(w io.Writer, res check.Result, opts FindingsOptions) error {
	ew := &findingsErrWriter{w: w}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK DEFINITION\tCONTAINER\tLAUNCH TYPE\tSTOP TIMEOUT\tSIDEKIQ TIMEOUT\tSIGNAL PATH")
	for _, t := range res.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.TaskDefinition, t.Container, t.LaunchType,
			fmt.Sprintf("%d s (%s)", t.StopTimeout, t.StopTimeoutFrom), findingsSidekiqTimeout(t), t.SignalPath)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range res.Targets {
		if t.ContainerReason != "" {
			fmt.Fprintf(ew, "%s: Sidekiq container %q chosen: %s\n", t.TaskDefinition, t.Container, t.ContainerReason)
		}
	}
	if len(res.Findings) == 0 {
		fmt.Fprintln(ew, "\nNo findings.")
	} else {
		fmt.Fprintln(ew)
		tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEVERITY\tCODE\tNAME\tWHERE")
		for _, f := range res.Findings {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Severity, f.Code, f.Name, findingsWhere(f))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, f := range res.Findings {
			fmt.Fprintf(ew, "\n%s %s %s (%s)\n", f.Severity, f.Code, f.Name, findingsWhere(f))
			fmt.Fprintf(ew, "  %s\n", f.Message)
			if f.Evidence != "" {
				fmt.Fprintf(ew, "  evidence: %s\n", f.Evidence)
			}
			if !opts.Brief {
				fmt.Fprintf(ew, "  why: %s\n", f.Why)
				fmt.Fprintf(ew, "  fix: %s\n", f.Fix)
			}
		}
	}
	fmt.Fprintf(ew, "\n%s\n", findingsSummary(res.Summary))
	return ew.err
}

// Check is the document of `drainctl check`.
type Check struct {
	Schema   string          `json:"schema"`
	DocKind  string          `json:"kind"`
	ExitCode int             `json:"exit_code"`
	Strict   bool            `json:"strict"`
	Summary  finding.Summary `json:"summary"`
	Targets  []check.Target  `json:"targets"`
	Findings []check.Finding `json:"findings"`
	// Advice is further advice on the service (its deployment configuration), when read live.
	Advice []string `json:"advice,omitempty"`

	opts FindingsOptions
}

// NewCheck is the document of a check result.
func NewCheck(res check.Result, opts FindingsOptions) *Check {
	doc := &Check{Schema: Schema, DocKind: "check", ExitCode: res.ExitCode(opts.Strict), Strict: opts.Strict,
		Summary: res.Summary, Targets: res.Targets, Findings: res.Findings, opts: opts}
	if doc.Targets == nil {
		doc.Targets = []check.Target{}
	}
	if doc.Findings == nil {
		doc.Findings = []check.Finding{}
	}
	return doc
}

// Kind is "check".
func (c *Check) Kind() string { return c.DocKind }

func (c *Check) result() check.Result {
	return check.Result{Targets: c.Targets, Findings: c.Findings, Summary: c.Summary}
}

func (c *Check) writeText(w io.Writer, _ Options) error {
	return WriteFindingsText(w, c.result(), c.opts)
}

func (c *Check) writeMarkdown(w io.Writer, _ Options) error {
	return WriteFindingsMarkdown(w, c.result(), c.opts)
}

// WriteFindingsJSON renders a check result as one indented JSON document.
func WriteFindingsJSON(w io.Writer, res check.Result, opts FindingsOptions) error {
	return Write(w, JSON, NewCheck(res, opts), Options{})
}

// WriteFindingsMarkdown renders a check result as Markdown, for a pull request comment or
// a CI job summary.
func WriteFindingsMarkdown(w io.Writer, res check.Result, opts FindingsOptions) error {
	ew := &findingsErrWriter{w: w}
	fmt.Fprintln(ew, "## drainctl check")
	fmt.Fprintln(ew)
	fmt.Fprintf(ew, "**%s**\n\n", findingsSummary(res.Summary))
	fmt.Fprintln(ew, "| Task definition | Container | Launch type | Stop timeout | Sidekiq timeout | Signal path |")
	fmt.Fprintln(ew, "|---|---|---|---|---|---|")
	for _, t := range res.Targets {
		fmt.Fprintf(ew, "| %s | %s | %s | %s | %s | %s |\n", findingsMDCell(t.TaskDefinition), findingsMDCell(t.Container), findingsMDCell(t.LaunchType),
			findingsMDCell(fmt.Sprintf("%d s (%s)", t.StopTimeout, t.StopTimeoutFrom)), findingsMDCell(findingsSidekiqTimeout(t)), findingsMDCell(t.SignalPath))
	}
	if len(res.Findings) == 0 {
		fmt.Fprintln(ew, "\nNo findings.")
		return ew.err
	}
	fmt.Fprintln(ew)
	fmt.Fprintln(ew, "| Severity | Code | Name | Where |")
	fmt.Fprintln(ew, "|---|---|---|---|")
	for _, f := range res.Findings {
		fmt.Fprintf(ew, "| %s | %s | %s | %s |\n", f.Severity, f.Code, f.Name, findingsMDCell(findingsWhere(f)))
	}
	for _, f := range res.Findings {
		fmt.Fprintf(ew, "\n### %s %s %s\n\n", f.Severity, f.Code, f.Name)
		fmt.Fprintf(ew, "%s — %s\n\n", findingsMDText(findingsWhere(f)), findingsMDText(f.Message))
		if f.Evidence != "" {
			fmt.Fprintf(ew, "- Evidence: %s\n", findingsMDCode(f.Evidence))
		}
		fmt.Fprintf(ew, "- Why: %s\n", f.Why)
		fmt.Fprintf(ew, "- Fix: %s\n", f.Fix)
	}
	return ew.err
}

// findingsWhere locates a finding: its subject (which names the container for check
// findings), the container when the subject does not, and file:line.
func findingsWhere(f finding.Finding) string {
	s := f.Subject
	if f.Container != "" && !strings.HasSuffix(s, " / "+f.Container) {
		s += " / " + f.Container
	}
	if f.File != "" {
		s += " / " + f.File
		if f.Line > 0 {
			s += fmt.Sprintf(":%d", f.Line)
		}
	}
	return s
}

func findingsSidekiqTimeout(t check.Target) string {
	if t.SidekiqTimeout == 0 {
		return t.SidekiqTimeoutFrom
	}
	return fmt.Sprintf("%d s (%s)", t.SidekiqTimeout, t.SidekiqTimeoutFrom)
}

func findingsSummary(s finding.Summary) string {
	return fmt.Sprintf("%s, %s, %s", findingsPlural(s.Errors, "error"), findingsPlural(s.Warnings, "warning"), findingsPlural(s.Infos, "info"))
}

func findingsPlural(n int, word string) string {
	if n == 1 || word == "info" {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// findingsMDCell makes text safe inside a Markdown table cell.
func findingsMDCell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// findingsMDText keeps a line of prose from starting Markdown structures.
func findingsMDText(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// findingsMDCode wraps s in a code span long enough for the backquotes inside it.
func findingsMDCode(s string) string {
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		pad = " "
	}
	return fence + pad + strings.ReplaceAll(s, "\n", " ") + pad + fence
}

// findingsErrWriter remembers the first write error so rendering code can stay linear.
type findingsErrWriter struct {
	w   io.Writer
	err error
}

func (e *findingsErrWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

// WriteFindingAnnotations writes a GitHub Actions workflow command for each error (::error::)
// and warning (::warning::) finding of res when getenv("GITHUB_ACTIONS") is "true", so that
// they show on the workflow run; otherwise nothing.
func WriteFindingAnnotations(w io.Writer, getenv func(string) string, res check.Result) error {
	if getenv("GITHUB_ACTIONS") != "true" {
		return nil
	}
	var b bytes.Buffer
	for _, f := range res.Findings {
		msg := escapeCommand(fmt.Sprintf("%s %s (%s): %s", f.Code, f.Name, f.Subject, f.Message))
		switch f.Severity {
		case finding.Error:
			fmt.Fprintf(&b, "::error::%s\n", msg)
		case finding.Warning:
			fmt.Fprintf(&b, "::warning::%s\n", msg)
		}
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write annotations: %w", err)
	}
	return nil
}
