package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Status is the document of `drainctl status`: the Sidekiq fleet (processes, in-flight
// jobs, queues) and, when asked, the ECS services it runs in.
type Status struct {
	Schema string `json:"schema"`
	// DocKind is "status".
	DocKind   string          `json:"kind"`
	At        time.Time       `json:"at"`
	Redis     string          `json:"redis_url"`
	Processes []StatusProcess `json:"processes"`
	Jobs      []StatusJob     `json:"jobs"`
	Queues    []StatusQueue   `json:"queues"`
	Services  []StatusService `json:"services,omitempty"`
	Warnings  []string        `json:"warnings,omitempty"`
}

// StatusProcess is one Sidekiq process listed in Redis.
type StatusProcess struct {
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

// StatusJob is one job in flight on a process.
type StatusJob struct {
	Class   string          `json:"class"`
	Queue   string          `json:"queue"`
	JID     string          `json:"jid"`
	Process string          `json:"process"`
	RunAt   time.Time       `json:"run_at"`
	Running float64         `json:"running_seconds"`
	Args    json.RawMessage `json:"args,omitempty"`
}

// StatusQueue is the size and latency of one queue the processes listen to.
type StatusQueue struct {
	Name    string  `json:"name"`
	Size    int64   `json:"size"`
	Latency float64 `json:"latency_seconds"`
}

// StatusService is one ECS service, its deployments and its running tasks.
type StatusService struct {
	Cluster        string `json:"cluster"`
	Service        string `json:"service"`
	Status         string `json:"status"`
	TaskDefinition string `json:"task_definition"`
	Desired        int32  `json:"desired"`
	Running        int32  `json:"running"`
	Pending        int32  `json:"pending"`
	Controller     string `json:"deployment_controller"`
	// Strategy is how the service deploys: ROLLING, BLUE_GREEN, LINEAR or CANARY, with its bake
	// time, lifecycle hooks and early success criteria.
	Strategy    DeployStrategy     `json:"strategy"`
	Deployments []StatusDeployment `json:"deployments"`
	Tasks       []StatusTask       `json:"tasks"`
	Warnings    []string           `json:"warnings,omitempty"`
}

// StatusDeployment is one deployment of an ECS service.
type StatusDeployment struct {
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

// StatusTask is one running ECS task and the Sidekiq processes placed in it.
type StatusTask struct {
	ID          string   `json:"id"`
	ARN         string   `json:"arn"`
	LastStatus  string   `json:"last_status"`
	Deployment  string   `json:"deployment_id,omitempty"`
	PrivateIPv4 string   `json:"private_ipv4,omitempty"`
	Processes   []string `json:"processes"`
}

// NewStatus is an empty status document read at at from redis (a redacted URL).
func NewStatus(at time.Time, redis string) *Status {
	return &Status{Schema: Schema, DocKind: "status", At: at, Redis: redis,
		Processes: []StatusProcess{}, Jobs: []StatusJob{}, Queues: []StatusQueue{}}
}

// Kind is "status".
func (st *Status) Kind() string { return st.DocKind }

// state is how the text and Markdown renderings name a process's state.
func (p StatusProcess) state() string {
	switch {
	case p.Dead:
		return "dead"
	case p.Quiet:
		return "quiet"
	}
	return "running"
}

// beat is the age of the last heartbeat for people, or "-".
func (p StatusProcess) beat() string {
	if p.LastBeat.IsZero() {
		return "-"
	}
	return secsText(p.BeatAge) + " ago"
}

func (st *Status) writeText(w io.Writer, _ Options) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Sidekiq fleet at %s (redis %s): %d process(es), %d job(s) in flight\n", st.At.Format(time.RFC3339), st.Redis, len(st.Processes), len(st.Jobs))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	if len(st.Processes) > 0 {
		fmt.Fprintln(&b, "\nProcesses:")
		fmt.Fprintln(tw, "  IDENTITY\tHOST\tTASK\tTAG\tVERSION\tQUEUES\tSTATE\tBUSY\tLAST BEAT")
		for _, p := range st.Processes {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", p.Identity, p.Hostname, orDash(p.Task), orDash(p.Tag), orDash(p.Version),
				strings.Join(p.Queues, ","), p.state(), p.Busy, p.Concurrency, p.beat())
		}
		tw.Flush()
	}
	if len(st.Jobs) > 0 {
		fmt.Fprintln(&b, "\nIn-flight jobs:")
		args := statusHasArgs(st.Jobs)
		head := "  CLASS\tQUEUE\tJID\tPROCESS\tRUNNING FOR"
		if args {
			head += "\tARGS"
		}
		fmt.Fprintln(tw, head)
		for _, j := range st.Jobs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s", j.Class, j.Queue, j.JID, j.Process, secsText(j.Running))
			if args {
				fmt.Fprintf(tw, "\t%s", orDash(string(j.Args)))
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
			s.Status, shortARN(s.TaskDefinition), s.Desired, s.Running, s.Pending, orDash(s.Controller))
		if st := strategyText(s.Strategy); st != "" {
			fmt.Fprintf(&b, "  deploys %s\n", st)
		}
		fmt.Fprintln(tw, "  DEPLOYMENT\tSTATUS\tROLLOUT\tTASK DEFINITION\tRUNNING/DESIRED\tCREATED")
		for _, d := range s.Deployments {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d/%d\t%s\n", d.ID, d.Status, orDash(d.RolloutState), shortARN(d.TaskDefinition), d.Running, d.Desired, fmtTime(d.CreatedAt))
		}
		tw.Flush()
		if len(s.Tasks) > 0 {
			fmt.Fprintln(tw, "  TASK\tSTATUS\tIP\tPROCESSES")
			for _, t := range s.Tasks {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", t.ID, t.LastStatus, orDash(t.PrivateIPv4), orDash(strings.Join(t.Processes, ", ")))
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

func (st *Status) writeMarkdown(w io.Writer, _ Options) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "### drainctl status\n\n%d process(es), %d job(s) in flight — redis `%s`, %s\n", len(st.Processes), len(st.Jobs), st.Redis, st.At.Format(time.RFC3339))
	if len(st.Processes) > 0 {
		fmt.Fprintln(&b, "\n| Identity | Host | Task | Tag | Version | Queues | State | Busy | Last beat |\n|---|---|---|---|---|---|---|---|---|")
		for _, p := range st.Processes {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s | %s | %d/%d | %s |\n", p.Identity, fleetCell(p.Hostname), fleetCell(p.Task), fleetCell(p.Tag),
				fleetCell(p.Version), fleetCell(strings.Join(p.Queues, ", ")), p.state(), p.Busy, p.Concurrency, p.beat())
		}
	}
	if len(st.Jobs) > 0 {
		args := statusHasArgs(st.Jobs)
		if args {
			fmt.Fprintln(&b, "\n| Class | Queue | JID | Process | Running for | Args |\n|---|---|---|---|---|---|")
		} else {
			fmt.Fprintln(&b, "\n| Class | Queue | JID | Process | Running for |\n|---|---|---|---|---|")
		}
		for _, j := range st.Jobs {
			fmt.Fprintf(&b, "| %s | %s | `%s` | `%s` | %s |", fleetCell(j.Class), fleetCell(j.Queue), j.JID, j.Process, secsText(j.Running))
			if args {
				fmt.Fprintf(&b, " %s |", fleetCell(string(j.Args)))
			}
			fmt.Fprintln(&b)
		}
	}
	if len(st.Queues) > 0 {
		fmt.Fprintln(&b, "\n| Queue | Size | Latency |\n|---|---|---|")
		for _, q := range st.Queues {
			fmt.Fprintf(&b, "| %s | %d | %s |\n", fleetCell(q.Name), q.Size, secsText(q.Latency))
		}
	}
	for _, s := range st.Services {
		fmt.Fprintf(&b, "\n#### ECS service `%s/%s`\n\n%s, `%s`, desired %d, running %d, pending %d, controller %s\n", shortARN(s.Cluster), shortARN(s.Service),
			s.Status, shortARN(s.TaskDefinition), s.Desired, s.Running, s.Pending, orDash(s.Controller))
		if st := strategyText(s.Strategy); st != "" {
			fmt.Fprintf(&b, "\nDeploys %s.\n", st)
		}
		fmt.Fprintln(&b, "\n| Deployment | Status | Rollout | Task definition | Running/desired |\n|---|---|---|---|---|")
		for _, d := range s.Deployments {
			fmt.Fprintf(&b, "| `%s` | %s | %s | `%s` | %d/%d |\n", d.ID, d.Status, fleetCell(d.RolloutState), shortARN(d.TaskDefinition), d.Running, d.Desired)
		}
		if len(s.Tasks) > 0 {
			fmt.Fprintln(&b, "\n| Task | Status | IP | Processes |\n|---|---|---|---|")
			for _, t := range s.Tasks {
				fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", t.ID, t.LastStatus, fleetCell(t.PrivateIPv4), fleetCell(strings.Join(t.Processes, ", ")))
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

// statusHasArgs reports whether any job carries arguments (--show-args).
func statusHasArgs(jobs []StatusJob) bool {
	for _, j := range jobs {
		if len(j.Args) > 0 {
			return true
		}
	}
	return false
}

// secsText prints seconds rounded to the second: 1m35s.
func secsText(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

// fmtTime prints t in UTC as RFC 3339, or "-".
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

// fleetCell is a Markdown table cell of the status and rescue tables: "-" when empty, pipes
// escaped, on one line.
func fleetCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(orDash(s))
}
