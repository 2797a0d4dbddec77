package check

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/drainctl/drainctl/internal/finding"
)

// Finding codes and names. Codes are stable: tools and suppressions may refer to them.
const (
	CodeShellWrapperNoExec      = "SP001" // shell-wrapper-no-exec
	CodeShellLoneCommand        = "SP002" // shell-lone-command
	CodeNoInit                  = "SP003" // no-init
	CodeEntrypointNoExec        = "SP004" // entrypoint-no-exec
	CodeTrapSwallowsTerm        = "SP005" // entrypoint-trap-swallows-term
	CodeStopTimeoutTooShort     = "SP006" // stop-timeout-too-short
	CodeSidekiqTimeoutUnknown   = "SP007" // sidekiq-timeout-unknown
	CodeSidekiqNotEssential     = "SP008" // sidekiq-not-essential
	CodeSidecarMayStopFirst     = "SP009" // essential-sidecar-may-stop-first
	CodeCircuitBreakerOff       = "SP010" // circuit-breaker-off
	CodeMinHealthyZero          = "SP011" // min-healthy-zero
	CodeImageCmdNotOverridden   = "SP012" // image-cmd-not-overridden
	CodeShutdownsKilled         = "SP013" // shutdowns-killed
	CodeVanishedProcesses       = "SP014" // vanished-processes
	CodeEntrypointScriptUnknown = "SP015" // entrypoint-script-unchecked
)

var findingNames = map[string]string{
	CodeShellWrapperNoExec:      "shell-wrapper-no-exec",
	CodeShellLoneCommand:        "shell-lone-command",
	CodeNoInit:                  "no-init",
	CodeEntrypointNoExec:        "entrypoint-no-exec",
	CodeTrapSwallowsTerm:        "entrypoint-trap-swallows-term",
	CodeStopTimeoutTooShort:     "stop-timeout-too-short",
	CodeSidekiqTimeoutUnknown:   "sidekiq-timeout-unknown",
	CodeSidekiqNotEssential:     "sidekiq-not-essential",
	CodeSidecarMayStopFirst:     "essential-sidecar-may-stop-first",
	CodeCircuitBreakerOff:       "circuit-breaker-off",
	CodeMinHealthyZero:          "min-healthy-zero",
	CodeImageCmdNotOverridden:   "image-cmd-not-overridden",
	CodeShutdownsKilled:         "shutdowns-killed",
	CodeVanishedProcesses:       "vanished-processes",
	CodeEntrypointScriptUnknown: "entrypoint-script-unchecked",
}

// FindingName returns the stable name of a finding code ("SP001" → "shell-wrapper-no-exec").
func FindingName(code string) string { return findingNames[code] }

// Why texts, one per finding code.
const (
	whyPID1 = "ECS stops a task like `docker stop`: SIGTERM to each container's PID 1, SIGKILL after stopTimeout. " +
		"A shell that is PID 1 and waits for a child does not pass SIGTERM on (as PID 1 it does not even die of it), " +
		"so Sidekiq never hears TERM, is SIGKILLed (exit 137), and every job it was running is lost instead of pushed back to Redis. " +
		"An init (initProcessEnabled, tini) does not help here: it hands TERM to the shell, the shell exits, the init exits with it and the kernel SIGKILLs Sidekiq."
	fixPID1 = "Start Sidekiq in exec form (\"command\": [\"bundle\", \"exec\", \"sidekiq\", ...]), or put `exec` before the command that starts Sidekiq " +
		"(`cd /app && exec bundle exec sidekiq ...`)."
	whyLone = "The Sidekiq command is the only command of the `-c` script. bash then execs it itself, so Sidekiq becomes PID 1 and gets SIGTERM; " +
		"Debian's /bin/sh (dash 0.5.12, measured; Ubuntu's /bin/sh is dash too) does not: it stays PID 1 and Sidekiq is SIGKILLed as with a compound command. " +
		"Whether this works depends on the image's shell, and adding one command (`cd /app && ...`) breaks it."
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
	whyNotEssential   = "When a non-essential Sidekiq container exits or crashes the task keeps running without it: ECS neither replaces the task nor counts the failure in the deployment."
	fixNotEssential   = "Set \"essential\": true on the Sidekiq container."
	whySidecar        = "On stop, ECS sends SIGTERM to all containers at once unless dependsOn orders them. An essential sidecar (a proxy, an agent) may exit first, " +
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
	sidekiqArgs     []string
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
		// The image's ENTRYPOINT is taken to be the one script given; command is its "$@".
		a.scriptFile(a.in.EntrypointScripts[0], cmd, 0)
	case len(ep) == 0 && len(cmd) == 0:
		a.imageCmd()
	default:
		argv := append(append([]string{}, ep...), cmd...)
		a.stage(argv, 0)
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
		a.stopFrom = "unset: the EC2 agent's ECS_CONTAINER_STOP_TIMEOUT"
	case a.launchType == LaunchTypeEC2:
		a.stopTimeout = DefaultStopTimeout
		a.stopFrom = "unset: the EC2 agent's default (ECS_CONTAINER_STOP_TIMEOUT)"
	case a.launchType == LaunchTypeFargate:
		a.stopTimeout = DefaultStopTimeout
		a.stopFrom = "unset: the Fargate default"
	default:
		a.stopTimeout = DefaultStopTimeout
		a.stopFrom = "unset: the default on Fargate and EC2 (launch type unknown)"
	}
}

// ---- the launch chain ----

var initPrograms = map[string]string{
	"tini": "tini", "tini-static": "tini", "tini-static-amd64": "tini", "tini-static-arm64": "tini",
	"docker-init": "tini", "dumb-init": "dumb-init", "catatonit": "catatonit",
}

var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "ash": true, "zsh": true, "ksh": true, "mksh": true}

// stage follows one step of the argv chain: init, shell, exec'ing wrappers, scripts,
// Sidekiq itself.
func (a *analyzer) stage(args []string, depth int) {
	if depth > 16 {
		return
	}
	if len(args) == 0 {
		if len(a.c.Command) == 0 {
			a.imageCmd()
		}
		return
	}
	base := path.Base(args[0])
	switch {
	case initPrograms[base] != "":
		rest, desc := stripInit(initPrograms[base], args)
		a.init = desc
		a.stage(rest, depth+1)
	case shells[base]:
		a.shellStage(base, args, depth)
	case base == "env":
		i := 1
		for i < len(args) && (strings.HasPrefix(args[i], "-") || isAssignment(args[i])) {
			if args[i] == "-u" || args[i] == "-C" || args[i] == "-S" {
				i++
			}
			i++
		}
		a.stage(args[min(i, len(args)):], depth+1)
	case base == "bundle" && len(args) > 1 && args[1] == "exec":
		a.stage(args[2:], depth+1)
	case base == "gosu" || base == "su-exec":
		a.stage(args[min(2, len(args)):], depth+1)
	case base == "nice" || base == "nohup" || base == "setsid":
		i := 1
		for i < len(args) && strings.HasPrefix(args[i], "-") {
			if args[i] == "-n" {
				i++
			}
			i++
		}
		a.stage(args[min(i, len(args)):], depth+1)
	case isSidekiqProgram(base):
		a.sidekiq(args)
	case (base == "ruby" || base == "jruby") && len(args) > 1 && isSidekiqProgram(args[1]):
		a.sidekiq(args[1:])
	default:
		if sf, ok := a.matchScript(args[0]); ok {
			a.wrapper = true
			a.scriptFile(sf, args[1:], depth+1)
			return
		}
		for i, w := range args {
			if isSidekiqProgram(w) {
				// Some launcher (rails, foreman, a script) with sidekiq among its arguments.
				if i > 0 && !strings.HasPrefix(base, "bundle") {
					a.unchecked(args[0])
				}
				a.sidekiq(args[i:])
				return
			}
		}
		a.unchecked(args[0])
	}
}

// stripInit removes an init program and its options and describes it.
func stripInit(kind string, args []string) ([]string, string) {
	i := 1
	group := kind == "dumb-init" // dumb-init signals the whole process group by default
	for i < len(args) {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if !strings.HasPrefix(a, "-") {
			break
		}
		switch a {
		case "-g":
			group = true
		case "-c", "--single-child":
			if kind == "dumb-init" {
				group = false
			}
		case "-p", "-e", "-r", "--rewrite":
			i++
		}
		i++
	}
	desc := path.Base(args[0])
	if kind == "tini" && group {
		desc += " -g"
	}
	return args[min(i, len(args)):], desc
}

// shellStage handles `sh -c script args…` and `sh script args…`.
func (a *analyzer) shellStage(shell string, args []string, depth int) {
	i, isC := 1, false
	for i < len(args) && len(args[i]) > 1 && (args[i][0] == '-' || args[i][0] == '+') && args[i] != "--" {
		if args[i] == "-o" || args[i] == "+o" {
			i += 2
			continue
		}
		if !strings.HasPrefix(args[i], "--") && strings.ContainsRune(args[i][1:], 'c') {
			isC = true
		}
		i++
	}
	if i < len(args) && args[i] == "--" {
		i++
	}
	if i >= len(args) {
		a.unchecked(strings.Join(args, " "))
		return
	}
	a.wrapper = true
	if !isC {
		if sf, ok := a.matchScript(args[i]); ok {
			a.scriptFile(sf, args[i+1:], depth+1)
			return
		}
		a.unchecked(args[i])
		return
	}
	var positional []string // "$@" of a -c script: the arguments after $0
	if i+2 <= len(args)-1 {
		positional = args[i+2:]
	}
	a.script(shell, args[i], "", positional, depth)
}

// matchScript finds the entry point file for a program path: same base name, or the only
// file given.
func (a *analyzer) matchScript(prog string) (ScriptFile, bool) {
	for _, sf := range a.in.EntrypointScripts {
		if path.Base(sf.Path) == path.Base(prog) && !a.usedScripts[sf.Path] {
			return sf, true
		}
	}
	if len(a.in.EntrypointScripts) == 1 && !a.usedScripts[a.in.EntrypointScripts[0].Path] {
		return a.in.EntrypointScripts[0], true
	}
	return ScriptFile{}, false
}

func (a *analyzer) scriptFile(sf ScriptFile, args []string, depth int) {
	a.usedScripts[sf.Path] = true
	a.wrapper = true
	a.script("", sf.Content, sf.Path, args, depth)
}

// unchecked notes a program or script the check cannot see into.
func (a *analyzer) unchecked(prog string) {
	a.unknownPath = true
	f := a.add(CodeEntrypointScriptUnknown, finding.Warning,
		fmt.Sprintf("the container starts %q, which this check cannot see into", prog), whyUncheckedEP, fixUncheckedEP)
	f.Evidence = prog
}

func (a *analyzer) imageCmd() {
	if a.imageCmdFlagged {
		return
	}
	a.imageCmdFlagged = true
	a.unknownPath = true
	a.add(CodeImageCmdNotOverridden, finding.Warning, "command is not set: the image's CMD starts the process, which cannot be checked from here", whyImageCmd, fixImageCmd)
}

func (a *analyzer) sidekiq(args []string) {
	if a.sidekiqSeen {
		return
	}
	a.sidekiqSeen = true
	a.sidekiqArgs = args
}

// builtins that mention words without running them.
var nonLaunchers = map[string]bool{
	"[": true, "[[": true, "test": true, "echo": true, "printf": true, ":": true, "true": true, "set": true,
	"export": true, "cd": true, "shift": true, "local": true, "readonly": true, "trap": true, "wait": true,
	"kill": true, "sleep": true, "mkdir": true, "rm": true, "cat": true, "grep": true, "sed": true, "chown": true,
	"cp": true, "mv": true, "ln": true, "touch": true, "unset": true, "source": true, ".": true,
}

// launchCandidates returns the commands that may start the main process: those that run
// sidekiq or "$@".
func launchCandidates(s *Script) []*SimpleCommand {
	var out []*SimpleCommand
	for _, c := range s.Commands {
		if len(c.Args) == 0 || nonLaunchers[c.Name()] {
			continue
		}
		if c.Name() == "exec" && len(c.execArgs()) == 0 {
			continue // `exec >log 2>&1`: redirects only
		}
		for _, w := range c.Args {
			if isSidekiqProgram(w.Lit) || isDollarAt(w.Lit) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

func runsSidekiq(c *SimpleCommand) bool {
	for _, w := range c.Args {
		if isSidekiqProgram(w.Lit) {
			return true
		}
	}
	return false
}

func isDollarAt(lit string) bool {
	return lit == "$@" || lit == "${@}" || lit == "$*" || lit == "${*}"
}

// expand turns the words of a command into argv, substituting "$@" with args.
func expand(words []Word, args []string) []string {
	var out []string
	for _, w := range words {
		if isDollarAt(w.Lit) {
			out = append(out, args...)
			continue
		}
		out = append(out, w.Lit)
	}
	return out
}

// termTrap describes the TERM traps of a script.
type termTrap struct {
	cmd        *SimpleCommand
	action     string
	forwarding bool // the action kills someone
	waits      bool // and waits for it
}

func termTraps(s *Script) []termTrap {
	var out []termTrap
	for _, t := range s.Traps {
		args := t.Args[1:]
		if len(args) > 0 && (args[0].Lit == "-p" || args[0].Lit == "-l") {
			continue
		}
		if len(args) > 0 && args[0].Lit == "--" {
			args = args[1:]
		}
		if len(args) < 2 || args[0].Lit == "-" {
			continue
		}
		term := false
		for _, sig := range args[1:] {
			switch strings.ToUpper(sig.Lit) {
			case "TERM", "SIGTERM", "15":
				term = true
			}
		}
		if !term {
			continue
		}
		act := args[0].Lit
		out = append(out, termTrap{cmd: t, action: act,
			forwarding: strings.Contains(act, "kill"),
			waits:      strings.Contains(act, "kill") && strings.Contains(act, "wait")})
	}
	return out
}

// script checks a `-c` script (file == "") or an entry point script file.
func (a *analyzer) script(shell, src, file string, args []string, depth int) {
	kind := fmt.Sprintf("the `%s -c` script", shell)
	code := CodeShellWrapperNoExec
	if file != "" {
		kind = "the entry point script " + file
		code = CodeEntrypointNoExec
	}
	s, err := ParseShell(src)
	if err != nil {
		a.broken = true
		f := a.add(code, finding.Error, fmt.Sprintf("%s cannot be parsed (%v); assuming Sidekiq is not exec'd", kind, err), whyPID1, fixPID1)
		f.File = file
		f.Evidence = oneLine(src)
		return
	}
	cands := launchCandidates(s)
	var target *SimpleCommand
	if len(cands) > 0 {
		target = cands[len(cands)-1]
		// An exec in the shell's own process anywhere among the candidates replaces the
		// shell (e.g. `exec sidekiq` in one branch of a case).
		// Among several, prefer one that runs Sidekiq itself over `exec "$@"`: a case
		// statement cannot be evaluated here, and both replace the shell.
		var execd *SimpleCommand
		for i := len(cands) - 1; i >= 0; i-- {
			if cands[i].Exec() && cands[i].SameProcess {
				if execd == nil || runsSidekiq(cands[i]) && !runsSidekiq(execd) {
					execd = cands[i]
				}
			}
		}
		if execd != nil {
			target = execd
		}
	} else if file == "" && len(s.Commands) > 0 {
		target = s.Commands[len(s.Commands)-1]
	}
	if target == nil {
		if file != "" {
			a.unknownPath = true
			f := a.add(CodeEntrypointNoExec, finding.Warning, fmt.Sprintf("%s has no line that visibly starts the process (no `exec \"$@\"`, no sidekiq)", kind), whyEntrypoint, fixEntrypoint)
			f.File = file
		}
		return
	}
	words := target.Args
	if target.Exec() {
		words = target.execArgs()
	}
	next := expand(words, args)
	evidence := target.Text(src)
	traps := termTraps(s)
	setLoc := func(f *Finding) {
		f.File = file
		if file != "" {
			f.Line = target.Line
			f.Evidence = evidence
		} else {
			f.Evidence = oneLine(src)
		}
	}

	exec := target.Exec() && target.SameProcess
	switch {
	case exec:
		// Fine: the shell replaces itself with the process. Traps before exec do not
		// survive it.
	case forwardsAndWaits(traps):
		// A script that forwards TERM to its child and waits for it is a hand-made init.
	case len(traps) > 0 && traps[0].forwarding:
		f := a.add(code, finding.Warning, fmt.Sprintf("%s forwards TERM with a trap (`%s`) but the trap does not wait for the process to exit", kind, traps[0].action),
			"When the trap returns, the script ends; as PID 1 its exit takes the container down and the kernel SIGKILLs Sidekiq in the middle of its shutdown.",
			fixTrap)
		setLoc(f)
		a.atRisk = true
	case file == "" && len(traps) == 0 && isLone(s, target):
		a.shellDependent = true
		f := a.add(CodeShellLoneCommand, finding.Warning, fmt.Sprintf("`%s -c` runs %s as its only command without exec: whether the shell execs it itself depends on the shell", shell, quote(evidence)), whyLone, fixLone)
		setLoc(f)
	case file == "" && shell == "bash" && len(traps) == 0 && bashExecsLast(s, target):
		a.shellDependent = true
		f := a.add(CodeShellLoneCommand, finding.Warning, fmt.Sprintf("`bash -c` runs %s last without exec: bash 5.2 execs it itself, other shells and versions do not", quote(evidence)), whyBashLast, fixLone)
		setLoc(f)
	default:
		a.broken = true
		how := structure(s, target)
		if file != "" && target.SameProcess && !target.InCompound {
			how = "a script's shell never execs its last command by itself"
		}
		msg := fmt.Sprintf("%s runs %s without exec: %s, so the shell stays between ECS's SIGTERM and Sidekiq", kind, quote(evidence), how)
		if target.Exec() {
			msg = fmt.Sprintf("%s runs %s, but the exec %s, so it does not replace the shell that is PID 1", kind, quote(evidence), whereText(target.Where))
		}
		switch {
		case a.init != "" && len(traps) > 0:
			msg += fmt.Sprintf(" (the init, %s, does not fix this: the shell's TERM trap holds the signal until Sidekiq exits)", a.init)
		case a.init != "":
			msg += fmt.Sprintf(" (the init, %s, does not fix this: when the shell exits, the init exits too and the kernel kills Sidekiq)", a.init)
		}
		f := a.add(code, finding.Error, msg, pick(file == "", whyPID1, whyEntrypoint), pick(file == "", fixPID1, fixEntrypoint))
		setLoc(f)
		for _, t := range traps {
			if t.forwarding {
				continue
			}
			act := "ignores it"
			if t.action != "" {
				act = fmt.Sprintf("runs `%s` instead of passing it on", t.action)
			}
			tf := a.add(CodeTrapSwallowsTerm, finding.Error, fmt.Sprintf("%s traps TERM and %s", kind, act), whyTrap, fixTrap)
			tf.File = file
			if file != "" {
				tf.Line = t.cmd.Line
			}
			tf.Evidence = t.cmd.Text(src)
		}
	}
	a.stage(next, depth+1)
}

func forwardsAndWaits(traps []termTrap) bool {
	return len(traps) > 0 && traps[0].waits
}

// isLone reports whether the script is one simple command and nothing else.
func isLone(s *Script, target *SimpleCommand) bool {
	if len(s.Commands) != 1 || s.Commands[0] != target || len(s.Top) != 1 {
		return false
	}
	ao := s.Top[0]
	return !ao.Background && len(ao.Pipelines) == 1 && len(ao.Pipelines[0]) == 1 && ao.Pipelines[0][0].simple == target
}

// bashExecsLast reports whether bash (5.2, measured in shape_test.go) execs target itself:
// target is the last command of the script, and the right operand of the script's last
// `;`/`&&`/`||` connection is that simple command alone.
func bashExecsLast(s *Script, target *SimpleCommand) bool {
	if len(s.Top) == 0 || s.Commands[len(s.Commands)-1] != target || !target.SameProcess || target.InCompound {
		return false
	}
	last := s.Top[len(s.Top)-1]
	if last.Background {
		return false
	}
	lp := last.Pipelines[len(last.Pipelines)-1]
	if len(lp) != 1 || lp[0].simple != target {
		return false
	}
	if len(s.Top) == 1 {
		return len(last.Pipelines) >= 2
	}
	return len(last.Pipelines) == 1
}

// structure says why the target does not replace the shell.
func structure(s *Script, target *SimpleCommand) string {
	if !target.SameProcess {
		return "it " + whereText(target.Where)
	}
	if target.InCompound {
		return "it runs inside a compound command (if/while/case/{ })"
	}
	if target.Index < len(s.Commands)-1 {
		return "other commands follow it"
	}
	return "other commands come before it"
}

func whereText(where string) string {
	switch where {
	case "pipeline":
		return "is part of a pipeline"
	case "background":
		return "runs in the background (&)"
	case "subshell":
		return "runs in a subshell ( … )"
	case "function":
		return "is inside a shell function"
	}
	return "does not run in the shell's own process"
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
	val, cfg := "", ""
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
		case strings.HasPrefix(a, "--timeout="):
			val = strings.TrimPrefix(a, "--timeout=")
		case strings.HasPrefix(a, "-t="):
			val = strings.TrimPrefix(a, "-t=")
		case strings.HasPrefix(a, "-t") && !strings.HasPrefix(a, "--"):
			val = a[2:]
		case a == "-C" || a == "--config":
			cfg = next()
		case strings.HasPrefix(a, "--config="):
			cfg = strings.TrimPrefix(a, "--config=")
		case strings.HasPrefix(a, "-C") && !strings.HasPrefix(a, "--"):
			cfg = strings.TrimPrefix(a[2:], "=")
		}
	}
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

func (a *analyzer) budget() {
	if !a.sidekiqSeen {
		a.sidekiqFrom = "unknown: the Sidekiq command is not visible"
		if !a.unknownPath {
			a.add(CodeSidekiqTimeoutUnknown, finding.Info, "no Sidekiq command found in the container's command or entry point: the shutdown budget is not checked", whyUnknownTimeout,
				"Name the Sidekiq container with --container, or set its command in exec form.")
		}
		return
	}
	secs, known, cfg, raw := SidekiqTimeout(a.sidekiqArgs[1:])
	switch {
	case !known && cfg != "":
		a.sidekiqFrom = "unknown: set in " + cfg
		f := a.add(CodeSidekiqTimeoutUnknown, finding.Warning,
			fmt.Sprintf("Sidekiq reads its options from %s, whose :timeout: cannot be read from here; stopTimeout is %d s", cfg, a.stopTimeout),
			whyUnknownTimeout, fmt.Sprintf("Make sure :timeout: in %s is at most %d s (stopTimeout - %d s), or pass -t on the command line.", cfg, a.stopTimeout-ShutdownMargin, ShutdownMargin))
		f.Numbers = map[string]int{"stop_timeout_s": a.stopTimeout}
		return
	case !known:
		a.sidekiqFrom = fmt.Sprintf("unknown: -t %s", raw)
		f := a.add(CodeSidekiqTimeoutUnknown, finding.Warning,
			fmt.Sprintf("Sidekiq's -t is %q, which is not a number here; stopTimeout is %d s", raw, a.stopTimeout),
			whyUnknownTimeout, fmt.Sprintf("Make sure it is at most %d s (stopTimeout - %d s).", a.stopTimeout-ShutdownMargin, ShutdownMargin))
		f.Numbers = map[string]int{"stop_timeout_s": a.stopTimeout}
		return
	}
	a.sidekiqTimeout = secs
	if raw == "" {
		a.sidekiqFrom = "Sidekiq's default, no -t"
	} else {
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
	if a.launchType == LaunchTypeEC2 && a.c.StopTimeout == nil {
		fix += " (When unset, the EC2 agent's ECS_CONTAINER_STOP_TIMEOUT applies: setting stopTimeout on the container is more reliable.)"
	}
	f := a.add(CodeStopTimeoutTooShort, finding.Error, msg, why, fix)
	f.Numbers = map[string]int{"stop_timeout_s": a.stopTimeout, "sidekiq_timeout_s": secs, "needed_s": need}
}

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
