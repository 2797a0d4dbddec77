package check

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/drainctl/drainctl/internal/finding"
)

// Launch types as ECS spells them.
const (
	LaunchTypeFargate = "FARGATE"
	LaunchTypeEC2     = "EC2"
)

// Defaults and limits, in seconds, that the shutdown-budget check uses.
const (
	DefaultSidekiqTimeout = 25  // Sidekiq's -t when absent
	ShutdownMargin        = 5   // Sidekiq's wiki: allow -t + 5 s after TERM
	DefaultStopTimeout    = 30  // ECS default on Fargate and the agent's default on EC2
	FargateMaxStopTimeout = 120 // Fargate's cap on stopTimeout
	KilledExitCode        = 137 // 128 + SIGKILL
	TerminatedExitCode    = 143 // 128 + SIGTERM: PID 1 died of the stop signal
)

// Input is everything one check of one task definition may use. Only TaskDefinition is
// required; every other field adds checks when set.
type Input struct {
	// Source names where the task definition came from (a file path or an ARN) in findings.
	Source         string
	TaskDefinition TaskDefinition
	// Container names the Sidekiq container (--container). Empty means: every container whose
	// command or entryPoint mentions sidekiq, else the only container.
	Container string
	// EntrypointScripts are entry point scripts from the image's source tree
	// (--entrypoint-file).
	EntrypointScripts []ScriptFile
	// LaunchType is FARGATE or EC2; empty means inferred from requiresCompatibilities.
	LaunchType string
	// AgentStopTimeout is the EC2 container agent's ECS_CONTAINER_STOP_TIMEOUT in seconds
	// (--agent-stop-timeout): the stop timeout of a container without stopTimeout on EC2,
	// and on an unknown launch type. Zero means the agent's default (30 s) is assumed.
	AgentStopTimeout int
	// Deployment is the service's deployment configuration; nil skips those checks.
	Deployment *Deployment
	// Live is evidence from the running service; nil skips those checks.
	Live *Live
}

// ScriptFile is an entry point script and the path it was read from.
type ScriptFile struct {
	Path    string
	Content string
}

// Deployment is the part of a service's deploymentConfiguration the checks read.
type Deployment struct {
	MinimumHealthyPercent  *int // nil means unknown (ECS default 100)
	MaximumPercent         *int
	CircuitBreakerEnabled  bool
	CircuitBreakerRollback bool
	// Strategy is deploymentConfiguration.strategy (ROLLING, BLUE_GREEN, LINEAR, CANARY); empty
	// when unknown (read from a file).
	Strategy string
	// DesiredCount is the service's desired count; zero when unknown.
	DesiredCount int
	// PauseHookPostScaleUp is true when a PAUSE lifecycle hook waits at POST_SCALE_UP.
	PauseHookPostScaleUp bool
}

// Live is evidence gathered from the running service.
type Live struct {
	// StoppedTasks are the service's recently stopped tasks, one entry per task with the
	// Sidekiq container's exit code.
	StoppedTasks []StoppedTask
	// VanishedProcesses counts Sidekiq processes that disappeared without removing
	// themselves from Redis's `processes` set (killed, not stopped).
	VanishedProcesses int
	// Vanished optionally names them (identities), for the report.
	Vanished []string
}

// StoppedTask is one stopped task's outcome for one container.
type StoppedTask struct {
	TaskID    string
	Container string
	ExitCode  *int
	StopCode  string // e.g. ServiceSchedulerInitiated, UserInitiated, EssentialContainerExited
	Reason    string // the container's reason, e.g. "OutOfMemoryError: ..."
}

// Finding is one problem (or note) about one container of one task definition: the shared
// finding type, with Code SP001…, Subject "family:revision / container" and Container set.
type Finding = finding.Finding

// Target describes one checked container and the numbers the checks settled on.
type Target struct {
	Source          string `json:"source,omitempty"`
	TaskDefinition  string `json:"task_definition"`
	Container       string `json:"container"`
	ContainerReason string `json:"container_reason"`
	LaunchType      string `json:"launch_type"`
	// StopTimeout is the effective stop timeout in seconds and StopTimeoutFrom where it came
	// from.
	StopTimeout     int    `json:"stop_timeout_s"`
	StopTimeoutFrom string `json:"stop_timeout_from"`
	// SidekiqTimeout is Sidekiq's shutdown timeout in seconds; 0 when unknown.
	SidekiqTimeout     int    `json:"sidekiq_timeout_s,omitempty"`
	SidekiqTimeoutFrom string `json:"sidekiq_timeout_from"`
	// SignalPath summarises how SIGTERM reaches Sidekiq: "ok", "broken", "depends-on-shell"
	// (a lone command some shells exec), "at-risk" (a forwarding trap that does not wait) or
	// "unknown" (the image's CMD or an unchecked script decides).
	SignalPath string `json:"signal_path"`
}

// Result is the outcome of a check: what was checked, what was found, and the counts.
type Result struct {
	Targets  []Target        `json:"targets"`
	Findings []Finding       `json:"findings"`
	Summary  finding.Summary `json:"summary"`
}

// ExitCode is the process exit code `drainctl check` uses: 7 when there are errors, or
// warnings with strict; 0 otherwise.
func (r Result) ExitCode(strict bool) int {
	if r.Summary.Blocking(strict) {
		return 7
	}
	return 0
}

// Errors callers branch on (bad input: exit 2).
var (
	ErrNoSidekiqContainer = errors.New("no Sidekiq container found")
	ErrUnknownContainer   = errors.New("container not in task definition")
)

// Run checks each input and returns the findings of all of them. An error means bad input
// (no Sidekiq container could be chosen); it names the task definition.
func Run(inputs ...Input) (Result, error) {
	var res Result
	for _, in := range inputs {
		targets, findings, err := runOne(in)
		if err != nil {
			return Result{}, err
		}
		res.Targets = append(res.Targets, targets...)
		res.Findings = append(res.Findings, findings...)
	}
	if res.Findings == nil {
		res.Findings = []Finding{}
	}
	res.Summary = finding.Summarize(res.Findings)
	return res, nil
}

func runOne(in Input) ([]Target, []Finding, error) {
	td := in.TaskDefinition
	picked, reason, err := pickContainers(td, in.Container)
	if err != nil {
		return nil, nil, fmt.Errorf("check task definition %q: %w", td.Name(), err)
	}
	var targets []Target
	var findings []Finding
	for i, c := range picked {
		a := &analyzer{in: in, td: td, c: c, picked: picked}
		a.run()
		// Deployment and live checks concern the service, not a container: report them
		// once, with the first Sidekiq container.
		if i == 0 {
			a.findings = append(a.findings, serviceFindings(in, td.Name(), c.Name)...)
		}
		// One container's findings share a subject: most serious first, then by code.
		finding.Sort(a.findings)
		t := Target{
			Source:             in.Source,
			TaskDefinition:     td.Name(),
			Container:          c.Name,
			ContainerReason:    reason,
			LaunchType:         a.launchType,
			StopTimeout:        a.stopTimeout,
			StopTimeoutFrom:    a.stopFrom,
			SidekiqTimeout:     a.sidekiqTimeout,
			SidekiqTimeoutFrom: a.sidekiqFrom,
			SignalPath:         a.signalPath(),
		}
		targets = append(targets, t)
		findings = append(findings, a.findings...)
	}
	return targets, findings, nil
}

// pickContainers chooses the Sidekiq container(s) and says why.
func pickContainers(td TaskDefinition, name string) ([]Container, string, error) {
	if name != "" {
		for _, c := range td.Containers {
			if c.Name == name {
				return []Container{c}, "named with --container", nil
			}
		}
		return nil, "", fmt.Errorf("container %q: %w (containers: %s)", name, ErrUnknownContainer, containerNames(td))
	}
	var out []Container
	for _, c := range td.Containers {
		if mentionsSidekiq(c.Command) || mentionsSidekiq(c.EntryPoint) {
			out = append(out, c)
		}
	}
	if len(out) > 0 {
		return out, "its command mentions sidekiq", nil
	}
	for _, c := range td.Containers {
		if strings.Contains(strings.ToLower(c.Name), "sidekiq") {
			out = append(out, c)
		}
	}
	if len(out) > 0 {
		return out, "its name mentions sidekiq (the command does not)", nil
	}
	for _, c := range td.Containers {
		if strings.Contains(strings.ToLower(c.Image), "sidekiq") {
			out = append(out, c)
		}
	}
	if len(out) > 0 {
		return out, "its image name mentions sidekiq (the command does not)", nil
	}
	if len(td.Containers) == 1 {
		return td.Containers, "the only container (no command mentions sidekiq)", nil
	}
	return nil, "", fmt.Errorf("%w: no command mentions sidekiq among %s (name it with --container)", ErrNoSidekiqContainer, containerNames(td))
}

func containerNames(td TaskDefinition) string {
	var names []string
	for _, c := range td.Containers {
		names = append(names, fmt.Sprintf("%q", c.Name))
	}
	return strings.Join(names, ", ")
}

func mentionsSidekiq(words []string) bool {
	for _, w := range words {
		if strings.Contains(strings.ToLower(w), "sidekiq") {
			return true
		}
	}
	return false
}

// isSidekiqProgram reports whether a word names the Sidekiq executable (sidekiq,
// bin/sidekiq, /usr/local/bundle/bin/sidekiq, sidekiqswarm), not a config file.
func isSidekiqProgram(w string) bool {
	b := strings.ToLower(path.Base(w))
	return b == "sidekiq" || b == "sidekiqswarm" || b == "sidekiq-cli"
}
