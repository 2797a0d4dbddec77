// Command drainctl drains Sidekiq workers through Redis before an ECS rollout, watches the
// rollout to the end and reports what happened to every job. See README.md.
//
// No memory limit is set: the commands that read a whole fleet keep their working set small
// by reading it in bounded chunks (BENCHMARKS.md), not by making the GC run harder.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
