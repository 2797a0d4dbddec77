// Command drainctl drains Sidekiq workers through Redis before an ECS rollout, watches the
// rollout to the end and reports what happened to every job. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// memoryLimit is the soft limit the Go runtime keeps the heap under unless GOMEMLIMIT says
// otherwise: reading a fleet of 10,000 processes x 5 jobs holds about 55 MiB of replies and
// decoded jobs at once, and Go's default GC target would double that (BENCHMARKS.md).
const memoryLimit = 48 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
