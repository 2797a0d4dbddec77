package sidekiq

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// refDecodeWorkEntry is a reference decoder built on encoding/json, to check the hand-written
// scanner against (differential fuzzing). ok is false when encoding/json rejects the input.
func refDecodeWorkEntry(raw string) (j Job, ok bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(raw), &m) != nil || m == nil {
		return Job{}, false
	}
	var payload []byte
	if p := m["payload"]; len(p) > 0 && string(p) != "null" {
		if p[0] == '"' {
			var s string
			if json.Unmarshal(p, &s) != nil {
				return Job{}, false
			}
			payload = []byte(s)
		} else {
			payload = p
		}
	}
	if len(payload) == 0 {
		return Job{}, false
	}
	j, ok = refDecodePayload(payload)
	if !ok {
		return Job{}, false
	}
	if q := m["queue"]; len(q) > 0 && string(q) != "null" {
		var s string
		if json.Unmarshal(q, &s) != nil {
			return Job{}, false
		}
		if s != "" {
			j.Queue = s
		}
	}
	if r := m["run_at"]; len(r) > 0 && string(r) != "null" {
		var n json.Number
		if json.Unmarshal(r, &n) != nil {
			return Job{}, false
		}
		j.RunAt = parseTime(n)
	}
	return j, true
}

// refDecodePayload is decodePayload on encoding/json.
func refDecodePayload(raw []byte) (Job, bool) {
	var m map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(raw))
	if d.Decode(&m) != nil || m == nil || d.More() {
		return Job{}, false
	}
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(m[k], &s)
		return s
	}
	tm := func(k string) time.Time {
		var v any
		dd := json.NewDecoder(bytes.NewReader(m[k]))
		dd.UseNumber()
		if dd.Decode(&v) != nil {
			return time.Time{}
		}
		return parseTime(v)
	}
	j := Job{JID: str("jid"), Queue: str("queue"), Class: str("wrapped"), EnqueuedAt: tm("enqueued_at"), CreatedAt: tm("created_at"), Payload: raw}
	if j.Class == "" {
		j.Class = str("class")
	}
	if a := m["args"]; len(a) > 0 && string(a) != "null" {
		j.Args = a
	}
	return j, j.JID != ""
}

// sameJob compares the decoded fields, allowing 1µs of float rounding in timestamps.
func sameJob(t *testing.T, got, want Job) {
	t.Helper()
	near := func(a, b time.Time) bool {
		d := a.Sub(b)
		return a.IsZero() == b.IsZero() && d <= time.Microsecond && d >= -time.Microsecond
	}
	if got.JID != want.JID || got.Class != want.Class || got.Queue != want.Queue ||
		string(got.Args) != string(want.Args) || string(got.Payload) != string(want.Payload) ||
		!near(got.EnqueuedAt, want.EnqueuedAt) || !near(got.CreatedAt, want.CreatedAt) || !near(got.RunAt, want.RunAt) {
		t.Fatalf("scanner and encoding/json disagree:\n got %+v\nwant %+v", got, want)
	}
}

// Fuzz targets for everything drainctl parses that other programs wrote. Run one with e.g.
// go test ./internal/sidekiq -run '^$' -fuzz FuzzDecodeHeartbeat -fuzztime 30s

func FuzzDecodeHeartbeat(f *testing.F) {
	f.Add("h:1:abc", `{"hostname":"h","pid":1,"queues":["default"],"concurrency":5}`, "1", "1732503600.5", "false", "", "100")
	f.Add("h:2:abc", `{"weights":[{"a":1}],"version":"7.3.2","embedded":true}`, "0", "1732503600", "true", "", "")
	f.Add("h:3:abc", `{"capsules":{"default":{"concurrency":5,"weights":{"default":0}}},"version":"8.1.7"}`, "0", "1732503600500", "false", "5", "1")
	f.Add("::", `{"capsules":[{"name":"x","weights":[{"q":"1"}]}]}`, "x", "nan", "", "-1", "1e99")
	f.Add("", `null`, "", "", "", "", "")
	f.Fuzz(func(t *testing.T, id, info, busy, beat, quiet, concurrency, rss string) {
		fields := map[string]string{"info": info, "busy": busy, "beat": beat, "quiet": quiet, "rss": rss}
		if concurrency != "" {
			fields["concurrency"] = concurrency
		}
		p := decodeHeartbeat(id, fields)
		if !p.HashExists || p.Identity != id {
			t.Fatalf("HashExists %v identity %q", p.HashExists, p.Identity)
		}
		if _, err := json.Marshal(p); err != nil {
			t.Fatalf("process does not marshal: %v", err)
		}
		if empty := decodeHeartbeat(id, nil); empty.HashExists || empty.Err != "" {
			t.Fatalf("empty hash: %+v", empty)
		}
	})
}

func FuzzDecodeWork(f *testing.F) {
	f.Add("2zz", `{"queue":"default","payload":"{\"jid\":\"a\",\"class\":\"A\",\"args\":[1],\"enqueued_at\":1732503600.5}","run_at":1732503601}`)
	f.Add("1ab", `{"queue":"q","payload":{"jid":"b","wrapped":"W","enqueued_at":1732503600500},"run_at":1732503601000}`)
	f.Add("x", `{"payload":"\"nested\"","run_at":"soon"}`)
	f.Add("y", `{"payload":null}`)
	f.Add("z", `[]`)
	f.Fuzz(func(t *testing.T, tid, value string) {
		jobs, err := decodeWork("h:1:abc", map[string]string{tid: value, "fixed": `{"queue":"q","payload":"{\"jid\":\"j\"}","run_at":1}`})
		if len(jobs) < 1 {
			t.Fatalf("the good entry was lost (err %v)", err)
		}
		for _, j := range jobs {
			if j.JID == "" || j.Process != "h:1:abc" {
				t.Fatalf("job without jid or process: %+v", j)
			}
		}
		if len(jobs) == 1 && err == nil && tid != "fixed" {
			t.Fatalf("entry %q dropped without an error", value)
		}
		if want, ok := refDecodeWorkEntry(value); ok {
			got, err := decodeWorkEntry(interner{}, "h:1:abc", tid, value)
			if err != nil {
				t.Fatalf("encoding/json reads %q but the scanner fails: %v", value, err)
			}
			want.Thread, want.Process = tid, "h:1:abc"
			sameJob(t, got, want)
		}
	})
}

func FuzzDecodePayload(f *testing.F) {
	f.Add([]byte(`{"retry":true,"queue":"default","class":"SleepJob","args":[1],"jid":"0123456789abcdef01234567","created_at":1732503600.25,"enqueued_at":1732503600.5}`))
	f.Add([]byte(`{"jid":"a","wrapped":"X","class":5,"enqueued_at":1732503600500,"created_at":"x"}`))
	f.Add([]byte(`{"jid":""}`))
	f.Add([]byte(`{"jid":"a"}garbage`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		j, err := decodePayload(raw)
		if want, ok := refDecodePayload(append([]byte(nil), raw...)); ok {
			if err != nil {
				t.Fatalf("encoding/json reads %q but the scanner fails: %v", raw, err)
			}
			sameJob(t, j, want)
		}
		if err != nil {
			return
		}
		if j.JID == "" {
			t.Fatal("accepted a payload without jid")
		}
		if string(j.Payload) != string(raw) {
			t.Fatal("payload bytes changed")
		}
		if len(raw) > 0 {
			raw[0] ^= 0xff // the kept copy must not alias the input
			if string(j.Payload) == string(raw) {
				t.Fatal("Payload aliases the input buffer")
			}
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"1732503600.5", "1732503600500", "1732503600", "-1", "1e308", "NaN", "Inf", "0x10", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm := parseTime(s)
		if !tm.IsZero() && (tm.Year() < 1970 || tm.Year() > 400000) {
			t.Fatalf("parseTime(%q) = %v", s, tm)
		}
		// The exact decimal reading agrees with the float one, within float precision.
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			ft := floatTime(f)
			tol := time.Microsecond
			if a := math.Abs(f); a < 1e17 {
				tol += time.Duration(a * 1e-15 * 1e9)
			}
			if d := ft.Sub(tm); ft.IsZero() != tm.IsZero() || d > tol || d < -tol {
				t.Fatalf("parseTime(%q) = %v, floatTime = %v", s, tm, ft)
			}
		}
	})
}

// FuzzParseURL checks that no parse error ever shows the password (whatever the rest of the
// URL holds), and that what parses round-trips through Redacted.
func FuzzParseURL(f *testing.F) {
	f.Add("redis", "", "h:6379/0")
	f.Add("redis", "u", "h:port/0")
	f.Add("rediss", "", "h/zero?namespace=x")
	f.Add("redis+sentinel", "", "s1,s2:26379/m/1?sentinel_password=y")
	f.Add("redis", "%zz", "h/0")
	f.Add("http", "", "h")
	f.Add("redis", "", "h/0#x@y")
	f.Fuzz(func(t *testing.T, scheme, user, rest string) {
		const pw = "Fz9PwQx7Lk"
		if strings.Contains(scheme+user+rest, "Fz9") || strings.Contains(scheme+user+rest, "PwQx") {
			return // the password text must only be where we put it
		}
		raw := scheme + "://" + user + ":" + pw + "@" + rest
		o, err := ParseURL(raw)
		if err != nil {
			if strings.Contains(err.Error(), "Fz9") || strings.Contains(err.Error(), "PwQx") {
				t.Fatalf("error for %q leaks the password: %v", raw, err)
			}
			return
		}
		red := o.Redacted()
		if strings.Contains(red, "Fz9PwQx") {
			t.Fatalf("Redacted() %q of %q shows the password", red, raw)
		}
		again, err := ParseURL(red)
		if err != nil {
			t.Fatalf("redacted form %q of %q does not parse: %v", red, raw, err)
		}
		if again.Redacted() != red {
			t.Fatalf("redacted form not stable: %q -> %q", red, again.Redacted())
		}
	})
}
