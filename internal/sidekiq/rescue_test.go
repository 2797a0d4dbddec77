package sidekiq

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/drainctl/drainctl/internal/testenv"
)

// orphan is a job as the watcher keeps it from a dead process's work hash.
func orphan(t testing.TB, deadID, jid, queue string) Job {
	t.Helper()
	j, err := decodePayload([]byte(handPayload(jid, queue)))
	if err != nil {
		t.Fatal(err)
	}
	j.Process = deadID
	return j
}

// rescueWorld writes, under namespace ns, a fleet around one dead process: a live process
// running one job, a schedule and a retry set, a queue holding one job, a Sidekiq Pro process,
// and a marker of an earlier rescue.
func rescueWorld(t *testing.T, ctx context.Context, rdb *redis.Client, ns string) {
	t.Helper()
	k := func(s string) string {
		if ns == "" {
			return s
		}
		return ns + ":" + s
	}
	now := time.Now()
	if err := handBeat(ctx, rdb, ns, "ip-10-0-2-2:2:222222222222", "7.3.2", now, false, -1, "running1"); err != nil {
		t.Fatal(err)
	}
	// The dead process's own work hash may still be there (death concluded from ECS evidence).
	if err := handBeat(ctx, rdb, ns, "ip-10-0-1-1:1:111111111111", "7.3.2", now, true, -1, "ownwork"); err != nil {
		t.Fatal(err)
	}
	sched := strings.Replace(handPayload("sched1", "default"), `"retry":true`, `"retry":true,"at":1764050000.5`, 1)
	retry := strings.Replace(handPayload("retry1", "default"), `"retry":true`,
		`"retry":true,"error_message":"boom","error_class":"RuntimeError","failed_at":1764043300.1,"retry_count":0`, 1)
	// A retry entry whose args mention another jid must not count as that jid.
	decoy := strings.Replace(handPayload("decoy1", "default"), `"args":[1.5]`, `"args":["mentions-jid-argsonly1"]`, 1)
	cmds := [][]any{
		{"zadd", k("schedule"), 1764050000.5, sched},
		{"zadd", k("retry"), 1764043330, retry},
		{"zadd", k("retry"), 1764043331, decoy},
		{"lpush", k("queue:default"), handPayload("queued1", "default")},
		{"sadd", k("super_processes"), "ip-10-0-3-3:3:333333333333"},
		{"rpush", k("queue:sq|ip-10-0-4-4:4:444444444444|default"), handPayload("privlist1", "default"), handPayload("privlist2", "default")},
		{"set", k("drainctl:rescued:marked1:ip-10-0-1-1:1:111111111111:0"),
			`{"run":"run-earlier","at":"2026-11-25T04:00:00Z","process":"ip-10-0-1-1:1:111111111111","queue":"default"}`},
		// A marker of an older drainctl, by jid alone, proves nothing about this death.
		{"set", k("drainctl:rescued:legacy1"), "rescued by drainctl at 2026-11-20T04:00:00Z"},
	}
	for _, c := range cmds {
		if err := rdb.Do(ctx, c...).Err(); err != nil {
			t.Fatalf("%v: %v", c, err)
		}
	}
}

// TestRescueOutcomes checks every reason to push or skip, with and without a namespace.
func TestRescueOutcomes(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	const dead = "ip-10-0-1-1:1:111111111111"
	for _, ns := range []string{"", "myapp"} {
		t.Run("namespace="+ns, func(t *testing.T) {
			ctx := context.Background()
			rescueWorld(t, ctx, rdb, ns)
			k := func(s string) string {
				if ns == "" {
					return s
				}
				return ns + ":" + s
			}
			tests := []struct {
				job    Job
				want   Outcome
				reason string
			}{
				{orphan(t, dead, "plain1", "default"), OutcomePushed, "RPUSH to " + k("queue:default")},
				{orphan(t, dead, "ownwork", "default"), OutcomePushed, ""}, // on the dead process itself: not "running"
				{orphan(t, dead, "lowprio1", "low"), OutcomePushed, "RPUSH to " + k("queue:low")},
				{orphan(t, dead, "argsonly1", "default"), OutcomePushed, ""},
				{orphan(t, dead, "marked1", "default"), OutcomeAlreadyRescued, "by run run-earlier at 2026-11-25T04:00:00Z"},
				{orphan(t, dead, "legacy1", "default"), OutcomePushed, ""},
				{orphan(t, dead, "queued1", "default"), OutcomeQueued, "index 0 of " + k("queue:default")},
				{orphan(t, dead, "sched1", "default"), OutcomeScheduled, k("schedule")},
				{orphan(t, dead, "retry1", "default"), OutcomeRetry, k("retry")},
				{orphan(t, dead, "running1", "default"), OutcomeRunning, "ip-10-0-2-2:2:222222222222"},
				{orphan(t, "ip-10-0-3-3:3:333333333333", "pro1", "default"), OutcomeSuperFetch, "start or restart one Sidekiq Pro process"},
				{orphan(t, "ip-10-0-4-4:4:444444444444", "privlist1", "default"), OutcomeSuperFetch, "queue:sq|ip-10-0-4-4:4:444444444444|"},
				{orphan(t, dead, "plain1", "default"), OutcomeDuplicate, "job 0"},
				{Job{JID: "nopayload", Queue: "default", Process: dead}, OutcomeInvalid, ""},
			}
			jobs := make([]Job, len(tests))
			for i, tc := range tests {
				jobs[i] = tc.job
			}
			c := NewClient(rdb, ns)
			res, err := c.Rescue(ctx, jobs, RescueOptions{MarkerTTL: time.Hour, RunID: "run-first"})
			if err != nil {
				t.Fatalf("rescue: %v", err)
			}
			if len(res.Jobs) != len(tests) {
				t.Fatalf("%d results for %d jobs", len(res.Jobs), len(tests))
			}
			for i, tc := range tests {
				got := res.Jobs[i]
				if got.Job.JID != tc.job.JID || got.Outcome != tc.want || !strings.Contains(got.Reason, tc.reason) {
					t.Errorf("job %d (%s): %s %q, want %s with reason containing %q", i, tc.job.JID, got.Outcome, got.Reason, tc.want, tc.reason)
				}
			}

			// What Redis holds now: the pushed payloads, byte for byte, at the tail.
			q, err := rdb.LRange(ctx, k("queue:default"), 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			want := []string{handPayload("queued1", "default"), handPayload("plain1", "default"),
				handPayload("ownwork", "default"), handPayload("argsonly1", "default"), handPayload("legacy1", "default")}
			if fmt.Sprint(q) != fmt.Sprint(want) {
				t.Errorf("%s = %q, want %q", k("queue:default"), q, want)
			}
			if low, _ := rdb.LRange(ctx, k("queue:low"), 0, -1).Result(); len(low) != 1 || low[0] != handPayload("lowprio1", "low") {
				t.Errorf("%s = %q, want the lowprio1 payload", k("queue:low"), low)
			}
			if ok, _ := rdb.SIsMember(ctx, k("queues"), "low").Result(); !ok {
				t.Errorf("%s lacks low", k("queues"))
			}
			if m := res.Jobs[4]; m.RescuedBy != "run-earlier" || !m.RescuedAt.Equal(time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)) {
				t.Errorf("already rescued %s: by %q at %v, want run-earlier at 04:00", m.Job.JID, m.RescuedBy, m.RescuedAt)
			}
			if p := res.Jobs[0]; p.RescuedBy != "run-first" || p.RescuedAt.IsZero() || res.RunID != "run-first" {
				t.Errorf("pushed %s: by %q at %v (result run %q), want this run", p.Job.JID, p.RescuedBy, p.RescuedAt, res.RunID)
			}
			for _, jid := range []string{"plain1", "ownwork", "lowprio1", "argsonly1", "legacy1"} {
				ttl, err := rdb.PTTL(ctx, c.markerKey(orphan(t, dead, jid, ""))).Result()
				if err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
					t.Errorf("marker of %s: ttl %s (%v), want about 1h", jid, ttl, err)
				}
			}
			for _, jid := range []string{"queued1", "sched1", "retry1", "running1", "pro1", "privlist1"} {
				if n, _ := rdb.Keys(ctx, k("drainctl:rescued:"+jid+":*")).Result(); len(n) != 0 {
					t.Errorf("skipped job %s got a marker", jid)
				}
			}
			if n, _ := rdb.LLen(ctx, k("queue:sq|ip-10-0-4-4:4:444444444444|default")).Result(); n != 2 {
				t.Errorf("super_fetch private list has %d jobs, want its 2 untouched", n)
			}
			if len(res.SuperFetch) != 2 || res.SuperFetch[1].Lists[k("queue:sq|ip-10-0-4-4:4:444444444444|default")] != 2 {
				t.Errorf("SuperFetch = %+v, want both Pro processes, the second with its 2-job private list", res.SuperFetch)
			}

			// Again: nothing is pushed twice.
			again, err := c.Rescue(ctx, jobs, RescueOptions{RunID: "run-second"})
			if err != nil {
				t.Fatal(err)
			}
			if n := again.Count(OutcomePushed); n != 0 {
				t.Fatalf("second rescue pushed %d jobs", n)
			}
			if n := again.Count(OutcomeAlreadyRescued); n != 6 {
				t.Fatalf("second rescue: %d already rescued, want 6: %+v", n, again.Jobs)
			}
			for _, j := range again.Jobs {
				if j.Outcome == OutcomeAlreadyRescued && j.Job.JID != "marked1" && (j.RescuedBy != "run-first" || !j.RescuedAt.Equal(res.Jobs[0].RescuedAt)) {
					t.Errorf("second rescue: %s rescued by %q at %v, want run-first at %v", j.Job.JID, j.RescuedBy, j.RescuedAt, res.Jobs[0].RescuedAt)
				}
			}
		})
	}
}

// TestRescueConcurrentExactlyOnce runs many rescues of the same orphans at once: each job is
// pushed exactly once in all.
func TestRescueConcurrentExactlyOnce(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	ctx := context.Background()
	var jobs []Job
	for i := 0; i < 20; i++ {
		jobs = append(jobs, orphan(t, "ip-10-0-1-1:1:111111111111", fmt.Sprintf("conc%02d", i), "default"))
	}
	const runs = 8
	results := make([]RescueResult, runs)
	errs := make([]error, runs)
	var wg sync.WaitGroup
	for i := 0; i < runs; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := NewClient(redis.NewClient(&redis.Options{Addr: r.Addr}), "") // a drainctl of its own
			defer c.Close()
			results[i], errs[i] = c.Rescue(ctx, jobs, RescueOptions{RunID: fmt.Sprintf("run-%d", i)})
		}(i)
	}
	wg.Wait()
	pushed := map[string]int{}
	pushedBy := map[string]JobRescue{}
	var already []JobRescue
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("run %d: %v", i, errs[i])
		}
		for _, j := range results[i].Jobs {
			switch j.Outcome {
			case OutcomePushed:
				pushed[j.Job.JID]++
				pushedBy[j.Job.JID] = j
			case OutcomeAlreadyRescued:
				already = append(already, j)
			default:
				t.Errorf("run %d: %s: %s %s", i, j.Job.JID, j.Outcome, j.Reason)
			}
		}
	}
	for _, j := range jobs {
		if pushed[j.JID] != 1 {
			t.Errorf("%s pushed %d times, want 1", j.JID, pushed[j.JID])
		}
	}
	// Every other run names the one that pushed, and when.
	for _, a := range already {
		p := pushedBy[a.Job.JID]
		if a.RescuedBy != p.RescuedBy || !a.RescuedAt.Equal(p.RescuedAt) || !strings.Contains(a.Reason, p.RescuedBy) {
			t.Errorf("%s already rescued by %q at %v (%s), but %q pushed it at %v", a.Job.JID, a.RescuedBy, a.RescuedAt, a.Reason, p.RescuedBy, p.RescuedAt)
		}
	}
	if n, _ := r.Client(t).LLen(ctx, "queue:default").Result(); n != int64(len(jobs)) {
		t.Fatalf("queue:default holds %d jobs, want %d", n, len(jobs))
	}
}

// TestRescuePerDeath: the same job orphaned by one death after another — another process, or
// the same identity running it again later — is pushed once per death, and a repeated rescue
// of one death says which run pushed it and when.
func TestRescuePerDeath(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx := context.Background()
	c := NewClient(rdb, "")
	const a, b = "ip-10-0-1-1:1:111111111111", "ip-10-0-1-2:7:222222222222"
	death := func(id string, runAt int64) Job {
		j := orphan(t, id, "again1", "default")
		j.RunAt = time.Unix(runAt, 0).UTC()
		return j
	}
	clock := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	fetch := func() { // a live worker takes the job: it is running, not queued
		t.Helper()
		if n, err := rdb.RPop(ctx, "queue:default").Result(); err != nil || n != handPayload("again1", "default") {
			t.Fatalf("fetch: %q %v, want the pushed payload", n, err)
		}
	}
	tests := []struct {
		name   string
		job    Job
		run    string
		want   Outcome
		by     string
		at     time.Time
		before func()
	}{
		{"first death", death(a, 1764043200), "deploy-1", OutcomePushed, "deploy-1", clock, nil},
		{"another process dies running it", death(b, 1764043300), "deploy-2", OutcomePushed, "deploy-2", clock.Add(time.Minute), fetch},
		{"the same identity runs it again and dies", death(a, 1764043400), "deploy-3", OutcomePushed, "deploy-3", clock.Add(2 * time.Minute), fetch},
		{"the first death again", death(a, 1764043200), "deploy-4", OutcomeAlreadyRescued, "deploy-1", clock, fetch},
		{"the second death again", death(b, 1764043300), "deploy-4", OutcomeAlreadyRescued, "deploy-2", clock.Add(time.Minute), nil},
	}
	for k, tc := range tests {
		if tc.before != nil {
			tc.before()
		}
		clock = time.Date(2026, 11, 25, 4, k, 0, 0, time.UTC)
		res, err := c.Rescue(ctx, []Job{tc.job}, RescueOptions{RunID: tc.run, Now: now})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := res.Jobs[0]
		if got.Outcome != tc.want || got.RescuedBy != tc.by || !got.RescuedAt.Equal(tc.at) {
			t.Errorf("%s: %s by %q at %v (%s), want %s by %q at %v", tc.name, got.Outcome, got.RescuedBy, got.RescuedAt, got.Reason, tc.want, tc.by, tc.at)
		}
		if tc.want == OutcomeAlreadyRescued && !strings.Contains(got.Reason, "run "+tc.by+" at "+tc.at.Format(time.RFC3339)) {
			t.Errorf("%s: reason %q does not name the run and time", tc.name, got.Reason)
		}
	}
	if n, _ := rdb.LLen(ctx, "queue:default").Result(); n != 0 {
		t.Errorf("queue:default holds %d jobs, want 0 (every push was fetched)", n)
	}
}

// TestRescueDryRun checks every job and writes nothing.
func TestRescueDryRun(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx := context.Background()
	rescueWorld(t, ctx, rdb, "")
	before, _ := rdb.Keys(ctx, "*").Result()
	jobs := []Job{orphan(t, "ip-10-0-1-1:1:111111111111", "dry1", "default"), orphan(t, "ip-10-0-1-1:1:111111111111", "queued1", "default")}
	res, err := NewClient(rdb, "").Rescue(ctx, jobs, RescueOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Jobs[0].Outcome != OutcomeWouldPush || res.Jobs[1].Outcome != OutcomeQueued {
		t.Fatalf("dry run outcomes %+v, want would-push and queued", res.Jobs)
	}
	after, _ := rdb.Keys(ctx, "*").Result()
	if len(after) != len(before) {
		t.Fatalf("dry run wrote keys: %d before, %d after", len(before), len(after))
	}
	if n, _ := rdb.LLen(ctx, "queue:default").Result(); n != 1 {
		t.Fatalf("dry run pushed: queue:default has %d jobs", n)
	}
}

// TestRescueScriptWithoutLPOS runs the script's fallback for servers older than 6.0.6 (a
// chunked LRANGE scan) against the same data LPOS sees, across chunk boundaries.
func TestRescueScriptWithoutLPOS(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx := context.Background()
	var fill []any
	for i := 0; i < 2500; i++ {
		fill = append(fill, handPayload(fmt.Sprintf("fill%04d", i), "default"))
	}
	if err := rdb.RPush(ctx, "queue:default", fill...).Err(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, jid, lpos string
		want            []string
	}{
		{"lpos finds it", "fill1500", "1", []string{"queued", "1500"}},
		{"scan finds it", "fill1500", "0", []string{"queued", "1500"}},
		{"scan finds the last", "fill2499", "0", []string{"queued", "2499"}},
		{"scan finds the first", "fill0000", "0", []string{"queued", "0"}},
		{"scan, absent: pushed", "new1", "0", []string{"pushed", ""}},
		{"lpos, absent: pushed", "new2", "1", []string{"pushed", ""}},
		{"marker wins", "new1", "0", []string{"marked", "m"}},
	}
	for _, tc := range tests {
		got, err := rdb.Eval(ctx, rescueScript, []string{"drainctl:rescued:" + tc.jid, "queue:default", "queues"},
			handPayload(tc.jid, "default"), 60000, "default", "m", tc.lpos, "0").StringSlice()
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: %q %v, want %q", tc.name, got, err, tc.want)
		}
	}
	if n, _ := rdb.LLen(ctx, "queue:default").Result(); n != 2502 {
		t.Fatalf("queue has %d jobs, want 2502", n)
	}
}

func TestVersionAtLeast(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{
		{"7.0.15", true}, {"6.0.6", true}, {"6.0.5", false}, {"6.2.0", true}, {"5.0.14", false},
		{"6.0", false}, {"", true}, {"unstable", true}, {"10.0.0", true},
	}
	for _, tc := range tests {
		if got := versionAtLeast(tc.v, 6, 0, 6); got != tc.want {
			t.Errorf("versionAtLeast(%q, 6.0.6) = %v, want %v", tc.v, got, tc.want)
		}
	}
	if got := infoField("# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n", "redis_version"); got != "7.0.15" {
		t.Errorf("infoField = %q", got)
	}
}

func TestGlobEscape(t *testing.T) {
	if got := globEscape(`a*b?c[d]e\f`); got != `a\*b\?c\[d\]e\\f` {
		t.Fatalf("globEscape = %q", got)
	}
}

// BenchmarkRescueLargeQueue measures the "already queued" check against a 100,000-job queue
// (LPOS on the payload bytes inside the rescue script).
func BenchmarkRescueLargeQueue(b *testing.B) {
	r := testenv.StartRedis(b)
	rdb := r.Client(b)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		var chunk []any
		for j := 0; j < 1000; j++ {
			chunk = append(chunk, handPayload(fmt.Sprintf("big%03d%03d", i, j), "default"))
		}
		if err := rdb.LPush(ctx, "queue:default", chunk...).Err(); err != nil {
			b.Fatal(err)
		}
	}
	c := NewClient(rdb, "")
	job := orphan(b, "ip-10-0-1-1:1:111111111111", "big000000", "default") // at the far end
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := c.Rescue(ctx, []Job{job}, RescueOptions{DryRun: true})
		if err != nil || res.Jobs[0].Outcome != OutcomeQueued {
			b.Fatalf("%v %+v", err, res.Jobs)
		}
	}
}
