package check

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseLaunchType(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{"", "", ""}, {"fargate", LaunchTypeFargate, ""}, {"EC2", LaunchTypeEC2, ""}, {"ec2", LaunchTypeEC2, ""},
		{"external", "", "must be FARGATE or EC2"},
	} {
		got, err := ParseLaunchType(tt.in)
		if got != tt.want || (err == nil) != (tt.err == "") || err != nil && err.Error() != tt.err {
			t.Errorf("ParseLaunchType(%q) = %q, %v; want %q, %q", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestAgentStopSeconds(t *testing.T) {
	for _, tt := range []struct {
		in   time.Duration
		want int
		ok   bool
	}{{0, 0, true}, {time.Second, 1, true}, {90*time.Second + 500*time.Millisecond, 90, true}, {500 * time.Millisecond, 0, false}, {-time.Second, 0, false}} {
		got, err := AgentStopSeconds(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("AgentStopSeconds(%v) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestReadInputs: every input gets the shared settings and its source; stdin is read once,
// as "(stdin)"; a bad file is the error, naming it.
func TestReadInputs(t *testing.T) {
	dir := t.TempDir()
	td := `{"family":"worker","revision":3,"containerDefinitions":[{"name":"sidekiq","command":["bundle","exec","sidekiq"]}]}`
	good := filepath.Join(dir, "td.json")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(good, []byte(td), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	like := Input{Container: "sidekiq", LaunchType: LaunchTypeEC2, AgentStopTimeout: 90, EntrypointScripts: []ScriptFile{{Path: "e.sh"}}}
	ins, err := ReadInputs([]string{good, "-"}, strings.NewReader(td), like)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 2 || ins[0].Source != good || ins[1].Source != "(stdin)" {
		t.Fatalf("inputs = %+v", ins)
	}
	for _, in := range ins {
		if in.TaskDefinition.Family != "worker" || in.Container != "sidekiq" || in.LaunchType != LaunchTypeEC2 || in.AgentStopTimeout != 90 ||
			len(in.EntrypointScripts) != 1 {
			t.Errorf("input %+v lacks the shared settings", in)
		}
	}
	if _, err := ReadInputs([]string{"-", good, "-"}, strings.NewReader(td), like); !errors.Is(err, ErrStdinTwice) {
		t.Errorf("stdin twice: %v, want ErrStdinTwice", err)
	}
	if _, err := ReadInputs([]string{good, bad}, nil, like); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad file: %v, want an error naming %s", err, bad)
	}
}
