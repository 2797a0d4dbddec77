package sidekiq

import (
	"context"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/testenv"
)

func TestQueueStats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	c, rt := counted(t, r, "ns")
	warm(t, c, rt)
	now := time.Date(2024, 11, 25, 3, 0, 0, 0, time.UTC)
	// LPUSH puts the newest at the head; the oldest (next fetched) is at index -1.
	rdb.LPush(ctx, "ns:queue:default",
		`{"jid":"a","enqueued_at":1732503570.5}`, // 29.5 s old: float seconds (6.x/7.x)
		`{"jid":"b","enqueued_at":1732503590.0}`)
	rdb.LPush(ctx, "ns:queue:v8", `{"jid":"c","enqueued_at":1732503540250}`) // 59.75 s: integer ms (8.x)
	rdb.LPush(ctx, "ns:queue:broken", `not json`)
	rdb.LPush(ctx, "queue:default", `{"jid":"x","enqueued_at":1}`) // outside the namespace
	got, err := c.QueueStats(ctx, []string{"default", "v8", "empty", "broken"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if n := rt.n.Load(); n != 1 {
		t.Errorf("QueueStats took %d round trips, want 1", n)
	}
	want := []QueueStat{
		{Name: "default", Size: 2, Latency: 29500 * time.Millisecond},
		{Name: "v8", Size: 1, Latency: 59750 * time.Millisecond},
		{Name: "empty"},
		{Name: "broken", Size: 1},
	}
	for i := range want {
		g := got[i]
		if g.Name != want[i].Name || g.Size != want[i].Size || g.Latency != want[i].Latency {
			t.Errorf("queue %d: got %+v, want %+v", i, g, want[i])
		}
	}
	if got[3].Err == "" || got[0].Err != "" {
		t.Errorf("Err fields: %q / %q", got[0].Err, got[3].Err)
	}
}
