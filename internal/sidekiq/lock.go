package sidekiq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
//
// The value also records the lock's TTL and the renewal cadence its holder promises (a third
// of the TTL, as drain and KeepAlive refresh), so the remaining TTL tells how long ago the
// holder last renewed it: one that missed its renewal by more than lockRenewGrace has stopped.
// And it records the holder's program name and PID space (boot id and PID namespace), so a run
// on the same machine can see at once that the holder's PID is no longer a running drainctl
// and take the lock over without waiting for the TTL.

// lockLastTTL bounds how long the :last record of an unreleased lock is remembered.
const lockLastTTL = 7 * 24 * time.Hour

// lockRenewGrace is how late past its promised cadence a renewal may come (a poll's delay,
// Redis latency) before the holder counts as no longer renewing.
const lockRenewGrace = 5 * time.Second

// Sentinel errors of the lock; test with errors.Is.
var (
	// ErrLockLost means the lock is no longer ours: it expired, and maybe another run took it.
	ErrLockLost = errors.New("deploy lock lost")
	// ErrLockHeld means another run holds the lock; the error is a *LockHeldError.
	ErrLockHeld = errors.New("deploy lock held")
	// ErrLockRenewing means Unlock refused because the holder still renews the lock; the
	// error is a *LockHeldError.
	ErrLockRenewing = errors.New("deploy lock holder is still renewing it")
	// ErrLockNotHeld means Unlock found no lock to remove.
	ErrLockNotHeld = errors.New("deploy lock not held")
)

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

// LockHeldError says another run holds the lock (from AcquireLock), or that Unlock refused
// because the holder still renews it. errors.Is matches ErrLockHeld, and ErrLockRenewing
// when Renewing is true and the error came from Unlock.
type LockHeldError struct {
	Name   string
	Holder LockOwner
	// ExpiresIn is the lock's remaining TTL: the longest a dead holder can block.
	ExpiresIn time.Duration
	// ExpiresAt is when the lock expires unless its holder renews it (now + ExpiresIn).
	ExpiresAt time.Time
	// LastRenewed is when the holder last set or renewed the lock; zero when the lock does
	// not record its TTL (written by an older drainctl or another program).
	LastRenewed time.Time
	// Renewing is true while the holder keeps to its renewal cadence: it is most likely alive.
	// False means it missed a renewal (gone, hung or cut off), or that it cannot be told.
	Renewing bool
	unlock   bool // from Unlock: also ErrLockRenewing
}

// Error names the holder, and when the lock expires if the holder is gone.
func (e *LockHeldError) Error() string {
	msg := fmt.Sprintf("lock %q held by %s on %s (pid %d) since %s", e.Name, e.Holder.Owner, e.Holder.Host,
		e.Holder.PID, e.Holder.StartedAt.UTC().Format(time.RFC3339))
	if e.unlock {
		msg = "refuse to remove " + msg
	}
	switch {
	case e.Renewing:
		msg += fmt.Sprintf("; the holder is renewing it (last at %s); if that run is gone, the lock expires at %s",
			stamp(e.LastRenewed), stamp(e.ExpiresAt))
	case !e.LastRenewed.IsZero():
		msg += fmt.Sprintf("; the holder stopped renewing it at %s and looks gone; the lock expires at %s",
			stamp(e.LastRenewed), stamp(e.ExpiresAt))
	default:
		msg += fmt.Sprintf("; the lock expires at %s unless renewed", stamp(e.ExpiresAt))
	}
	return msg
}

// stamp formats t for messages, to the nearest second.
func stamp(t time.Time) string { return t.UTC().Round(time.Second).Format(time.RFC3339) }

// Is matches ErrLockHeld, and ErrLockRenewing for Unlock's refusal.
func (e *LockHeldError) Is(target error) bool {
	return target == ErrLockHeld || (e.unlock && target == ErrLockRenewing)
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
	reason   string
}

// Name is the lock's name as given to AcquireLock.
func (l *Lock) Name() string { return l.name }

// Owner is this run's owner record, with its token.
func (l *Lock) Owner() LockOwner { return l.owner }

// TookOver returns the previous holder when this acquire took over a stale lock, else nil.
func (l *Lock) TookOver() *LockOwner { return l.tookOver }

// TakeoverReason says, for a warning, whose lock this acquire took over and why; "" when it
// took over nothing.
func (l *Lock) TakeoverReason() string { return l.reason }

// lockValue is the JSON stored in the lock key: the owner plus what lets others judge it.
type lockValue struct {
	LockOwner
	// Program is the holder's executable name; PIDSpace its boot id and PID namespace.
	Program  string `json:"program,omitempty"`
	PIDSpace string `json:"pid_space,omitempty"`
	// TTLMillis is the lock's TTL; RenewMillis how often its holder promises to renew it.
	TTLMillis   int64 `json:"ttl_ms,omitempty"`
	RenewMillis int64 `json:"renew_ms,omitempty"`
}

// LockOptions tunes Client.Lock.
type LockOptions struct {
	// TTL is how long the lock lives without a refresh; the holder must refresh it at least
	// every TTL/3. Must be at least 1ms.
	TTL time.Duration
	// Now is the clock for the times in errors. Nil means time.Now.
	Now func() time.Time
	// Running reports whether pid is a running process of program in this PID space. Nil
	// means the real check (signal 0 and /proc/<pid>/exe); tests replace it.
	Running func(pid int, program string) bool
}

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

// takeoverScript replaces the lock only if it still holds the value we judged dead.
// KEYS: lock, :last. ARGV: old value, new value, TTL ms, :last TTL ms.
var takeoverScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
return 1
`)

// AcquireLock takes the named lock for owner with the given TTL; it is Lock with only a TTL.
func (c *Client) AcquireLock(ctx context.Context, name string, owner LockOwner, ttl time.Duration) (*Lock, error) {
	return c.Lock(ctx, name, owner, LockOptions{TTL: ttl})
}

// Lock takes the named lock for owner. When another run holds it, the error is a
// *LockHeldError (errors.Is ErrLockHeld) naming the holder and when the lock expires. A lock
// whose holder stopped refreshing has expired and is taken; so is, at once, a lock whose
// holder ran on this machine (same boot and PID namespace) as a process that is no longer
// running (or whose PID now belongs to another program). Lock.TookOver then names the
// previous holder and Lock.TakeoverReason says why, for a warning.
func (c *Client) Lock(ctx context.Context, name string, owner LockOwner, opt LockOptions) (*Lock, error) {
	ttl := opt.TTL
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("acquire lock %q: ttl %v is below 1ms", name, ttl)
	}
	now, running := opt.Now, opt.Running
	if now == nil {
		now = time.Now
	}
	if running == nil {
		running = processRunning
	}
	if owner.Token == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("acquire lock %q: token: %w", name, err)
		}
		owner.Token = hex.EncodeToString(b[:])
	}
	lv := lockValue{LockOwner: owner, Program: programName(), PIDSpace: pidSpace(),
		TTLMillis: ttl.Milliseconds(), RenewMillis: (ttl / 3).Milliseconds()}
	raw, err := json.Marshal(lv)
	if err != nil {
		return nil, fmt.Errorf("acquire lock %q: encode owner: %w", name, err)
	}
	value := string(raw)
	key, last := c.lockKeys(name)
	l := &Lock{c: c, name: name, key: key, lastKey: last, value: value, ttl: ttl, owner: owner}
	for attempt := 0; ; attempt++ {
		res, err := acquireScript.Run(ctx, c.rdb, []string{key, last}, value, ttl.Milliseconds(),
			lockLastTTL.Milliseconds()).Slice()
		if err != nil {
			return nil, fmt.Errorf("acquire lock %q on %s: %w", name, c.Redacted(), err)
		}
		if len(res) == 0 {
			return nil, fmt.Errorf("acquire lock %q: empty reply from script", name)
		}
		if ok, _ := res[0].(int64); ok == 1 {
			if len(res) > 1 {
				if s, ok := res[1].(string); ok {
					prev := decodeOwner(s)
					if prev.Token != owner.Token {
						l.tookOver = &prev
						l.reason = fmt.Sprintf("took over lock %q from %s on %s (pid %d, started %s): it stopped renewing it and the lock expired",
							name, prev.Owner, prev.Host, prev.PID, prev.StartedAt.UTC().Format(time.RFC3339))
					}
				}
			}
			return l, nil
		}
		var held string
		var pttl int64
		if len(res) > 1 {
			held, _ = res[1].(string)
		}
		if len(res) > 2 {
			pttl, _ = res[2].(int64)
		}
		hv := decodeLockValue(held)
		if attempt < 3 && held != "" && hv.PIDSpace != "" && hv.PIDSpace == lv.PIDSpace && hv.PID > 0 && !running(hv.PID, hv.Program) {
			n, err := takeoverScript.Run(ctx, c.rdb, []string{key, last}, held, value, ttl.Milliseconds(),
				lockLastTTL.Milliseconds()).Int64()
			if err != nil {
				return nil, fmt.Errorf("take over lock %q on %s: %w", name, c.Redacted(), err)
			}
			if n != 1 {
				continue // it changed under us: judge again
			}
			prev := hv.LockOwner
			l.tookOver = &prev
			l.reason = fmt.Sprintf("took over lock %q from %s on %s (pid %d, started %s): pid %d is no longer a running %s on this machine",
				name, prev.Owner, prev.Host, prev.PID, prev.StartedAt.UTC().Format(time.RFC3339), prev.PID, orDefault(hv.Program, "drainctl"))
			return l, nil
		}
		return nil, heldError(name, hv, pttl, now())
	}
}

// heldError describes a lock held with value hv and remaining TTL pttl ms, at now.
func heldError(name string, hv lockValue, pttl int64, now time.Time) *LockHeldError {
	e := &LockHeldError{Name: name, Holder: hv.LockOwner, ExpiresAt: now}
	if pttl > 0 {
		e.ExpiresIn = time.Duration(pttl) * time.Millisecond
		e.ExpiresAt = now.Add(e.ExpiresIn)
	}
	if hv.TTLMillis > 0 && pttl > 0 && pttl <= hv.TTLMillis {
		age := time.Duration(hv.TTLMillis-pttl) * time.Millisecond
		e.LastRenewed = now.Add(-age)
		e.Renewing = hv.RenewMillis > 0 && age <= time.Duration(hv.RenewMillis)*time.Millisecond+lockRenewGrace
	}
	return e
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// programName is this executable's base name.
func programName() string {
	exe, err := os.Executable()
	if err != nil {
		return filepath.Base(os.Args[0])
	}
	return filepath.Base(exe)
}

// pidSpace identifies the PID space this process lives in: the kernel's boot id and the PID
// namespace. Two runs that agree on it see the same PIDs. Empty where it cannot be read (not
// Linux): then no lock is taken over early.
func pidSpace() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(boot)) + "/" + ns
}

// processRunning reports whether pid runs in this PID space as program (by its executable's
// base name, when both are known). Unsure means yes.
func processRunning(pid int, program string) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	if program == "" {
		return true
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return true // another user's process, or no /proc: cannot tell
	}
	return filepath.Base(strings.TrimSuffix(exe, " (deleted)")) == program
}

// decodeOwner reads a lock value; a value another program wrote comes back as its raw text
// in Owner, so the message still names something.
func decodeOwner(s string) LockOwner { return decodeLockValue(s).LockOwner }

func decodeLockValue(s string) lockValue {
	var v lockValue
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return lockValue{LockOwner: LockOwner{Owner: s}}
	}
	return v
}

// LockHolder reports who holds the named lock without taking it; nil when it is free.
func (c *Client) LockHolder(ctx context.Context, name string) (*LockOwner, error) {
	key, _ := c.lockKeys(name)
	s, err := c.rdb.Get(ctx, key).Result()
	if isNil(err) {
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

// UnlockOptions tunes Client.Unlock.
type UnlockOptions struct {
	// Force removes the lock even while its holder renews it.
	Force bool
	// Now is the clock for the times in errors. Nil means time.Now.
	Now func() time.Time
	// Running is as in LockOptions.
	Running func(pid int, program string) bool
}

// unlockScript deletes the lock if it still holds the value judged, and — unless forced — if
// its remaining TTL still says the holder missed its renewal (so a renewal that slipped in
// between the read and the delete wins). KEYS: lock, :last. ARGV: value, max PTTL ms or -1.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) >= 0 and redis.call('PTTL', KEYS[1]) > tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
`)

// Unlock removes the named lock for an operator (drainctl unlock) and returns who held it.
// It refuses, with a *LockHeldError matching ErrLockRenewing, while the holder still keeps to
// its renewal cadence — judged from the lock's remaining TTL against the TTL and cadence
// recorded in it, compared and deleted in one atomic step — unless the holder ran on this
// machine as a process that is no longer running, or Force is set. A lock that does not
// record its TTL (older drainctl, another program) is removed only with Force. With no lock
// it returns ErrLockNotHeld.
func (c *Client) Unlock(ctx context.Context, name string, opt UnlockOptions) (*LockOwner, error) {
	now, running := opt.Now, opt.Running
	if now == nil {
		now = time.Now
	}
	if running == nil {
		running = processRunning
	}
	key, last := c.lockKeys(name)
	for attempt := 0; attempt < 3; attempt++ {
		pipe := c.rdb.Pipeline()
		get := pipe.Get(ctx, key)
		pttl := pipe.PTTL(ctx, key)
		if _, err := pipe.Exec(ctx); err != nil && !isNil(err) {
			return nil, fmt.Errorf("read lock %q on %s: %w", name, c.Redacted(), err)
		}
		value, err := get.Result()
		if isNil(err) {
			return nil, fmt.Errorf("unlock %q: %w", name, ErrLockNotHeld)
		}
		hv := decodeLockValue(value)
		held := heldError(name, hv, pttl.Val().Milliseconds(), now())
		held.unlock = true
		maxPTTL := int64(-1)
		switch {
		case opt.Force:
		case hv.PIDSpace != "" && hv.PIDSpace == pidSpace() && hv.PID > 0 && !running(hv.PID, hv.Program):
		case held.LastRenewed.IsZero() || held.Renewing:
			return &hv.LockOwner, held
		default:
			// Still missed when deleted: no more TTL left than right after the missed renewal.
			maxPTTL = hv.TTLMillis - hv.RenewMillis - lockRenewGrace.Milliseconds()
		}
		n, err := unlockScript.Run(ctx, c.rdb, []string{key, last}, value, maxPTTL).Int64()
		if err != nil {
			return nil, fmt.Errorf("unlock %q on %s: %w", name, c.Redacted(), err)
		}
		if n == 1 {
			return &hv.LockOwner, nil
		}
	}
	return nil, fmt.Errorf("unlock %q: the lock keeps changing: %w", name, ErrLockRenewing)
}
