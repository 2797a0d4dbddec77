package sidekiq

import (
	"context"
	"errors"
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

func owner(name string) LockOwner {
	return LockOwner{Owner: name, Host: "host-" + name, PID: 42, StartedAt: time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)}
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
	if held.Holder.Owner != "ci-1" || held.Holder.Host != "host-ci-1" || held.Holder.PID != 42 {
		t.Errorf("holder = %+v, want ci-1 on host-ci-1 pid 42", held.Holder)
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

	l, err := c.AcquireLock(ctx, "r", owner("a"), 300*time.Millisecond)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	// A refresh while ours extends the TTL to the full value.
	if err := rdb.PExpire(ctx, "drainctl:lock:{r}", 50*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	if err := l.Refresh(ctx); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if ttl := rdb.PTTL(ctx, "drainctl:lock:{r}").Val(); ttl < 200*time.Millisecond {
		t.Errorf("ttl after refresh = %v, want close to 300ms", ttl)
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

	l, err := c.AcquireLock(ctx, "k", owner("a"), 150*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	errc := l.KeepAlive(ctx, 30*time.Millisecond)
	// Three TTLs later the lock is still held thanks to the refreshes.
	time.Sleep(450 * time.Millisecond)
	if h, _ := c.LockHolder(ctx, "k"); h == nil || h.Owner != "a" {
		t.Fatalf("holder after 3 TTLs of keep-alive = %+v, want a", h)
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
