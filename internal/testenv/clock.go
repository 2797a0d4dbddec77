package testenv

import (
	"sync"
	"time"
)

// ClockStart is where every FakeClock starts: a fixed instant, so rendered times are stable.
var ClockStart = time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)

// FakeClock is the one fake clock of the unit tests (the watcher's, the Runner's): After
// advances it by d and fires at once, so a wait never sleeps. Its Now and After are what
// drain.Config and sidekiq.Watcher take as their clock.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewFakeClock returns a clock at ClockStart.
func NewFakeClock() *FakeClock { return &FakeClock{now: ClockStart} }

// Now returns the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock forward by d.
func (c *FakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// After moves the clock forward by d and returns a channel that already holds the new time.
func (c *FakeClock) After(d time.Duration) <-chan time.Time {
	c.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
}
