package check

import (
	"errors"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestShellLaunchTarget(t *testing.T) {
	tests := []struct {
		name  string
		shell string   // default sh
		src   string   // the script
		args  []string // "$@"
		noCmd bool     // "$@" unknown: the image's CMD
		env   []envVar
		// The command that starts the process, as written, and what the walk says of it.
		target   string
		replaces bool
		where    string
		fn       string
		lone     bool
		program  []string // when set: the command line it starts, expanded
	}{
		{name: "lone", src: `bundle exec sidekiq -t 20`, target: "bundle exec sidekiq -t 20", lone: true},
		{name: "exec", src: `exec bundle exec sidekiq`, target: "exec bundle exec sidekiq", replaces: true, lone: true},
		{name: "and", src: `cd /app && bundle exec sidekiq`, target: "bundle exec sidekiq"},
		{name: "exec after and", src: `cd /app && exec bundle exec sidekiq -t 8`, target: "exec bundle exec sidekiq -t 8", replaces: true},
		{name: "semicolon trailing", src: `bundle exec sidekiq; echo done`, target: "bundle exec sidekiq"},
		{name: "pipe", src: `bundle exec sidekiq 2>&1 | tee /tmp/log`, target: "bundle exec sidekiq", where: "pipeline"},
		{name: "background", src: "bundle exec sidekiq &\nwait", target: "bundle exec sidekiq", where: "background"},
		{name: "subshell exec", src: `(cd /app && exec bundle exec sidekiq)`, target: "exec bundle exec sidekiq", where: "subshell"},
		{name: "quotes", src: `echo "a && b" 'c; d' && exec "bundle" exec sidekiq -C "$CONFIG"`, target: `exec "bundle" exec sidekiq -C "$CONFIG"`, replaces: true,
			program: []string{"bundle", "exec", "sidekiq", "-C", "$CONFIG"}},
		{name: "comment", src: "# start\nexec sidekiq # the worker", target: "exec sidekiq", replaces: true, lone: true},
		{name: "if taken", src: "if [ \"$1\" = sidekiq ]; then\n  exec bundle exec sidekiq\nfi\nexec \"$@\"", args: []string{"sidekiq"},
			target: "exec bundle exec sidekiq", replaces: true},
		{name: "if not taken", src: "if [ \"$1\" = sidekiq ]; then\n  exec bundle exec sidekiq -t 1\nfi\nexec \"$@\"", args: []string{"bundle", "exec", "sidekiq", "-t", "9"},
			target: `exec "$@"`, replaces: true, program: []string{"bundle", "exec", "sidekiq", "-t", "9"}},
		{name: "case", src: "case \"$1\" in\n  worker) exec sidekiq ;;\n  *) exec \"$@\" ;;\nesac", args: []string{"worker"}, target: "exec sidekiq", replaces: true},
		{name: "heredoc", src: "cat > /tmp/x <<EOF\nsidekiq && (\nEOF\nexec sidekiq", target: "exec sidekiq", replaces: true},
		{name: "command substitution", src: `export X=$(cat /etc/hostname | tr -d ')'); exec sidekiq`, target: "exec sidekiq", replaces: true},
		{name: "backslash", src: "exec bundle exec \\\nsidekiq", target: "exec bundle exec \\\nsidekiq", replaces: true, lone: true},
		{name: "while", src: "while true; do bundle exec sidekiq; done", target: "bundle exec sidekiq"},
		{name: "exec redirect only", src: "exec >/proc/1/fd/1 2>&1\nbundle exec sidekiq", target: "bundle exec sidekiq"},

		// What the hand-written parser could not follow.
		{name: "function that execs", src: "start() { exec bundle exec sidekiq \"$@\"; }\nstart -t 5", target: `exec bundle exec sidekiq "$@"`,
			replaces: true, fn: "start", program: []string{"bundle", "exec", "sidekiq", "-t", "5"}},
		{name: "function that does not exec", src: "start() {\n  bundle exec sidekiq\n}\nstart", target: "bundle exec sidekiq", fn: "start"},
		{name: "function never called", src: "debug() { bundle exec sidekiq -v; }\nexec bundle exec sidekiq", target: "exec bundle exec sidekiq", replaces: true},
		{name: "case dispatch without exec", src: "case \"$1\" in\n  sidekiq)\n    shift\n    bundle exec sidekiq \"$@\"\n    ;;\n  *) exec \"$@\" ;;\nesac",
			args: []string{"sidekiq", "-t", "20"}, target: `bundle exec sidekiq "$@"`, program: []string{"bundle", "exec", "sidekiq", "-t", "20"}},
		{name: "case dispatch, $1 unknown: the branch that starts Sidekiq decides", noCmd: true,
			src:    "case \"$1\" in\n  web) exec puma ;;\n  worker) bundle exec sidekiq ;;\n  *) exec \"$@\" ;;\nesac",
			target: "bundle exec sidekiq"},
		{name: "case patterns", src: "case \"$1\" in\n  web|puma) exec puma ;;\n  side*|worker) exec bundle exec sidekiq ;;\nesac\nsidekiq", args: []string{"sidekiq"},
			target: "exec bundle exec sidekiq", replaces: true},
		{name: "case without a match falls through", src: "case \"$1\" in\n  web) exec puma ;;\nesac\nexec bundle exec sidekiq", args: []string{"worker"},
			target: "exec bundle exec sidekiq", replaces: true},
		{name: "heredoc with tabs and a quoted delimiter", src: "cat <<-'END' >/tmp/x\n\texec sidekiq | tee\n\tEND\nbundle exec sidekiq", target: "bundle exec sidekiq"},
		{name: "prepend the program to flags", src: "if [ \"${1#-}\" != \"$1\" ]; then\n  set -- sidekiq \"$@\"\nfi\nexec \"$@\"", args: []string{"-t", "5"},
			target: `exec "$@"`, replaces: true, program: []string{"sidekiq", "-t", "5"}},
		{name: "bash [[ ]] with a pattern", shell: "bash", src: "if [[ $1 == side* ]]; then exec bundle exec sidekiq; fi\nbundle exec sidekiq", args: []string{"sidekiq"},
			target: "exec bundle exec sidekiq", replaces: true},
		{name: "timeout from the environment", src: `exec sidekiq -t $T`, env: []envVar{{"T", "40"}}, target: "exec sidekiq -t $T", replaces: true, lone: true,
			program: []string{"sidekiq", "-t", "40"}},
		{name: "timeout from an assignment", src: "T=40\nexec sidekiq -t \"${T:-25}\"", target: `exec sidekiq -t "${T:-25}"`, replaces: true,
			program: []string{"sidekiq", "-t", "40"}},
		{name: "set -e and a trap", src: "set -e\ntrap 'kill -TERM \"$pid\"' TERM\nbundle exec sidekiq &\npid=$!\nwait \"$pid\"", target: "bundle exec sidekiq", where: "background"},
		{name: "exit ends the script", src: "exec bundle exec sidekiq\nbundle exec sidekiq -v", target: "exec bundle exec sidekiq", replaces: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shell := tt.shell
			if shell == "" {
				shell = "sh"
			}
			run, err := analyzeShell(tt.src, scriptInput{shell: shell, arg0: shell, args: plainArgs(tt.args), argsSet: !tt.noCmd, env: tt.env})
			if err != nil {
				t.Fatalf("analyzeShell(%q): %v", tt.src, err)
			}
			got := launchTarget(run, true)
			if got == nil {
				t.Fatalf("no launch target in %q", tt.src)
			}
			if got.text(tt.src) != tt.target || got.replacesShell() != tt.replaces || got.where != tt.where || got.fn != tt.fn {
				t.Errorf("target = %q replaces=%v where=%q fn=%q; want %q replaces=%v where=%q fn=%q",
					got.text(tt.src), got.replacesShell(), got.where, got.fn, tt.target, tt.replaces, tt.where, tt.fn)
			}
			if l := isLone(run, got); l != tt.lone {
				t.Errorf("isLone = %v, want %v", l, tt.lone)
			}
			if tt.program != nil && !reflect.DeepEqual(strs(got.program()), tt.program) {
				t.Errorf("program = %q, want %q", strs(got.program()), tt.program)
			}
		})
	}
}

func TestShellTrapsAndErrexit(t *testing.T) {
	tests := []struct {
		name               string
		src                string
		trapped            bool // a TERM trap is in effect at the end
		action             string
		forwarding, waits  bool
		errexitAtLastWait  bool
		guardedAtFirstWait bool
	}{
		{name: "forward and wait", src: "trap 'kill -TERM \"$pid\"; wait \"$pid\"' TERM INT\nsidekiq & pid=$!\nwait \"$pid\"",
			trapped: true, action: `kill -TERM "$pid"; wait "$pid"`, forwarding: true, waits: true},
		{name: "a function as the action", src: "term() {\n  kill -TERM \"$child\"\n  wait \"$child\"\n}\ntrap term TERM\nsidekiq & child=$!\nwait",
			trapped: true, action: "term", forwarding: true, waits: true},
		{name: "ignore", src: "trap '' TERM\nsidekiq", trapped: true},
		{name: "reset", src: "trap 'echo bye' TERM\ntrap - TERM\nsidekiq"},
		{name: "later trap wins", src: "trap '' 15\ntrap 'kill $p' SIGTERM\nsidekiq & p=$!\nwait $p", trapped: true, action: "kill $p", forwarding: true},
		{name: "a trap in a subshell is not the shell's", src: "(trap '' TERM; true)\nsidekiq"},
		{name: "set -e", src: "set -eu\ntrap 'kill $p' TERM\nsidekiq & p=$!\nwait $p\nwait $p", trapped: true, action: "kill $p", forwarding: true, errexitAtLastWait: true},
		{name: "set -o errexit, guarded wait", src: "set -o errexit\ntrap 'kill $p' TERM\nsidekiq & p=$!\nwait $p || true\nwait $p", trapped: true, action: "kill $p", forwarding: true,
			errexitAtLastWait: true, guardedAtFirstWait: true},
		{name: "set +e", src: "set -e\nset +e\ntrap 'kill $p' TERM\nsidekiq & p=$!\nwait $p", trapped: true, action: "kill $p", forwarding: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run, err := analyzeShell(tt.src, scriptInput{shell: "sh", argsSet: true})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case (run.trap != nil) != tt.trapped:
				t.Fatalf("TERM trap %+v, want one: %v", run.trap, tt.trapped)
			case run.trap != nil && (run.trap.action != tt.action || run.trap.forwarding != tt.forwarding || run.trap.waits != tt.waits):
				t.Errorf("trap = %q forwarding=%v waits=%v, want %q %v %v", run.trap.action, run.trap.forwarding, run.trap.waits, tt.action, tt.forwarding, tt.waits)
			}
			var waits []*shellCmd
			for _, c := range run.cmds {
				if c.name() == "wait" {
					waits = append(waits, c)
				}
			}
			if len(waits) > 0 {
				if last := waits[len(waits)-1]; last.errexit != tt.errexitAtLastWait {
					t.Errorf("errexit at the last wait = %v, want %v", last.errexit, tt.errexitAtLastWait)
				}
				if waits[0].guarded != tt.guardedAtFirstWait {
					t.Errorf("first wait guarded = %v, want %v", waits[0].guarded, tt.guardedAtFirstWait)
				}
			}
		})
	}
}

func TestParseShellErrors(t *testing.T) {
	for _, src := range []string{`echo "unterminated`, `echo 'x`, `(sidekiq`, `if true; then sidekiq`, `a && `, `| b`, "cat <<", `echo $(x`,
		"case x in a) b", strings.Repeat("(", 100000), strings.Repeat("${a:-", 10000)} {
		if _, _, err := parseShell(src, shellLang("sh")); !errors.Is(err, ErrShellSyntax) || strings.Contains(err.Error(), "\n") {
			t.Errorf("parseShell(%.40q) error = %v, want one line wrapping ErrShellSyntax", src, err)
		}
	}
	// A bash feature in a POSIX script: parsed as bash (the image's /bin/sh may be bash).
	if _, lang, err := parseShell("a=(1 2)\nexec sidekiq", shellLang("sh")); err != nil || lang != shellLang("bash") {
		t.Errorf("POSIX script with an array: lang %v, error %v; want bash, nil", lang, err)
	}
}

// TestShellExpansionLimits: expansions that would grow without bound stay unknown instead.
func TestShellExpansionLimits(t *testing.T) {
	src := "a=xxxxxxxxxxxxxxxx\n" + strings.Repeat("a=$a$a$a$a$a$a$a$a\n", 40) + "set -- \"$@\" \"$@\"\n" + strings.Repeat("set -- \"$@\" \"$@\"\n", 40) + "exec sidekiq $a \"$@\""
	start := time.Now()
	run, err := analyzeShell(src, scriptInput{shell: "sh", args: plainArgs([]string{"-t", "5"}), argsSet: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("analysis took %s", d)
	}
	tg := launchTarget(run, true)
	if tg == nil || !tg.replacesShell() {
		t.Fatalf("target = %+v", tg)
	}
	n := 0
	for _, a := range tg.argv {
		n += len(a.s)
	}
	if n > 4*maxLineLen || len(tg.argv) > maxFields {
		t.Errorf("command line of %d bytes in %d words", n, len(tg.argv))
	}
}

func TestSidekiqTimeout(t *testing.T) {
	tests := []struct {
		args  []string
		secs  int
		known bool
		cfg   string
		at    int // the word holding the value
	}{
		{nil, 25, true, "", -1},
		{[]string{"-t", "8"}, 8, true, "", 1},
		{[]string{"-t8"}, 8, true, "", 0},
		{[]string{"-t=9"}, 9, true, "", 0},
		{[]string{"-q", "a", "--timeout", "10"}, 10, true, "", 3},
		{[]string{"--timeout=11"}, 11, true, "", 0},
		{[]string{"-C", "config/sidekiq.yml"}, 0, false, "config/sidekiq.yml", -1},
		{[]string{"--config=c.yml", "-t", "7"}, 7, true, "", 2},
		{[]string{"-t", "$TIMEOUT"}, 0, false, "", 1},
		{[]string{"-q", "default", "-c", "5"}, 25, true, "", -1},
	}
	for _, tt := range tests {
		secs, known, cfg, _ := SidekiqTimeout(tt.args)
		_, at, _ := timeoutOption(tt.args)
		if secs != tt.secs || known != tt.known || cfg != tt.cfg || at != tt.at {
			t.Errorf("SidekiqTimeout(%q) = %d %v %q at %d, want %d %v %q at %d", tt.args, secs, known, cfg, at, tt.secs, tt.known, tt.cfg, tt.at)
		}
	}
}

// TestShellExecModelMatchesRealShells runs each script shape under the machine's real bash
// and dash with `sleep` standing in for Sidekiq, and checks that the process the shell
// started is the shell itself (the shell exec'd the command) exactly when the model
// (isLone/bashExecsLast) says bash does, and never for dash. This is what the SP002 texts
// claim ("bash 5.2 execs…, dash 0.5.12 does not").
func TestShellExecModelMatchesRealShells(t *testing.T) {
	shapes := []string{
		`sleep 30`,
		`sleep 30;`,
		`cd /tmp && sleep 30`,
		`cd /tmp; sleep 30`,
		`cd /tmp || true; sleep 30`,
		`true; true; sleep 30`,
		`X=1; export Y=2; cd /tmp && sleep 30`,
		`true && true && sleep 30`,
		`sleep 30; true`,
		`sleep 30 | cat`,
		`trap 'echo x' TERM; sleep 30`,
		`if true; then sleep 30; fi`,
		`(sleep 30)`,
		`f() { sleep 30; }; f`,
		`{ sleep 30; }`,
	}
	for _, sh := range []string{"bash", "dash"} {
		if _, err := exec.LookPath(sh); err != nil {
			t.Fatalf("%s not on PATH: %v", sh, err)
		}
		for _, src := range shapes {
			run, err := analyzeShell(src, scriptInput{shell: sh, arg0: sh, argsSet: true})
			if err != nil {
				t.Fatalf("analyzeShell(%q): %v", src, err)
			}
			var target *shellCmd
			for _, c := range run.cmds {
				if c.name() == "sleep" {
					target = c
				}
			}
			want := false
			if sh == "bash" && run.trap == nil {
				want = isLone(run, target) || bashExecsLast(run, target)
			}
			got := shellExecs(t, sh, src)
			if got != want {
				t.Errorf("%s -c %q: shell exec'd the command = %v, model says %v", sh, src, got, want)
			}
		}
	}
}

// shellExecs starts `sh -c src` and reports whether the started process became `sleep`.
func shellExecs(t *testing.T, sh, src string) bool {
	t.Helper()
	cmd := exec.Command(sh, "-c", src)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the group we created, by its id
		_ = cmd.Wait()
	}()
	// Wait until a sleep runs in the group: either the shell itself (exec'd) or a child.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm")
		if strings.TrimSpace(string(comm)) == "sleep" {
			return true
		}
		if childSleeping(cmd.Process.Pid) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s -c %q: no sleep started within 5s", sh, src)
	return false
}

// childSleeping reports whether a descendant of pid runs sleep.
func childSleeping(pid int) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		s := string(stat)
		r := strings.LastIndexByte(s, ')')
		if r < 0 {
			continue
		}
		f := strings.Fields(s[r+1:])
		if len(f) < 3 {
			continue
		}
		if pgrp, _ := strconv.Atoi(f[2]); pgrp == pid && n != pid && strings.Contains(s[:r], "(sleep") {
			return true
		}
	}
	return false
}
