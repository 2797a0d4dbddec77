package check

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"mvdan.cc/sh/v3/syntax"

	"github.com/drainctl/drainctl/internal/finding"
)

// This file follows the container's launch chain (init, shell, script, exec'ing wrappers,
// Sidekiq) and judges each shell step with the script model of shell.go.

var initPrograms = map[string]string{
	"tini": "tini", "tini-static": "tini", "tini-static-amd64": "tini", "tini-static-arm64": "tini",
	"docker-init": "tini", "dumb-init": "dumb-init", "catatonit": "catatonit",
}

var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "ash": true, "zsh": true, "ksh": true, "mksh": true}

// stage follows one step of the argv chain: init, shell, exec'ing wrappers, scripts,
// Sidekiq itself.
func (a *analyzer) stage(args []arg, depth int) {
	if depth > 16 {
		return
	}
	if len(args) == 0 {
		if len(a.c.Command) == 0 {
			a.imageCmd()
		}
		return
	}
	words := strs(args)
	base := path.Base(words[0])
	switch {
	case initPrograms[base] != "":
		i, desc := stripInit(initPrograms[base], words)
		a.init = desc
		a.stage(args[i:], depth+1)
	case shells[base]:
		a.shellStage(base, args, depth)
	case base == "env":
		i := 1
		for i < len(words) && (strings.HasPrefix(words[i], "-") || isAssignment(words[i])) {
			if words[i] == "-u" || words[i] == "-C" || words[i] == "-S" {
				i++
			}
			i++
		}
		a.stage(args[min(i, len(args)):], depth+1)
	case base == "bundle" && len(words) > 1 && words[1] == "exec":
		a.stage(args[2:], depth+1)
	case base == "gosu" || base == "su-exec":
		a.stage(args[min(2, len(args)):], depth+1)
	case base == "nice" || base == "nohup" || base == "setsid":
		i := 1
		for i < len(words) && strings.HasPrefix(words[i], "-") {
			if words[i] == "-n" {
				i++
			}
			i++
		}
		a.stage(args[min(i, len(args)):], depth+1)
	case isSidekiqProgram(base):
		a.sidekiq(args)
	case (base == "ruby" || base == "jruby") && len(words) > 1 && isSidekiqProgram(words[1]):
		a.sidekiq(args[1:])
	default:
		if sf, ok := a.matchScript(words[0]); ok {
			a.wrapper = true
			a.scriptFile(sf, "", words[0], args[1:], true, false, depth+1)
			return
		}
		for i, w := range words {
			if isSidekiqProgram(w) {
				// Some launcher (rails, foreman, a script) with sidekiq among its arguments.
				if i > 0 && !strings.HasPrefix(base, "bundle") {
					a.unchecked(words[0])
				}
				a.sidekiq(args[i:])
				return
			}
		}
		a.unchecked(words[0])
	}
}

// isAssignment reports whether a word is NAME=value.
func isAssignment(w string) bool {
	name, _, ok := strings.Cut(w, "=")
	return ok && isName(name)
}

// stripInit finds the end of an init program's options and describes the init.
func stripInit(kind string, args []string) (int, string) {
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
	return min(i, len(args)), desc
}

// shellStage handles `sh -c script [$0 args…]` and `sh script args…`.
func (a *analyzer) shellStage(shell string, args []arg, depth int) {
	i, isC, errexit := 1, false, false
	for i < len(args) && len(args[i].s) > 1 && (args[i].s[0] == '-' || args[i].s[0] == '+') && args[i].s != "--" {
		o := args[i].s
		if o == "-o" || o == "+o" {
			if i+1 < len(args) && args[i+1].s == "errexit" {
				errexit = o == "-o"
			}
			i += 2
			continue
		}
		if !strings.HasPrefix(o, "--") {
			isC = isC || strings.ContainsRune(o[1:], 'c')
			if strings.ContainsRune(o[1:], 'e') {
				errexit = o[0] == '-'
			}
		}
		i++
	}
	if i < len(args) && args[i].s == "--" {
		i++
	}
	if i >= len(args) {
		a.unchecked(strings.Join(strs(args), " "))
		return
	}
	a.wrapper = true
	if !isC {
		if sf, ok := a.matchScript(args[i].s); ok {
			a.scriptFile(sf, shell, args[i].s, args[i+1:], true, errexit, depth+1)
			return
		}
		a.unchecked(args[i].s)
		return
	}
	in := scriptInput{shell: shell, arg0: shell, argsSet: true, errexit: errexit}
	if i+1 < len(args) {
		in.arg0 = args[i+1].s
	}
	if i+2 < len(args) {
		in.args = args[i+2:] // "$@" of a -c script: the arguments after $0
	}
	a.script(args[i].s, "", in, depth)
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

// scriptFile checks an entry point script run by shell (empty: by its shebang) as arg0 with
// args as "$@" (unknown unless argsSet).
func (a *analyzer) scriptFile(sf ScriptFile, shell, arg0 string, args []arg, argsSet, errexit bool, depth int) {
	a.usedScripts[sf.Path] = true
	a.wrapper = true
	if shell == "" {
		interp, opts := shebang(sf.Content)
		switch {
		case interp == "":
			shell = "sh"
		case !shells[interp]:
			a.unchecked(sf.Path + " (a " + interp + " script)")
			return
		default:
			shell = interp
			errexit = strings.HasPrefix(opts, "-") && strings.ContainsRune(opts, 'e')
		}
	}
	a.script(sf.Content, sf.Path, scriptInput{shell: shell, arg0: arg0, args: args, argsSet: argsSet, errexit: errexit}, depth)
}

// shebang returns the interpreter's base name of a `#!` line (through env) and its first
// option.
func shebang(src string) (interp, opt string) {
	line, _, _ := strings.Cut(src, "\n")
	if !strings.HasPrefix(line, "#!") {
		return "", ""
	}
	f := strings.Fields(line[2:])
	if len(f) > 0 && path.Base(f[0]) == "env" {
		f = f[1:]
		for len(f) > 0 && strings.HasPrefix(f[0], "-") {
			f = f[1:]
		}
	}
	if len(f) == 0 {
		return "", ""
	}
	if len(f) > 1 {
		opt = f[1]
	}
	return path.Base(f[0]), opt
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

func (a *analyzer) sidekiq(args []arg) {
	if a.sidekiqSeen {
		return
	}
	a.sidekiqSeen = true
	a.sidekiqArgs = args
}

// env is the container's environment, for the shell's expansions.
func (a *analyzer) env() []envVar {
	var out []envVar
	for k, v := range a.c.Environment {
		out = append(out, envVar{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// builtins and tools that mention words without running them.
var nonLaunchers = map[string]bool{
	"[": true, "[[": true, "test": true, "echo": true, "printf": true, ":": true, "true": true, "set": true,
	"export": true, "cd": true, "shift": true, "local": true, "readonly": true, "trap": true, "wait": true,
	"kill": true, "sleep": true, "mkdir": true, "rm": true, "cat": true, "grep": true, "sed": true, "chown": true,
	"cp": true, "mv": true, "ln": true, "touch": true, "unset": true, "source": true, ".": true,
}

// launchTarget picks the command that starts the process: among the commands that run
// Sidekiq, the first that keeps the shell (a path on which Sidekiq is not exec'd is what
// breaks the signal path), else the last; without Sidekiq in sight, the last exec'd command
// that runs "$@", else the last such command; for a -c script, else its last command.
func launchTarget(run *shellRun, isC bool) *shellCmd {
	var sk, dollarAt []*shellCmd
	for _, c := range run.cmds {
		if nonLaunchers[c.name()] || c.name() == "exec" && !c.isExec() {
			continue
		}
		runs := false
		for _, w := range c.program() {
			runs = runs || isSidekiqProgram(w.s)
		}
		switch {
		case runs:
			sk = append(sk, c)
		case c.dollarAt:
			dollarAt = append(dollarAt, c)
		}
	}
	if len(sk) > 0 {
		for _, c := range sk {
			if !c.replacesShell() {
				return c
			}
		}
		return sk[len(sk)-1]
	}
	for i := len(dollarAt) - 1; i >= 0; i-- {
		if dollarAt[i].replacesShell() {
			return dollarAt[i]
		}
	}
	if len(dollarAt) > 0 {
		return dollarAt[len(dollarAt)-1]
	}
	if isC && len(run.cmds) > 0 {
		return run.cmds[len(run.cmds)-1]
	}
	return nil
}

// script checks a `-c` script (file == "") or an entry point script file.
func (a *analyzer) script(src, file string, in scriptInput, depth int) {
	kind := fmt.Sprintf("the `%s -c` script", in.shell)
	code := CodeShellWrapperNoExec
	if file != "" {
		kind = "the entry point script " + file
		code = CodeEntrypointNoExec
	}
	in.env = a.env()
	run, err := analyzeShell(src, in)
	if err != nil {
		a.broken = true
		f := a.add(code, finding.Error, fmt.Sprintf("%s cannot be parsed (%v); assuming Sidekiq is not exec'd", kind, err), whyPID1, fixPID1)
		f.File = file
		f.Evidence = oneLine(src)
		return
	}
	target := launchTarget(run, file == "")
	if target == nil {
		if file != "" {
			a.unknownPath = true
			f := a.add(CodeEntrypointNoExec, finding.Warning, fmt.Sprintf("%s has no line that visibly starts the process (no `exec \"$@\"`, no sidekiq)", kind), whyEntrypoint, fixEntrypoint)
			f.File = file
		}
		return
	}
	var next []arg
	for _, w := range target.program() {
		if len(w.unknown) == 1 && w.unknown[0] == fromImageCmd {
			continue // "$@" is the image's CMD: the next stage says so
		}
		next = append(next, w)
	}
	evidence := target.text(src)
	trap := run.trap
	setLoc := func(f *Finding) {
		f.File = file
		if file != "" {
			f.Line = target.line()
			f.Evidence = evidence
		} else {
			f.Evidence = oneLine(src)
		}
	}

	switch {
	case target.replacesShell():
		// Fine: the shell replaces itself with the process. Traps before exec do not
		// survive it.
	case trap != nil && trap.waits:
		// A script that forwards TERM to its child and waits for it is a hand-made init.
	case trap != nil && trap.forwarding:
		a.forwardingTrap(run, target, kind, code, file)
	case file == "" && trap == nil && isLone(run, target) && in.shell == "bash":
		f := a.add(CodeShellLoneCommand, finding.Info, fmt.Sprintf("`bash -c` runs %s as its only command: bash execs it itself, so Sidekiq is PID 1", quote(evidence)), whyLoneBash, fixLone)
		setLoc(f)
	case file == "" && trap == nil && isLone(run, target):
		a.broken = true
		who := "dash (Debian's and Ubuntu's /bin/sh) does not exec it"
		switch in.shell {
		case "dash":
			who = "dash does not exec it"
		case "sh":
		default:
			who = fmt.Sprintf("%s is not known to exec it (dash does not)", in.shell)
		}
		msg := fmt.Sprintf("`%s -c` runs %s as its only command without exec: %s, so the shell stays PID 1 between ECS's SIGTERM and Sidekiq%s", in.shell, quote(evidence), who, a.initNote(false))
		f := a.add(CodeShellLoneCommand, finding.Error, msg, whyLone, fixLone)
		setLoc(f)
	case file == "" && in.shell == "bash" && trap == nil && bashExecsLast(run, target):
		a.shellDependent = true
		f := a.add(CodeShellLoneCommand, finding.Warning, fmt.Sprintf("`bash -c` runs %s last without exec: bash 5.2 execs it itself, other shells and versions do not", quote(evidence)), whyBashLast, fixLone)
		setLoc(f)
	default:
		a.broken = true
		how := structure(run, target)
		if file != "" && target.where == "" && target.compound == "" && target.fn == "" {
			how = "a script's shell never execs its last command by itself"
		}
		msg := fmt.Sprintf("%s runs %s without exec: %s, so the shell stays between ECS's SIGTERM and Sidekiq", kind, quote(evidence), how)
		if target.isExec() {
			msg = fmt.Sprintf("%s runs %s, but the exec %s, so it does not replace the shell that is PID 1", kind, quote(evidence), whereText(target.where))
		}
		msg += a.initNote(trap != nil)
		f := a.add(code, finding.Error, msg, pick(file == "", whyPID1, whyEntrypoint), pick(file == "", fixPID1, fixEntrypoint))
		setLoc(f)
		if trap != nil {
			act := "ignores it"
			if trap.action != "" {
				act = fmt.Sprintf("runs `%s` instead of passing it on", trap.action)
			}
			tf := a.add(CodeTrapSwallowsTerm, finding.Error, fmt.Sprintf("%s traps TERM and %s", kind, act), whyTrap, fixTrap)
			tf.File = file
			if file != "" {
				tf.Line = trap.cmd.line()
			}
			tf.Evidence = trap.cmd.text(src)
		}
	}
	a.stage(next, depth+1)
}

// initNote says why the container's init does not save a shell that does not exec.
func (a *analyzer) initNote(trapped bool) string {
	switch {
	case a.init != "" && trapped:
		return fmt.Sprintf(" (the init, %s, does not fix this: the shell's TERM trap holds the signal until Sidekiq exits)", a.init)
	case a.init != "":
		return fmt.Sprintf(" (the init, %s, does not fix this: when the shell exits, the init exits too and the kernel kills Sidekiq)", a.init)
	}
	return ""
}

// forwardingTrap judges a TERM trap that signals the process but does not wait for it:
// fine when the script waits a second time after the trap (the trap interrupts the first
// wait), unless `set -e` ends the script when that first wait returns the trap's status.
func (a *analyzer) forwardingTrap(run *shellRun, target *shellCmd, kind, code, file string) {
	var waits []*shellCmd
	for _, c := range run.cmds[target.index+1:] {
		if c.name() == "wait" && c.where == "" {
			waits = append(waits, c)
		}
	}
	if len(waits) >= 2 && !(waits[0].errexit && !waits[0].guarded) {
		return // the second wait waits for Sidekiq's shutdown
	}
	a.atRisk = true
	var f *Finding
	if len(waits) >= 2 {
		f = a.add(code, finding.Warning, fmt.Sprintf("%s forwards TERM with a trap (`%s`) and waits again, but `set -e` ends the script as soon as the interrupted `wait` returns the trap's status", kind, run.trap.action),
			"The TERM trap interrupts the first `wait`, which then returns 143; with `set -e` the shell exits right there instead of reaching the second `wait`. As PID 1 its exit takes the container down and the kernel SIGKILLs Sidekiq in the middle of its shutdown.",
			"Guard the first wait (`wait \"$pid\" || true`) or drop `set -e` before it, or let the trap wait: `trap 'kill -TERM \"$pid\"; wait \"$pid\"' TERM`.")
		f.Line = waits[0].line()
		f.Evidence = waits[0].text(run.src)
	} else {
		f = a.add(code, finding.Warning, fmt.Sprintf("%s forwards TERM with a trap (`%s`) but the trap does not wait for the process to exit", kind, run.trap.action),
			"When the trap returns, the script ends; as PID 1 its exit takes the container down and the kernel SIGKILLs Sidekiq in the middle of its shutdown.",
			fixTrap)
		f.Line = target.line()
		f.Evidence = target.text(run.src)
	}
	f.File = file
	if file == "" {
		f.Line = 0
		f.Evidence = oneLine(run.src)
	}
}

// isLone reports whether the script is the target command and nothing else.
func isLone(run *shellRun, t *shellCmd) bool {
	if len(run.file.Stmts) != 1 || t.where != "" || t.compound != "" || t.fn != "" {
		return false
	}
	s := run.file.Stmts[0]
	return !s.Negated && !s.Background && !s.Coprocess && s.Cmd == t.call
}

// bashExecsLast reports whether bash (5.2, measured in shell_test.go) execs the target
// itself: it is the script's last command, and either the right operand of the script's
// only `&&`/`||` list, or a lone command after `;`/newline-separated ones.
func bashExecsLast(run *shellRun, t *shellCmd) bool {
	stmts := run.file.Stmts
	if len(stmts) == 0 || t.where != "" || t.compound != "" || t.fn != "" {
		return false
	}
	last := stmts[len(stmts)-1]
	if last.Negated || last.Background {
		return false
	}
	if last.Cmd == t.call {
		return len(stmts) >= 2
	}
	b, ok := last.Cmd.(*syntax.BinaryCmd)
	return ok && (b.Op == syntax.AndStmt || b.Op == syntax.OrStmt) && len(stmts) == 1 && b.Y.Cmd == t.call && !b.Y.Negated
}

// structure says why the target does not replace the shell.
func structure(run *shellRun, t *shellCmd) string {
	switch {
	case t.where != "":
		return "it " + whereText(t.where)
	case t.fn != "":
		return fmt.Sprintf("it runs inside the shell function %s", t.fn)
	case t.compound != "":
		return "it runs inside " + t.compound
	case t.index < len(run.cmds)-1:
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
	}
	return "does not run in the shell's own process"
}
