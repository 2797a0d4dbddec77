package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/report"
	"github.com/drainctl/drainctl/internal/sidekiq"
	"github.com/urfave/cli/v2"
)

func statusCommand(getenv env) *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show the Sidekiq fleet (processes, in-flight jobs, queues) and, with --cluster/--service, the ECS service",
		UsageText: "drainctl status [--redis-url URL] [selectors] [--cluster C --service S] [--output text|json|markdown]",
		Description: `status only reads. Without selectors it shows every process listed in Redis; a process
whose heartbeat expired (killed) is shown as dead. With --cluster/--service it adds the
service's deployments and running tasks, and places each process in its task. --watch
redraws the view every --interval on a terminal (plain successive views otherwise) until
Ctrl-C, for watching a deploy by hand.

EXAMPLES:
   drainctl status --all
   drainctl status --cluster prod --service worker --watch
   drainctl status --tag worker -o json | jq '.jobs[0]'`,
		Flags: flags(redisFlags(), ecsFlags(), selectionFlags(), outputFlags(), []cli.Flag{
			boolFlag("watch", false, "redraw the view every --interval until Ctrl-C (text output only)"),
			durFlag("interval", 2*time.Second, "with --watch: time between views"),
		}),
		Action: func(c *cli.Context) error { return runStatus(c, getenv) },
	}
}

// statusReport is the status document; the tests decode `status --output json` into it.
type statusReport = report.Status

func runStatus(c *cli.Context, getenv env) error {
	o, u, ro, sel, selGiven, err := fleetFlags(c, getenv)
	if err != nil {
		return err
	}
	refs, err := o.serviceRefs(false)
	if err != nil {
		return err
	}
	watch, err := o.boolean("watch")
	if err != nil {
		return err
	}
	interval, err := o.positive("interval")
	if err != nil {
		return err
	}
	if watch && (u.out != report.Text || u.reportPath != "") {
		return usageErr("--watch shows text on the terminal: leave out --output %s and --report", u.out)
	}
	ctx := c.Context
	cl, err := openRedis(ctx, ro, false)
	if err != nil {
		return err
	}
	defer cl.Close()
	if watch {
		return watchStatus(ctx, o, u, ro, cl, refs, sel, selGiven, interval)
	}
	if u.out == report.JSON && u.reportPath == "" {
		// The measured path (BENCHMARKS.md): streamed, in bounded memory.
		return runStatusStream(ctx, o, u, ro, cl, refs, sel, selGiven)
	}
	st, err := buildStatus(ctx, o, u, ro, cl, refs, sel, selGiven)
	if err != nil {
		return err
	}
	for _, w := range st.Warnings {
		u.warn("%s", w)
	}
	return u.emitDoc(st)
}

// watchStatus redraws the status view every interval until ctx ends (Ctrl-C): on a terminal
// it clears the screen first, elsewhere the views follow one another under a time line.
func watchStatus(ctx context.Context, o opts, u *ui, ro *sidekiq.Options, cl *sidekiq.Client, refs []ecs.ServiceRef,
	sel sidekiq.Selector, selGiven bool, interval time.Duration) error {
	tty := isTerminal(u.stdout)
	for {
		st, err := buildStatus(ctx, o, u, ro, cl, refs, sel, selGiven)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		var b strings.Builder
		if err := report.Write(&b, report.Text, st, report.Options{ShowArgs: u.showArgs, Color: u.color && tty}); err != nil {
			return err
		}
		if tty {
			fmt.Fprint(u.stdout, "\033[H\033[2J")
		} else {
			fmt.Fprintf(u.stdout, "--- %s\n", time.Now().UTC().Format(time.RFC3339))
		}
		fmt.Fprint(u.stdout, b.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// buildStatus reads the fleet (and the services) into the status document.
func buildStatus(ctx context.Context, o opts, u *ui, ro *sidekiq.Options, cl *sidekiq.Client, refs []ecs.ServiceRef,
	sel sidekiq.Selector, selGiven bool) (*report.Status, error) {
	snap, err := snapshot(ctx, cl, ro)
	if err != nil {
		return nil, err
	}
	ps := snap.Processes
	if selGiven {
		if ps, err = selectProcesses(snap, sel); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	st := report.NewStatus(now, ro.Redacted())

	// ECS first, so processes can be placed in tasks.
	tasks, taskSvc, err := statusServices(ctx, o, refs, st)
	if err != nil {
		return nil, err
	}

	queues := map[string]bool{}
	for _, p := range ps {
		sp := statusProcess(p, now)
		if t, ok := drain.MatchTask(p, tasks); ok {
			sp.Task = t.ID
			placeInTask(st, taskSvc, t, p.Identity)
		}
		st.Processes = append(st.Processes, sp)
		for _, q := range p.Queues {
			queues[q] = true
		}
		for _, j := range p.Jobs {
			st.Jobs = append(st.Jobs, statusJob(j, p.Identity, now, u.showArgs))
		}
	}
	sort.Slice(st.Jobs, func(i, j int) bool { return st.Jobs[i].Running > st.Jobs[j].Running })
	st.Queues = statusQueues(ctx, cl, queues, now, st)
	return st, nil
}

// statusServices reads the ECS services of refs into st (none when refs is empty) and
// returns their running tasks, with the index in st.Services of each task's service.
func statusServices(ctx context.Context, o opts, refs []ecs.ServiceRef, st *report.Status) ([]ecs.Task, map[string]int, error) {
	var tasks []ecs.Task
	taskSvc := map[string]int{}
	if len(refs) > 0 {
		ec, err := openECS(ctx, o)
		if err != nil {
			return nil, nil, err
		}
		states, derr := ec.Describe(ctx, refs)
		if derr != nil {
			return nil, nil, ecsErr(derr)
		}
		for _, s := range states {
			// What would refuse or endanger a deploy (CODE_DEPLOY, ...) is only a fact here.
			var warnings []string
			for _, f := range drain.ServiceFindings(s, true) {
				warnings = append(warnings, f.Message)
			}
			ss := report.StatusService{Cluster: s.Ref.Cluster, Service: s.Ref.Service, Status: s.Status, TaskDefinition: s.TaskDefinition,
				Desired: s.Desired, Running: s.Running, Pending: s.Pending, Controller: s.Controller, Warnings: warnings, Tasks: []report.StatusTask{}, Deployments: []report.StatusDeployment{},
				Strategy: report.NewDeployStrategy(s.Strategy)}
			for _, d := range s.Deployments {
				ss.Deployments = append(ss.Deployments, report.StatusDeployment{ID: d.ID, Status: d.Status, RolloutState: d.RolloutState,
					TaskDefinition: d.TaskDefinition, Desired: d.Desired, Running: d.Running, Pending: d.Pending, Failed: d.Failed, CreatedAt: d.CreatedAt})
			}
			ts, err := ec.Tasks(ctx, s.Ref, "RUNNING")
			if err != nil {
				st.Warnings = append(st.Warnings, fmt.Sprintf("list tasks of %s: %v", s.Ref, err))
			}
			for _, t := range ts {
				taskSvc[t.ARN] = len(st.Services)
				tasks = append(tasks, t)
				ss.Tasks = append(ss.Tasks, report.StatusTask{ID: t.ID, ARN: t.ARN, LastStatus: t.LastStatus, Deployment: t.DeploymentID,
					PrivateIPv4: t.PrivateIPv4, Processes: []string{}})
			}
			st.Services = append(st.Services, ss)
		}
	}
	return tasks, taskSvc, nil
}

// placeInTask lists identity among the processes of task t in st.
func placeInTask(st *report.Status, taskSvc map[string]int, t ecs.Task, identity string) {
	svc := &st.Services[taskSvc[t.ARN]]
	for i := range svc.Tasks {
		if svc.Tasks[i].ARN == t.ARN {
			svc.Tasks[i].Processes = append(svc.Tasks[i].Processes, identity)
		}
	}
}

// statusProcess is p as the status document shows it, read at now.
func statusProcess(p sidekiq.Process, now time.Time) report.StatusProcess {
	sp := report.StatusProcess{Identity: p.Identity, Hostname: p.Hostname, Tag: p.Tag, Version: p.Version, Queues: p.Queues,
		Quiet: p.Quiet, Busy: p.Busy, Concurrency: p.Concurrency, LastBeat: p.Beat, Dead: !p.HashExists, Err: p.Err}
	if sp.Queues == nil {
		sp.Queues = []string{}
	}
	if !p.Beat.IsZero() {
		sp.BeatAge = now.Sub(p.Beat).Round(100 * time.Millisecond).Seconds()
	}
	return sp
}

// statusJob is j (on process identity) as the status document shows it, read at now.
func statusJob(j sidekiq.Job, identity string, now time.Time, showArgs bool) report.StatusJob {
	sj := report.StatusJob{Class: j.Class, Queue: j.Queue, JID: j.JID, Process: identity, RunAt: j.RunAt,
		Running: now.Sub(j.RunAt).Round(100 * time.Millisecond).Seconds()}
	if showArgs {
		sj.Args = j.Args
	}
	return sj
}

// statusQueues reads the sizes of the named queues, sorted; a failure is a warning in st.
func statusQueues(ctx context.Context, cl *sidekiq.Client, queues map[string]bool, now time.Time, st *report.Status) []report.StatusQueue {
	out := []report.StatusQueue{}
	if len(queues) == 0 {
		return out
	}
	names := make([]string, 0, len(queues))
	for q := range queues {
		names = append(names, q)
	}
	sort.Strings(names)
	qs, err := cl.QueueStats(ctx, names, now)
	if err != nil {
		st.Warnings = append(st.Warnings, fmt.Sprintf("read queue sizes: %v", err))
	}
	for _, q := range qs {
		out = append(out, report.StatusQueue{Name: q.Name, Size: q.Size, Latency: q.Latency.Round(100 * time.Millisecond).Seconds()})
	}
	return out
}

// emitDoc writes doc to stdout in --output's format and to --report in its own.
func (u *ui) emitDoc(doc report.Doc) error {
	ro := report.Options{Command: doc.Kind(), Version: versionString(), ShowArgs: u.showArgs}
	so := ro
	so.Color = u.color && isTerminal(u.stdout)
	if err := report.Write(u.stdout, u.out, doc, so); err != nil {
		return fmt.Errorf("write the result: %w", err)
	}
	if u.reportPath == "" {
		return nil
	}
	return report.WriteFile(u.reportPath, doc, ro)
}

// statusChunk is one chunk of processes of a streamed status, encoded by a Scan worker.
type statusChunk struct {
	procs  []byte // AppendStatusProcess elements
	n      int    // processes in procs
	jobs   []encodedJob
	jobBuf []byte
	queues []string
	placed []placedProcess
}

// encodedJob is one job's AppendStatusJob element and its running time, the sort key.
type encodedJob struct {
	running    float64
	chunk      int32 // index in the kept chunk buffers
	start, end int32 // of the job's AppendStatusJobCompact in its chunk's buffer
}

type placedProcess struct {
	identity string
	task     ecs.Task
}

// runStatusStream is `status --output json` (without --report): the fleet is read in chunks
// (sidekiq.Scan), each chunk's processes and jobs are encoded on the worker that decoded them,
// and the processes are written as they come. Only the encoded jobs are kept until the end,
// where they are sorted (longest running first) and written. The output is what emitDoc
// writes for the same fleet; with a selector, the header is written with the first selected
// process, so an empty selection is still an error with nothing on stdout.
func runStatusStream(ctx context.Context, o opts, u *ui, ro *sidekiq.Options, cl *sidekiq.Client, refs []ecs.ServiceRef,
	sel sidekiq.Selector, selGiven bool) error {
	if selGiven {
		// A selector that cannot select anything (none, or --all with criteria) fails first.
		var empty *sidekiq.EmptySelectionError
		if _, err := (&sidekiq.Snapshot{}).Select(sel); err != nil && !errors.As(err, &empty) {
			_, err = selectProcesses(&sidekiq.Snapshot{}, sel)
			return err
		}
	}
	redisFail := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return redisErr(ro, err)
	}
	ictx, cancel := context.WithTimeout(ctx, ro.ConnectTimeout())
	ids, super, err := cl.FleetIDs(ictx)
	cancel()
	if err != nil {
		return redisFail(err)
	}
	now := time.Now()
	st := report.NewStatus(now, ro.Redacted())
	tasks, taskSvc, err := statusServices(ctx, o, refs, st)
	if err != nil {
		return err
	}

	var (
		stream *report.StatusStream
		jobs   []encodedJob
		kept   [][]byte
		queues = map[string]bool{}
		total  int
	)
	start := func() error {
		if stream == nil {
			stream, err = report.NewStatusStream(u.stdout, now, ro.Redacted())
		}
		return err
	}
	work := func(ps []sidekiq.Process) *statusChunk {
		if selGiven {
			s, _ := (&sidekiq.Snapshot{Processes: ps}).Select(sel) // empty in this chunk: nothing
			ps = s.Processes
		}
		ch := &statusChunk{n: len(ps)}
		seen := map[string]bool{}
		var jb []byte
		for _, p := range ps {
			sp := statusProcess(p, now)
			if t, ok := drain.MatchTask(p, tasks); ok {
				sp.Task = t.ID
				ch.placed = append(ch.placed, placedProcess{p.Identity, t})
			}
			ch.procs = report.AppendStatusProcess(ch.procs, &sp)
			for _, q := range p.Queues {
				if !seen[q] {
					seen[q] = true
					ch.queues = append(ch.queues, q)
				}
			}
			for _, j := range p.Jobs {
				sj := statusJob(j, p.Identity, now, u.showArgs)
				jb = report.AppendStatusJobCompact(jb, &sj)
				ch.jobs = append(ch.jobs, encodedJob{running: sj.Running, end: int32(len(jb))})
			}
		}
		// The jobs are kept to the end, compact, in one exact-size buffer per chunk.
		ch.jobBuf = make([]byte, len(jb))
		copy(ch.jobBuf, jb)
		return ch
	}
	emit := func(ch *statusChunk) error {
		if ch.n == 0 {
			return nil
		}
		if err := start(); err != nil {
			return writeFailure{err}
		}
		total += ch.n
		for _, q := range ch.queues {
			queues[q] = true
		}
		for _, pl := range ch.placed {
			placeInTask(st, taskSvc, pl.task, pl.identity)
		}
		var start int32
		for _, j := range ch.jobs {
			j.chunk, j.start = int32(len(kept)), start
			start = j.end
			jobs = append(jobs, j)
		}
		kept = append(kept, ch.jobBuf)
		if err := stream.WriteProcesses(ch.procs, ch.n); err != nil {
			return writeFailure{err}
		}
		return nil
	}
	// No deadline on the whole scan: it waits for stdout (a slow reader of a pipe), and each
	// pipeline has the connection's read and write timeouts (--redis-timeout).
	if err := sidekiq.Scan(ctx, cl, ids, super, sidekiq.ScanOptions{}, work, emit); err != nil {
		var wf writeFailure
		if errors.As(err, &wf) {
			return fmt.Errorf("write the result: %w", wf.err)
		}
		return redisFail(err)
	}
	if total == 0 && selGiven {
		// Nothing matched: the same error as the unstreamed path, from a fresh read.
		pctx, cancel := context.WithTimeout(ctx, ro.ConnectTimeout())
		snap, err := cl.Processes(pctx)
		cancel()
		if err != nil {
			return redisFail(err)
		}
		if _, err := selectProcesses(snap, sel); err != nil {
			return err
		}
	}
	if err := start(); err != nil {
		return fmt.Errorf("write the result: %w", err)
	}
	slices.SortStableFunc(jobs, func(a, b encodedJob) int { return cmp.Compare(b.running, a.running) })
	var buf []byte
	for i := 0; i < len(jobs); {
		// Whole runs of elements at a time; WriteJobs only concatenates.
		k := i
		buf = buf[:0]
		for ; k < len(jobs) && len(buf) < 32<<10; k++ {
			j := jobs[k]
			buf = report.ExpandStatusJob(buf, kept[j.chunk][j.start:j.end])
		}
		if err := stream.WriteJobs(buf, k-i); err != nil {
			return fmt.Errorf("write the result: %w", err)
		}
		i = k
	}
	jobs, kept = nil, nil
	st.Queues = statusQueues(ctx, cl, queues, now, st)
	for _, w := range st.Warnings {
		u.warn("%s", w)
	}
	if err := stream.Close(st.Queues, st.Services, st.Warnings); err != nil {
		return fmt.Errorf("write the result: %w", err)
	}
	return nil
}

// writeFailure is a failure to write the streamed document, not to read the fleet.
type writeFailure struct{ err error }

func (w writeFailure) Error() string { return w.err.Error() }
