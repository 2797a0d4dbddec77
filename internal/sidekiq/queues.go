package sidekiq

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// QueueStat is the size and latency of one queue.
type QueueStat struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// Latency is the age of the oldest job (now − its enqueued_at); zero for an empty queue.
	Latency time.Duration `json:"latency"`
	// Err describes an oldest job whose payload could not be read; Size is still valid.
	Err string `json:"error,omitempty"`
}

// QueueStats reads the size (LLEN) and latency (the enqueued_at of `LINDEX queue:<name> -1`,
// the next job to be fetched) of each queue in one pipelined round trip, as Sidekiq's
// Queue#latency does; enqueued_at may be float seconds or integer milliseconds.
func (c *Client) QueueStats(ctx context.Context, queues []string, now time.Time) ([]QueueStat, error) {
	out := make([]QueueStat, len(queues))
	if len(queues) == 0 {
		return out, nil
	}
	type pair struct {
		size   *redis.IntCmd
		oldest *redis.StringCmd
	}
	cmds := make([]pair, len(queues))
	pipe := c.rdb.Pipeline()
	for i, q := range queues {
		key := c.key(queueKey(q))
		cmds[i] = pair{pipe.LLen(ctx, key), pipe.LIndex(ctx, key, -1)}
	}
	if _, err := pipe.Exec(ctx); err != nil && !isNil(err) {
		return nil, fmt.Errorf("read %d queues on %s: %w", len(queues), c.Redacted(), err)
	}
	for i, q := range queues {
		out[i] = QueueStat{Name: q, Size: cmds[i].size.Val()}
		raw, err := cmds[i].oldest.Bytes()
		if err != nil || len(raw) == 0 {
			continue
		}
		j, err := decodePayload(raw)
		if err != nil {
			out[i].Err = fmt.Sprintf("oldest job in queue %q: %v", q, err)
			continue
		}
		if !j.EnqueuedAt.IsZero() {
			if d := now.Sub(j.EnqueuedAt); d > 0 {
				out[i].Latency = d
			}
		}
	}
	return out, nil
}
