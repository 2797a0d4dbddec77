package drain

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/drainctl/drainctl/internal/sidekiq"
)

// acquireLock takes the deploy lock: one run per set of services at a time.
func (x *run) acquireLock(ctx context.Context) (err error) {
	defer x.phase(PhaseLock)(&err)
	owner := x.cfg.LockOwner
	if owner.StartedAt.IsZero() {
		owner.StartedAt = x.res.StartedAt
	}
	lock, err := x.fleet.AcquireLock(ctx, x.lockName, owner, x.cfg.LockTTL)
	x.count("redis.Lock")
	if err != nil {
		var held *sidekiq.LockHeldError
		if errors.As(err, &held) {
			x.res.Lock.Holder = &held.Holder
			return &LockedError{Name: x.lockName, Holder: held.Holder, ExpiresIn: held.ExpiresIn, Held: held}
		}
		return fmt.Errorf("acquire deploy lock %q: %w", x.lockName, err)
	}
	x.lock = lock
	x.lastRefresh = x.cfg.Now()
	x.res.Lock.Acquired = true
	if prev := lock.TookOver(); prev != nil {
		x.res.Lock.TookOver = prev
		why := lock.TakeoverReason()
		if why == "" {
			why = "it stopped refreshing it"
		}
		x.warn("took over the stale deploy lock %q of %s on %s (pid %d, started %s): %s",
			x.lockName, prev.Owner, prev.Host, prev.PID, prev.StartedAt.UTC().Format(time.RFC3339), why)
	}
	return nil
}

// refreshLock extends the lock once a third of its TTL has passed.
func (x *run) refreshLock(ctx context.Context) {
	if x.lock == nil || x.cfg.Now().Sub(x.lastRefresh) < x.cfg.LockTTL/3 {
		return
	}
	x.count("redis.LockRefresh")
	if err := x.lock.Refresh(ctx); err != nil {
		if ctx.Err() != nil {
			return
		}
		x.warn("refresh deploy lock %q: %v (another run may take it over)", x.lockName, err)
		return
	}
	x.lastRefresh = x.cfg.Now()
}

// releaseLock releases the lock with a context of its own: it runs after an interrupt too.
func (x *run) releaseLock(ctx context.Context) {
	if x.lock == nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), x.cfg.CleanupTimeout)
	defer cancel()
	x.count("redis.LockRelease")
	if err := x.lock.Release(cctx); err != nil {
		x.warn("release deploy lock %q: %v (it expires in %v)", x.lockName, err, x.cfg.LockTTL)
		return
	}
	x.lock = nil
	x.res.Lock.Released = true
}
