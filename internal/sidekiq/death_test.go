package sidekiq

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/testenv"
)

func TestClassifyDeath(t *testing.T) {
	now := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	v6 := Process{Identity: "a:1:x", Layout: Layout6, HashExists: true}
	v7 := Process{Identity: "b:2:y", Layout: Layout7, Version: "7.3.2", HashExists: true}
	with := func(p Process, beatAgo time.Duration, exists bool) Process {
		p.Beat, p.HashExists = now.Add(-beatAgo), exists
		return p
	}
	tests := []struct {
		name      string
		p         Process
		ttl       time.Duration
		want      Death
		silent    time.Duration
		certainAt time.Time
	}{
		{"fresh beat", with(v6, 3*time.Second, true), 0, DeathAlive, 3 * time.Second, time.Time{}},
		{"6.x late by a beat is still alive", with(v6, 12*time.Second, true), 0, DeathAlive, 12 * time.Second, time.Time{}},
		{"6.x stale", with(v6, 13*time.Second, true), 0, DeathNotYetKnown, 13 * time.Second, now.Add(47 * time.Second)},
		{"7.x 20 s is alive", with(v7, 20*time.Second, true), 0, DeathAlive, 20 * time.Second, time.Time{}},
		{"7.x stale", with(v7, 30*time.Second, true), 0, DeathNotYetKnown, 30 * time.Second, now.Add(30 * time.Second)},
		{"own ttl", with(v7, 30*time.Second, true), 45 * time.Second, DeathNotYetKnown, 30 * time.Second, now.Add(15 * time.Second)},
		{"hash gone", with(v7, 61*time.Second, false), 0, DeathCertain, 61 * time.Second, time.Time{}},
		{"hash gone, no beat read", Process{Identity: "c:3:z"}, 0, DeathCertain, 0, time.Time{}},
		{"hash gone early (clean stop or flush)", with(v6, 2*time.Second, false), 0, DeathCertain, 2 * time.Second, time.Time{}},
		{"beat in the future", with(v7, -30*time.Second, true), 0, DeathAlive, 0, time.Time{}},
		{"clock behind: hash outlived beat+ttl", with(v7, 90*time.Second, true), 0, DeathNotYetKnown, 90 * time.Second, now.Add(60 * time.Second)},
		{"hash without a beat", Process{Identity: "d:4:w", HashExists: true}, 0, DeathNotYetKnown, 0, now.Add(60 * time.Second)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ClassifyDeath(tc.p, tc.ttl, now)
			if got.Death != tc.want || got.Silent != tc.silent || !got.CertainAt.Equal(tc.certainAt) || got.Identity != tc.p.Identity {
				t.Errorf("ClassifyDeath = %+v, want %s silent %s certain at %v", got, tc.want, tc.silent, tc.certainAt)
			}
		})
	}
}

// TestWaitCertain waits on hand-written heartbeats in a real Redis: one expiring, one that
// beats again, one that outlives the wait.
func TestWaitCertain(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx := context.Background()
	c := NewClient(rdb, "")
	beat := func(id string, at time.Time, ttl time.Duration) {
		t.Helper()
		if err := handBeat(ctx, rdb, "", id, "7.3.2", at, true, 0); err != nil {
			t.Fatal(err)
		}
		if err := rdb.PExpire(ctx, id, ttl).Err(); err != nil {
			t.Fatal(err)
		}
	}
	fast := WaitOptions{Interval: 50 * time.Millisecond}

	t.Run("expires", func(t *testing.T) {
		beat("ip-1:1:aaaaaaaaaaaa", time.Now().Add(-59*time.Second), 700*time.Millisecond)
		var polls int
		opt := fast
		opt.OnPoll = func([]Certainty) { polls++ }
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		got, err := c.WaitCertain(wctx, []string{"ip-1:1:aaaaaaaaaaaa"}, opt)
		if err != nil || len(got) != 1 || got[0].Death != DeathCertain || got[0].LastBeat.IsZero() {
			t.Fatalf("WaitCertain = %+v, %v; want dead with its last beat", got, err)
		}
		if polls < 2 {
			t.Errorf("%d polls, want it to have waited for the expiry", polls)
		}
	})
	t.Run("beats again", func(t *testing.T) {
		id := "ip-2:2:bbbbbbbbbbbb"
		beat(id, time.Now().Add(-40*time.Second), time.Minute)
		opt := fast
		opt.OnPoll = func([]Certainty) { beat(id, time.Now(), time.Minute) }
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := c.WaitCertain(wctx, []string{id}, opt)
		if !errors.Is(err, ErrAlive) || !strings.Contains(err.Error(), id) {
			t.Fatalf("err = %v, want ErrAlive naming %s", err, id)
		}
	})
	t.Run("context ends", func(t *testing.T) {
		id := "ip-3:3:cccccccccccc"
		last := time.Now().Add(-30 * time.Second)
		beat(id, last, time.Minute)
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		got, err := c.WaitCertain(wctx, []string{id, "ip-1:1:aaaaaaaaaaaa"}, fast)
		var nc *NotCertainError
		if !errors.As(err, &nc) || !errors.Is(err, context.DeadlineExceeded) || len(nc.Pending) != 1 || nc.Pending[0].Identity != id {
			t.Fatalf("err = %v, want *NotCertainError with %s pending", err, id)
		}
		if p := nc.Pending[0]; p.Death != DeathNotYetKnown || p.CertainAt.Sub(last.Add(HeartbeatTTL)).Abs() > time.Millisecond {
			t.Errorf("pending %+v, want not yet known dead, certain at %v", p, last.Add(HeartbeatTTL))
		}
		if len(got) != 2 || got[1].Death != DeathCertain {
			t.Errorf("classifications %+v, want the second dead", got)
		}
		if !strings.Contains(err.Error(), "certain at ") {
			t.Errorf("error %q does not say when death becomes certain", err)
		}
	})
}

// TestDeathOfKilledSidekiq: a SIGKILLed real Sidekiq is alive by its last beat at first, then
// not yet known dead with its hash's expiry as the moment of certainty, and WaitCertain
// returns when that hash has expired, not before.
func TestDeathOfKilledSidekiq(t *testing.T) {
	t.Parallel()
	l := startLC(t, testenv.Sidekiq6, "ip-10-0-1-19", 1, 2)
	if err := l.sk.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if l.sk.Wait(5*time.Second) == nil {
		t.Fatal("sidekiq survived SIGKILL")
	}
	var first, stale Certainty
	opt := WaitOptions{Interval: 250 * time.Millisecond, OnPoll: func(cs []Certainty) {
		if first.Identity == "" {
			first = cs[0]
		}
		if stale.Identity == "" && cs[0].Death == DeathNotYetKnown {
			stale = cs[0]
		}
	}}
	ctx, cancel := context.WithTimeout(l.ctx, HeartbeatTTL+30*time.Second)
	defer cancel()
	got, err := l.c.WaitCertain(ctx, []string{l.id}, opt)
	if err != nil {
		t.Fatalf("WaitCertain: %v", err)
	}
	dead := time.Now()
	if first.Death != DeathAlive {
		t.Errorf("right after the kill: %+v, want alive by its last beat", first)
	}
	if stale.Death != DeathNotYetKnown || !stale.CertainAt.Equal(stale.LastBeat.Add(HeartbeatTTL)) {
		t.Fatalf("while the hash lived: %+v, want not yet known dead, certain at last beat + 60 s", stale)
	}
	if got[0].Death != DeathCertain || !got[0].LastBeat.Equal(stale.LastBeat) {
		t.Fatalf("WaitCertain = %+v, want dead with last beat %v", got[0], stale.LastBeat)
	}
	if early := stale.CertainAt.Sub(dead); early > time.Second {
		t.Errorf("dead at %v, %s before the hash could expire (%v)", dead, early, stale.CertainAt)
	}
	if late := dead.Sub(stale.CertainAt); late > 5*time.Second {
		t.Errorf("dead %s after the hash's expiry", late)
	}
}
