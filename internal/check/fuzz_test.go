package check_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/drainctl/drainctl/internal/check"
)

// corpusSeeds returns the corpus's task definition files and every shell text in them
// (entry point scripts and the strings of command/entryPoint).
func corpusSeeds(f *testing.F) (taskdefs [][]byte, scripts []string) {
	f.Helper()
	tds, _ := filepath.Glob(filepath.Join(corpusDir, "*", "taskdef.json"))
	for _, p := range tds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		taskdefs = append(taskdefs, b)
		var td struct {
			ContainerDefinitions []struct {
				Command, EntryPoint []string
			}
		}
		_ = json.Unmarshal(b, &td)
		for _, c := range td.ContainerDefinitions {
			scripts = append(scripts, c.Command...)
			scripts = append(scripts, c.EntryPoint...)
		}
	}
	eps, _ := filepath.Glob(filepath.Join(corpusDir, "*", "entrypoint", "*"))
	for _, p := range eps {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		scripts = append(scripts, string(b))
	}
	return taskdefs, scripts
}

// FuzzParseShell: no input panics the shell parser or the walk over it, and the commands
// it reports lie inside the script.
func FuzzParseShell(f *testing.F) {
	_, scripts := corpusSeeds(f)
	for _, s := range scripts {
		f.Add(s, true)
	}
	for _, s := range shellSeeds {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, src string, bash bool) {
		shell := "sh"
		if bash {
			shell = "bash"
		}
		spans, lines, err := check.ShellCommands(shell, src, []string{"sidekiq", "-t", "5"})
		if err != nil {
			if !errors.Is(err, check.ErrShellSyntax) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want one line wrapping ErrShellSyntax", err)
			}
			return
		}
		for i, sp := range spans {
			if sp[0] < 0 || sp[1] > len(src) || sp[0] > sp[1] {
				t.Fatalf("command span [%d,%d) outside script of %d bytes", sp[0], sp[1], len(src))
			}
			if lines[i] < 0 || lines[i] > strings.Count(src, "\n")+1 {
				t.Fatalf("line %d in a script of %d lines", lines[i], strings.Count(src, "\n")+1)
			}
		}
	})
}

// shellSeeds are shapes the analysis has to follow: dispatch on $1, functions, heredocs,
// traps under set -e, and malformed input.
var shellSeeds = []string{
	"", "a &&", "cat <<-EOF\n\tx\n\tEOF\nexec sidekiq", "f() { sidekiq; }; f", "$(", "'", `"\`, "((((",
	"case $x in (a|b) exec y;; esac", "! a | b &",
	"case \"$1\" in\n  sidekiq) shift; bundle exec sidekiq \"$@\" ;;\n  *) exec \"$@\" ;;\nesac",
	"start() { exec bundle exec sidekiq \"$@\"; }\nstart -t 5",
	"set -e\ntrap 'kill -TERM \"$pid\"' TERM\nsidekiq & pid=$!\nwait \"$pid\"\nwait \"$pid\"",
	"if [ \"${1#-}\" != \"$1\" ]; then set -- sidekiq \"$@\"; fi\nexec \"$@\"",
	"T=${SIDEKIQ_TIMEOUT:-25}\nexec sidekiq -t \"$T\"",
	"f() { f; }; f", "a=$a$a$a; exec sidekiq $a", "trap term TERM\nterm() { kill $p; wait $p; }",
}

// FuzzAnalyzeScript: the whole check over a script given as an entry point file and as a
// `sh -c` string never panics, is deterministic, and reports consistent findings.
func FuzzAnalyzeScript(f *testing.F) {
	_, scripts := corpusSeeds(f)
	for _, s := range append(scripts, shellSeeds...) {
		f.Add(s, "sidekiq -t 20", "20")
	}
	f.Fuzz(func(t *testing.T, script, command, timeout string) {
		yes := true
		inputs := []check.Input{
			{TaskDefinition: check.NewTaskDefinition("f", 1, "awsvpc", []string{"FARGATE"}, check.Container{Name: "w",
				EntryPoint: []string{"/entrypoint.sh"}, Command: strings.Fields(command), Environment: map[string]string{"SIDEKIQ_TIMEOUT": timeout}}),
				EntrypointScripts: []check.ScriptFile{{Path: "entrypoint.sh", Content: script}}},
			{TaskDefinition: check.NewTaskDefinition("f", 2, "bridge", []string{"EC2"}, check.Container{Name: "w",
				Command: []string{"bash", "-c", script, "bash", command}, InitProcessEnabled: &yes}), AgentStopTimeout: 60},
		}
		for _, in := range inputs {
			res, err := check.Run(in)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			again, _ := check.Run(in)
			if !reflect.DeepEqual(res, again) {
				t.Fatalf("two runs differ:\n%+v\n%+v", res, again)
			}
			if n := res.Summary.Errors + res.Summary.Warnings + res.Summary.Infos; n != len(res.Findings) {
				t.Fatalf("summary counts %d findings, result has %d", n, len(res.Findings))
			}
			lines := strings.Count(script, "\n") + 1
			for _, fd := range res.Findings {
				if fd.Code == "" || fd.Name == "" || fd.Message == "" || fd.Line < 0 || fd.Line > lines || fd.Line > 0 && fd.File == "" {
					t.Fatalf("inconsistent finding %+v", fd)
				}
			}
			switch p := res.Targets[0].SignalPath; p {
			case "ok", "broken", "depends-on-shell", "at-risk", "unknown":
			default:
				t.Fatalf("signal path %q", p)
			}
		}
	})
}

// FuzzParseTaskDefinition: no input panics the parser, and whatever parses can be checked
// without panicking, with consistent counts.
func FuzzParseTaskDefinition(f *testing.F) {
	taskdefs, scripts := corpusSeeds(f)
	for _, b := range taskdefs {
		f.Add(b, "")
	}
	for _, s := range scripts {
		f.Add([]byte(`{"family":"f","containerDefinitions":[{"name":"w","entryPoint":["/e.sh"],"command":["sidekiq"]}]}`), s)
	}
	f.Add([]byte(`{"taskDefinition": null}`), "")
	f.Add([]byte(`{"taskDefinition": {"containerDefinitions": [{"name": "x", "stopTimeout": 5, "command": ["sh", "-c"]}]}}`), "")
	f.Add([]byte(`{"containerDefinitions": [{"name": "w", "command": ["sidekiq", 5], "environment": [{"name": "T", "value": 1}]}]}`), "")
	f.Add([]byte("{\"family\": \"caf\xe9\"}"), "")
	f.Fuzz(func(t *testing.T, data []byte, script string) {
		td, err := check.ParseTaskDefinition(data)
		if err != nil {
			// Bad input is one line in the document's terms, and always one of ours.
			msg := err.Error()
			if strings.Contains(msg, "\n") || strings.Contains(msg, "Go ") || strings.Contains(msg, "jsonContainer") || len(msg) > 400 {
				t.Fatalf("error %q", msg)
			}
			if !errors.Is(err, check.ErrInvalidTaskDefinition) && !errors.Is(err, check.ErrNotText) && !errors.Is(err, check.ErrNoContainers) {
				t.Fatalf("error %q is none of the input errors", msg)
			}
			return
		}
		in := check.Input{TaskDefinition: td, EntrypointScripts: []check.ScriptFile{{Path: "e.sh", Content: script}},
			Live: &check.Live{}, Deployment: &check.Deployment{}}
		res, err := check.Run(in)
		if err != nil {
			return
		}
		if n := res.Summary.Errors + res.Summary.Warnings + res.Summary.Infos; n != len(res.Findings) {
			t.Fatalf("summary counts %d findings, result has %d", n, len(res.Findings))
		}
	})
}
