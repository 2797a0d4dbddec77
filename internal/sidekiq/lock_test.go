package sidekiq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// lockClient starts a redis-server and returns a Client on it with the given namespace.
func lockClient(t *testing.T, namespace string) (*Client, *redis.Client) {
	t.Helper()
	srv := testenv.StartRedis(t)
	rdb := srv.Client(t)
	return NewClient(rdb, namespace), rdb
}

// owner is a holder that is running: this test process.
func owner(name string) LockOwner {
	return LockOwner{Owner: name, Host: "host-" + name, PID: os.Getpid(), StartedAt: time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)}
}

func TestLockAcquireHeldRelease(t *testing.T) {
	t.Parallel()
	c, rdb := lockClient(t, "myapp")
	ctx := context.Background()

	a, err := c.AcquireLock(ctx, "deploy:prod/worker", owner("ci-1"), 10*time.Second)
	if err != nil {
		t.Fatalf("first acquire: %v", err)
	}
	if a.TookOver() != nil {
		t.Errorf("first acquire took over %+v, want nothing", a.TookOver())
	}
	// The key lives under the namespace, in one hash slot with its :last record.
	if n := rdb.Exists(ctx, "myapp:drainctl:lock:{deploy:prod/worker}").Val(); n != 1 {
		t.Errorf("namespaced lock key exists = %d, want 1", n)
	}

	_, err = c.AcquireLock(ctx, "deploy:prod/worker", owner("ci-2"), 10*time.Second)
	var held *LockHeldError
	if !errors.As(err, &held) {
		t.Fatalf("second acquire: err = %v, want *LockHeldError", err)
	}
	if held.Holder.Owner != "ci-1" || held.Holder.Host != "host-ci-1" || held.Holder.PID != os.Getpid() {
		t.Errorf("holder = %+v, want ci-1 on host-ci-1 with this test's pid", held.Holder)
	}
	if held.ExpiresIn <= 0 || held.ExpiresIn > 10*time.Second {
		t.Errorf("ExpiresIn = %v, want in (0, 10s]", held.ExpiresIn)
	}
	if !strings.Contains(err.Error(), "ci-1") {
		t.Errorf("error %q does not name the holder", err)
	}

	h, err := c.LockHolder(ctx, "deploy:prod/worker")
	if err != nil || h == nil || h.Owner != "ci-1" {
		t.Fatalf("LockHolder = %+v, %v; want ci-1", h, err)
	}

	if err := a.Release(ctx); err != nil {
		t.Fatalf("release: %v", err)
	}
	if h, err := c.LockHolder(ctx, "deploy:prod/worker"); err != nil || h != nil {
		t.Fatalf("LockHolder after release = %+v, %v; want nil", h, err)
	}
	// After a clean release the next run takes the lock without a stale warning.
	b, err := c.AcquireLock(ctx, "deploy:prod/worker", owner("ci-2"), 10*time.Second)
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	if b.TookOver() != nil {
		t.Errorf("acquire after a clean release took over %+v, want nothing", b.TookOver())
	}
	// Releasing twice is ErrLockLost, not a deletion of someone else's lock.
	if err := a.Release(ctx); !errors.Is(err, ErrLockLost) {
		t.Errorf("second release of the old lock: err = %v, want ErrLockLost", err)
	}
	if h, _ := c.LockHolder(ctx, "deploy:prod/worker"); h == nil || h.Owner != "ci-2" {
		t.Errorf("holder after the old lock's second release = %+v, want ci-2", h)
	}
}

func TestLockRefresh(t *testing.T) {
	t.Parallel()
	c, rdb := lockClient(t, "")
	ctx := context.Background()

	// TTLs far above any scheduling delay (the test once used 300/50 ms). It still failed once
	// after that ("deploy lock lost" within a second of a 5 s TTL): not a timing problem; the
	// suspect is two tests' redis-servers sharing a port (see the branch poll's report).
	l, err := c.AcquireLock(ctx, "r", owner("a"), 30*time.Second)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	// A refresh while ours extends the TTL to the full value.
	if err := rdb.PExpire(ctx, "drainctl:lock:{r}", 5*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	if err := l.Refresh(ctx); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if ttl := rdb.PTTL(ctx, "drainctl:lock:{r}").Val(); ttl < 20*time.Second {
		t.Errorf("ttl after refresh = %v, want close to 30s", ttl)
	}

	// Once it expired (simulated by deleting the key) a refresh fails and recreates nothing.
	if err := rdb.Del(ctx, "drainctl:lock:{r}").Err(); err != nil {
		t.Fatal(err)
	}
	if err := l.Refresh(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("refresh after expiry: err = %v, want ErrLockLost", err)
	}
	if n := rdb.Exists(ctx, "drainctl:lock:{r}").Val(); n != 0 {
		t.Errorf("refresh after expiry recreated the key")
	}

	// And it never extends another run's lock.
	other, err := c.AcquireLock(ctx, "r", owner("b"), 10*time.Second)
	if err != nil {
		t.Fatalf("acquire by b: %v", err)
	}
	if err := l.Refresh(ctx); !errors.Is(err, ErrLockLost) {
		t.Errorf("refresh of a's lost lock while b holds it: err = %v, want ErrLockLost", err)
	}
	if err := other.Refresh(ctx); err != nil {
		t.Errorf("refresh by b: %v", err)
	}
}

func TestLockStaleTakeover(t *testing.T) {
	t.Parallel()
	c, _ := lockClient(t, "")
	ctx := context.Background()

	// The first holder never refreshes: its TTL lapses as if it had been killed.
	if _, err := c.AcquireLock(ctx, "s", owner("dead-run"), 100*time.Millisecond); err != nil {
		t.Fatalf("acquire: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var l *Lock
	for {
		var err error
		l, err = c.AcquireLock(ctx, "s", owner("next-run"), 10*time.Second)
		if err == nil {
			break
		}
		var held *LockHeldError
		if !errors.As(err, &held) || time.Now().After(deadline) {
			t.Fatalf("takeover: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	prev := l.TookOver()
	if prev == nil || prev.Owner != "dead-run" || prev.Host != "host-dead-run" {
		t.Fatalf("TookOver = %+v, want dead-run", prev)
	}
	if l.Owner().Owner != "next-run" || l.Owner().Token == "" {
		t.Errorf("Owner = %+v, want next-run with a token", l.Owner())
	}
}

func TestLockKeepAlive(t *testing.T) {
	t.Parallel()
	c, rdb := lockClient(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// A TTL ten refreshes long: a loaded CI machine may delay a refresh by a few hundred
	// milliseconds, never by a whole second.
	l, err := c.AcquireLock(ctx, "k", owner("a"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	errc := l.KeepAlive(ctx, 100*time.Millisecond)
	// Two and a half TTLs later the lock is still held thanks to the refreshes.
	time.Sleep(2500 * time.Millisecond)
	if h, _ := c.LockHolder(ctx, "k"); h == nil || h.Owner != "a" {
		t.Fatalf("holder after 2.5 TTLs of keep-alive = %+v, want a", h)
	}
	// Someone deletes it: the keep-alive reports the loss and stops.
	rdb.Del(ctx, "drainctl:lock:{k}")
	select {
	case err := <-errc:
		if !errors.Is(err, ErrLockLost) {
			t.Errorf("keep-alive error = %v, want ErrLockLost", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("keep-alive did not report the lost lock")
	}
}

func TestLockBadTTL(t *testing.T) {
	c := NewClient(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), "")
	defer c.Close()
	if _, err := c.AcquireLock(context.Background(), "x", owner("a"), 0); err == nil {
		t.Fatal("AcquireLock with ttl 0: want an error before any network call")
	}
}

// deadPID returns the PID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestLockHeldSays: the held error carries the holder, when the lock expires, and whether the
// holder still renews it; errors.Is matches ErrLockHeld.
func TestLockHeldSays(t *testing.T) {
	t.Parallel()
	c, rdb := lockClient(t, "")
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC)
	if _, err := c.AcquireLock(ctx, "h", owner("ci-1"), time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err := c.Lock(ctx, "h", owner("ci-2"), LockOptions{TTL: time.Minute, Now: func() time.Time { return now }})
	var held *LockHeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrLockHeld) || errors.Is(err, ErrLockRenewing) {
		t.Fatalf("err = %v, want a *LockHeldError matching ErrLockHeld only", err)
	}
	if !held.Renewing || held.ExpiresAt.Sub(now.Add(time.Minute)).Abs() > 2*time.Second || held.LastRenewed.Sub(now).Abs() > 2*time.Second {
		t.Errorf("fresh lock: renewing %v, expires %v, last renewed %v; want renewing, expiring about %v", held.Renewing, held.ExpiresAt, held.LastRenewed, now.Add(time.Minute))
	}
	// The holder missed its renewal (20 s cadence, 5 s grace): 30 s have passed.
	if err := rdb.PExpire(ctx, "drainctl:lock:{h}", 30*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	_, err = c.Lock(ctx, "h", owner("ci-2"), LockOptions{TTL: time.Minute, Now: func() time.Time { return now }})
	if !errors.As(err, &held) || held.Renewing {
		t.Fatalf("err = %v, want held by a holder no longer renewing", err)
	}
	if held.ExpiresAt.Sub(now.Add(30*time.Second)).Abs() > 2*time.Second || held.LastRenewed.Sub(now.Add(-30*time.Second)).Abs() > 2*time.Second {
		t.Errorf("expires %v, last renewed %v; want about %v and %v", held.ExpiresAt, held.LastRenewed, now.Add(30*time.Second), now.Add(-30*time.Second))
	}
	for _, want := range []string{"ci-1", "stopped renewing", "expires at 2026-11-25T05:00:30Z"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestLockTakeoverGoneHolder: a holder in this machine's PID space whose PID is not running
// (or now runs another program) is taken over at once with a reason; a running one, or one
// from another machine, is not.
func TestLockTakeoverGoneHolder(t *testing.T) {
	t.Parallel()
	c, rdb := lockClient(t, "")
	ctx := context.Background()
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	tests := []struct {
		name     string
		holder   func() LockOwner
		takeover string // reason contains; "" means held
	}{
		{"dead pid", func() LockOwner { o := owner("killed"); o.PID = deadPID(t); return o }, "is no longer a running"},
		{"pid reused by another program", func() LockOwner { o := owner("reused"); o.PID = sleeper.Process.Pid; return o }, "is no longer a running"},
		{"running holder", func() LockOwner { return owner("alive") }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "t-" + tc.name
			first := tc.holder()
			if _, err := c.AcquireLock(ctx, name, first, time.Minute); err != nil {
				t.Fatal(err)
			}
			l, err := c.AcquireLock(ctx, name, owner("next"), time.Minute)
			if tc.takeover == "" {
				if !errors.Is(err, ErrLockHeld) {
					t.Fatalf("err = %v, want ErrLockHeld", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("acquire: %v, want a takeover", err)
			}
			if prev := l.TookOver(); prev == nil || prev.Owner != first.Owner || prev.PID != first.PID {
				t.Errorf("TookOver = %+v, want %+v", prev, first)
			}
			if r := l.TakeoverReason(); !strings.Contains(r, tc.takeover) || !strings.Contains(r, first.Owner) {
				t.Errorf("reason %q, want it to name %s and contain %q", r, first.Owner, tc.takeover)
			}
			if h, _ := c.LockHolder(ctx, name); h == nil || h.Owner != "next" {
				t.Errorf("holder after takeover = %+v", h)
			}
		})
	}
	// A dead PID in another PID space (another machine or container) proves nothing.
	other := `{"owner":"elsewhere","host":"runner-9","pid":` + fmt.Sprint(deadPID(t)) + `,"token":"x","pid_space":"other-boot/pid:[1]","ttl_ms":60000,"renew_ms":20000}`
	rdb.Set(ctx, "drainctl:lock:{remote}", other, time.Minute)
	if _, err := c.AcquireLock(ctx, "remote", owner("next"), time.Minute); !errors.Is(err, ErrLockHeld) {
		t.Fatalf("lock of another PID space: err = %v, want ErrLockHeld", err)
	}
}

// TestUnlock removes a lock for an operator only when its holder stopped renewing it, is a
// dead process on this machine, or with force.
func TestUnlock(t *testing.T) {
	t.Parallel()
	c, rdb := lockClient(t, "myapp")
	ctx := context.Background()
	key := func(name string) string { return "myapp:drainctl:lock:{" + name + "}" }

	if _, err := c.Unlock(ctx, "none", UnlockOptions{}); !errors.Is(err, ErrLockNotHeld) {
		t.Fatalf("unlock of nothing: %v, want ErrLockNotHeld", err)
	}

	// Renewing: refused, and nothing removed; force removes it.
	if _, err := c.AcquireLock(ctx, "r", owner("ci-1"), time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err := c.Unlock(ctx, "r", UnlockOptions{})
	var held *LockHeldError
	if !errors.Is(err, ErrLockRenewing) || !errors.As(err, &held) || held.Holder.Owner != "ci-1" || !strings.Contains(err.Error(), "renewing") {
		t.Fatalf("unlock while renewing: %v, want ErrLockRenewing naming ci-1", err)
	}
	if rdb.Exists(ctx, key("r")).Val() != 1 {
		t.Fatal("refused unlock removed the lock")
	}
	if o, err := c.Unlock(ctx, "r", UnlockOptions{Force: true}); err != nil || o == nil || o.Owner != "ci-1" {
		t.Fatalf("forced unlock: %+v %v", o, err)
	}
	if rdb.Exists(ctx, key("r")).Val() != 0 {
		t.Fatal("forced unlock left the lock")
	}

	// Stopped renewing: 30 s since the last renewal of a 60 s lock renewed every 20 s.
	if _, err := c.AcquireLock(ctx, "s", owner("ci-2"), time.Minute); err != nil {
		t.Fatal(err)
	}
	rdb.PExpire(ctx, key("s"), 30*time.Second)
	if o, err := c.Unlock(ctx, "s", UnlockOptions{}); err != nil || o.Owner != "ci-2" {
		t.Fatalf("unlock of a lock no longer renewed: %+v %v", o, err)
	}
	if n := rdb.Exists(ctx, key("s"), key("s")+":last").Val(); n != 0 {
		t.Fatalf("%d lock keys left", n)
	}

	// A dead holder on this machine: removed at once, fresh as it is.
	dead := owner("killed")
	dead.PID = deadPID(t)
	if _, err := c.AcquireLock(ctx, "d", dead, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Unlock(ctx, "d", UnlockOptions{}); err != nil {
		t.Fatalf("unlock of a dead holder's lock: %v", err)
	}

	// A value that records no TTL (another program): only with force.
	rdb.Set(ctx, key("f"), "someone else's", time.Minute)
	if _, err := c.Unlock(ctx, "f", UnlockOptions{}); !errors.Is(err, ErrLockRenewing) {
		t.Fatalf("unlock of a foreign lock: %v, want a refusal", err)
	}
	if _, err := c.Unlock(ctx, "f", UnlockOptions{Force: true}); err != nil {
		t.Fatalf("forced unlock of a foreign lock: %v", err)
	}
}
