package sidekiq

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/drainctl/drainctl/internal/testenv"
)

// streamCounter counts the connections a Redis has accepted (INFO stats): each stream dials
// one of its own and is one pipelined round trip, which go-redis hooks cannot see.
type streamCounter struct {
	rdb  *redis.Client
	last int64
}

func newStreamCounter(t testing.TB, r *testenv.Redis) *streamCounter {
	sc := &streamCounter{rdb: r.Client(t)}
	sc.take(t)
	return sc
}

// take returns the connections accepted since the last call.
func (sc *streamCounter) take(t testing.TB) int64 {
	t.Helper()
	info, err := sc.rdb.Info(context.Background(), "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_connections_received:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			d := n - sc.last
			sc.last = n
			return d
		}
	}
	t.Fatal("no total_connections_received in INFO stats")
	return 0
}

// wire encodes RESP2 replies for the parser's tests.
func wire(parts ...string) []byte { return []byte(strings.Join(parts, "")) }

func bulk(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }

func hashReply(kv ...string) string {
	out := "*" + strconv.Itoa(len(kv)) + "\r\n"
	for _, s := range kv {
		out += bulk(s)
	}
	return out
}

// hashes reads replies off data until an error; it returns each hash as field/value pairs or
// its reply error, and the error that stopped it (nil at a clean end).
func hashes(data []byte, bufSize int) ([][]string, error) {
	r := respReader{br: bufio.NewReaderSize(bytes.NewReader(data), bufSize)}
	var ch rawChunk
	var out [][]string
	for {
		if _, err := r.br.Peek(1); err != nil {
			return out, nil
		}
		if err := r.readHash(&ch); err != nil {
			return out, err
		}
		h := ch.hashes[len(ch.hashes)-1]
		if h.err != nil {
			out = append(out, []string{"ERR:" + h.err.Error()})
			continue
		}
		kv := []string{}
		for j := h.first; j < h.first+2*h.pairs; j++ {
			kv = append(kv, ch.str(ch.spans[j]))
		}
		out = append(out, kv)
	}
}

// TestRESPReader reads HGETALL replies as Redis writes them, and refuses what it does not.
func TestRESPReader(t *testing.T) {
	big := strings.Repeat("x", 200<<10) // more than one read of the buffer
	for _, tt := range []struct {
		name    string
		in      []byte
		want    [][]string
		wantErr string
	}{
		{"hash", wire(hashReply("info", `{"a":1}`, "busy", "0")), [][]string{{"info", `{"a":1}`, "busy", "0"}}, ""},
		{"empty hash and nil array", wire("*0\r\n*-1\r\n"), [][]string{{}, {}}, ""},
		{"binary and empty values", wire(hashReply("t\r\n1", "", "k", "\x00\xff")), [][]string{{"t\r\n1", "", "k", "\x00\xff"}}, ""},
		{"a bulk larger than the buffer", wire(hashReply("t", big)), [][]string{{"t", big}}, ""},
		{"nil bulk read as empty", wire("*2\r\n$1\r\nf\r\n$-1\r\n"), [][]string{{"f", ""}}, ""},
		{"reply error, then the stream goes on", wire("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", hashReply("a", "b")),
			[][]string{{"ERR:WRONGTYPE Operation against a key holding the wrong kind of value"}, {"a", "b"}}, ""},
		{"odd element count", wire("*1\r\n$1\r\na\r\n"), nil, "hash reply of 1 elements"},
		{"RESP3 map", wire("%1\r\n$1\r\na\r\n$1\r\nb\r\n"), nil, "unexpected reply"},
		{"integer in a hash", wire("*2\r\n:1\r\n:2\r\n"), nil, "unexpected reply"},
		{"bad length", wire("*2\r\n$x\r\n"), nil, "bad length"},
		{"negative length", wire("*-2\r\n"), nil, "bad length"},
		{"length over the limit", wire("*2\r\n$999999999999\r\n"), nil, "bad length"},
		{"bulk over maxBulk", wire("*2\r\n$" + strconv.Itoa(maxBulk+1) + "\r\n"), nil, "over"},
		{"LF without CR", wire("*2\n"), nil, "malformed reply line"},
		{"bulk without CRLF", wire("*2\r\n$1\r\nab\r\n"), nil, "not ended by CRLF"},
		{"truncated bulk", wire("*2\r\n$10\r\nabc"), nil, "unexpected EOF"},
		{"truncated array", wire("*4\r\n$1\r\na\r\n"), nil, "unexpected EOF"},
		{"line too long", wire("*" + strings.Repeat("1", 200)), nil, "longer than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := hashes(tt.in, 128)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// FuzzRESPReader: the reader never panics or reads outside its buffer on anything a server
// (or something pretending to be one) sends, and whatever it accepts decodes without panic.
func FuzzRESPReader(f *testing.F) {
	f.Add(wire(hashReply("info", `{"hostname":"h","pid":1,"queues":["default"]}`, "beat", "1732503600.5", "busy", "1"),
		hashReply("t1", `{"queue":"q","payload":"{\"jid\":\"j\",\"class\":\"C\"}","run_at":1}`), "*0\r\n"))
	f.Add(wire("-WRONGTYPE x\r\n*-1\r\n", hashReply("t", "{}")))
	f.Add(wire("*2\r\n$-1\r\n$3\r\nabc\r\n*0\r\n*0\r\n"))
	f.Add(wire("*2\r\n$5\r\nab"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := respReader{br: bufio.NewReaderSize(bytes.NewReader(data), 16)}
		var ch rawChunk
		for i := 0; i < 64; i++ {
			if err := r.readHash(&ch); err != nil {
				break
			}
		}
		for _, h := range ch.hashes {
			if h.first < 0 || h.pairs < 0 || h.first+2*h.pairs > len(ch.spans) || (h.err != nil && h.pairs != 0) {
				t.Fatalf("hash %+v of %d spans", h, len(ch.spans))
			}
		}
		for _, s := range ch.spans {
			if s.off < 0 || s.end < s.off || s.end > len(ch.buf) {
				t.Fatalf("span %+v of %d bytes", s, len(ch.buf))
			}
		}
		n := len(ch.hashes) / 3
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("h:%d:x", i)
		}
		var rp procReplies
		ps := ch.decode(interner{}, &rp, ids, true, nil, LayoutUnknown)
		if len(ps) != n {
			t.Fatalf("%d processes from %d hashes", len(ps), len(ch.hashes))
		}
		ps = ch.decode(interner{}, &rp, ids[:min(n, len(ch.hashes))], false, nil, Layout7)
		if len(ps) != n {
			t.Fatalf("%d heartbeats", len(ps))
		}
	})
}

// TestStreamConnects: a stream connects the way the go-redis client does — a password, an ACL
// user, a database other than 0, a namespace — and reads what go-redis's pipeline reads; a
// wrong password fails with a message that names the server and not the password.
func TestStreamConnects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		opts      []testenv.RedisOption
		db        int
		namespace string
		userinfo  func(r *testenv.Redis) string
		wantErr   string
	}{
		{name: "plain"},
		{name: "password", opts: []testenv.RedisOption{testenv.WithPassword("pa55:w/rd")},
			userinfo: func(r *testenv.Redis) string { return ":pa55%3Aw%2Frd@" }},
		{name: "ACL user", userinfo: func(r *testenv.Redis) string { return "ops:s3cret-ops@" }},
		{name: "database 3 and a namespace", db: 3, namespace: "shop"},
		{name: "wrong password", opts: []testenv.RedisOption{testenv.WithPassword("right-one")},
			userinfo: func(r *testenv.Redis) string { return ":wrong-hunter2@" }, wantErr: "WRONGPASS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := testenv.StartRedis(t, tt.opts...)
			admin := redis.NewClient(&redis.Options{Addr: r.Addr, Password: r.Password, DB: tt.db})
			t.Cleanup(func() { _ = admin.Close() })
			if tt.name == "ACL user" {
				if err := admin.Do(ctx, "ACL", "SETUSER", "ops", "on", ">s3cret-ops", "~*", "&*", "+@all").Err(); err != nil {
					t.Fatal(err)
				}
			}
			ids, err := fakeFleet(ctx, admin, tt.namespace, 600, 2)
			if err != nil {
				t.Fatal(err)
			}
			pfx := ""
			if tt.namespace != "" {
				pfx = tt.namespace + ":"
			}
			wrong := ids[7]
			admin.Set(ctx, pfx+wrong+":work", "not a hash", 0) // a reply error on a work hash
			userinfo := ""
			if tt.userinfo != nil {
				userinfo = tt.userinfo(r)
			}
			raw := "redis://" + userinfo + r.Addr + "/" + strconv.Itoa(tt.db)
			if tt.namespace != "" {
				raw += "?namespace=" + tt.namespace
			}
			o, err := ParseURL(raw)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Open(o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			if tt.wantErr != "" {
				err := Scan(ctx, c, ids, nil, ScanOptions{}, func([]Process) int { return 0 }, func(int) error { return nil })
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), r.Addr) ||
					strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "right-one") {
					t.Fatalf("error %v: want %s, naming %s and no password", err, tt.wantErr, r.Addr)
				}
				return
			}
			snap, err := c.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(ids)
			ref, err := c.SnapshotOf(ctx, ids) // go-redis's own pipeline
			if err != nil {
				t.Fatal(err)
			}
			if len(snap.Processes) != len(ids) || len(snap.Jobs()) != 2*len(ids) {
				t.Fatalf("snapshot of %d processes, %d jobs", len(snap.Processes), len(snap.Jobs()))
			}
			if !reflect.DeepEqual(snap.Processes, ref.Processes) {
				for i := range snap.Processes {
					if !reflect.DeepEqual(snap.Processes[i], ref.Processes[i]) {
						t.Fatalf("the streamed snapshot differs from go-redis's at %d: %s, %s", i, snap.Processes[i].Identity, ref.Processes[i].Identity)
					}
				}
			}
			for _, p := range snap.Processes {
				if p.Identity == wrong && (!strings.Contains(p.Err, "read "+wrong+": WRONGTYPE") || len(p.Jobs) != 2) {
					t.Errorf("process with a WRONGTYPE work hash: Err %q, %d jobs", p.Err, len(p.Jobs))
				}
			}
			procs, err := c.Processes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(procs.Processes) != len(ids) || procs.Processes[0].Jobs != nil || procs.Processes[0].Tag == "" {
				t.Errorf("Processes: %d, first %+v", len(procs.Processes), procs.Processes[0])
			}
		})
	}
}

// streamGoroutines lists the goroutines still running the stream's code.
func streamGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "sidekiq.(*Client).stream") || strings.Contains(g, "sidekiq.Scan[") {
			out = append(out, g)
		}
	}
	return out
}

// noStreamLeft fails t when a goroutine of a stream outlives it.
func noStreamLeft(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		left := streamGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left behind:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStreamInterrupted: a stream whose connection is dropped mid-way (CLIENT KILL), whose
// context is cancelled mid-way or while Redis does not answer (CLIENT PAUSE), or whose
// deadline passes, fails with the connection's or the context's error, names the server and
// not the password, and leaves no goroutine behind. Not parallel: it counts goroutines.
func TestStreamInterrupted(t *testing.T) {
	ctx := context.Background()
	r := testenv.StartRedis(t, testenv.WithPassword("hunter2-secret"))
	admin := r.Client(t)
	ids, err := fakeFleet(ctx, admin, "", 300, 5)
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseURL("redis://:hunter2-secret@" + r.Addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	for _, tt := range []struct {
		name string
		// run scans with ctx; at the first emit it may interrupt the stream.
		before  func(t *testing.T)
		atEmit  func(t *testing.T, cancel context.CancelFunc)
		timeout time.Duration
		want    func(err error) bool
	}{
		{name: "connection dropped", atEmit: func(t *testing.T, _ context.CancelFunc) {
			if err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Err(); err != nil {
				t.Error(err)
			}
		}, want: func(err error) bool {
			var ce *ConnError
			return errors.As(err, &ce) && strings.Contains(err.Error(), "read heartbeats of 300 processes on redis://:xxxxx@"+r.Addr)
		}},
		{name: "cancelled mid-stream", atEmit: func(_ *testing.T, cancel context.CancelFunc) { cancel() },
			want: func(err error) bool { return errors.Is(err, context.Canceled) }},
		{name: "cancelled while Redis does not answer", before: func(t *testing.T) {
			if err := admin.Do(ctx, "CLIENT", "PAUSE", "3000", "ALL").Err(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { admin.Do(ctx, "CLIENT", "UNPAUSE") })
		}, timeout: 300 * time.Millisecond,
			want: func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sctx, cancel := context.WithCancel(ctx)
			if tt.timeout > 0 {
				sctx, cancel = context.WithTimeout(ctx, tt.timeout)
			}
			defer cancel()
			if tt.before != nil {
				tt.before(t)
			}
			emits := 0
			start := time.Now()
			err := Scan(sctx, c, ids, nil, ScanOptions{Chunk: 10}, func(ps []Process) int { return len(ps) }, func(int) error {
				if emits++; emits == 1 && tt.atEmit != nil {
					tt.atEmit(t, cancel)
				}
				return nil
			})
			if err == nil || !tt.want(err) {
				t.Fatalf("error %v after %d of 30 chunks", err, emits)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q holds the password", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v to give up", d)
			}
			noStreamLeft(t)
			admin.Do(ctx, "CLIENT", "UNPAUSE")
		})
	}
	// The connection the stream had is gone; the client still works.
	if snap, err := c.Snapshot(ctx); err != nil || len(snap.Processes) != 300 {
		t.Fatalf("after the interruptions: %v", err)
	}
	noStreamLeft(t)
}
