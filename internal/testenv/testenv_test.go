package testenv

import (
	"context"
	"testing"
	"time"
)

// TestSidekiqRunsJobs proves the harness itself: both Sidekiq versions register and run a job.
func TestSidekiqRunsJobs(t *testing.T) {
	for _, v := range Versions {
		t.Run(string(v), func(t *testing.T) {
			t.Parallel()
			r := StartRedis(t)
			rdb := r.Client(t)
			sk := StartSidekiq(t, SidekiqOptions{Version: v, RedisURL: r.URL(), Hostname: "ip-10-0-1-23", Tag: "harness"})
			id := sk.WaitRegistered(t, rdb, "", 30*time.Second)
			if want := "ip-10-0-1-23:"; len(id) < len(want) || id[:len(want)] != want {
				t.Fatalf("identity %q does not start with %q", id, want)
			}
			ctx := context.Background()
			jid, err := Enqueue(ctx, rdb, "", "default", "SleepJob", 0.1)
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				done, err := DoneCounts(ctx, rdb)
				if err != nil {
					t.Fatal(err)
				}
				if done[jid] == 1 {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Fatalf("job %s not done within 20s", jid)
		})
	}
}
