package check_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"github.com/drainctl/drainctl/internal/finding"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/drainctl/drainctl/internal/check"
	"github.com/drainctl/drainctl/internal/report"
	"github.com/drainctl/drainctl/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/check")

// corpusDir holds one folder per case: taskdef.json, optional entrypoint/<files> (entry
// point scripts, as --entrypoint-file) and optional case.json (launch type, deployment
// configuration, live evidence).
var corpusDir = filepath.Join(testenv.RepoRoot(), "testdata", "taskdefs")

// goldenDir holds <case>.txt, <case>.json and <case>.md.
var goldenDir = filepath.Join(testenv.RepoRoot(), "testdata", "check")

// caseFile is the shape of case.json.
type caseFile struct {
	LaunchType       string `json:"launchType"`
	AgentStopTimeout int    `json:"agentStopTimeout"`
	Container        string `json:"container"`
	Deployment       *struct {
		MinimumHealthyPercent *int `json:"minimumHealthyPercent"`
		MaximumPercent        *int `json:"maximumPercent"`
		CircuitBreaker        struct {
			Enable   bool `json:"enable"`
			Rollback bool `json:"rollback"`
		} `json:"circuitBreaker"`
	} `json:"deployment"`
	Live *struct {
		StoppedTasks []struct {
			TaskID    string `json:"taskId"`
			Container string `json:"container"`
			ExitCode  *int   `json:"exitCode"`
			StopCode  string `json:"stopCode"`
			Reason    string `json:"reason"`
		} `json:"stoppedTasks"`
		VanishedProcesses int      `json:"vanishedProcesses"`
		Vanished          []string `json:"vanished"`
	} `json:"live"`
}

// loadCase reads one corpus folder into a check.Input.
func loadCase(t *testing.T, name string) check.Input {
	t.Helper()
	dir := filepath.Join(corpusDir, name)
	data, err := os.ReadFile(filepath.Join(dir, "taskdef.json"))
	if err != nil {
		t.Fatal(err)
	}
	td, err := check.ParseTaskDefinition(data)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	in := check.Input{Source: filepath.ToSlash(filepath.Join("testdata", "taskdefs", name, "taskdef.json")), TaskDefinition: td}
	scripts, _ := filepath.Glob(filepath.Join(dir, "entrypoint", "*"))
	sort.Strings(scripts)
	for _, p := range scripts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(testenv.RepoRoot(), p)
		in.EntrypointScripts = append(in.EntrypointScripts, check.ScriptFile{Path: filepath.ToSlash(rel), Content: string(b)})
	}
	b, err := os.ReadFile(filepath.Join(dir, "case.json"))
	if os.IsNotExist(err) {
		return in
	}
	if err != nil {
		t.Fatal(err)
	}
	var cf caseFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cf); err != nil {
		t.Fatalf("parse %s/case.json: %v", name, err)
	}
	in.LaunchType, in.AgentStopTimeout, in.Container = cf.LaunchType, cf.AgentStopTimeout, cf.Container
	if d := cf.Deployment; d != nil {
		in.Deployment = &check.Deployment{MinimumHealthyPercent: d.MinimumHealthyPercent, MaximumPercent: d.MaximumPercent,
			CircuitBreakerEnabled: d.CircuitBreaker.Enable, CircuitBreakerRollback: d.CircuitBreaker.Rollback}
	}
	if l := cf.Live; l != nil {
		in.Live = &check.Live{VanishedProcesses: l.VanishedProcesses, Vanished: l.Vanished}
		for _, st := range l.StoppedTasks {
			in.Live.StoppedTasks = append(in.Live.StoppedTasks, check.StoppedTask{TaskID: st.TaskID, Container: st.Container,
				ExitCode: st.ExitCode, StopCode: st.StopCode, Reason: st.Reason})
		}
	}
	return in
}

func corpusCases(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatal("empty corpus")
	}
	return names
}

// TestCorpus walks testdata/taskdefs: every case's findings, rendered as text, JSON and
// Markdown, must match its goldens; the case's name says what it must (not) find.
func TestCorpus(t *testing.T) {
	for _, name := range corpusCases(t) {
		t.Run(name, func(t *testing.T) {
			res, err := check.Run(loadCase(t, name))
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			assertNamedExpectation(t, name, res)
			for _, format := range []struct {
				ext   string
				write func(*bytes.Buffer) error
			}{
				{"txt", func(b *bytes.Buffer) error { return report.WriteFindingsText(b, res, report.FindingsOptions{}) }},
				{"json", func(b *bytes.Buffer) error { return report.WriteFindingsJSON(b, res, report.FindingsOptions{}) }},
				{"md", func(b *bytes.Buffer) error { return report.WriteFindingsMarkdown(b, res, report.FindingsOptions{}) }},
			} {
				var buf bytes.Buffer
				if err := format.write(&buf); err != nil {
					t.Fatalf("render %s: %v", format.ext, err)
				}
				golden := filepath.Join(goldenDir, name+"."+format.ext)
				if *update {
					if err := os.MkdirAll(goldenDir, 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("read golden (run with -update to create): %v", err)
				}
				if !bytes.Equal(buf.Bytes(), want) {
					t.Errorf("%s differs from %s (run with -update and review the diff):\n%s", format.ext, golden, buf.String())
				}
			}
		})
	}
}

// assertNamedExpectation checks what the case's name promises, independently of the
// goldens: good-* cases have no error or warning; spNNN-* cases contain finding SPNNN;
// "alone" cases (spNNN-* without "combined") have no other error or warning.
func assertNamedExpectation(t *testing.T, name string, res check.Result) {
	t.Helper()
	ids := map[string]int{}
	for _, f := range res.Findings {
		if f.Severity != finding.Info {
			ids[f.Code]++
		}
	}
	switch {
	case strings.HasPrefix(name, "good-"):
		if len(ids) > 0 {
			t.Errorf("good case has findings: %v", ids)
		}
		if res.ExitCode(true) != 0 {
			t.Errorf("good case: ExitCode(strict) = %d, want 0", res.ExitCode(true))
		}
	case strings.HasPrefix(name, "sp"):
		want := "SP" + strings.ToUpper(name[2:5])
		found := false
		for _, f := range res.Findings {
			if f.Code == want {
				found = true
			}
		}
		if !found {
			t.Errorf("case %s lacks finding %s: %+v", name, want, res.Findings)
		}
		allowed := map[string]bool{want: true}
		switch want {
		case "SP004": // an entry point script without exec may also swallow TERM
			allowed["SP005"] = true
		case "SP005":
			allowed["SP004"] = true
		}
		for id := range ids {
			if !allowed[id] {
				t.Errorf("case %s should show %s alone, also has %s", name, want, id)
			}
		}
	case strings.HasPrefix(name, "combined-"):
		if res.Summary.Errors == 0 {
			t.Errorf("combined case has no errors")
		}
		if res.ExitCode(false) != 7 {
			t.Errorf("ExitCode(false) = %d, want 7", res.ExitCode(false))
		}
	default:
		t.Fatalf("corpus case %q: name must start with good-, spNNN- or combined-", name)
	}
}
