package drain

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/drainctl/drainctl/internal/sidekiq"
	"github.com/drainctl/drainctl/internal/testenv"
)

// processesOnly hides the Fleet's other methods (sidekiq.Client's NewCoverage): the sample
// then reads every heartbeat in full, as it did before Coverage.
type processesOnly struct{ Fleet }

// writeBeat writes a heartbeat of id working queues in Sidekiq 6.4.1's layout, under ns, with
// jobs in-flight entries in its work hash.
func writeBeat(ctx context.Context, p redis.Pipeliner, ns, id string, quiet bool, at time.Time, jobs int, queues ...string) {
	k := func(s string) string { return ns + ":" + s }
	host, _, _ := strings.Cut(id, ":")
	info, _ := json.Marshal(map[string]any{"hostname": host, "pid": 1, "tag": "app", "concurrency": 10,
		"queues": queues, "labels": []string{}, "identity": id, "started_at": float64(at.Unix()) - 100})
	p.SAdd(ctx, k("processes"), id)
	p.HSet(ctx, k(id), "info", info, "busy", jobs, "beat", fmt.Sprintf("%.6f", float64(at.UnixNano())/1e9),
		"quiet", fmt.Sprint(quiet), "rss", 100000, "rtt_us", 300)
	p.Expire(ctx, k(id), time.Hour)
	if jobs > 0 {
		work := make([]any, 0, 2*jobs)
		for j := 0; j < jobs; j++ {
			payload := fmt.Sprintf(`{"retry":true,"queue":"%s","class":"SleepJob","args":[30],"jid":"%s%08x","created_at":%d,"enqueued_at":%d}`,
				queues[0], strings.ReplaceAll(id, ":", ""), j, at.Unix()-10, at.Unix()-5)
			entry, _ := json.Marshal(map[string]any{"queue": queues[0], "payload": payload, "run_at": at.Unix()})
			work = append(work, fmt.Sprintf("t%d", j), entry)
		}
		p.HSet(ctx, k(id+":workers"), work...)
		p.Expire(ctx, k(id+":workers"), time.Hour)
	}
}

// TestSampleProcessingGap samples a drain step by step — the selection quieted, other
// processes appearing, working other queues, losing their hash — and checks that the
// processing gap and the samples are what a full read of every heartbeat gives: with the
// Coverage of a real sidekiq.Client, with a Fleet that only reads every heartbeat, and during
// an overlap hand-over (which shares the hand-over's full read).
func TestSampleProcessingGap(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx := context.Background()
	const sel = "ip-10-0-0-1:1:aaaaaaaaaaaa"
	type step struct {
		name string
		do   func(p redis.Pipeliner, ns string, at time.Time)
		gap  time.Duration // the processing gap after the step
	}
	steps := []step{
		{"the selection works default", func(p redis.Pipeliner, ns string, at time.Time) {
			writeBeat(ctx, p, ns, sel, false, at, 2, "default")
		}, 0},
		{"quieted", func(p redis.Pipeliner, ns string, at time.Time) { writeBeat(ctx, p, ns, sel, true, at, 2, "default") }, time.Second},
		{"a process of other queues appears", func(p redis.Pipeliner, ns string, at time.Time) {
			writeBeat(ctx, p, ns, "ip-10-0-0-2:1:bbbbbbbbbbbb", false, at, 0, "other")
		}, 2 * time.Second},
		{"a new worker of mail and default", func(p redis.Pipeliner, ns string, at time.Time) {
			writeBeat(ctx, p, ns, "ip-10-0-0-3:1:cccccccccccc", false, at, 0, "mail", "default")
		}, 2 * time.Second},
		{"its hash is gone, still listed", func(p redis.Pipeliner, ns string, at time.Time) {
			p.Del(ctx, ns+":ip-10-0-0-3:1:cccccccccccc")
		}, 2 * time.Second},
		{"another, listed before its first heartbeat", func(p redis.Pipeliner, ns string, at time.Time) {
			p.SAdd(ctx, ns+":processes", "ip-10-0-0-4:1:dddddddddddd")
		}, 2 * time.Second},
		{"that one quiet from the start", func(p redis.Pipeliner, ns string, at time.Time) {
			writeBeat(ctx, p, ns, "ip-10-0-0-4:1:dddddddddddd", true, at, 0, "default")
		}, 3 * time.Second},
		{"a worker of default again", func(p redis.Pipeliner, ns string, at time.Time) {
			writeBeat(ctx, p, ns, "ip-10-0-0-5:1:eeeeeeeeeeee", false, at, 0, "default")
		}, 3 * time.Second},
	}
	tests := []struct {
		name     string
		fleet    func(c *sidekiq.Client) Fleet
		handover bool
		call     string // the APICalls entry of the read
	}{
		{"coverage", func(c *sidekiq.Client) Fleet { return c }, false, "redis.Coverage"},
		{"every heartbeat", func(c *sidekiq.Client) Fleet { return processesOnly{c} }, false, "redis.Processes"},
		{"overlap hand-over", func(c *sidekiq.Client) Fleet { return c }, true, "redis.Processes"},
	}
	for n, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := fmt.Sprintf("sample%d", n)
			clock := testenv.NewFakeClock()
			x := newRun(t, Config{Now: clock.Now, After: clock.After, Selector: &sidekiq.Selector{All: true}}, tc.fleet(sidekiq.NewClient(rdb, ns)), nil, NopObserver{})
			x.selected = []sidekiq.Process{{Identity: sel, Queues: []string{"default", "mail"}}}
			if tc.handover {
				x.ov = newOverlapState()
			}
			for i, s := range steps {
				clock.Add(time.Second)
				if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error { s.do(p, ns, clock.Now()); return nil }); err != nil {
					t.Fatal(err)
				}
				x.beats = nil // as wait does before each poll
				x.sample(ctx)
				if m := x.res.Metrics; m.ProcessingGap != s.gap || m.Samples != i+1 {
					t.Fatalf("step %d (%s): gap %v after %d samples, want %v after %d", i, s.name, m.ProcessingGap, m.Samples, s.gap, i+1)
				}
			}
			if got := x.res.APICalls[tc.call]; got != len(steps) {
				t.Errorf("APICalls = %v, want %d %s", x.res.APICalls, len(steps), tc.call)
			}
		})
	}
}

// tripCounter counts the round trips (commands or pipelines) sent through a go-redis client.
type tripCounter struct{ n atomic.Int64 }

func (h *tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "hello" && cmd.Name() != "client" {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// BenchmarkSample is the metrics sample of one poll of a drain-first deploy's wait phase at
// 10,000 processes × 5 jobs, the whole fleet selected and quiet (so no process works the
// queues and every one must be looked at): with sidekiq.Coverage ("coverage"), and reading
// every heartbeat in full as before it ("every-heartbeat"). A first sample, outside the
// timer, reads every heartbeat once. DRAINCTL_BENCH_REDIS_URL, when set, names a Redis to
// write the fleet to (namespace drain-bench), instead of a private one.
func BenchmarkSample(b *testing.B) {
	ctx := context.Background()
	var rdb *redis.Client
	if url := os.Getenv("DRAINCTL_BENCH_REDIS_URL"); url != "" {
		o, err := redis.ParseURL(url)
		if err != nil {
			b.Fatal(err)
		}
		rdb = redis.NewClient(o)
		b.Cleanup(func() { _ = rdb.Close() })
	} else {
		rdb = testenv.StartRedis(b).Client(b)
	}
	const ns, n, jobs = "drain-bench", 10000, 5
	at := time.Now()
	sel := make([]sidekiq.Process, n)
	for start := 0; start < n; start += 500 {
		if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := start; i < start+500; i++ {
				id := fmt.Sprintf("ip-10-0-%d-%d:%d:%012x", i/250, i%250, 1000+i, i)
				sel[i] = sidekiq.Process{Identity: id, Queues: []string{"default", "mail"}}
				writeBeat(ctx, p, ns, id, true, at, jobs, "default", "mail")
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		fleet func(c *sidekiq.Client) Fleet
	}{
		{"coverage", func(c *sidekiq.Client) Fleet { return c }},
		{"every-heartbeat", func(c *sidekiq.Client) Fleet { return processesOnly{c} }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			counted := redis.NewClient(rdb.Options())
			b.Cleanup(func() { _ = counted.Close() })
			h := &tripCounter{}
			counted.AddHook(h)
			cfg, err := Config{Selector: &sidekiq.Selector{All: true}}.withDefaults()
			if err != nil {
				b.Fatal(err)
			}
			x := &run{cfg: cfg, fleet: tc.fleet(sidekiq.NewClient(counted, ns)), obs: NopObserver{},
				res: Result{StartedAt: cfg.Now(), APICalls: map[string]int{}}}
			x.selected = sel
			x.sample(ctx)
			if x.res.Metrics.Samples != 1 {
				b.Fatal("the first sample failed")
			}
			before := h.n.Load()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				x.beats = nil
				x.sample(ctx)
			}
			b.StopTimer()
			if x.res.Metrics.Samples != b.N+1 {
				b.Fatalf("%d samples of %d", x.res.Metrics.Samples, b.N+1)
			}
			b.ReportMetric(float64(h.n.Load()-before)/float64(b.N), "round-trips/op")
		})
	}
}
