package sidekiq

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/drainctl/drainctl/internal/testenv"
)

func TestParseURLTrimsWhitespace(t *testing.T) {
	for _, raw := range []string{"  redis://h:6380/2\n", "\tredis://h:6380/2 ", "redis://h:6380/2\r\n"} {
		o, err := ParseURL(raw)
		if err != nil || o.Addrs[0] != "h:6380" || o.DB != 2 {
			t.Errorf("ParseURL(%q) = %+v, %v; want h:6380 db 2", raw, o, err)
		}
	}
	if _, err := ParseURL("  \n"); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("ParseURL of blanks: %v, want an error saying it is empty", err)
	}
}

// TestOpenTimeout: the timeout option bounds dial, read and write; zero means 5 s.
func TestOpenTimeout(t *testing.T) {
	for _, tc := range []struct {
		set, want time.Duration
	}{{0, DefaultTimeout}, {1500 * time.Millisecond, 1500 * time.Millisecond}} {
		c, err := Open(&Options{Addrs: []string{"127.0.0.1:1"}, Timeout: tc.set})
		if err != nil {
			t.Fatal(err)
		}
		o := c.rdb.(*redis.Client).Options()
		if o.DialTimeout != tc.want || o.ReadTimeout != tc.want || o.WriteTimeout != tc.want {
			t.Errorf("Timeout %v: dial %v read %v write %v, want %v", tc.set, o.DialTimeout, o.ReadTimeout, o.WriteTimeout, tc.want)
		}
		c.Close()
	}
}

// TestConnErrorSaysWhatWasTried: a TLS client against a server that never answers the
// handshake fails within the timeout, naming the address, TLS and no Sentinel, and no password.
func TestConnErrorSaysWhatWasTried(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var held []net.Conn
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, conn) // accept and stay silent
		}
	}()
	for _, tc := range []struct {
		url  string
		want []string
	}{
		{"rediss://:s3cret@" + ln.Addr().String() + "/0", []string{ln.Addr().String(), "with TLS", "no Sentinel", "timeout 400ms"}},
		{"redis://:s3cret@" + ln.Addr().String() + "/0", []string{ln.Addr().String(), "without TLS", "no Sentinel"}},
		{"redis+sentinel://:s3cret@" + ln.Addr().String() + "/mymaster", []string{"Sentinel master \"mymaster\" via " + ln.Addr().String(), "without TLS"}},
	} {
		o, err := ParseURL(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		o.Timeout = 400 * time.Millisecond
		c, err := Open(o)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		err = c.Ping(ctx)
		took := time.Since(start)
		cancel()
		c.Close()
		var ce *ConnError
		if !errors.As(err, &ce) {
			t.Fatalf("%s: Ping = %v, want a *ConnError", tc.url, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.url, err, w)
			}
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the password: %q", err)
		}
		if took > 6*time.Second {
			t.Errorf("%s: failed after %s, want about the timeout", tc.url, took)
		}
	}
}

// TestNamespaceHint: when Sidekiq's keys live under another prefix, the hint names it.
func TestNamespaceHint(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx := context.Background()
	c := NewClient(rdb, "")
	if h, err := c.NamespaceHint(ctx); err != nil || h != "" {
		t.Fatalf("empty Redis: hint %q, %v; want none", h, err)
	}
	rdb.SAdd(ctx, "myapp:processes", "ip-1:1:abc")
	rdb.SAdd(ctx, "myapp:super_processes", "ip-1:1:abc") // not a process registry
	rdb.Set(ctx, "other:processes", "not a set", 0)
	h, err := c.NamespaceHint(ctx)
	if err != nil || h != "found myapp:processes; did you mean --redis-namespace myapp?" {
		t.Fatalf("hint %q, %v", h, err)
	}
	if _, err := c.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	// The other way round: a namespace given, Sidekiq without one.
	rdb.SAdd(ctx, "processes", "ip-2:2:def")
	h, err = NewClient(rdb, "myapp").NamespaceHint(ctx)
	if err != nil || !strings.Contains(h, "found processes (no namespace)") || strings.Contains(h, "myapp:processes;") {
		t.Fatalf("hint with a namespace: %q, %v", h, err)
	}
}
