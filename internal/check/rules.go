package check

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/drainctl/drainctl/internal/finding"
)

// Finding codes and names. Codes are stable: tools and suppressions may refer to them.
const (
	CodeShellWrapperNoExec         = "SP001" // shell-wrapper-no-exec
	CodeShellLoneCommand           = "SP002" // shell-lone-command
	CodeNoInit                     = "SP003" // no-init
	CodeEntrypointNoExec           = "SP004" // entrypoint-no-exec
	CodeTrapSwallowsTerm           = "SP005" // entrypoint-trap-swallows-term
	CodeStopTimeoutTooShort        = "SP006" // stop-timeout-too-short
	CodeSidekiqTimeoutUnknown      = "SP007" // sidekiq-timeout-unknown
	CodeSidekiqNotEssential        = "SP008" // sidekiq-not-essential
	CodeSidecarMayStopFirst        = "SP009" // essential-sidecar-may-stop-first
	CodeCircuitBreakerOff          = "SP010" // circuit-breaker-off
	CodeMinHealthyZero             = "SP011" // min-healthy-zero
	CodeImageCmdNotOverridden      = "SP012" // image-cmd-not-overridden
	CodeShutdownsKilled            = "SP013" // shutdowns-killed
	CodeVanishedProcesses          = "SP014" // vanished-processes
	CodeEntrypointScriptUnknown    = "SP015" // entrypoint-script-unchecked
	CodeSidekiqTimeoutUnresolvable = "SP016" // sidekiq-timeout-unresolvable
	CodeDeploymentAdvice           = "SP017" // deployment-advice
)

var findingNames = map[string]string{
	CodeShellWrapperNoExec:         "shell-wrapper-no-exec",
	CodeShellLoneCommand:           "shell-lone-command",
	CodeNoInit:                     "no-init",
	CodeEntrypointNoExec:           "entrypoint-no-exec",
	CodeTrapSwallowsTerm:           "entrypoint-trap-swallows-term",
	CodeStopTimeoutTooShort:        "stop-timeout-too-short",
	CodeSidekiqTimeoutUnknown:      "sidekiq-timeout-unknown",
	CodeSidekiqNotEssential:        "sidekiq-not-essential",
	CodeSidecarMayStopFirst:        "essential-sidecar-may-stop-first",
	CodeCircuitBreakerOff:          "circuit-breaker-off",
	CodeMinHealthyZero:             "min-healthy-zero",
	CodeImageCmdNotOverridden:      "image-cmd-not-overridden",
	CodeShutdownsKilled:            "shutdowns-killed",
	CodeVanishedProcesses:          "vanished-processes",
	CodeEntrypointScriptUnknown:    "entrypoint-script-unchecked",
	CodeSidekiqTimeoutUnresolvable: "sidekiq-timeout-unresolvable",
	CodeDeploymentAdvice:           "deployment-advice",
}

// Why texts, one per finding code.
const (
	whyPID1 = "ECS stops a task like `docker stop`: SIGTERM to each container's PID 1, SIGKILL after stopTimeout. " +
		"A shell that is PID 1 and waits for a child does not pass SIGTERM on (as PID 1 it does not even die of it), " +
		"so Sidekiq never hears TERM, is SIGKILLed (exit 137), and every job it was running is lost instead of pushed back to Redis. " +
		"An init (initProcessEnabled, tini) does not help here: it hands TERM to the shell, the shell exits, the init exits with it and the kernel SIGKILLs Sidekiq."
	fixPID1 = "Start Sidekiq in exec form (\"command\": [\"bundle\", \"exec\", \"sidekiq\", ...]), or put `exec` before the command that starts Sidekiq " +
		"(`cd /app && exec bundle exec sidekiq ...`)."
	whyLone = "The Sidekiq command is the only command of the `-c` script, without exec. Debian's /bin/sh (dash 0.5.12, measured; Ubuntu's /bin/sh is dash too) " +
		"does not exec it: the shell stays PID 1, does not pass SIGTERM on, and Sidekiq is SIGKILLed after stopTimeout with its jobs lost, as with a compound command. " +
		"Only bash is known to exec a lone command itself, and which shell an image's /bin/sh is cannot be seen from the task definition."
	whyLoneBash = "bash execs the lone command of a `-c` script itself (measured with bash 5.2), so Sidekiq becomes PID 1 and gets SIGTERM. " +
		"It stops working when a command is added (`cd /app; bundle exec sidekiq`) or the script moves to /bin/sh (dash does not exec it)."
	whyBashLast = "bash 5.2 (measured) execs the last command of a two-part `-c` list (`a && b`, `a; b`) itself, so Sidekiq becomes PID 1; " +
		"older bash, dash (/bin/sh on Debian/Ubuntu) and a third command (`a; b && c`) do not, and then Sidekiq is SIGKILLed on every stop."
	fixLone = "Make it explicit: `exec bundle exec sidekiq ...` in the script, or drop the shell and use exec form."
	whyInit = "Sidekiq is started through a shell or an entry point script and there is no init. When the script execs Sidekiq, Sidekiq is PID 1 and handles TERM itself, " +
		"but nothing reaps the orphaned processes that jobs shelling out leave behind (zombies pile up). An init reaps them. It does not replace `exec`: " +
		"below an init, a shell that does not exec dies of TERM at once and Sidekiq is killed with it."
	fixInit       = "Set \"linuxParameters\": {\"initProcessEnabled\": true}, or start with `tini -g --` / `dumb-init`, and keep `exec` in the scripts."
	whyEntrypoint = "The entry point script is PID 1. If the line that starts the process is not `exec …`, the script's shell stays PID 1, " +
		"does not pass SIGTERM on, and Sidekiq is SIGKILLed after stopTimeout with its jobs lost."
	fixEntrypoint = "End the script with `exec \"$@\"` (and pass Sidekiq as the command in exec form), or `exec bundle exec sidekiq ...`."
	whyTrap       = "A TERM trap that neither forwards the signal (`kill -TERM \"$pid\"`) nor lets the shell exec Sidekiq swallows the stop signal: Sidekiq is SIGKILLed after stopTimeout."
	fixTrap       = "Remove the trap and `exec` the process, or forward TERM to Sidekiq and wait for it: `trap 'kill -TERM \"$pid\"; wait \"$pid\"' TERM`."
	whyBudget     = "After SIGTERM Sidekiq waits up to its timeout (-t) for running jobs, then pushes the rest back to Redis, which takes a moment more; Sidekiq's wiki asks for -t + 5 s. " +
		"If ECS sends SIGKILL before that, the jobs still running are lost."
	whyUnknownTimeout = "The shutdown budget (stopTimeout >= Sidekiq's -t + 5 s) cannot be checked from here."
	whyUnresolvable   = "The shell expands Sidekiq's -t when the container starts, from the environment the image and the task definition give it. " +
		"Only the task definition is visible here, so whether stopTimeout >= -t + 5 s holds cannot be checked; a value set in the task definition can be."
	whyNotEssential = "When a non-essential Sidekiq container exits or crashes the task keeps running without it: ECS neither replaces the task nor counts the failure in the deployment."
	fixNotEssential = "Set \"essential\": true on the Sidekiq container."
	whySidecar      = "On stop, ECS sends SIGTERM to all containers at once unless dependsOn orders them. An essential sidecar (a proxy, an agent) may exit first, " +
		"cutting Sidekiq's connections (Redis, database) while it finishes and requeues jobs; if the sidecar exits on its own the whole task stops."
	fixSidecar      = "Add the sidecar to Sidekiq's dependsOn (condition START or HEALTHY): ECS then stops Sidekiq first and the sidecar after it."
	whyBreaker      = "Without the deployment circuit breaker a rollout whose tasks cannot start never fails: it stays IN_PROGRESS until a deploy tool times out, while quieted workers wait."
	fixBreaker      = "Enable \"deploymentCircuitBreaker\": {\"enable\": true, \"rollback\": true} in the service's deploymentConfiguration."
	whyMinHealthy   = "With minimumHealthyPercent 0 ECS may stop every old task at once before new ones run: all Sidekiq processes get SIGTERM together, and any job still running after -t is only safe if it is drained first."
	fixMinHealthy   = "Keep minimumHealthyPercent at 100 (new tasks start before old ones stop), or drain with `drainctl deploy` before the rollout."
	whyImageCmd     = "The task definition does not set command, so the image's CMD runs. A shell-form CMD (`CMD bundle exec sidekiq`) runs under /bin/sh -c, which is invisible from the task definition."
	fixImageCmd     = "Set command in exec form in the task definition ([\"bundle\", \"exec\", \"sidekiq\", ...]), or check the Dockerfile: CMD [\"bundle\", \"exec\", \"sidekiq\"] (exec form) and, for an entry point script, pass it with --entrypoint-file."
	whyKilled       = "Sidekiq exits 0 after a clean TERM shutdown. Exit 137 is SIGKILL; 143 is a container whose PID 1 ended with a SIGTERM death (under an init, the init exits with the 128+15 status of a shell that died of the TERM it forwarded, killing Sidekiq with it). Either way these stops did not let Sidekiq finish or requeue its jobs: the signal path or the shutdown budget is broken in production, whatever the task definition looks like."
	fixKilled       = "Fix the error-level findings above; if there are none, check the image's CMD/ENTRYPOINT (exec form) and raise stopTimeout above Sidekiq's -t + 5 s."
	whyVanished     = "A Sidekiq process that stops cleanly removes itself from Redis's `processes` set; these disappeared without doing so, which is what a SIGKILL (or OOM kill) leaves behind. Their running jobs were lost."
	fixVanished     = "See shutdowns-killed and the signal-path findings; `drainctl deploy` drains and rescues jobs before the rollout."
	whyUncheckedEP  = "The container starts a program or script this check cannot see into; whether it execs Sidekiq decides whether Sidekiq gets SIGTERM."
	fixUncheckedEP  = "Pass the script with --entrypoint-file (it must end with `exec \"$@\"` or `exec bundle exec sidekiq ...`)."
	whyStopCapped   = "Fargate caps stopTimeout at 120 s; a shutdown that needs longer cannot be given the time."
	fixBudgetFormat = "Set \"stopTimeout\": %d (or more) on the container, or lower Sidekiq's -t to %d s or less."
)

// subject names what a finding is about: "family:revision / container".
func subject(taskDef, container string) string { return taskDef + " / " + container }

// analyzer checks one container.
type analyzer struct {
	in     Input
	td     TaskDefinition
	c      Container
	picked []Container // every Sidekiq container of the task definition

	findings []Finding

	launchType      string
	stopTimeout     int
	stopFrom        string
	sidekiqTimeout  int
	sidekiqFrom     string
	sidekiqArgs     []arg
	sidekiqSeen     bool
	init            string
	wrapper         bool
	broken          bool
	shellDependent  bool
	atRisk          bool
	unknownPath     bool
	usedScripts     map[string]bool
	imageCmdFlagged bool
}

func (a *analyzer) add(code string, sev finding.Severity, msg, why, fix string) *Finding {
	a.findings = append(a.findings, Finding{
		Code: code, Name: findingNames[code], Severity: sev, Subject: subject(a.td.Name(), a.c.Name), Container: a.c.Name,
		Message: msg, Why: why, Fix: fix,
	})
	return &a.findings[len(a.findings)-1]
}

func (a *analyzer) signalPath() string {
	switch {
	case a.broken:
		return "broken"
	case a.shellDependent:
		return "depends-on-shell"
	case a.atRisk:
		return "at-risk"
	case a.unknownPath:
		return "unknown"
	}
	return "ok"
}

func (a *analyzer) run() {
	a.usedScripts = map[string]bool{}
	a.resolveStopTimeout()
	if a.c.InitProcessEnabled != nil && *a.c.InitProcessEnabled {
		a.init = "initProcessEnabled"
	}
	ep, cmd := a.c.EntryPoint, a.c.Command
	switch {
	case len(ep) == 0 && len(a.in.EntrypointScripts) == 1:
		// The image's ENTRYPOINT is taken to be the one script given; command is its "$@"
		// (unknown when unset: the image's CMD).
		sf := a.in.EntrypointScripts[0]
		a.scriptFile(sf, "", sf.Path, plainArgs(cmd), cmd != nil, false, 0)
	case len(ep) == 0 && len(cmd) == 0:
		a.imageCmd()
	default:
		a.stage(plainArgs(append(append([]string{}, ep...), cmd...)), 0)
	}
	a.budget()
	if a.wrapper && a.init == "" {
		a.add(CodeNoInit, finding.Info, "no init process (initProcessEnabled is not set) while a shell or an entry point script starts Sidekiq", whyInit, fixInit)
	}
	if !a.c.IsEssential() {
		a.add(CodeSidekiqNotEssential, finding.Warning, "the Sidekiq container is not essential", whyNotEssential, fixNotEssential)
	}
	a.sidecars()
}

// resolveStopTimeout settles the launch type and the effective stop timeout.
func (a *analyzer) resolveStopTimeout() {
	a.launchType = strings.ToUpper(a.in.LaunchType)
	if a.launchType == "" {
		fargate, ec2 := false, false
		for _, c := range a.td.RequiresCompatibilities {
			switch strings.ToUpper(c) {
			case LaunchTypeFargate:
				fargate = true
			case LaunchTypeEC2, "EXTERNAL":
				ec2 = true
			}
		}
		switch {
		case fargate && !ec2:
			a.launchType = LaunchTypeFargate
		case ec2 && !fargate:
			a.launchType = LaunchTypeEC2
		case a.td.NetworkMode != "" && a.td.NetworkMode != "awsvpc":
			a.launchType = LaunchTypeEC2 // bridge/host/none do not run on Fargate
		default:
			a.launchType = "UNKNOWN"
		}
	}
	switch {
	case a.c.StopTimeout != nil:
		a.stopTimeout = *a.c.StopTimeout
		a.stopFrom = "the container's stopTimeout"
		if a.launchType == LaunchTypeFargate && a.stopTimeout > FargateMaxStopTimeout {
			a.stopFrom = fmt.Sprintf("stopTimeout %d s, capped by Fargate", a.stopTimeout)
			a.stopTimeout = FargateMaxStopTimeout
		}
	case a.launchType == LaunchTypeEC2 && a.in.AgentStopTimeout > 0:
		a.stopTimeout = a.in.AgentStopTimeout
		a.stopFrom = "unset: the EC2 agent's ECS_CONTAINER_STOP_TIMEOUT from --agent-stop-timeout"
	case a.launchType == LaunchTypeEC2:
		a.stopTimeout = DefaultStopTimeout
		a.stopFrom = "unset: the EC2 agent's default ECS_CONTAINER_STOP_TIMEOUT assumed (see --agent-stop-timeout)"
	case a.launchType == LaunchTypeFargate && a.in.AgentStopTimeout > 0:
		a.stopTimeout = DefaultStopTimeout
		a.stopFrom = "unset: the Fargate default (--agent-stop-timeout applies on EC2 only)"
	case a.launchType == LaunchTypeFargate:
		a.stopTimeout = DefaultStopTimeout
		a.stopFrom = "unset: the Fargate default"
	case a.in.AgentStopTimeout > 0:
		// Launch type unknown, but the EC2 agent's setting was given: judge by it.
		a.stopTimeout = a.in.AgentStopTimeout
		a.stopFrom = "unset: the EC2 agent's ECS_CONTAINER_STOP_TIMEOUT from --agent-stop-timeout (launch type unknown, EC2 assumed)"
	default:
		a.stopTimeout = DefaultStopTimeout
		a.stopFrom = "unset: the default on Fargate and EC2 (launch type unknown)"
	}
}

func pick(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}

func quote(s string) string { return "`" + oneLine(s) + "`" }

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

// ---- shutdown budget ----

// SidekiqTimeout reads Sidekiq's shutdown timeout from its argv (the words after the
// program name): -t N, -tN, -t=N, --timeout N, --timeout=N. It returns the seconds, whether
// they are known, and the config file given with -C/--config (whose :timeout: cannot be
// read from here) when no -t is present.
func SidekiqTimeout(args []string) (seconds int, known bool, configFile string, raw string) {
	val, _, cfg := timeoutOption(args)
	if val != "" {
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return 0, false, "", val
		}
		return n, true, "", val
	}
	if cfg != "" {
		return 0, false, cfg, ""
	}
	return DefaultSidekiqTimeout, true, "", ""
}

// timeoutOption finds Sidekiq's -t value among its arguments: the value, the index of the
// word that holds it (-1 without -t), and the config file given with -C/--config.
func timeoutOption(args []string) (val string, at int, cfg string) {
	at = -1
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() string {
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch {
		case a == "-t" || a == "--timeout":
			val = next()
			at = i
		case strings.HasPrefix(a, "--timeout="):
			val, at = strings.TrimPrefix(a, "--timeout="), i
		case strings.HasPrefix(a, "-t="):
			val, at = strings.TrimPrefix(a, "-t="), i
		case strings.HasPrefix(a, "-t") && !strings.HasPrefix(a, "--"):
			val, at = a[2:], i
		case a == "-C" || a == "--config":
			cfg = next()
		case strings.HasPrefix(a, "--config="):
			cfg = strings.TrimPrefix(a, "--config=")
		case strings.HasPrefix(a, "-C") && !strings.HasPrefix(a, "--"):
			cfg = strings.TrimPrefix(a[2:], "=")
		}
	}
	return val, at, cfg
}

func (a *analyzer) budget() {
	if !a.sidekiqSeen {
		a.sidekiqFrom = "unknown: the Sidekiq command is not visible"
		if !a.unknownPath {
			a.add(CodeSidekiqTimeoutUnknown, finding.Info, "no Sidekiq command found in the container's command or entry point: the shutdown budget is not checked", whyUnknownTimeout,
				"Name the Sidekiq container with --container, or set its command in exec form.")
		}
		return
	}
	args := a.sidekiqArgs[1:]
	secs, known, cfg, raw := SidekiqTimeout(strs(args))
	var word arg // the word that holds -t's value
	if _, at, _ := timeoutOption(strs(args)); at >= 0 {
		word = args[at]
	}
	switch {
	case len(word.unknown) > 0:
		a.unresolvedTimeout(word)
		return
	case !known && cfg != "":
		a.sidekiqFrom = "unknown: set in " + cfg
		f := a.add(CodeSidekiqTimeoutUnknown, finding.Warning,
			fmt.Sprintf("Sidekiq reads its options from %s, whose :timeout: cannot be read from here; stopTimeout is %d s", cfg, a.stopTimeout),
			whyUnknownTimeout, fmt.Sprintf("Make sure :timeout: in %s is at most %d s (stopTimeout - %d s), or pass -t on the command line.", cfg, a.stopTimeout-ShutdownMargin, ShutdownMargin))
		f.Numbers = map[string]int{"stop_timeout_s": a.stopTimeout}
		return
	case !known:
		a.sidekiqFrom = fmt.Sprintf("unknown: -t %s", raw)
		msg := fmt.Sprintf("Sidekiq's -t is %q, which is not a number here; stopTimeout is %d s", raw, a.stopTimeout)
		if strings.HasPrefix(raw, "$") {
			msg = fmt.Sprintf("Sidekiq's -t is the text %q: no shell expands it in exec form, and Sidekiq refuses a -t that is not a number; stopTimeout is %d s", raw, a.stopTimeout)
		}
		f := a.add(CodeSidekiqTimeoutUnknown, finding.Warning, msg,
			whyUnknownTimeout, fmt.Sprintf("Make sure it is at most %d s (stopTimeout - %d s).", a.stopTimeout-ShutdownMargin, ShutdownMargin))
		f.Numbers = map[string]int{"stop_timeout_s": a.stopTimeout}
		return
	}
	a.sidekiqTimeout = secs
	switch {
	case raw == "":
		a.sidekiqFrom = "Sidekiq's default, no -t"
	case word.from != "":
		a.sidekiqFrom = fmt.Sprintf("-t %s, %s", word.from, word.via)
	default:
		a.sidekiqFrom = "-t " + raw
	}
	need := secs + ShutdownMargin
	if a.stopTimeout >= need {
		return
	}
	msg := fmt.Sprintf("the stop timeout, %d s (%s), is shorter than Sidekiq's timeout %d s (%s) + %d s = %d s",
		a.stopTimeout, a.stopFrom, secs, a.sidekiqFrom, ShutdownMargin, need)
	fix := fmt.Sprintf(fixBudgetFormat, need, max(a.stopTimeout-ShutdownMargin, 0))
	why := whyBudget
	if a.launchType == LaunchTypeFargate && need > FargateMaxStopTimeout {
		fix = fmt.Sprintf("Lower Sidekiq's -t to %d s or less: Fargate allows at most %d s of stopTimeout.", FargateMaxStopTimeout-ShutdownMargin, FargateMaxStopTimeout)
		why += " " + whyStopCapped
	}
	switch {
	case a.c.StopTimeout != nil || a.launchType == LaunchTypeFargate:
	case a.in.AgentStopTimeout > 0:
		fix += " (When unset, the EC2 agent's ECS_CONTAINER_STOP_TIMEOUT applies: setting stopTimeout on the container is more reliable.)"
	case a.launchType == LaunchTypeEC2:
		fix += fmt.Sprintf(" (When unset, the EC2 agent's ECS_CONTAINER_STOP_TIMEOUT applies; %d s is its default: if the cluster's agents set it higher, "+
			"give that with --agent-stop-timeout, or set stopTimeout on the container, which is more reliable.)", DefaultStopTimeout)
	}
	f := a.add(CodeStopTimeoutTooShort, finding.Error, msg, why, fix)
	f.Numbers = map[string]int{"stop_timeout_s": a.stopTimeout, "sidekiq_timeout_s": secs, "needed_s": need}
}

// unresolvedTimeout reports a -t whose value the shell takes from something the task
// definition does not set.
func (a *analyzer) unresolvedTimeout(word arg) {
	a.sidekiqFrom = "unknown: -t " + word.s
	var names []string
	for _, u := range word.unknown {
		if m := varRef.FindStringSubmatch(u); m != nil {
			names = append(names, m[1])
		}
	}
	what := "which the task definition does not give a value"
	fix := fmt.Sprintf("Pass -t with a number, at most %d s (stopTimeout - %d s).", a.stopTimeout-ShutdownMargin, ShutdownMargin)
	if len(names) > 0 {
		what = fmt.Sprintf("and %s is not set in the container's environment in the task definition", strings.Join(names, ", "))
		fix = fmt.Sprintf("Set %s in the container's \"environment\" (at most %d s: stopTimeout - %d s), or pass -t with a number.", names[0], a.stopTimeout-ShutdownMargin, ShutdownMargin)
	}
	f := a.add(CodeSidekiqTimeoutUnresolvable, finding.Warning,
		fmt.Sprintf("shutdown timeout not resolvable: Sidekiq's -t is `%s`, %s; stopTimeout is %d s", word.s, what, a.stopTimeout),
		whyUnresolvable, fix)
	f.Evidence = word.s
	f.Numbers = map[string]int{"stop_timeout_s": a.stopTimeout}
}

// varRef matches a variable reference, $NAME or ${NAME…}.
var varRef = regexp.MustCompile(`^\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// ---- containers around Sidekiq ----

func (a *analyzer) sidecars() {
	deps := map[string]bool{}
	for _, p := range a.picked {
		deps[p.Name] = true // another Sidekiq container: checked on its own
	}
	for _, d := range a.c.DependsOn {
		deps[d.ContainerName] = true
	}
	for _, o := range a.td.Containers {
		if o.Name == a.c.Name || !o.IsEssential() || deps[o.Name] {
			continue
		}
		f := a.add(CodeSidecarMayStopFirst, finding.Warning,
			fmt.Sprintf("essential container %q is not in Sidekiq's dependsOn: both get SIGTERM at the same time, and %q may exit while Sidekiq shuts down", o.Name, o.Name),
			whySidecar, fixSidecar)
		f.Evidence = o.Name
	}
}

// ---- the service ----

func serviceFindings(in Input, taskDef, container string) []Finding {
	var out []Finding
	add := func(code string, sev finding.Severity, msg, why, fix string, nums map[string]int) {
		out = append(out, Finding{Code: code, Name: findingNames[code], Severity: sev, Subject: subject(taskDef, container), Container: container,
			Message: msg, Why: why, Fix: fix, Numbers: nums})
	}
	if d := in.Deployment; d != nil {
		if !d.CircuitBreakerEnabled {
			add(CodeCircuitBreakerOff, finding.Warning, "the deployment circuit breaker is disabled: a failing rollout only ends by timeout", whyBreaker, fixBreaker, nil)
		}
		if d.MinimumHealthyPercent != nil && *d.MinimumHealthyPercent == 0 {
			add(CodeMinHealthyZero, finding.Warning, "minimumHealthyPercent is 0: ECS may stop all old tasks at once", whyMinHealthy, fixMinHealthy,
				map[string]int{"minimum_healthy_percent": 0})
		}
		if msg, fix := deploymentAdvice(*d); msg != "" {
			add(CodeDeploymentAdvice, finding.Info, msg, whyAdvice, fix, nil)
		}
	}
	if l := in.Live; l != nil {
		stops, killed, termed, oom := 0, 0, 0, 0
		for _, st := range l.StoppedTasks {
			if st.Container != "" && st.Container != container || st.ExitCode == nil {
				continue
			}
			if st.StopCode == "TaskFailedToStart" {
				continue
			}
			stops++
			switch *st.ExitCode {
			case KilledExitCode:
				if strings.Contains(st.Reason, "OutOfMemory") {
					oom++
					continue
				}
				killed++
			case TerminatedExitCode:
				termed++
			}
		}
		if killed+termed > 0 {
			msg := fmt.Sprintf("shutdowns are being killed: %d of the last %d stops of %q ended by a signal", killed+termed, stops, container)
			var parts []string
			if killed > 0 {
				parts = append(parts, fmt.Sprintf("%d exited %d (SIGKILL after stopTimeout)", killed, KilledExitCode))
			}
			if termed > 0 {
				parts = append(parts, fmt.Sprintf("%d exited %d (PID 1 died of SIGTERM: under an init, a shell without exec dies at once and Sidekiq is killed with it)", termed, TerminatedExitCode))
			}
			msg += ": " + strings.Join(parts, ", ")
			if oom > 0 {
				msg += fmt.Sprintf("; %d more exited 137 from an OOM kill (not counted)", oom)
			}
			add(CodeShutdownsKilled, finding.Error, msg, whyKilled, fixKilled,
				map[string]int{"killed": killed, "terminated": termed, "stops": stops, "oom_killed": oom})
		}
		if l.VanishedProcesses > 0 {
			msg := fmt.Sprintf("%d Sidekiq process(es) vanished without removing themselves from `processes`", l.VanishedProcesses)
			if len(l.Vanished) > 0 {
				msg += ": " + strings.Join(l.Vanished, ", ")
			}
			add(CodeVanishedProcesses, finding.Warning, msg, whyVanished, fixVanished, map[string]int{"vanished": l.VanishedProcesses})
		}
	}
	return out
}

const whyAdvice = "drainctl deploy gives a deploy with no processing gap and no interrupted job when the service lets old and new workers overlap: " +
	"for a rolling deployment, maximumPercent must leave room for new tasks beside the old ones it keeps protected (drainctl deploy --strategy overlap); " +
	"for blue/green, linear and canary, a PAUSE hook at POST_SCALE_UP lets drainctl drain blue before CLEAN_UP stops it (--strategy pause-hook)."

// deploymentAdvice says which deploymentConfiguration gives a no-gap, no-interrupt deploy, as
// the JSON fragment to merge in; empty when the service already has it (or nothing is known).
func deploymentAdvice(d Deployment) (msg, fix string) {
	switch d.Strategy {
	case "BLUE_GREEN", "LINEAR", "CANARY":
		if d.PauseHookPostScaleUp {
			return "", ""
		}
		return d.Strategy + " without a PAUSE hook at POST_SCALE_UP: blue keeps fetching jobs through the bake and is SIGTERMed at CLEAN_UP with its jobs in flight",
			`merge into deploymentConfiguration: {"lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"], "timeoutConfiguration": {"timeoutInMinutes": 30, "action": "ROLLBACK"}}]} and deploy with drainctl deploy (auto picks --strategy pause-hook)`
	case "ROLLING", "":
		if d.MaximumPercent == nil {
			return "", ""
		}
		n := d.DesiredCount
		if n <= 0 {
			n = 1
		}
		if n**d.MaximumPercent/100-n >= 1 {
			return "", ""
		}
		return fmt.Sprintf("maximumPercent %d leaves no room for a new task beside the old ones: drainctl can only drain first (a processing gap, long jobs cut)", *d.MaximumPercent),
			`merge into deploymentConfiguration: {"maximumPercent": 200} and deploy with drainctl deploy (auto picks --strategy overlap; allow ecs:UpdateTaskProtection and ecs:GetTaskProtection)`
	}
	return "", ""
}
