package sidekiq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The deploy lock.
//
// A lock is one Redis string, drainctl:lock:{<name>}, set with SET NX and a TTL (PX) to the
// JSON of its LockOwner, which carries a random token. Only the holder whose token matches
// may refresh (compare-and-PEXPIRE) or release (compare-and-DEL) it, both in Lua so the
// compare and the write are one step.
//
// "Stale" means the holder stopped refreshing: it was killed, lost its network, or hung. The
// key's TTL then lapses on its own and the next AcquireLock simply succeeds; a live holder
// refreshes well within the TTL (drain refreshes every third of it). To tell a takeover from a
// first run, every acquire also writes the owner to drainctl:lock:{<name>}:last (kept 7 days)
// and a clean Release deletes it: when an acquire finds a :last from another token, the
// previous holder never released, and Lock.TookOver names it so the caller can warn.

// lockLastTTL bounds how long the :last record of an unreleased lock is remembered.
const lockLastTTL = 7 * 24 * time.Hour

// ErrLockLost means the lock is no longer ours: it expired, and maybe another run took it.
var ErrLockLost = errors.New("deploy lock lost")

// LockOwner describes the run holding a lock; it is what a second run sees.
type LockOwner struct {
	// Owner says who runs drainctl (a CI job URL, $USER).
	Owner     string    `json:"owner"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	// Token identifies this acquisition; AcquireLock sets a random one when empty.
	Token string `json:"token,omitempty"`
}

// LockHeldError says another live run holds the lock.
type LockHeldError struct {
	Name   string
	Holder LockOwner
	// ExpiresIn is the lock's remaining TTL: the longest a dead holder can block.
	ExpiresIn time.Duration
}

func (e *LockHeldError) Error() string {
	return fmt.Sprintf("lock %q held by %s on %s (pid %d) since %s (expires in %v unless refreshed)",
		e.Name, e.Holder.Owner, e.Holder.Host, e.Holder.PID, e.Holder.StartedAt.UTC().Format(time.RFC3339),
		e.ExpiresIn.Round(time.Millisecond))
}

// Lock is a held deploy lock.
type Lock struct {
	c        *Client
	name     string
	key      string
	lastKey  string
	value    string
	ttl      time.Duration
	owner    LockOwner
	tookOver *LockOwner
}

// Name is the lock's name as given to AcquireLock.
func (l *Lock) Name() string { return l.name }

// Owner is this run's owner record, with its token.
func (l *Lock) Owner() LockOwner { return l.owner }

// TookOver returns the previous holder when this acquire took over a stale lock, else nil.
func (l *Lock) TookOver() *LockOwner { return l.tookOver }

func (c *Client) lockKeys(name string) (key, last string) {
	// The hash tag keeps both keys in one slot, so the scripts work on Redis Cluster.
	k := c.key("drainctl:lock:{" + name + "}")
	return k, k + ":last"
}

var acquireScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local prev = redis.call('GET', KEYS[2])
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
  return {1, prev}
end
return {0, redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
`)

var refreshScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

var releaseScript = redis.NewScript(`
local ours = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  ours = 1
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return ours
`)

// AcquireLock takes the named lock for owner with the given TTL. When another live run
// holds it, the error is a *LockHeldError naming the holder. A lock whose holder stopped
// refreshing has expired and is taken: Lock.TookOver then names that holder.
func (c *Client) AcquireLock(ctx context.Context, name string, owner LockOwner, ttl time.Duration) (*Lock, error) {
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("acquire lock %q: ttl %v is below 1ms", name, ttl)
	}
	if owner.Token == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("acquire lock %q: token: %w", name, err)
		}
		owner.Token = hex.EncodeToString(b[:])
	}
	value, err := json.Marshal(owner)
	if err != nil {
		return nil, fmt.Errorf("acquire lock %q: encode owner: %w", name, err)
	}
	key, last := c.lockKeys(name)
	res, err := acquireScript.Run(ctx, c.rdb, []string{key, last}, string(value), ttl.Milliseconds(),
		lockLastTTL.Milliseconds()).Slice()
	if err != nil {
		return nil, fmt.Errorf("acquire lock %q: %w", name, err)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("acquire lock %q: empty reply from script", name)
	}
	if ok, _ := res[0].(int64); ok != 1 {
		held := &LockHeldError{Name: name}
		if len(res) > 1 {
			if s, ok := res[1].(string); ok {
				held.Holder = decodeOwner(s)
			}
		}
		if len(res) > 2 {
			if ms, ok := res[2].(int64); ok && ms > 0 {
				held.ExpiresIn = time.Duration(ms) * time.Millisecond
			}
		}
		return nil, held
	}
	l := &Lock{c: c, name: name, key: key, lastKey: last, value: string(value), ttl: ttl, owner: owner}
	if len(res) > 1 {
		if s, ok := res[1].(string); ok {
			prev := decodeOwner(s)
			if prev.Token != owner.Token {
				l.tookOver = &prev
			}
		}
	}
	return l, nil
}

// decodeOwner reads a lock value; a value another program wrote comes back as its raw text
// in Owner, so the message still names something.
func decodeOwner(s string) LockOwner {
	var o LockOwner
	if err := json.Unmarshal([]byte(s), &o); err != nil {
		return LockOwner{Owner: s}
	}
	return o
}

// LockHolder reports who holds the named lock without taking it; nil when it is free.
func (c *Client) LockHolder(ctx context.Context, name string) (*LockOwner, error) {
	key, _ := c.lockKeys(name)
	s, err := c.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lock %q: %w", name, err)
	}
	o := decodeOwner(s)
	return &o, nil
}

// Refresh resets the lock's TTL if it is still ours; otherwise it returns ErrLockLost.
func (l *Lock) Refresh(ctx context.Context) error {
	n, err := refreshScript.Run(ctx, l.c.rdb, []string{l.key}, l.value, l.ttl.Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("refresh lock %q: %w", l.name, err)
	}
	if n != 1 {
		return fmt.Errorf("refresh lock %q: %w", l.name, ErrLockLost)
	}
	return nil
}

// Release deletes the lock if it is still ours. When it had already expired it returns
// ErrLockLost (and leaves any new holder's lock alone).
func (l *Lock) Release(ctx context.Context) error {
	n, err := releaseScript.Run(ctx, l.c.rdb, []string{l.key, l.lastKey}, l.value).Int64()
	if err != nil {
		return fmt.Errorf("release lock %q: %w", l.name, err)
	}
	if n != 1 {
		return fmt.Errorf("release lock %q: %w", l.name, ErrLockLost)
	}
	return nil
}

// KeepAlive refreshes the lock every interval until ctx is done, in a goroutine. The
// returned channel receives the first refresh error (ErrLockLost when another run took the
// lock) and is closed when the goroutine ends. Zero interval means a third of the TTL.
func (l *Lock) KeepAlive(ctx context.Context, interval time.Duration) <-chan error {
	if interval <= 0 {
		interval = l.ttl / 3
	}
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := l.Refresh(ctx); err != nil {
					if ctx.Err() == nil {
						errc <- err
					}
					return
				}
			}
		}
	}()
	return errc
}
