package sidekiq

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/drainctl/drainctl/internal/testenv"
)

// TestNamespacedSidekiq runs a real Sidekiq 6.4.1 whose Redis connection goes through the
// redis-namespace gem (testdata/sidekiq/jobs_namespaced.rb; Sidekiq 7 dropped namespaces)
// and drives it with a Client opened from a `?namespace=` URL: the snapshot finds the
// process and its running job, a quiet is acknowledged within AckWithin, and a stop makes
// Sidekiq push the job back to <ns>:queue:default and leave cleanly. A client without the
// namespace sees nothing, so the prefix is what makes it work.
func TestNamespacedSidekiq(t *testing.T) {
	t.Parallel()
	if err := exec.Command("ruby", "-e", `require "redis-namespace"`).Run(); err != nil {
		testenv.Missing(t, "the redis-namespace gem (Debian ruby-redis-namespace): %v", err)
	}
	const ns = "shop"
	ctx := context.Background()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)

	o, err := ParseURL(r.URL() + "?namespace=" + ns)
	if err != nil {
		t.Fatal(err)
	}
	if o.Namespace != ns {
		t.Fatalf("ParseURL namespace = %q, want %q", o.Namespace, ns)
	}
	c, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	plain := NewClient(redis.NewClient(&redis.Options{Addr: r.Addr}), "")
	t.Cleanup(func() { _ = plain.Close() })

	sk := testenv.StartSidekiq(t, testenv.SidekiqOptions{Version: testenv.Sidekiq6, RedisURL: r.URL(), Hostname: "ip-10-0-1-23",
		Tag: "namespaced", Concurrency: 1, Timeout: 2,
		JobsFile: filepath.Join(testenv.RepoRoot(), "testdata", "sidekiq", "jobs_namespaced.rb"),
		Env:      []string{"SIDEKIQ_NAMESPACE=" + ns}})
	id := sk.WaitRegistered(t, rdb, ns, 30*time.Second)
	jid, err := testenv.Enqueue(ctx, rdb, ns, "default", "SleepJob", 60)
	if err != nil {
		t.Fatal(err)
	}

	// The namespaced snapshot sees the process and, from its next heartbeat on, the job.
	var p Process
	deadline := time.Now().Add(15 * time.Second)
	for {
		snap, err := c.Snapshot(ctx)
		if err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		found := false
		for _, x := range snap.Processes {
			if x.Identity == id {
				p, found = x, true
			}
		}
		if found && p.Busy == 1 && len(p.Jobs) == 1 && p.Jobs[0].JID == jid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespaced snapshot within 15 s: found %v, busy %d, jobs %+v; want %s running %s", found, p.Busy, p.Jobs, id, jid)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if p.Hostname != "ip-10-0-1-23" || p.Tag != "namespaced" || p.PID != sk.PID || !p.Listed || !p.HashExists || p.Layout != Layout6 {
		t.Errorf("process = %+v; want hostname ip-10-0-1-23, tag namespaced, pid %d, listed, hash, layout 6", p, sk.PID)
	}
	if j := p.Jobs[0]; j.Class != "SleepJob" || j.Queue != "default" || len(j.Payload) == 0 {
		t.Errorf("job = %+v, want SleepJob from default with its payload", j)
	}
	if snap, err := plain.Snapshot(ctx); err != nil || len(snap.Processes) != 0 {
		t.Errorf("un-namespaced snapshot = %v processes (err %v), want none", len(snap.Processes), err)
	}

	w := c.NewWatcher([]Process{p})
	w.Interval = 250 * time.Millisecond
	until := func(within time.Duration, what string, pred func([]Observation) bool) Observation {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		obs, err := w.Until(wctx, pred)
		if err != nil {
			t.Fatalf("%s within %s: %v; last: state %s, busy %d, listed %v, hash %v, evidence %q",
				what, within, err, obs[0].State, obs[0].Process.Busy, obs[0].Listed, obs[0].HashExists, obs[0].Evidence)
		}
		return obs[0]
	}

	// Quiet (TSTP through <ns>:<identity>-signals): acknowledged within AckWithin, the job
	// still running.
	quietAt := time.Now()
	if err := c.Quiet(ctx, []string{id}); err != nil {
		t.Fatalf("quiet: %v", err)
	}
	q := until(AckWithin(p), "quiet acknowledged", Every(StateQuiet))
	t.Logf("quiet acknowledged after %s (AckWithin %s)", time.Since(quietAt).Round(time.Millisecond), AckWithin(p))
	if !q.Process.Quiet || q.Process.Busy != 1 {
		t.Errorf("after quiet: quiet %v busy %d, want quiet with the job still running", q.Process.Quiet, q.Process.Busy)
	}

	// Stop (TERM): Sidekiq waits its -t 2, pushes the job back to <ns>:queue:default and
	// leaves <ns>:processes.
	if err := c.Stop(ctx, []string{id}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	g := until(AckWithin(p)+2*time.Second+5*time.Second, "a clean exit", Every(StateGone, StateDead))
	if g.State != StateGone {
		t.Errorf("after stop: state %s (%s), want gone", g.State, g.Evidence)
	}
	ps := sk.Wait(10 * time.Second)
	if ps == nil || ps.ExitCode() != 0 {
		t.Errorf("sidekiq exit state %v, want exit 0", ps)
	}
	queued, err := rdb.LRange(ctx, ns+":queue:default", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != 1 || !strings.Contains(queued[0], `"jid":"`+jid+`"`) {
		t.Errorf("%s:queue:default = %q, want the job %s pushed back", ns, queued, jid)
	}
	if n, _ := rdb.LLen(ctx, "queue:default").Result(); n != 0 {
		t.Errorf("un-namespaced queue:default has %d jobs, want none", n)
	}
	if b, _ := os.ReadFile(sk.Log); !strings.Contains(string(b), "Pushed 1 jobs back") {
		t.Errorf("sidekiq did not log %q", "Pushed 1 jobs back")
	}
}
