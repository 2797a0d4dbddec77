// Package finding is the one shape of what drainctl found before acting: the signal-path
// checks of `drainctl check` and the deploy preflight report the same typed findings, so one
// renderer, one exit rule and one JSON schema serve both.
package finding

import "sort"

// Severity ranks a finding: errors refuse a deploy and fail `drainctl check`; warnings do
// so with --strict; info is advice.
type Severity string

// The severities, most serious first.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
	Info    Severity = "info"
)

// Rank orders severities, most serious first (0 = error).
func (s Severity) Rank() int {
	switch s {
	case Error:
		return 0
	case Warning:
		return 1
	}
	return 2
}

// Finding is one thing found, with what to do about it.
type Finding struct {
	// Code is the stable identifier (SP001 for signal-path checks, PF… for deploy preflight).
	Code string `json:"code"`
	// Name is the code's short kebab-case name.
	Name     string   `json:"name,omitempty"`
	Severity Severity `json:"severity"`
	// Subject is what the finding is about: a task definition revision, a service, a process.
	Subject string `json:"subject"`
	// Container, File and Line locate it further where that applies.
	Container string `json:"container,omitempty"`
	File      string `json:"file,omitempty"`
	Line      int    `json:"line,omitempty"`
	// Message is one line saying what is wrong.
	Message string `json:"message"`
	// Evidence is what was seen that supports it (a command line, an exit code).
	Evidence string `json:"evidence,omitempty"`
	// Why says why it matters; Fix names the fix.
	Why string `json:"why,omitempty"`
	Fix string `json:"fix,omitempty"`
	// Numbers are the figures the finding settled on (seconds, counts), for machines.
	Numbers map[string]int `json:"numbers,omitempty"`
}

// Summary counts findings by severity.
type Summary struct {
	Errors   int `json:"errors"`
	Warnings int `json:"warnings"`
	Infos    int `json:"infos"`
}

// Summarize counts fs by severity.
func Summarize(fs []Finding) Summary {
	var s Summary
	for _, f := range fs {
		switch f.Severity {
		case Error:
			s.Errors++
		case Warning:
			s.Warnings++
		default:
			s.Infos++
		}
	}
	return s
}

// Blocking reports whether the findings refuse the action: any error, or any warning when
// strict.
func (s Summary) Blocking(strict bool) bool {
	return s.Errors > 0 || strict && s.Warnings > 0
}

// Sort orders findings most serious first, then by code and subject, stably.
func Sort(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity.Rank() != b.Severity.Rank() {
			return a.Severity.Rank() < b.Severity.Rank()
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		return a.Subject < b.Subject
	})
}
