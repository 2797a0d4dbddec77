package sidekiq

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ConnectTimeout bounds the first contact with Redis: a few commands of Timeout (or
// DefaultTimeout) each, so that an unreachable server fails quickly rather than hanging.
func (o *Options) ConnectTimeout() time.Duration {
	t := o.Timeout
	if t <= 0 {
		t = DefaultTimeout
	}
	return 3 * t
}

// QuietLogs silences go-redis's own logger, which prints dial failures to stderr: the error
// a Client's caller reports already says it, on one line. It is process-wide (go-redis keeps
// one logger) and safe to call more than once.
var QuietLogs = sync.OnceFunc(func() { redis.SetLogger(nopLogger{}) })

type nopLogger struct{}

func (nopLogger) Printf(context.Context, string, ...any) {}
