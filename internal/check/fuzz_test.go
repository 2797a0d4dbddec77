package check_test

import (
	"encoding/json"
	"os"
	"path/filepath"
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

// FuzzParseShell: no input panics the shell parser, and what it returns points inside the
// script.
func FuzzParseShell(f *testing.F) {
	_, scripts := corpusSeeds(f)
	for _, s := range scripts {
		f.Add(s)
	}
	for _, s := range []string{"", "a &&", "cat <<-EOF\n\tx\n\tEOF\nexec sidekiq", "f() { sidekiq; }; f", "$(", "'", `"\`, "((((", "case $x in (a|b) exec y;; esac", "! a | b &"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := check.ParseShell(src)
		if err != nil {
			return
		}
		for _, c := range s.Commands {
			if c.Start < 0 || c.End > len(src) || c.Start > c.End {
				t.Fatalf("command span [%d,%d) outside script of %d bytes", c.Start, c.End, len(src))
			}
			if c.Line < 1 {
				t.Fatalf("line %d", c.Line)
			}
			for _, w := range c.Args {
				if w.Pos < c.Start || w.Pos >= c.End {
					t.Fatalf("word at %d outside its command [%d,%d)", w.Pos, c.Start, c.End)
				}
			}
			_ = c.Text(src)
			_ = c.Exec()
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
	f.Add([]byte(`{"taskDefinition": {"containerDefinitions": [{"name": "x", "stopTimeout": -5, "command": ["sh", "-c"]}]}}`), "")
	f.Fuzz(func(t *testing.T, data []byte, script string) {
		td, err := check.ParseTaskDefinition(data)
		if err != nil {
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
