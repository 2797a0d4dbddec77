// Package status reads the Sidekiq fleet (processes, in-flight jobs, queues) and, when asked,
// the ECS services it runs in, into the status document (report.Status) of `drainctl status`.
// It only reads: nothing here writes to Redis or ECS.
//
// Reader.Read builds the whole document in memory (text, Markdown, --report, --watch);
// Reader.Stream writes the JSON document as the fleet is read, in bounded memory, for large
// fleets (BENCHMARKS.md measures it). Both place each process in its ECS task the way the
// deploy does (drain.NewTaskMatcher) and produce the same document for the same fleet.
package status

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/report"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// Services is what status reads of ECS; *ecs.Client satisfies it.
type Services interface {
	// Describe reads the services; an unknown cluster or service is ecs.ErrNotFound.
	Describe(ctx context.Context, refs []ecs.ServiceRef) ([]ecs.ServiceState, error)
	// Tasks lists a service's tasks whose desired status is desired.
	Tasks(ctx context.Context, ref ecs.ServiceRef, desired string) ([]ecs.Task, error)
}

// Reader reads one status document.
type Reader struct {
	// Fleet is the fleet's Redis.
	Fleet *sidekiq.Client
	// Redis is the fleet's Redis URL as the document shows it (redacted).
	Redis string
	// ReadTimeout bounds the first read of the fleet (the process list), so an unreachable
	// server fails quickly. Zero means no bound beyond the context's.
	ReadTimeout time.Duration
	// Selector, when set, keeps only the processes it selects; nil means every listed process.
	Selector *sidekiq.Selector
	// ECS and Services: the services to show, and where to read them. No services means the
	// fleet alone (ECS may then be nil).
	ECS      Services
	Services []ecs.ServiceRef
	// ShowArgs keeps the jobs' arguments in the document (hidden by default: personal data).
	ShowArgs bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// FleetError is a failure to read the fleet from Redis (unreachable, wrong password), as
// opposed to a bad selection or a failure of ECS or of the output.
type FleetError struct{ Err error }

// Error is the Redis failure's message.
func (e *FleetError) Error() string { return e.Err.Error() }

// Unwrap returns the Redis failure.
func (e *FleetError) Unwrap() error { return e.Err }

// Read reads the fleet (and the services) into a status document. Problems that leave the
// document usable (a service's tasks or the queue sizes could not be read) are in its
// Warnings. A selector that selects nothing is its error from sidekiq.Snapshot.Select.
func (r *Reader) Read(ctx context.Context) (*report.Status, error) {
	sctx, cancel := r.readContext(ctx)
	snap, err := r.Fleet.Snapshot(sctx)
	cancel()
	if err != nil {
		return nil, fleetErr(ctx, err)
	}
	ps := snap.Processes
	if r.Selector != nil {
		s, err := snap.Select(*r.Selector)
		if err != nil {
			return nil, err
		}
		ps = s.Processes
	}
	now := r.now()
	st := report.NewStatus(now, r.Redis)

	// ECS first, so processes can be placed in tasks.
	tasks, err := r.readServices(ctx, st)
	if err != nil {
		return nil, err
	}
	queues := map[string]bool{}
	match := drain.NewTaskMatcher(tasks.list)
	for _, p := range ps {
		sp := report.NewStatusProcess(p, now)
		if t, ok := match(p); ok {
			sp.Task = t.ID
			st.PlaceProcess(tasks.service[t.ARN], t.ARN, p.Identity)
		}
		st.Processes = append(st.Processes, sp)
		for _, q := range p.Queues {
			queues[q] = true
		}
		for _, j := range p.Jobs {
			st.Jobs = append(st.Jobs, report.NewStatusJob(j, p.Identity, now, r.ShowArgs))
		}
	}
	sort.Slice(st.Jobs, func(i, j int) bool { return st.Jobs[i].Running > st.Jobs[j].Running })
	st.Queues = r.readQueues(ctx, queues, now, st)
	return st, nil
}

func (r *Reader) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// readContext bounds a first read of the fleet by ReadTimeout.
func (r *Reader) readContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.ReadTimeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, r.ReadTimeout)
}

// fleetErr is a failed read of the fleet: the interruption when ctx ended, else a FleetError.
func fleetErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &FleetError{Err: err}
}

// runningTasks are the running tasks of the services read, with the index in the
// document's Services of each task's service (by ARN).
type runningTasks struct {
	list    []ecs.Task
	service map[string]int
}

// readServices reads the services into st (none when Services is empty) and returns their
// running tasks. A service that cannot be described is the error (ecs.ErrNotFound, ...); a
// task list that cannot be read is a warning.
func (r *Reader) readServices(ctx context.Context, st *report.Status) (runningTasks, error) {
	tasks := runningTasks{service: map[string]int{}}
	if len(r.Services) == 0 {
		return tasks, nil
	}
	states, err := r.ECS.Describe(ctx, r.Services)
	if err != nil {
		return tasks, err
	}
	for _, s := range states {
		ss := report.NewStatusService(s)
		ts, err := r.ECS.Tasks(ctx, s.Ref, "RUNNING")
		if err != nil {
			st.Warnings = append(st.Warnings, fmt.Sprintf("list tasks of %s: %v", s.Ref, err))
		}
		for _, t := range ts {
			tasks.service[t.ARN] = len(st.Services)
			tasks.list = append(tasks.list, t)
			ss.AddTask(t)
		}
		st.Services = append(st.Services, ss)
	}
	return tasks, nil
}

// readQueues reads the sizes of the named queues, sorted by name; a failure is a warning
// in st.
func (r *Reader) readQueues(ctx context.Context, queues map[string]bool, now time.Time, st *report.Status) []report.StatusQueue {
	if len(queues) == 0 {
		return []report.StatusQueue{}
	}
	names := make([]string, 0, len(queues))
	for q := range queues {
		names = append(names, q)
	}
	sort.Strings(names)
	qs, err := r.Fleet.QueueStats(ctx, names, now)
	if err != nil {
		st.Warnings = append(st.Warnings, fmt.Sprintf("read queue sizes: %v", err))
	}
	return report.NewStatusQueues(qs)
}
