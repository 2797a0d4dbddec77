package sidekiq

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func selectFleet() *Snapshot {
	return &Snapshot{Processes: []Process{
		{Identity: "ip-10-0-1-23:1:aaaaaaaaaaaa", Hostname: "ip-10-0-1-23", Tag: "orders", Queues: []string{"default", "mail"}, Labels: []string{"blue"}, HashExists: true},
		{Identity: "ip-10-0-1-24.ec2.internal:2:bbbbbbbbbbbb", Hostname: "ip-10-0-1-24.ec2.internal", Tag: "orders", Queues: []string{"default"}, HashExists: true},
		{Identity: "0123456789abcdef0123456789abcdef-3097:3:cccccccccccc", Hostname: "0123456789abcdef0123456789abcdef-3097", Tag: "reports", Queues: []string{"reports"}, HashExists: true},
		{Identity: "4f2a9c1b7d3e:4:dddddddddddd", Hostname: "4f2a9c1b7d3e", Tag: "reports", Queues: []string{"low"}, Labels: []string{"green"}, HashExists: true},
		{Identity: "worker-x:5:eeeeeeeeeeee", Hostname: "worker-x", Tag: "orders", Queues: []string{"default"}, HashExists: true},
		{Identity: "dead-host:6:ffffffffffff", Hostname: "dead-host", HashExists: false, Listed: true},
	}}
}

func ids(ps []Process) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.Hostname)
	}
	return out
}

func TestSelect(t *testing.T) {
	tasks := []TaskAddress{
		{TaskARN: "arn:aws:ecs:eu-west-1:123456789012:task/prod/aaaa0000aaaa0000aaaa0000aaaa0000", PrivateIPv4: "10.0.1.23"},
		{TaskARN: "arn:aws:ecs:eu-west-1:123456789012:task/prod/bbbb0000bbbb0000bbbb0000bbbb0000", PrivateDNS: "ip-10-0-1-24.ec2.internal"},
		{TaskARN: "arn:aws:ecs:eu-west-1:123456789012:task/prod/0123456789abcdef0123456789abcdef"},
		{TaskARN: "arn:aws:ecs:eu-west-1:123456789012:task/prod/dddd0000dddd0000dddd0000dddd0000",
			ContainerRuntimeIDs: []string{"4f2a9c1b7d3e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"}},
		{TaskARN: "arn:aws:ecs:eu-west-1:123456789012:task/prod/eeee0000eeee0000eeee0000eeee0000", PrivateIPv4: "10.0.9.9"},
	}
	tests := []struct {
		name      string
		sel       Selector
		want      []string
		unplaced  []string
		emptyTask int
	}{
		{"tag", Selector{Tags: []string{"reports"}}, []string{"0123456789abcdef0123456789abcdef-3097", "4f2a9c1b7d3e"}, nil, 0},
		{"queue", Selector{Queues: []string{"mail", "low"}}, []string{"4f2a9c1b7d3e", "ip-10-0-1-23"}, nil, 0},
		{"label", Selector{Labels: []string{"blue"}}, []string{"ip-10-0-1-23"}, nil, 0},
		{"hostname", Selector{Hostname: regexp.MustCompile(`^ip-`)}, []string{"ip-10-0-1-23", "ip-10-0-1-24.ec2.internal"}, nil, 0},
		{"tag and queue", Selector{Tags: []string{"orders"}, Queues: []string{"mail"}}, []string{"ip-10-0-1-23"}, nil, 0},
		{"identity, even a dead one", Selector{Identities: []string{"dead-host:6:ffffffffffff", "worker-x:5:eeeeeeeeeeee"}}, []string{"dead-host", "worker-x"}, nil, 0},
		{"all skips dead", Selector{All: true}, []string{"0123456789abcdef0123456789abcdef-3097", "4f2a9c1b7d3e", "ip-10-0-1-23", "ip-10-0-1-24.ec2.internal", "worker-x"}, nil, 0},
		{"tasks", Selector{Tasks: tasks}, []string{"0123456789abcdef0123456789abcdef-3097", "4f2a9c1b7d3e", "ip-10-0-1-23", "ip-10-0-1-24.ec2.internal"}, []string{"worker-x"}, 1},
		{"tasks and tag", Selector{Tasks: tasks, Tags: []string{"orders"}}, []string{"ip-10-0-1-23", "ip-10-0-1-24.ec2.internal"}, []string{"worker-x"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := selectFleet().Select(tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(sel.Processes); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("selected %v, want %v", got, tt.want)
			}
			if got := ids(sel.Unplaced); len(tt.unplaced) > 0 && !reflect.DeepEqual(got, tt.unplaced) || len(tt.unplaced) == 0 && len(got) > 0 {
				t.Errorf("unplaced %v, want %v", got, tt.unplaced)
			}
			if len(sel.EmptyTasks) != tt.emptyTask {
				t.Errorf("%d empty tasks, want %d", len(sel.EmptyTasks), tt.emptyTask)
			}
			if len(tt.sel.Tasks) > 0 {
				for _, p := range sel.Processes {
					if _, ok := sel.TaskOf[p.Identity]; !ok {
						t.Errorf("%s has no task", p.Identity)
					}
				}
			}
			if len(sel.Identities()) != len(sel.Processes) {
				t.Error("Identities() length")
			}
		})
	}
}

func TestSelectErrors(t *testing.T) {
	if _, err := selectFleet().Select(Selector{}); !errors.Is(err, ErrNoSelector) {
		t.Errorf("empty selector: %v, want ErrNoSelector", err)
	}
	if _, err := selectFleet().Select(Selector{All: true, Tags: []string{"x"}}); err == nil {
		t.Error("all + tag accepted")
	}
	_, err := selectFleet().Select(Selector{Tags: []string{"nope"}})
	var empty *EmptySelectionError
	if !errors.As(err, &empty) {
		t.Fatalf("err = %v, want *EmptySelectionError", err)
	}
	if empty.Processes != 5 || !reflect.DeepEqual(empty.Tags, []string{"orders", "reports"}) ||
		!reflect.DeepEqual(empty.Queues, []string{"default", "low", "mail", "reports"}) || len(empty.Hostnames) != 5 {
		t.Errorf("fleet listing %+v", empty)
	}
	for _, want := range []string{`tag "nope"`, "5 processes", "orders, reports", "ip-10-0-1-23"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	_, err = (&Snapshot{}).Select(Selector{All: true})
	if !errors.As(err, &empty) || !strings.Contains(err.Error(), "no live Sidekiq process") {
		t.Errorf("empty fleet: %v", err)
	}
}

func TestMatchTask(t *testing.T) {
	task := TaskAddress{TaskARN: "arn:aws:ecs:us-east-1:1:task/c/0123456789abcdef0123456789abcdef", PrivateIPv4: "10.0.1.23",
		PrivateDNS: "ip-10-0-1-23.ec2.internal", ContainerRuntimeIDs: []string{"abcdef012345678"}}
	tests := []struct {
		host string
		want bool
	}{
		{"ip-10-0-1-23", true},
		{"ip-10-0-1-23.ec2.internal", true},
		{"IP-10-0-1-23.EC2.INTERNAL", true},
		{"ip-10-0-1-230", false},
		{"ip-10-0-1-2", false},
		{"0123456789abcdef0123456789abcdef-3097", true},
		{"0123456789abcdef0123456789abcdee-3097", false},
		{"0123456789abcdef0123456789abcdef", false},
		{"abcdef012345", true},
		{"abcdef012346", false},
		{"abcdef01234", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			if _, ok := MatchTask(Process{Hostname: tt.host}, []TaskAddress{task}); ok != tt.want {
				t.Errorf("MatchTask(%q) = %v, want %v", tt.host, ok, tt.want)
			}
		})
	}
}
