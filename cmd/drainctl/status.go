package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/urfave/cli/v2"
)

// statusSchema names the JSON document `drainctl status --output json` prints.
const statusSchema = "drainctl.status/v1"

func statusCommand(getenv env) *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show the Sidekiq fleet (processes, in-flight jobs, queues) and, with --cluster/--service, the ECS service",
		UsageText: "drainctl status [--redis-url URL] [selectors] [--cluster C --service S] [--output text|json|markdown]",
		Description: `status only reads. Without selectors it shows every process listed in Redis; a process
whose heartbeat expired (killed) is shown as dead. With --cluster/--service it adds the
service's deployments and running tasks, and places each process in its task.`,
		Flags:  flags(redisFlags(), ecsFlags(), selectionFlags(), outputFlags()),
		Action: func(c *cli.Context) error { return runStatus(c, getenv) },
	}
}

type statusReport struct {
	Schema    string          `json:"schema"`
	At        time.Time       `json:"at"`
	Redis     string          `json:"redis_url"`
	Processes []statusProcess `json:"processes"`
	Jobs      []statusJob     `json:"jobs"`
	Queues    []statusQueue   `json:"queues"`
	Services  []statusService `json:"services,omitempty"`
	Warnings  []string        `json:"warnings,omitempty"`
}

type statusProcess struct {
	Identity    string    `json:"identity"`
	Hostname    string    `json:"hostname"`
	Task        string    `json:"task,omitempty"`
	Tag         string    `json:"tag,omitempty"`
	Version     string    `json:"version,omitempty"`
	Queues      []string  `json:"queues"`
	Quiet       bool      `json:"quiet"`
	Busy        int       `json:"busy"`
	Concurrency int       `json:"concurrency"`
	LastBeat    time.Time `json:"last_beat,omitzero"`
	// BeatAge is the age of the last heartbeat in seconds at the time of the read.
	BeatAge float64 `json:"beat_age_seconds"`
	// Dead is true when the identity is listed but its heartbeat hash expired.
	Dead bool   `json:"dead"`
	Err  string `json:"error,omitempty"`
}

type statusJob struct {
	Class   string          `json:"class"`
	Queue   string          `json:"queue"`
	JID     string          `json:"jid"`
	Process string          `json:"process"`
	RunAt   time.Time       `json:"run_at"`
	Running float64         `json:"running_seconds"`
	Args    json.RawMessage `json:"args,omitempty"`
}

type statusQueue struct {
	Name    string  `json:"name"`
	Size    int64   `json:"size"`
	Latency float64 `json:"latency_seconds"`
}

type statusService struct {
	Cluster        string             `json:"cluster"`
	Service        string             `json:"service"`
	Status         string             `json:"status"`
	TaskDefinition string             `json:"task_definition"`
	Desired        int32              `json:"desired"`
	Running        int32              `json:"running"`
	Pending        int32              `json:"pending"`
	Controller     string             `json:"deployment_controller"`
	Deployments    []statusDeployment `json:"deployments"`
	Tasks          []statusTask       `json:"tasks"`
	Warnings       []string           `json:"warnings,omitempty"`
}

type statusDeployment struct {
	ID             string    `json:"id"`
	Status         string    `json:"status"`
	RolloutState   string    `json:"rollout_state,omitempty"`
	TaskDefinition string    `json:"task_definition"`
	Desired        int32     `json:"desired"`
	Running        int32     `json:"running"`
	Pending        int32     `json:"pending"`
	Failed         int32     `json:"failed_tasks"`
	CreatedAt      time.Time `json:"created_at,omitzero"`
}

type statusTask struct {
	ID          string   `json:"id"`
	ARN         string   `json:"arn"`
	LastStatus  string   `json:"last_status"`
	Deployment  string   `json:"deployment_id,omitempty"`
	PrivateIPv4 string   `json:"private_ipv4,omitempty"`
	Processes   []string `json:"processes"`
}

func runStatus(c *cli.Context, getenv env) error {
	o, u, ro, sel, selGiven, err := fleetFlags(c, getenv)
	if err != nil {
		return err
	}
	refs, err := o.serviceRefs(false)
	if err != nil {
		return err
	}
	ctx := c.Context
	cl, err := openRedis(ctx, ro, false)
	if err != nil {
		return err
	}
	defer cl.Close()
	snap, err := snapshot(ctx, cl, ro)
	if err != nil {
		return err
	}
	ps := snap.Processes
	if selGiven {
		if ps, err = selectProcesses(snap, sel); err != nil {
			return err
		}
	}
	now := time.Now()
	st := statusReport{Schema: statusSchema, At: now, Redis: ro.Redacted(), Processes: []statusProcess{}, Jobs: []statusJob{}, Queues: []statusQueue{}}

	// ECS first, so processes can be placed in tasks.
	var tasks []drain.Task
	taskSvc := map[string]int{}
	if len(refs) > 0 {
		ec, err := openECS(ctx, o)
		if err != nil {
			return err
		}
		states, perr := ec.Preflight(ctx, refs, ecs.PreflightOptions{AllowInProgress: true})
		if perr != nil {
			if errors.Is(perr, ecs.ErrNotFound) || errors.Is(perr, ecs.ErrAccessDenied) || len(states) == 0 {
				return ecsErr(perr)
			}
			// Refusals that matter to deploy (CODE_DEPLOY, ...) are only facts here.
			st.Warnings = append(st.Warnings, oneLine(perr.Error()))
		}
		for _, s := range states {
			ss := statusService{Cluster: s.Ref.Cluster, Service: s.Ref.Service, Status: s.Status, TaskDefinition: s.TaskDefinition,
				Desired: s.Desired, Running: s.Running, Pending: s.Pending, Controller: s.Controller, Warnings: s.Warnings, Tasks: []statusTask{}, Deployments: []statusDeployment{}}
			for _, d := range s.Deployments {
				ss.Deployments = append(ss.Deployments, statusDeployment{ID: d.ID, Status: d.Status, RolloutState: d.RolloutState,
					TaskDefinition: d.TaskDefinition, Desired: d.Desired, Running: d.Running, Pending: d.Pending, Failed: d.Failed, CreatedAt: d.CreatedAt})
			}
			ts, err := ec.Tasks(ctx, s.Ref, "RUNNING")
			if err != nil {
				st.Warnings = append(st.Warnings, fmt.Sprintf("list tasks of %s: %v", s.Ref, err))
			}
			for _, t := range ts {
				dt := task(t)
				taskSvc[dt.ARN] = len(st.Services)
				tasks = append(tasks, dt)
				ss.Tasks = append(ss.Tasks, statusTask{ID: t.ID, ARN: t.ARN, LastStatus: t.LastStatus, Deployment: t.DeploymentID,
					PrivateIPv4: t.PrivateIPv4, Processes: []string{}})
			}
			st.Services = append(st.Services, ss)
		}
	}

	queues := map[string]bool{}
	for _, p := range ps {
		sp := statusProcess{Identity: p.Identity, Hostname: p.Hostname, Tag: p.Tag, Version: p.Version, Queues: p.Queues,
			Quiet: p.Quiet, Busy: p.Busy, Concurrency: p.Concurrency, LastBeat: p.Beat, Dead: !p.HashExists, Err: p.Err}
		if sp.Queues == nil {
			sp.Queues = []string{}
		}
		if !p.Beat.IsZero() {
			sp.BeatAge = now.Sub(p.Beat).Round(100 * time.Millisecond).Seconds()
		}
		if t, ok := matchTask(p, tasks); ok {
			sp.Task = t.ID
			svc := &st.Services[taskSvc[t.ARN]]
			for i := range svc.Tasks {
				if svc.Tasks[i].ARN == t.ARN {
					svc.Tasks[i].Processes = append(svc.Tasks[i].Processes, p.Identity)
				}
			}
		}
		st.Processes = append(st.Processes, sp)
		for _, q := range p.Queues {
			queues[q] = true
		}
		for _, j := range p.Jobs {
			sj := statusJob{Class: j.Class, Queue: j.Queue, JID: j.JID, Process: p.Identity, RunAt: j.RunAt,
				Running: now.Sub(j.RunAt).Round(100 * time.Millisecond).Seconds()}
			if u.showArgs {
				sj.Args = j.Args
			}
			st.Jobs = append(st.Jobs, sj)
		}
	}
	sort.Slice(st.Jobs, func(i, j int) bool { return st.Jobs[i].Running > st.Jobs[j].Running })
	if len(queues) > 0 {
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
			st.Queues = append(st.Queues, statusQueue{Name: q.Name, Size: q.Size, Latency: q.Latency.Round(100 * time.Millisecond).Seconds()})
		}
	}
	for _, w := range st.Warnings {
		u.warn("%s", w)
	}
	return u.emit(func(w io.Writer, f format) error { return writeStatus(w, f, st) })
}

func writeStatus(w io.Writer, f format, st statusReport) error {
	switch f {
	case formatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	case formatMarkdown:
		return writeStatusMarkdown(w, st)
	}
	return writeStatusText(w, st)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func secsText(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

func processState(p statusProcess) string {
	switch {
	case p.Dead:
		return "dead"
	case p.Quiet:
		return "quiet"
	}
	return "running"
}

func writeStatusText(w io.Writer, st statusReport) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Sidekiq fleet at %s (redis %s): %d process(es), %d job(s) in flight\n", st.At.Format(time.RFC3339), st.Redis, len(st.Processes), len(st.Jobs))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	if len(st.Processes) > 0 {
		fmt.Fprintln(&b, "\nProcesses:")
		fmt.Fprintln(tw, "  IDENTITY\tHOST\tTASK\tTAG\tVERSION\tQUEUES\tSTATE\tBUSY\tLAST BEAT")
		for _, p := range st.Processes {
			beat := "-"
			if !p.LastBeat.IsZero() {
				beat = secsText(p.BeatAge) + " ago"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", p.Identity, p.Hostname, dash(p.Task), dash(p.Tag), dash(p.Version),
				strings.Join(p.Queues, ","), processState(p), p.Busy, p.Concurrency, beat)
		}
		tw.Flush()
	}
	if len(st.Jobs) > 0 {
		fmt.Fprintln(&b, "\nIn-flight jobs:")
		args := hasArgs(st.Jobs)
		head := "  CLASS\tQUEUE\tJID\tPROCESS\tRUNNING FOR"
		if args {
			head += "\tARGS"
		}
		fmt.Fprintln(tw, head)
		for _, j := range st.Jobs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s", j.Class, j.Queue, j.JID, j.Process, secsText(j.Running))
			if args {
				fmt.Fprintf(tw, "\t%s", dash(string(j.Args)))
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
	}
	if len(st.Queues) > 0 {
		fmt.Fprintln(&b, "\nQueues:")
		fmt.Fprintln(tw, "  QUEUE\tSIZE\tLATENCY")
		for _, q := range st.Queues {
			fmt.Fprintf(tw, "  %s\t%d\t%s\n", q.Name, q.Size, secsText(q.Latency))
		}
		tw.Flush()
	}
	for _, s := range st.Services {
		fmt.Fprintf(&b, "\nECS service %s/%s: %s, %s, desired %d, running %d, pending %d (%s)\n", shortARN(s.Cluster), shortARN(s.Service),
			s.Status, shortARN(s.TaskDefinition), s.Desired, s.Running, s.Pending, dash(s.Controller))
		fmt.Fprintln(tw, "  DEPLOYMENT\tSTATUS\tROLLOUT\tTASK DEFINITION\tRUNNING/DESIRED\tCREATED")
		for _, d := range s.Deployments {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d/%d\t%s\n", d.ID, d.Status, dash(d.RolloutState), shortARN(d.TaskDefinition), d.Running, d.Desired, fmtTime(d.CreatedAt))
		}
		tw.Flush()
		if len(s.Tasks) > 0 {
			fmt.Fprintln(tw, "  TASK\tSTATUS\tIP\tPROCESSES")
			for _, t := range s.Tasks {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", t.ID, t.LastStatus, dash(t.PrivateIPv4), dash(strings.Join(t.Processes, ", ")))
			}
			tw.Flush()
		}
		for _, wn := range s.Warnings {
			fmt.Fprintf(&b, "  warning: %s\n", wn)
		}
	}
	if len(st.Warnings) > 0 {
		fmt.Fprintln(&b, "\nWarnings:")
		for _, wn := range st.Warnings {
			fmt.Fprintf(&b, "  - %s\n", wn)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// hasArgs reports whether any job carries arguments (--show-args).
func hasArgs(jobs []statusJob) bool {
	for _, j := range jobs {
		if len(j.Args) > 0 {
			return true
		}
	}
	return false
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// shortARN returns the last segment of an ARN, or the value itself.
func shortARN(s string) string {
	if strings.HasPrefix(s, "arn:") {
		if i := strings.LastIndexByte(s, '/'); i >= 0 {
			return s[i+1:]
		}
	}
	return s
}

// mdCell escapes a Markdown table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(dash(s))
}

func writeStatusMarkdown(w io.Writer, st statusReport) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "### drainctl status\n\n%d process(es), %d job(s) in flight — redis `%s`, %s\n", len(st.Processes), len(st.Jobs), st.Redis, st.At.Format(time.RFC3339))
	if len(st.Processes) > 0 {
		fmt.Fprintln(&b, "\n| Identity | Host | Task | Tag | Version | Queues | State | Busy | Last beat |\n|---|---|---|---|---|---|---|---|---|")
		for _, p := range st.Processes {
			beat := "-"
			if !p.LastBeat.IsZero() {
				beat = secsText(p.BeatAge) + " ago"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s | %s | %d/%d | %s |\n", p.Identity, mdCell(p.Hostname), mdCell(p.Task), mdCell(p.Tag),
				mdCell(p.Version), mdCell(strings.Join(p.Queues, ", ")), processState(p), p.Busy, p.Concurrency, beat)
		}
	}
	if len(st.Jobs) > 0 {
		args := hasArgs(st.Jobs)
		if args {
			fmt.Fprintln(&b, "\n| Class | Queue | JID | Process | Running for | Args |\n|---|---|---|---|---|---|")
		} else {
			fmt.Fprintln(&b, "\n| Class | Queue | JID | Process | Running for |\n|---|---|---|---|---|")
		}
		for _, j := range st.Jobs {
			fmt.Fprintf(&b, "| %s | %s | `%s` | `%s` | %s |", mdCell(j.Class), mdCell(j.Queue), j.JID, j.Process, secsText(j.Running))
			if args {
				fmt.Fprintf(&b, " %s |", mdCell(string(j.Args)))
			}
			fmt.Fprintln(&b)
		}
	}
	if len(st.Queues) > 0 {
		fmt.Fprintln(&b, "\n| Queue | Size | Latency |\n|---|---|---|")
		for _, q := range st.Queues {
			fmt.Fprintf(&b, "| %s | %d | %s |\n", mdCell(q.Name), q.Size, secsText(q.Latency))
		}
	}
	for _, s := range st.Services {
		fmt.Fprintf(&b, "\n#### ECS service `%s/%s`\n\n%s, `%s`, desired %d, running %d, pending %d, controller %s\n", shortARN(s.Cluster), shortARN(s.Service),
			s.Status, shortARN(s.TaskDefinition), s.Desired, s.Running, s.Pending, dash(s.Controller))
		fmt.Fprintln(&b, "\n| Deployment | Status | Rollout | Task definition | Running/desired |\n|---|---|---|---|---|")
		for _, d := range s.Deployments {
			fmt.Fprintf(&b, "| `%s` | %s | %s | `%s` | %d/%d |\n", d.ID, d.Status, mdCell(d.RolloutState), shortARN(d.TaskDefinition), d.Running, d.Desired)
		}
		if len(s.Tasks) > 0 {
			fmt.Fprintln(&b, "\n| Task | Status | IP | Processes |\n|---|---|---|---|")
			for _, t := range s.Tasks {
				fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", t.ID, t.LastStatus, mdCell(t.PrivateIPv4), mdCell(strings.Join(t.Processes, ", ")))
			}
		}
	}
	if len(st.Warnings) > 0 {
		fmt.Fprintln(&b, "\n**Warnings**")
		for _, wn := range st.Warnings {
			fmt.Fprintf(&b, "- %s\n", wn)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}
