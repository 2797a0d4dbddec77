package report

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// streamStatus writes st through StatusStream, processes and jobs in chunks of chunk.
func streamStatus(t *testing.T, st *Status, chunk int) []byte {
	t.Helper()
	var out bytes.Buffer
	s, err := NewStatusStream(&out, st.At, st.Redis)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(st.Processes); i += chunk {
		var b []byte
		n := 0
		for k := i; k < min(i+chunk, len(st.Processes)); k++ {
			b = AppendStatusProcess(b, &st.Processes[k])
			n++
		}
		if err := s.WriteProcesses(b, n); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < len(st.Jobs); i += chunk {
		var b []byte
		n := 0
		for k := i; k < min(i+chunk, len(st.Jobs)); k++ {
			b = AppendStatusJob(b, &st.Jobs[k])
			n++
		}
		if err := s.WriteJobs(b, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(st.Queues, st.Services, st.Warnings); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestStatusStreamIsWrite: the stream writes exactly what Write(JSON) writes, for the golden
// document, an empty one, and documents with strings encoding/json escapes.
func TestStatusStreamIsWrite(t *testing.T) {
	at := time.Date(2026, 11, 25, 4, 0, 0, 123456789, time.FixedZone("X", 3600))
	odd := NewStatus(at, `redis://h:6379/0?x=<&>`)
	odd.Processes = []StatusProcess{
		{Identity: "h\"q\\:1:a", Hostname: "h\u2028\t\n<&>", Tag: "é\xff", Version: "8.0.0", Queues: []string{"a\"b", "<q>"},
			Busy: -1, Concurrency: 1 << 40, LastBeat: at.Add(1), BeatAge: 1e-7, Err: "bad \x01 info"},
		{Identity: "x:2:b", Hostname: "x", Queues: []string{}, BeatAge: 1e21, Dead: true, Task: "t1"},
		{Identity: "y:3:c", Hostname: "y", Queues: []string{"only"}, BeatAge: -0.3, Quiet: true, LastBeat: time.Unix(1700000000, 5).UTC()},
	}
	odd.Jobs = []StatusJob{
		{Class: "A::B", Queue: "q", JID: "j1", Process: "x:2:b", RunAt: at, Running: 12.5,
			Args: json.RawMessage(" [ 1, {\"a\" : [ ], \"b\":{}}, \"\\u2028<>\", null ] ")},
		{Class: "C", Queue: "q\u2029", JID: "j\"2", Process: "y:3:c", RunAt: time.Unix(0, 0).UTC(), Running: 0, Args: json.RawMessage(`{}`)},
		{Class: "D", Queue: "q", JID: "j3", Process: "y:3:c", RunAt: at, Running: 123456789.123},
	}
	odd.Warnings = []string{"w <1>"}
	docs := map[string]*Status{
		"golden": sampleStatus(),
		"empty":  NewStatus(time.Unix(0, 0), "redis://127.0.0.1:6379/0"),
		"odd":    odd,
		"no jobs": func() *Status {
			st := sampleStatus()
			st.Jobs = []StatusJob{}
			st.Services, st.Warnings = nil, nil
			return st
		}(),
	}
	for name, st := range docs {
		var want bytes.Buffer
		if err := Write(&want, JSON, st, Options{}); err != nil {
			t.Fatal(err)
		}
		for _, chunk := range []int{1, 2, 100} {
			if got := streamStatus(t, st, chunk); !bytes.Equal(got, want.Bytes()) {
				t.Errorf("%s, chunks of %d: stream differs from Write:\n got %s\nwant %s", name, chunk, got, want.Bytes())
			}
		}
	}
}
