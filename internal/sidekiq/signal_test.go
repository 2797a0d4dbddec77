package sidekiq

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/testenv"
)

func TestSignalsExactBytesAndOneRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		namespace string
		send      func(*Client, context.Context, []string) error
		want      string
	}{
		{"quiet", "", (*Client).Quiet, "TSTP"},
		{"stop", "", (*Client).Stop, "TERM"},
		{"quiet namespaced", "myapp", (*Client).Quiet, "TSTP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := testenv.StartRedis(t)
			rdb := r.Client(t)
			ids := make([]string, 1000)
			for i := range ids {
				ids[i] = fmt.Sprintf("ip-10-0-%d-%d:%d:%012x", i/200, i%200, 100+i, i)
			}
			c, rt := counted(t, r, tt.namespace)
			warm(t, c, rt)
			if err := tt.send(c, ctx, ids); err != nil {
				t.Fatal(err)
			}
			if got := rt.n.Load(); got != 1 {
				t.Errorf("signalling 1000 processes took %d round trips, want 1", got)
			}
			pfx := ""
			if tt.namespace != "" {
				pfx = tt.namespace + ":"
			}
			for _, i := range []int{0, 499, 999} {
				key := pfx + ids[i] + "-signals"
				got, err := rdb.LRange(ctx, key, 0, -1).Result()
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, []string{tt.want}) {
					t.Errorf("LRANGE %s = %q, want [%q]", key, got, tt.want)
				}
				if ttl := rdb.TTL(ctx, key).Val(); ttl <= 55*time.Second || ttl > 60*time.Second {
					t.Errorf("TTL %s = %v, want 60s", key, ttl)
				}
			}
			keys, _ := rdb.Keys(ctx, "*").Result()
			if len(keys) != 1000 {
				t.Errorf("%d keys written, want exactly the 1000 signal lists", len(keys))
			}
		})
	}
}

func TestSignalRefusesOtherStrings(t *testing.T) {
	c := NewClient(nil, "")
	for _, sig := range []string{"KILL", "TTIN", "", "tstp"} {
		if err := c.signal(context.Background(), []string{"a:1:b"}, sig); err == nil {
			t.Errorf("signal %q was accepted", sig)
		}
	}
	if err := c.Quiet(context.Background(), nil); err != nil {
		t.Errorf("quiet of nobody: %v", err)
	}
}

// TestQuietRealSidekiq checks that a real process acknowledges Quiet (quiet="true" in its
// heartbeat) within AckWithin, on both versions.
func TestQuietRealSidekiq(t *testing.T) {
	t.Parallel()
	for _, v := range testenv.Versions {
		t.Run(string(v), func(t *testing.T) {
			t.Parallel()
			r := testenv.StartRedis(t)
			s := testenv.StartSidekiq(t, testenv.SidekiqOptions{Version: v, RedisURL: r.URL(), Tag: "quiet"})
			id := s.WaitRegistered(t, r.Client(t), "", 30*time.Second)
			c := coreOpen(t, r, "")
			ctx := context.Background()
			snap, err := c.SnapshotOf(ctx, []string{id})
			if err != nil {
				t.Fatal(err)
			}
			p := snap.Processes[0]
			if p.Quiet || !p.HashExists {
				t.Fatalf("before Quiet: %+v", p)
			}
			if err := c.Quiet(ctx, []string{id}); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			deadline := start.Add(AckWithin(p))
			for {
				snap, err := c.SnapshotOf(ctx, []string{id})
				if err != nil {
					t.Fatal(err)
				}
				if snap.Processes[0].Quiet {
					t.Logf("%s acknowledged quiet after %v (AckWithin %v)", v, time.Since(start).Round(100*time.Millisecond), AckWithin(p))
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("not quiet within AckWithin = %v", AckWithin(p))
				}
				time.Sleep(250 * time.Millisecond)
			}
		})
	}
}
