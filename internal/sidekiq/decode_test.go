package sidekiq

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	want := time.Date(2024, 11, 25, 3, 0, 0, 500_000_000, time.UTC)
	tests := []struct {
		name string
		in   any
		want time.Time
	}{
		{"float seconds", 1732503600.5, want},
		{"float seconds string", "1732503600.5", want},
		{"json number seconds", json.Number("1732503600.5"), want},
		{"integer milliseconds", int64(1732503600500), want},
		{"integer milliseconds string", "1732503600500", want},
		{"json number milliseconds", json.Number("1732503600500"), want},
		{"integer seconds (run_at before 8.x)", 1732503600, want.Truncate(time.Second)},
		{"nil", nil, time.Time{}},
		{"empty", "", time.Time{}},
		{"garbage", "soon", time.Time{}},
		{"negative", -5.0, time.Time{}},
		{"huge", 1e300, time.Time{}},
		{"bool", true, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseTime(tt.in); !got.Equal(tt.want) {
				t.Errorf("parseTime(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestDecodeHeartbeat(t *testing.T) {
	beat := "1732503600.25"
	beatT := time.Date(2024, 11, 25, 3, 0, 0, 250_000_000, time.UTC)
	tests := []struct {
		name    string
		id      string
		fields  map[string]string
		want    Process
		wantErr string // substring of Err; "" means no Err
	}{
		{
			name: "6.4.1",
			id:   "ip-10-0-1-23:4242:0123456789ab",
			fields: map[string]string{
				"info": `{"hostname":"ip-10-0-1-23","started_at":1732503000.5,"pid":4242,"tag":"app","concurrency":5,"queues":["critical","default"],"labels":["blue"],"identity":"ip-10-0-1-23:4242:0123456789ab"}`,
				"busy": "2", "beat": beat, "quiet": "false", "rss": "123456", "rtt_us": "250",
			},
			want: Process{Identity: "ip-10-0-1-23:4242:0123456789ab", Hostname: "ip-10-0-1-23", PID: 4242, Tag: "app",
				Labels: []string{"blue"}, Queues: []string{"critical", "default"}, Concurrency: 5, Layout: Layout6,
				StartedAt: time.Date(2024, 11, 25, 2, 50, 0, 500_000_000, time.UTC), Busy: 2, Beat: beatT,
				RSSKB: 123456, RTTMicros: 250, HashExists: true},
		},
		{
			name: "7.3 weights as a list of hashes, embedded, quiet",
			id:   "web.1:77:abcdefabcdef",
			fields: map[string]string{
				"info": `{"hostname":"web.1","started_at":1732503000.5,"pid":77,"tag":"","concurrency":10,"queues":["default","low"],"weights":[{"default":2,"low":1}],"labels":[],"identity":"web.1:77:abcdefabcdef","version":"7.3.2","embedded":true}`,
				"busy": "0", "beat": beat, "quiet": "true", "rss": "1", "rtt_us": "2",
			},
			want: Process{Identity: "web.1:77:abcdefabcdef", Hostname: "web.1", PID: 77, Labels: []string{},
				Queues: []string{"default", "low"}, Weights: map[string]int{"default": 2, "low": 1}, Concurrency: 10,
				Version: "7.3.2", Layout: Layout7, Embedded: true, StartedAt: time.Date(2024, 11, 25, 2, 50, 0, 500_000_000, time.UTC),
				Beat: beatT, Quiet: true, RSSKB: 1, RTTMicros: 2, HashExists: true},
		},
		{
			name: "7.0.2 weights as one hash, queues derived",
			id:   "h:1:aaaaaaaaaaaa",
			fields: map[string]string{
				"info": `{"hostname":"h","pid":1,"concurrency":3,"weights":{"b":0,"a":0},"version":"7.0.2"}`,
				"busy": "1", "beat": beat, "quiet": "false",
			},
			want: Process{Identity: "h:1:aaaaaaaaaaaa", Hostname: "h", PID: 1, Queues: []string{"a", "b"},
				Weights: map[string]int{"a": 0, "b": 0}, Concurrency: 3, Version: "7.0.2", Layout: Layout7,
				Busy: 1, Beat: beatT, HashExists: true},
		},
		{
			name: "8.1 capsules, concurrency outside info",
			id:   "h:2:bbbbbbbbbbbb",
			fields: map[string]string{
				"info":        `{"hostname":"h","started_at":1732503000500,"pid":2,"tag":"t","capsules":{"default":{"concurrency":5,"mode":"strict","weights":{"default":0}},"critical":{"concurrency":1,"mode":"strict","weights":{"critical":0}}},"labels":["x"],"identity":"h:2:bbbbbbbbbbbb","version":"8.1.7","embedded":false}`,
				"concurrency": "6", "busy": "3", "beat": beat, "quiet": "false", "rss": "10", "rtt_us": "20",
			},
			want: Process{Identity: "h:2:bbbbbbbbbbbb", Hostname: "h", PID: 2, Tag: "t", Labels: []string{"x"},
				Queues: []string{"critical", "default"}, Weights: map[string]int{"critical": 0, "default": 0},
				Capsules: []string{"critical", "default"}, Concurrency: 6, Version: "8.1.7", Layout: Layout8,
				StartedAt: time.Date(2024, 11, 25, 2, 50, 0, 500_000_000, time.UTC), Busy: 3, Beat: beatT,
				RSSKB: 10, RTTMicros: 20, HashExists: true},
		},
		{
			name: "8.0 capsules, concurrency inside capsules only",
			id:   "h:3:cccccccccccc",
			fields: map[string]string{
				"info": `{"hostname":"h","pid":3,"capsules":{"default":{"concurrency":4,"weights":[{"default":0}]}},"version":"8.0.9"}`,
				"busy": "0", "beat": beat, "quiet": "false",
			},
			want: Process{Identity: "h:3:cccccccccccc", Hostname: "h", PID: 3, Queues: []string{"default"},
				Weights: map[string]int{"default": 0}, Capsules: []string{"default"}, Concurrency: 4,
				Version: "8.0.9", Layout: Layout8, Beat: beatT, HashExists: true},
		},
		{
			name: "hash gone: identity parts only",
			id:   "host:with:colons:99:dddddddddddd",
			want: Process{Identity: "host:with:colons:99:dddddddddddd", Hostname: "host:with:colons", PID: 99},
		},
		{
			name:    "info not JSON",
			id:      "h:4:eeeeeeeeeeee",
			fields:  map[string]string{"info": "{nope", "busy": "1", "beat": beat},
			want:    Process{Identity: "h:4:eeeeeeeeeeee", Hostname: "h", PID: 4, Busy: 1, Beat: beatT, HashExists: true},
			wantErr: "info:",
		},
		{
			name:    "fields of the wrong type",
			id:      "h:5:ffffffffffff",
			fields:  map[string]string{"info": `{"pid":"x","queues":"default","weights":7,"concurrency":"many"}`, "busy": "lots", "beat": "never", "rss": "big"},
			want:    Process{Identity: "h:5:ffffffffffff", Hostname: "h", PID: 5, Layout: Layout6, HashExists: true},
			wantErr: "busy \"lots\" is not an integer",
		},
		{
			name:    "no info",
			id:      "h:6:000000000000",
			fields:  map[string]string{"busy": "0", "beat": beat},
			want:    Process{Identity: "h:6:000000000000", Hostname: "h", PID: 6, Beat: beatT, HashExists: true},
			wantErr: "no info field",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeHeartbeat(tt.id, tt.fields)
			if tt.wantErr == "" && got.Err != "" {
				t.Fatalf("unexpected Err: %s", got.Err)
			}
			if tt.wantErr != "" && !strings.Contains(got.Err, tt.wantErr) {
				t.Fatalf("Err = %q, want it to contain %q", got.Err, tt.wantErr)
			}
			got.Err = ""
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decodeHeartbeat:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeWork(t *testing.T) {
	const id = "h:1:aaaaaaaaaaaa"
	stringPayload := `{"retry":true,"queue":"default","class":"SleepJob","args":[1.5,"x"],"jid":"0123456789abcdef01234567","created_at":1732503600.25,"enqueued_at":1732503600.5}`
	objectPayload := `{"class":"ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper","wrapped":"MailJob","queue":"mail","args":[{"a":1}],"jid":"aaaaaaaaaaaaaaaaaaaaaaaa","created_at":1732503600250,"enqueued_at":1732503600500}`
	strEntry, _ := json.Marshal(map[string]any{"queue": "default", "payload": stringPayload, "run_at": 1732503601})
	fields := map[string]string{
		"2zz": string(strEntry),
		"1ab": `{"queue":"mail","payload":` + objectPayload + `,"run_at":1732503602000}`,
		"bad": `{"queue":"x","payload":"{not json","run_at":1}`,
		"nop": `{"queue":"x","run_at":1}`,
	}
	jobs, err := decodeWork(id, fields)
	if err == nil || !strings.Contains(err.Error(), "thread bad") || !strings.Contains(err.Error(), "thread nop") {
		t.Fatalf("want errors for threads bad and nop, got %v", err)
	}
	want := []Job{
		{JID: "0123456789abcdef01234567", Class: "SleepJob", Queue: "default", Args: json.RawMessage(`[1.5,"x"]`),
			EnqueuedAt: time.Date(2024, 11, 25, 3, 0, 0, 500_000_000, time.UTC),
			CreatedAt:  time.Date(2024, 11, 25, 3, 0, 0, 250_000_000, time.UTC),
			RunAt:      time.Date(2024, 11, 25, 3, 0, 1, 0, time.UTC), Thread: "2zz", Process: id, Payload: []byte(stringPayload)},
		{JID: "aaaaaaaaaaaaaaaaaaaaaaaa", Class: "MailJob", Queue: "mail", Args: json.RawMessage(`[{"a":1}]`),
			EnqueuedAt: time.Date(2024, 11, 25, 3, 0, 0, 500_000_000, time.UTC),
			CreatedAt:  time.Date(2024, 11, 25, 3, 0, 0, 250_000_000, time.UTC),
			RunAt:      time.Date(2024, 11, 25, 3, 0, 2, 0, time.UTC), Thread: "1ab", Process: id, Payload: []byte(objectPayload)},
	}
	if !reflect.DeepEqual(jobs, want) {
		t.Errorf("decodeWork:\n got %+v\nwant %+v", jobs, want)
	}
}

func TestDecodePayload(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		wantJID string
		wantErr string
	}{
		{"ok", `{"jid":"abc","class":"A"}`, "abc", ""},
		{"no jid", `{"class":"A"}`, "", "no jid"},
		{"not an object", `[1,2]`, "", "decode job payload"},
		{"trailing data", `{"jid":"a"} {"jid":"b"}`, "", "malformed"},
		{"class not a string", `{"jid":"a","class":5}`, "a", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := decodePayload([]byte(tt.raw))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if j.JID != tt.wantJID || string(j.Payload) != tt.raw {
				t.Errorf("got jid %q payload %q", j.JID, j.Payload)
			}
		})
	}
}

func TestHeartbeatIntervalAndAckWithin(t *testing.T) {
	tests := []struct {
		name      string
		p         Process
		beat, ack time.Duration
	}{
		{"6.x", Process{Layout: Layout6}, 5 * time.Second, 14500 * time.Millisecond},
		{"7.x", Process{Layout: Layout7, Version: "7.3.2"}, 10 * time.Second, 27 * time.Second},
		{"8.x", Process{Layout: Layout8, Version: "8.1.7"}, 10 * time.Second, 27 * time.Second},
		{"unreadable version", Process{Layout: LayoutUnknown, Version: "x"}, 10 * time.Second, 27 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HeartbeatInterval(tt.p); got != tt.beat {
				t.Errorf("HeartbeatInterval = %v, want %v", got, tt.beat)
			}
			if got := AckWithin(tt.p); got != tt.ack {
				t.Errorf("AckWithin = %v, want %v", got, tt.ack)
			}
		})
	}
}

func TestDrainable(t *testing.T) {
	if ok, why := Drainable(Process{Identity: "a", HashExists: false}); ok || !strings.Contains(why, "no heartbeat") {
		t.Errorf("Drainable(expired) = %v, %q", ok, why)
	}
	if ok, why := Drainable(Process{Identity: "a", HashExists: true}); !ok || why != "" {
		t.Errorf("plain process: %v %q", ok, why)
	}
	if ok, why := Drainable(Process{Identity: "a", HashExists: true, Embedded: true}); ok || !strings.Contains(why, "embedded") {
		t.Errorf("embedded process: %v %q", ok, why)
	}
}
