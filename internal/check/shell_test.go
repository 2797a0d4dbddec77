package check

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseShellStructure(t *testing.T) {
	tests := []struct {
		name        string
		src         string
		target      string // Lit of the command name expected as last launch candidate
		exec        bool
		sameProcess bool
		where       string
		lone        bool
	}{
		{name: "lone", src: `bundle exec sidekiq -t 20`, target: "bundle", sameProcess: true, lone: true},
		{name: "exec", src: `exec bundle exec sidekiq`, target: "exec", exec: true, sameProcess: true, lone: true},
		{name: "and", src: `cd /app && bundle exec sidekiq`, target: "bundle", sameProcess: true},
		{name: "exec after and", src: `cd /app && exec bundle exec sidekiq -t 8`, target: "exec", exec: true, sameProcess: true},
		{name: "semicolon trailing", src: `bundle exec sidekiq; echo done`, target: "bundle", sameProcess: true},
		{name: "pipe", src: `bundle exec sidekiq 2>&1 | tee /tmp/log`, target: "bundle", where: "pipeline"},
		{name: "background", src: "bundle exec sidekiq &\nwait", target: "bundle", where: "background"},
		{name: "subshell exec", src: `(cd /app && exec bundle exec sidekiq)`, target: "exec", exec: true, where: "subshell"},
		{name: "quotes", src: `echo "a && b" 'c; d' && exec "bundle" exec sidekiq -C "$CONFIG"`, target: "exec", exec: true, sameProcess: true},
		{name: "comment", src: "# start\nexec sidekiq # the worker", target: "exec", exec: true, sameProcess: true, lone: true},
		{name: "if", src: "if [ \"$1\" = sidekiq ]; then\n  exec bundle exec sidekiq\nfi\nexec \"$@\"", target: "exec", exec: true, sameProcess: true},
		{name: "case", src: "case \"$1\" in\n  worker) exec sidekiq ;;\n  *) exec \"$@\" ;;\nesac", target: "exec", exec: true, sameProcess: true},
		{name: "heredoc", src: "cat > /tmp/x <<EOF\nsidekiq && (\nEOF\nexec sidekiq", target: "exec", exec: true, sameProcess: true},
		{name: "command substitution", src: `export X=$(cat /etc/hostname | tr -d ')'); exec sidekiq`, target: "exec", exec: true, sameProcess: true},
		{name: "backslash", src: `exec bundle exec \` + "\n" + `sidekiq`, target: "exec", exec: true, sameProcess: true, lone: true},
		{name: "while", src: "while true; do bundle exec sidekiq; done", target: "bundle", sameProcess: true},
		{name: "exec redirect only", src: "exec >/proc/1/fd/1 2>&1\nbundle exec sidekiq", target: "bundle", sameProcess: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseShell(tt.src)
			if err != nil {
				t.Fatalf("ParseShell(%q): %v", tt.src, err)
			}
			c := launchCandidates(s)
			if len(c) == 0 {
				t.Fatalf("no launch candidate in %q", tt.src)
			}
			got := c[len(c)-1]
			if got.Name() != tt.target || got.Exec() != tt.exec || got.SameProcess != tt.sameProcess || got.Where != tt.where {
				t.Errorf("last candidate = %q exec=%v same=%v where=%q; want %q exec=%v same=%v where=%q",
					got.Name(), got.Exec(), got.SameProcess, got.Where, tt.target, tt.exec, tt.sameProcess, tt.where)
			}
			if l := isLone(s, got); l != tt.lone {
				t.Errorf("isLone = %v, want %v", l, tt.lone)
			}
		})
	}
}

func TestParseShellErrors(t *testing.T) {
	for _, src := range []string{`echo "unterminated`, `echo 'x`, `(sidekiq`, `if true; then sidekiq`, `a && `, `| b`, "cat <<", `echo $(x`, "case x in a) b"} {
		if _, err := ParseShell(src); !errors.Is(err, ErrShellSyntax) {
			t.Errorf("ParseShell(%q) error = %v, want ErrShellSyntax", src, err)
		}
	}
}

func TestSidekiqTimeout(t *testing.T) {
	tests := []struct {
		args  []string
		secs  int
		known bool
		cfg   string
	}{
		{nil, 25, true, ""},
		{[]string{"-t", "8"}, 8, true, ""},
		{[]string{"-t8"}, 8, true, ""},
		{[]string{"-t=9"}, 9, true, ""},
		{[]string{"--timeout", "10"}, 10, true, ""},
		{[]string{"--timeout=11"}, 11, true, ""},
		{[]string{"-C", "config/sidekiq.yml"}, 0, false, "config/sidekiq.yml"},
		{[]string{"--config=c.yml", "-t", "7"}, 7, true, ""},
		{[]string{"-t", "$TIMEOUT"}, 0, false, ""},
		{[]string{"-q", "default", "-c", "5"}, 25, true, ""},
	}
	for _, tt := range tests {
		secs, known, cfg, _ := SidekiqTimeout(tt.args)
		if secs != tt.secs || known != tt.known || cfg != tt.cfg {
			t.Errorf("SidekiqTimeout(%q) = %d %v %q, want %d %v %q", tt.args, secs, known, cfg, tt.secs, tt.known, tt.cfg)
		}
	}
}

// TestShellExecModelMatchesRealShells runs each script shape under the machine's real bash
// and dash with `sleep` standing in for Sidekiq, and checks that the process the shell
// started is the shell itself (the shell exec'd the command) exactly when the parser's model
// (isLone/bashExecsLast) says bash does, and never for dash. This is what the SP002 texts
// claim ("bash 5.2 execs…, dash 0.5.12 does not").
func TestShellExecModelMatchesRealShells(t *testing.T) {
	shapes := []string{
		`sleep 30`,
		`cd /tmp && sleep 30`,
		`cd /tmp; sleep 30`,
		`cd /tmp || true; sleep 30`,
		`X=1; export Y=2; cd /tmp && sleep 30`,
		`true && true && sleep 30`,
		`sleep 30; true`,
		`sleep 30 | cat`,
		`trap 'echo x' TERM; sleep 30`,
		`if true; then sleep 30; fi`,
		`(sleep 30)`,
	}
	for _, sh := range []string{"bash", "dash"} {
		if _, err := exec.LookPath(sh); err != nil {
			t.Fatalf("%s not on PATH: %v", sh, err)
		}
		for _, src := range shapes {
			s, err := ParseShell(src)
			if err != nil {
				t.Fatalf("ParseShell(%q): %v", src, err)
			}
			target := s.Commands[len(s.Commands)-1]
			for _, c := range s.Commands {
				if c.Name() == "sleep" {
					target = c
				}
			}
			want := false
			if sh == "bash" && len(termTraps(s)) == 0 {
				want = isLone(s, target) || bashExecsLast(s, target)
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
