package check

import (
	"errors"
	"github.com/drainctl/drainctl/internal/finding"
	"os"
	"strings"
	"testing"
)

func TestParseTaskDefinition(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		wantErr error // nil: must parse
		check   func(t *testing.T, td TaskDefinition)
	}{
		{
			name: "describe-task-definition output",
			json: `{"taskDefinition": {"family": "w", "revision": 7, "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/w:7",
				"networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
				"containerDefinitions": [{"name": "sidekiq", "image": "i", "command": ["bundle", "exec", "sidekiq"], "stopTimeout": 45,
				"essential": false, "linuxParameters": {"initProcessEnabled": true}, "dependsOn": [{"containerName": "envoy", "condition": "HEALTHY"}],
				"environment": [{"name": "RAILS_ENV", "value": "production"}]}]}, "tags": []}`,
			check: func(t *testing.T, td TaskDefinition) {
				c := td.Containers[0]
				if td.Name() != "w:7" || td.NetworkMode != "awsvpc" || td.ARN == "" {
					t.Errorf("task definition = %+v", td)
				}
				if *c.StopTimeout != 45 || !*c.InitProcessEnabled || c.IsEssential() || c.DependsOn[0] != (Dependency{"envoy", "HEALTHY"}) ||
					c.Environment["RAILS_ENV"] != "production" || len(c.Command) != 3 {
					t.Errorf("container = %+v", c)
				}
			},
		},
		{
			name: "register-task-definition input",
			json: `{"family": "w", "containerDefinitions": [{"name": "a"}, {"name": "b", "entryPoint": ["/e"]}]}`,
			check: func(t *testing.T, td TaskDefinition) {
				if td.Name() != "w" || len(td.Containers) != 2 || td.Containers[1].EntryPoint[0] != "/e" || !td.Containers[0].IsEssential() {
					t.Errorf("task definition = %+v", td)
				}
			},
		},
		{name: "no containers", json: `{"family": "w"}`, wantErr: ErrNoContainers},
		{name: "wrapped no containers", json: `{"taskDefinition": {"family": "w", "containerDefinitions": []}}`, wantErr: ErrNoContainers},
		{name: "not JSON", json: `family: w`, wantErr: ErrInvalidTaskDefinition},
		{name: "wrong type", json: `{"containerDefinitions": [{"name": "a", "stopTimeout": "30"}]}`, wantErr: ErrInvalidTaskDefinition},
		{name: "unnamed container", json: `{"containerDefinitions": [{"image": "x"}]}`, wantErr: ErrInvalidTaskDefinition},
		{name: "nulls are unset", json: `{"family": null, "containerDefinitions": [{"name": "a", "command": null, "essential": null, "linuxParameters": null}]}`,
			check: func(t *testing.T, td TaskDefinition) {
				if c := td.Containers[0]; c.Command != nil || c.Essential != nil || c.InitProcessEnabled != nil {
					t.Errorf("container = %+v", c)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td, err := ParseTaskDefinition([]byte(tt.json))
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("ParseTaskDefinition: %v", err)
			case tt.wantErr == errAny && err == nil, tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, td)
			}
		})
	}
}

var errAny = errors.New("any error")

// TestParseTaskDefinitionErrors: a bad document gets one line saying where it is wrong in
// the document's own terms, never Go's type names.
func TestParseTaskDefinitionErrors(t *testing.T) {
	tests := []struct {
		name, json string
		wantErr    error
		want       string
	}{
		{"command of numbers", `{"containerDefinitions": [{"name": "w", "command": ["sidekiq", 5]}]}`, ErrInvalidTaskDefinition,
			"containerDefinitions[0].command: want a list of strings, item 1 is a number"},
		{"command as a string", `{"containerDefinitions": [{"name": "w"}, {"name": "x", "command": "bundle exec sidekiq"}]}`, ErrInvalidTaskDefinition,
			"containerDefinitions[1].command: want a list of strings, got a string"},
		{"stopTimeout as a string", `{"taskDefinition": {"containerDefinitions": [{"name": "w", "stopTimeout": "30"}]}}`, ErrInvalidTaskDefinition,
			"taskDefinition.containerDefinitions[0].stopTimeout: want a number, got a string"},
		{"negative stopTimeout", `{"containerDefinitions": [{"name": "w", "stopTimeout": -5}]}`, ErrInvalidTaskDefinition,
			"containerDefinitions[0].stopTimeout: want a whole number of at least 0, got -5"},
		{"fractional revision", `{"revision": 1.5, "containerDefinitions": [{"name": "w"}]}`, ErrInvalidTaskDefinition, "revision: want a whole number"},
		{"essential as a string", `{"containerDefinitions": [{"name": "w", "essential": "yes"}]}`, ErrInvalidTaskDefinition,
			"containerDefinitions[0].essential: want true or false, got a string"},
		{"initProcessEnabled", `{"containerDefinitions": [{"name": "w", "linuxParameters": {"initProcessEnabled": 1}}]}`, ErrInvalidTaskDefinition,
			"containerDefinitions[0].linuxParameters.initProcessEnabled: want true or false, got a number"},
		{"environment value", `{"containerDefinitions": [{"name": "w", "environment": [{"name": "T", "value": 25}]}]}`, ErrInvalidTaskDefinition,
			"containerDefinitions[0].environment[0].value: want a string, got a number"},
		{"containerDefinitions as an object", `{"containerDefinitions": {"name": "w"}}`, ErrInvalidTaskDefinition,
			"containerDefinitions: want a list of objects, got an object"},
		{"a container as a string", `{"containerDefinitions": ["w"]}`, ErrInvalidTaskDefinition, "containerDefinitions[0]: want an object, got a string"},
		{"syntax error", "{\n  \"family\": \"w\",\n  oops\n}", ErrInvalidTaskDefinition, "not valid JSON at line 3, column 3: invalid character 'o'"},
		{"cut short", `{"family": "w", "containerDefinitions": [`, ErrInvalidTaskDefinition, "not valid JSON: it ends in the middle"},
		{"trailing data", `{"containerDefinitions": [{"name": "w"}]} {}`, ErrInvalidTaskDefinition, "more data after"},
		{"a list", `[{"family": "w"}]`, ErrInvalidTaskDefinition, "not a JSON object"},
		{"YAML", "family: w\ncontainerDefinitions: []", ErrInvalidTaskDefinition, "not a JSON object"},
		{"empty", " \n", ErrInvalidTaskDefinition, "empty"},
		{"binary", "{\x00\x01}", ErrNotText, "not UTF-8 text"},
		{"Latin-1", "{\"family\": \"caf\xe9\"}", ErrNotText, "not UTF-8 text"},
		{"deep nesting", strings.Repeat("[", 20000), ErrInvalidTaskDefinition, "not a JSON object"},
		{"deep nesting in an object", `{"a":` + strings.Repeat("[", 20000), ErrInvalidTaskDefinition, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTaskDefinition([]byte(tt.json))
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %v containing %q", err, tt.wantErr, tt.want)
			}
			assertPlainError(t, err)
		})
	}
}

// assertPlainError: one line, no Go type names.
func assertPlainError(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	for _, bad := range []string{"\n", "Go struct", "Go value", "jsonContainer", "of type", "map[string]", "interface"} {
		if strings.Contains(msg, bad) {
			t.Errorf("error %q contains %q", msg, bad)
		}
	}
}

// TestReadTaskDefinitionBadInput: inputs that are not task definitions end with an error
// after reading at most 1 MiB.
func TestReadTaskDefinitionBadInput(t *testing.T) {
	dir := t.TempDir()
	big := dir + "/big.json"
	if err := os.WriteFile(big, []byte(`{"family": "`+strings.Repeat("w", 2<<20)+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/dev/urandom", "/dev/zero", big} {
		if _, err := ReadTaskDefinitionFile(p); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), p) {
			t.Errorf("ReadTaskDefinitionFile(%s) error = %v, want ErrTooLarge naming the file", p, err)
		}
	}
	if _, err := ReadTaskDefinitionFile(dir); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("a directory: error = %v", err)
	}
	// Exactly 1 MiB is still read (and then judged on its content).
	exact := `{"containerDefinitions": [{"name": "w"}], "x": "` + strings.Repeat("w", MaxInputSize-50) + `"}`
	if len(exact) != MaxInputSize {
		t.Fatalf("test input of %d bytes", len(exact))
	}
	if td, err := ReadTaskDefinition(strings.NewReader(exact), "(stdin)"); err != nil || td.Containers[0].Name != "w" {
		t.Errorf("1 MiB task definition: %+v, %v", td, err)
	}
	_, err := ReadTaskDefinition(strings.NewReader(`{"containerDefinitions": [{"name": "w", "command": [1]}]}`), "(stdin)")
	if !errors.Is(err, ErrInvalidTaskDefinition) || err.Error() != "task definition (stdin): containerDefinitions[0].command: want a list of strings, item 0 is a number" {
		t.Errorf("error = %q", err)
	}
	if _, err := ReadScript(strings.NewReader("#!/bin/sh\n\x00\x7fELF"), "e.sh"); !errors.Is(err, ErrNotText) || !strings.Contains(err.Error(), "e.sh") {
		t.Errorf("binary script: error = %v", err)
	}
	if _, err := ReadScriptFile("/dev/urandom"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadScriptFile(/dev/urandom) error = %v", err)
	}
}

func TestRunPicksContainers(t *testing.T) {
	sidekiq := Container{Name: "worker", Command: []string{"bundle", "exec", "sidekiq"}}
	web := Container{Name: "web", Command: []string{"bundle", "exec", "puma"}}
	lone := Container{Name: "app"}
	tests := []struct {
		name       string
		td         TaskDefinition
		container  string
		wantErr    error
		wantTarget []string
	}{
		{name: "by command", td: NewTaskDefinition("f", 1, "awsvpc", nil, web, sidekiq), wantTarget: []string{"worker"}},
		{name: "named", td: NewTaskDefinition("f", 1, "awsvpc", nil, web, sidekiq), container: "web", wantTarget: []string{"web"}},
		{name: "named missing", td: NewTaskDefinition("f", 1, "awsvpc", nil, web), container: "nope", wantErr: ErrUnknownContainer},
		{name: "only container", td: NewTaskDefinition("f", 1, "awsvpc", nil, lone), wantTarget: []string{"app"}},
		{name: "none", td: NewTaskDefinition("f", 1, "awsvpc", nil, web, lone), wantErr: ErrNoSidekiqContainer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(Input{TaskDefinition: tt.td, Container: tt.container})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tg := range res.Targets {
				got = append(got, tg.Container)
			}
			if len(got) != len(tt.wantTarget) || got[0] != tt.wantTarget[0] {
				t.Errorf("targets = %v, want %v", got, tt.wantTarget)
			}
		})
	}
}

func TestRunSeveralTaskDefinitions(t *testing.T) {
	short := 10
	a := NewTaskDefinition("a", 1, "awsvpc", []string{"FARGATE"}, Container{Name: "w", Command: []string{"sidekiq"}, StopTimeout: &short})
	b := NewTaskDefinition("b", 2, "bridge", []string{"EC2"}, Container{Name: "w", Command: []string{"sh", "-c", "cd /x && sidekiq"}})
	res, err := Run(Input{TaskDefinition: a}, Input{TaskDefinition: b})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Targets) != 2 || res.Targets[0].TaskDefinition != "a:1" || res.Targets[1].LaunchType != LaunchTypeEC2 {
		t.Fatalf("targets = %+v", res.Targets)
	}
	var got []string
	for _, f := range res.Findings {
		got = append(got, f.Subject+" "+f.Code)
	}
	want := []string{"a:1 / w SP006", "b:2 / w SP001", "b:2 / w SP003"}
	if len(got) != len(want) {
		t.Fatalf("findings = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("finding %d = %s, want %s", i, got[i], want[i])
		}
	}
	if res.Summary != (finding.Summary{Errors: 2, Infos: 1}) {
		t.Errorf("summary = %+v", res.Summary)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		s      finding.Summary
		strict bool
		want   int
	}{
		{finding.Summary{}, false, 0},
		{finding.Summary{}, true, 0},
		{finding.Summary{Infos: 3}, true, 0},
		{finding.Summary{Warnings: 1}, false, 0},
		{finding.Summary{Warnings: 1}, true, 7},
		{finding.Summary{Errors: 1}, false, 7},
	}
	for _, tt := range tests {
		if got := (Result{Summary: tt.s}).ExitCode(tt.strict); got != tt.want {
			t.Errorf("ExitCode(%+v, strict %v) = %d, want %d", tt.s, tt.strict, got, tt.want)
		}
	}
}

func TestRunSignalPath(t *testing.T) {
	yes := true
	tests := []struct {
		name       string
		c          Container
		scripts    []ScriptFile
		wantPath   string
		wantIDs    []string // non-info findings, in order
		wantTimout int
	}{
		{name: "sh -c exec \"$@\" with arguments", c: Container{Name: "w", Command: []string{"sh", "-c", `exec "$@"`, "sh", "bundle", "exec", "sidekiq", "-t", "8"}},
			wantPath: "ok", wantTimout: 8},
		{name: "env then exec form", c: Container{Name: "w", Command: []string{"env", "-i", "A=1", "bundle", "exec", "sidekiq", "--timeout=9"}},
			wantPath: "ok", wantTimout: 9},
		{name: "sh running a script file", c: Container{Name: "w", EntryPoint: []string{"/bin/sh", "/entrypoint.sh"}, Command: []string{"sidekiq"}},
			scripts: []ScriptFile{{Path: "docker/entrypoint.sh", Content: "#!/bin/sh\nset -e\nexec \"$@\"\n"}}, wantPath: "ok", wantTimout: 25},
		{name: "entrypoint not given", c: Container{Name: "w", EntryPoint: []string{"docker-entrypoint.sh"}, Command: []string{"sidekiq"}},
			wantPath: "unknown", wantIDs: []string{"SP015"}, wantTimout: 25},
		{name: "exec in a case branch", c: Container{Name: "w", EntryPoint: []string{"/e.sh"}, Command: []string{"worker"}},
			scripts:  []ScriptFile{{Path: "e.sh", Content: "case \"$1\" in\n worker) exec bundle exec sidekiq -t 3 ;;\n *) exec \"$@\" ;;\nesac\n"}},
			wantPath: "ok", wantTimout: 3},
		{name: "forwarding trap without wait", c: Container{Name: "w", Command: []string{"sh", "-c", `trap 'kill -TERM $p' TERM; sidekiq & p=$!; wait $p`}},
			wantPath: "at-risk", wantIDs: []string{"SP001"}, wantTimout: 25},
		{name: "background", c: Container{Name: "w", Command: []string{"sh", "-c", "sidekiq & wait"}},
			wantPath: "broken", wantIDs: []string{"SP001"}, wantTimout: 25},
		{name: "unparseable", c: Container{Name: "w", Command: []string{"sh", "-c", "cd /app && 'sidekiq"}},
			wantPath: "broken", wantIDs: []string{"SP001"}},
		{name: "dumb-init then lone bash", c: Container{Name: "w", EntryPoint: []string{"/usr/bin/dumb-init", "--"}, Command: []string{"bash", "-c", "sidekiq -t 3"}},
			wantPath: "ok", wantTimout: 3},
		{name: "dumb-init then lone sh", c: Container{Name: "w", EntryPoint: []string{"/usr/bin/dumb-init", "--"}, Command: []string{"sh", "-c", "sidekiq -t 3"}},
			wantPath: "broken", wantIDs: []string{"SP002"}, wantTimout: 3},
		{name: "lone dash", c: Container{Name: "w", Command: []string{"/bin/dash", "-c", "exec_me=1 sidekiq -t 3"}},
			wantPath: "broken", wantIDs: []string{"SP002"}, wantTimout: 3},
		{name: "dispatch on $1 without exec, no init", c: Container{Name: "w", EntryPoint: []string{"/e.sh"}, Command: []string{"sidekiq", "-t", "8"}},
			scripts:  []ScriptFile{{Path: "e.sh", Content: "#!/bin/sh\ncase \"$1\" in\n  sidekiq) shift; bundle exec sidekiq \"$@\" ;;\n  *) exec \"$@\" ;;\nesac\n"}},
			wantPath: "broken", wantIDs: []string{"SP004"}, wantTimout: 8},
		{name: "dispatch on $1 with exec", c: Container{Name: "w", EntryPoint: []string{"/e.sh"}, Command: []string{"sidekiq", "-t", "8"}},
			scripts:  []ScriptFile{{Path: "e.sh", Content: "#!/bin/sh\ncase \"$1\" in\n  sidekiq) shift; exec bundle exec sidekiq \"$@\" ;;\n  *) exec \"$@\" ;;\nesac\n"}},
			wantPath: "ok", wantTimout: 8},
		{name: "dispatch on $1 of the image's CMD: the branch that starts Sidekiq decides", c: Container{Name: "w"},
			scripts:  []ScriptFile{{Path: "e.sh", Content: "#!/bin/bash\ncase \"$1\" in\n  web) exec puma ;;\n  worker) bundle exec sidekiq ;;\n  *) exec \"$@\" ;;\nesac\n"}},
			wantPath: "broken", wantIDs: []string{"SP004"}, wantTimout: 25},
		{name: "a function that execs", c: Container{Name: "w", Command: []string{"sh", "-c", "run() { cd /app; exec bundle exec sidekiq \"$@\"; }; run -t 9"}},
			wantPath: "ok", wantTimout: 9},
		{name: "forwarding trap, second wait", c: Container{Name: "w", Command: []string{"sh", "-c", "trap 'kill -TERM $p' TERM; sidekiq & p=$!; wait $p; wait $p"}},
			wantPath: "ok", wantTimout: 25},
		{name: "forwarding trap, second wait, set -e", c: Container{Name: "w", Command: []string{"sh", "-ec", "trap 'kill -TERM $p' TERM; sidekiq & p=$!; wait $p; wait $p"}},
			wantPath: "at-risk", wantIDs: []string{"SP001"}, wantTimout: 25},
		{name: "an entry point in another language", c: Container{Name: "w", EntryPoint: []string{"/app/bin/start"}, Command: []string{"sidekiq"}},
			scripts:  []ScriptFile{{Path: "bin/start", Content: "#!/usr/bin/env ruby\nexec(*ARGV)\n"}},
			wantPath: "unknown", wantIDs: []string{"SP015"}, wantTimout: 0},
		{name: "sh -e and a shebang's options", c: Container{Name: "w", EntryPoint: []string{"/e.sh"}, Command: []string{"sidekiq"}},
			scripts:  []ScriptFile{{Path: "e.sh", Content: "#!/bin/sh -eu\ntrap 'kill -TERM $p' TERM\n\"$@\" & p=$!\nwait $p\nwait $p\n"}},
			wantPath: "at-risk", wantIDs: []string{"SP004"}, wantTimout: 25},
		{name: "timeout from a variable the task definition does not set", c: Container{Name: "w", Command: []string{"sh", "-c", "exec sidekiq -t $SIDEKIQ_TIMEOUT"}, InitProcessEnabled: &yes},
			wantPath: "ok", wantIDs: []string{"SP016"}},
		{name: "timeout from the environment, too long for the stop timeout", c: Container{Name: "w", Command: []string{"sh", "-c", "exec sidekiq -t $SIDEKIQ_TIMEOUT"},
			InitProcessEnabled: &yes, Environment: map[string]string{"SIDEKIQ_TIMEOUT": "60"}},
			wantPath: "ok", wantIDs: []string{"SP006"}, wantTimout: 60},
		{name: "timeout from the environment, braces", c: Container{Name: "w", Command: []string{"bash", "-c", "cd /app; exec bundle exec sidekiq --timeout ${SIDEKIQ_TIMEOUT}"},
			InitProcessEnabled: &yes, Environment: map[string]string{"SIDEKIQ_TIMEOUT": "20"}},
			wantPath: "ok", wantTimout: 20},
		{name: "timeout with a default the image may override", c: Container{Name: "w", Command: []string{"sh", "-c", "exec sidekiq --timeout=${SIDEKIQ_TIMEOUT:-10}"}, InitProcessEnabled: &yes},
			wantPath: "ok", wantIDs: []string{"SP016"}},
		{name: "timeout set by the script", c: Container{Name: "w", EntryPoint: []string{"/e.sh"}, Command: []string{"sidekiq"}, InitProcessEnabled: &yes},
			scripts:  []ScriptFile{{Path: "e.sh", Content: "#!/bin/sh\nT=40\nexec \"$@\" -t \"$T\"\n"}},
			wantPath: "ok", wantIDs: []string{"SP006"}, wantTimout: 40},
		{name: "timeout as text in exec form", c: Container{Name: "w", Command: []string{"sidekiq", "-t", "$SIDEKIQ_TIMEOUT"}, Environment: map[string]string{"SIDEKIQ_TIMEOUT": "5"}},
			wantPath: "ok", wantIDs: []string{"SP007"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := NewTaskDefinition("f", 1, "awsvpc", []string{"FARGATE"}, tt.c)
			res, err := Run(Input{TaskDefinition: td, EntrypointScripts: tt.scripts})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, f := range res.Findings {
				if f.Severity != finding.Info {
					ids = append(ids, f.Code)
				}
			}
			tg := res.Targets[0]
			if tg.SignalPath != tt.wantPath || tg.SidekiqTimeout != tt.wantTimout || len(ids) != len(tt.wantIDs) {
				t.Fatalf("path %q, timeout %d, findings %v; want %q, %d, %v\n%+v", tg.SignalPath, tg.SidekiqTimeout, ids, tt.wantPath, tt.wantTimout, tt.wantIDs, res.Findings)
			}
			for i := range ids {
				if ids[i] != tt.wantIDs[i] {
					t.Errorf("findings %v, want %v", ids, tt.wantIDs)
				}
			}
		})
	}
}

func TestReadFiles(t *testing.T) {
	dir := t.TempDir()
	good := dir + "/td.json"
	bad := dir + "/bad.json"
	if err := os.WriteFile(good, []byte(`{"family":"f","containerDefinitions":[{"name":"w"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(`{"family":"f"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if td, err := ReadTaskDefinitionFile(good); err != nil || td.Family != "f" {
		t.Errorf("ReadTaskDefinitionFile(good) = %+v, %v", td, err)
	}
	if _, err := ReadTaskDefinitionFile(bad); !errors.Is(err, ErrNoContainers) || !strings.Contains(err.Error(), bad) {
		t.Errorf("ReadTaskDefinitionFile(bad) error = %v, want ErrNoContainers naming the file", err)
	}
	if _, err := ReadTaskDefinitionFile(dir + "/missing.json"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file error = %v", err)
	}
	if sf, err := ReadScriptFile(good); err != nil || sf.Path != good || sf.Content == "" {
		t.Errorf("ReadScriptFile = %+v, %v", sf, err)
	}
}

// TestTimeoutFrom: where Sidekiq's -t came from is said in the target, and an unresolvable
// one names the variable to set.
func TestTimeoutFrom(t *testing.T) {
	td := NewTaskDefinition("f", 1, "awsvpc", []string{"FARGATE"}, Container{Name: "w", Command: []string{"sh", "-c", "exec sidekiq -t $A --queue $B"},
		Environment: map[string]string{"A": "12"}})
	res, err := Run(Input{TaskDefinition: td})
	if err != nil {
		t.Fatal(err)
	}
	if tg := res.Targets[0]; tg.SidekiqTimeout != 12 || tg.SidekiqTimeoutFrom != "-t $A, from the container's environment" {
		t.Errorf("timeout %d from %q", tg.SidekiqTimeout, tg.SidekiqTimeoutFrom)
	}
	td.Containers[0].Environment = nil
	res, err = Run(Input{TaskDefinition: td})
	if err != nil {
		t.Fatal(err)
	}
	f := res.Findings[0]
	if f.Code != CodeSidekiqTimeoutUnresolvable || f.Severity != finding.Warning || !strings.Contains(f.Message, "shutdown timeout not resolvable") ||
		!strings.Contains(f.Fix, "Set A in the container's \"environment\" (at most 25 s") {
		t.Errorf("finding = %+v", f)
	}
}

// TestAgentStopTimeout: a container without stopTimeout on EC2 is judged by the agent's
// ECS_CONTAINER_STOP_TIMEOUT when given, and the target and finding say which budget was
// assumed.
func TestAgentStopTimeout(t *testing.T) {
	tests := []struct {
		name       string
		launchType string
		compat     []string
		stop       *int
		agent      int
		wantStop   int
		wantFrom   string
		wantSP006  bool
		wantFixHas string
	}{
		{name: "EC2, agent default assumed", launchType: LaunchTypeEC2, wantStop: 30, wantFrom: "default ECS_CONTAINER_STOP_TIMEOUT assumed (see --agent-stop-timeout)",
			wantSP006: true, wantFixHas: "give that with --agent-stop-timeout"},
		{name: "EC2, agent raised", launchType: LaunchTypeEC2, agent: 90, wantStop: 90, wantFrom: "ECS_CONTAINER_STOP_TIMEOUT from --agent-stop-timeout"},
		{name: "EC2 from requiresCompatibilities, agent too short", compat: []string{"EC2"}, agent: 40, wantStop: 40,
			wantFrom: "from --agent-stop-timeout", wantSP006: true, wantFixHas: "setting stopTimeout on the container is more reliable"},
		{name: "launch type unknown, agent given", agent: 90, wantStop: 90, wantFrom: "launch type unknown, EC2 assumed"},
		{name: "Fargate ignores the agent", launchType: LaunchTypeFargate, agent: 90, wantStop: 30, wantFrom: "applies on EC2 only", wantSP006: true},
		{name: "stopTimeout wins", launchType: LaunchTypeEC2, stop: intp(60), agent: 20, wantStop: 60, wantFrom: "the container's stopTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := NewTaskDefinition("f", 1, "awsvpc", tt.compat, Container{Name: "w", Command: []string{"sidekiq", "-t", "50"}, StopTimeout: tt.stop})
			res, err := Run(Input{TaskDefinition: td, LaunchType: tt.launchType, AgentStopTimeout: tt.agent})
			if err != nil {
				t.Fatal(err)
			}
			tg := res.Targets[0]
			if tg.StopTimeout != tt.wantStop || !strings.Contains(tg.StopTimeoutFrom, tt.wantFrom) {
				t.Errorf("stop timeout %d (%s), want %d (…%s…)", tg.StopTimeout, tg.StopTimeoutFrom, tt.wantStop, tt.wantFrom)
			}
			var sp006 *Finding
			for i, f := range res.Findings {
				if f.Code == CodeStopTimeoutTooShort {
					sp006 = &res.Findings[i]
				}
			}
			if (sp006 != nil) != tt.wantSP006 {
				t.Fatalf("SP006 = %+v, want one: %v", sp006, tt.wantSP006)
			}
			if sp006 != nil && (!strings.Contains(sp006.Message, tg.StopTimeoutFrom) || !strings.Contains(sp006.Fix, tt.wantFixHas)) {
				t.Errorf("SP006 message %q / fix %q should name the budget assumed and %q", sp006.Message, sp006.Fix, tt.wantFixHas)
			}
		})
	}
}

func intp(n int) *int { return &n }
