package status

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/report"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// chunk is one chunk of processes of a streamed status, encoded by a sidekiq.Scan worker.
type chunk struct {
	procs  []byte // report.AppendStatusProcess elements
	n      int    // processes in procs
	jobs   []encodedJob
	jobBuf []byte
	queues []string
	placed []placedProcess
}

// encodedJob is one job's report.AppendStatusJobCompact element and its running time, the
// sort key.
type encodedJob struct {
	running    float64
	chunk      int32 // index in the kept chunk buffers
	start, end int32 // of the job's element in its chunk's buffer
}

// placedProcess is a process matched to its ECS task.
type placedProcess struct {
	identity string
	task     ecs.Task
}

// writeFailure is a failure to write the streamed document, not to read the fleet.
type writeFailure struct{ err error }

func (w writeFailure) Error() string { return w.err.Error() }

// Stream writes the status document as JSON to w while it reads the fleet: the fleet is read
// in chunks (sidekiq.Scan), each chunk's processes and jobs are encoded on the worker that
// decoded them, and the processes are written as they come. Only the encoded jobs are kept
// until the end, where they are sorted (longest running first) and written. The output is
// what report.Write writes in JSON for the document Read returns for the same fleet. With a
// Selector the header is written with the first selected process, so an empty selection is
// still an error (the one Read returns) with nothing written. warn, when not nil, gets each
// warning of the document before its end is written.
//
// A failure to write w is an error "write the result: ..."; a failure to read Redis is a
// FleetError.
func (r *Reader) Stream(ctx context.Context, w io.Writer, warn func(string)) error {
	if r.Selector != nil {
		// A selector that cannot select anything (none, or --all with criteria) fails first.
		var empty *sidekiq.EmptySelectionError
		if _, err := (&sidekiq.Snapshot{}).Select(*r.Selector); err != nil && !errors.As(err, &empty) {
			return err
		}
	}
	ictx, cancel := r.readContext(ctx)
	ids, super, err := r.Fleet.FleetIDs(ictx)
	cancel()
	if err != nil {
		return fleetErr(ctx, err)
	}
	now := r.now()
	st := report.NewStatus(now, r.Redis)
	tasks, err := r.readServices(ctx, st)
	if err != nil {
		return err
	}

	match := drain.NewTaskMatcher(tasks.list) // shared by the workers: it only reads
	var (
		stream    *report.StatusStream
		chunkJobs [][]encodedJob
		njobs     int
		kept      [][]byte
		queues    = map[string]bool{}
		total     int
	)
	start := func() error {
		if stream == nil {
			stream, err = report.NewStatusStream(w, now, r.Redis)
		}
		return err
	}
	work := func(ps []sidekiq.Process) *chunk {
		if r.Selector != nil {
			s, _ := (&sidekiq.Snapshot{Processes: ps}).Select(*r.Selector) // empty in this chunk: nothing
			ps = s.Processes
		}
		// Room up front for what a process and a job of a typical fleet encode to (~450 and
		// ~110 bytes): growing these buffers from empty was a tenth of the command's CPU.
		njobs := 0
		for i := range ps {
			njobs += len(ps[i].Jobs)
		}
		ch := &chunk{n: len(ps), procs: make([]byte, 0, 512*len(ps)), jobs: make([]encodedJob, 0, njobs)}
		seen := map[string]bool{}
		jb := make([]byte, 0, 128*njobs)
		for _, p := range ps {
			sp := report.NewStatusProcess(p, now)
			if t, ok := match(p); ok {
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
				sj := report.NewStatusJob(j, p.Identity, now, r.ShowArgs)
				jb = report.AppendStatusJobCompact(jb, &sj)
				ch.jobs = append(ch.jobs, encodedJob{running: sj.Running, end: int32(len(jb))})
			}
		}
		// The jobs are kept to the end, compact, in one exact-size buffer per chunk.
		ch.jobBuf = make([]byte, len(jb))
		copy(ch.jobBuf, jb)
		return ch
	}
	emit := func(ch *chunk) error {
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
			st.PlaceProcess(tasks.service[pl.task.ARN], pl.task.ARN, pl.identity)
		}
		var start int32
		for i := range ch.jobs {
			j := &ch.jobs[i]
			j.chunk, j.start = int32(len(kept)), start
			start = j.end
		}
		chunkJobs = append(chunkJobs, ch.jobs)
		njobs += len(ch.jobs)
		kept = append(kept, ch.jobBuf)
		if err := stream.WriteProcesses(ch.procs, ch.n); err != nil {
			return writeFailure{err}
		}
		return nil
	}
	// No deadline on the whole scan: it waits for w (a slow reader of a pipe), and each
	// pipeline has the connection's read and write timeouts.
	if err := sidekiq.Scan(ctx, r.Fleet, ids, super, sidekiq.ScanOptions{}, work, emit); err != nil {
		var wf writeFailure
		if errors.As(err, &wf) {
			return fmt.Errorf("write the result: %w", wf.err)
		}
		return fleetErr(ctx, err)
	}
	if total == 0 && r.Selector != nil {
		// Nothing matched: the same error as Read's, from a fresh read.
		pctx, cancel := r.readContext(ctx)
		snap, err := r.Fleet.Processes(pctx)
		cancel()
		if err != nil {
			return fleetErr(ctx, err)
		}
		if _, err := snap.Select(*r.Selector); err != nil {
			return err
		}
	}
	if err := start(); err != nil {
		return fmt.Errorf("write the result: %w", err)
	}
	// One exact-size slice of every chunk's jobs: appending 50,000 one at a time kept
	// copying a growing slice.
	jobs := make([]encodedJob, 0, njobs)
	for _, cj := range chunkJobs {
		jobs = append(jobs, cj...)
	}
	chunkJobs = nil
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
	st.Queues = r.readQueues(ctx, queues, now, st)
	if warn != nil {
		for _, wn := range st.Warnings {
			warn(wn)
		}
	}
	if err := stream.Close(st.Queues, st.Services, st.Warnings); err != nil {
		return fmt.Errorf("write the result: %w", err)
	}
	return nil
}
