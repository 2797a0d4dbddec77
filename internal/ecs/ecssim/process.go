package ecssim

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// PID1Semantics reports whether task processes run as PID 1 of their own PID namespace (root
// and util-linux unshare are needed). Only then does a task behave as a container does when
// stopped: the kernel delivers SIGTERM to PID 1 only if PID 1 handles it, so a shell wrapper
// ignores it and its children never hear it. Without it, a task's leader gets the default
// action of SIGTERM (it dies) and the rest of its group is SIGKILLed.
var PID1Semantics = sync.OnceValue(func() bool {
	if os.Geteuid() != 0 {
		return false
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return false
	}
	return exec.Command("unshare", append(unsharePrefix[1:], "true")...).Run() == nil
})

// unsharePrefix runs a task's command as PID 1 of a new PID namespace with a /proc of its
// own (as in a container: Sidekiq reads /proc/<its pid>/status for its RSS, and its pid is
// the namespace's); --kill-child ends the namespace when unshare itself is killed.
var unsharePrefix = []string{"unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--"}

// initProgram is the init that initProcessEnabled runs as the task's PID 1: Docker's
// --init is docker-init, which is tini, started as `docker-init -- <command>` (no -g).
const initProgram = "tini"

// lookInit finds initProgram in PATH; a variable so tests can make it missing.
var lookInit = func() (string, error) { return exec.LookPath(initProgram) }

// initEnabled reports whether the task definition's first container (the one that runs as
// the task's process) sets linuxParameters.initProcessEnabled.
func initEnabled(td *taskDef) bool {
	if td == nil || len(td.containers) == 0 {
		return false
	}
	lp := td.containers[0].LinuxParameters
	return lp != nil && lp.InitProcessEnabled != nil && *lp.InitProcessEnabled
}

// closeGrace caps the SIGTERM→SIGKILL wait of processes still running at Close.
const closeGrace = 5 * time.Second

// brokenWrapper is the shell that stands in for a container whose PID 1 is `sh -c "…"`: a
// trapped TERM is deferred until the foreground command ends (POSIX), so the command never
// hears it. A handler, not `trap "" TERM`, so the child does not inherit an ignored TERM.
const brokenWrapper = `trap : TERM; "$@"; s=$?; echo "ecssim: command exited with status $s" >&2; exit $s`

type proc struct {
	cmd      *exec.Cmd
	pid      int
	ns       bool // pid is unshare's; the task's PID 1 is its child
	broken   bool
	exited   bool // the leader has exited (a zombie until reaped): no more signals
	termSent bool
	log      *os.File
}

// startProcess runs the task's process in its own process group and starts its reaper.
// Called with s.mu held.
func (s *Sim) startProcess(t *task) error {
	pt := t.svc.proc
	if len(pt.Argv) == 0 {
		return errors.New("process template has no argv")
	}
	argv := pt.Argv
	if pt.BrokenSignalPath {
		argv = append([]string{"sh", "-c", brokenWrapper, "sh"}, pt.Argv...)
	}
	if initEnabled(t.td) {
		tini, err := lookInit()
		if err != nil {
			return fmt.Errorf("initProcessEnabled is true but the init (%s, what docker --init runs as docker-init) is not installed: %w", initProgram, err)
		}
		argv = append([]string{tini, "--"}, argv...)
	}
	ns := PID1Semantics()
	if ns {
		argv = append(append([]string{}, unsharePrefix...), argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = pt.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	env := append(os.Environ(), pt.Env...)
	if t.td != nil && len(t.td.containers) > 0 {
		for _, e := range t.td.containers[0].Environment {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	if pt.HostnameEnv != "" {
		env = append(env, pt.HostnameEnv+"="+t.hostname())
	}
	env = append(env, "ECS_CONTAINER_METADATA_URI_V4=", "ECSSIM_TASK_ARN="+t.arn, "ECSSIM_TASK_IP="+t.ip)
	cmd.Env = env
	p := &proc{cmd: cmd, broken: pt.BrokenSignalPath, ns: ns}
	if pt.LogDir != "" {
		f, err := os.Create(filepath.Join(pt.LogDir, t.id+".log"))
		if err != nil {
			return fmt.Errorf("create task log: %w", err)
		}
		p.log = f
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		if p.log != nil {
			p.log.Close()
		}
		return err
	}
	p.pid = cmd.Process.Pid
	t.proc = p
	s.procWG.Add(1)
	go s.reap(t, p)
	s.logf("ecssim: task %s process %d started: %q", t.id, p.pid, argv)
	return nil
}

// reap waits for the task's leader process, kills what is left of its process group (as the
// kernel does to a container's processes when its PID 1 dies), then records the exit.
func (s *Sim) reap(t *task, p *proc) {
	defer s.procWG.Done()
	waitExited(p.pid)
	s.mu.Lock()
	p.exited = true
	// The leader is a zombie until Wait below, so its PID (= the group ID) cannot be reused.
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	s.mu.Unlock()
	_ = p.cmd.Wait()
	if p.log != nil {
		p.log.Close()
	}
	code := exitCode(p.cmd.ProcessState)
	s.mu.Lock()
	defer s.mu.Unlock()
	t.exitCode = &code
	now := s.now()
	if t.wanted() {
		// The process ended by itself: ECS stops the task.
		wasHealthy := t.healthy
		s.finishStop(t, now, "EssentialContainerExited", "Essential container in task exited")
		if !wasHealthy {
			s.countFailure(t)
		}
		return
	}
	t.lastStatus, t.stoppedAt = statusStopped, now
	s.logf("ecssim: task %s process %d exited with %d", t.id, p.pid, code)
}

// waitExited blocks until pid has exited without reaping it (waitid with WNOWAIT).
func waitExited(pid int) {
	const (
		pPID    = 1
		wExited = 4
		wNoWait = 0x1000000
	)
	var info [128]byte
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info[0])), wExited|wNoWait, 0, 0)
		if errno != syscall.EINTR {
			return
		}
	}
}

// exitCode is the container exit code Docker would report: the status, or 128+signal.
func exitCode(ps *os.ProcessState) int32 {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int32(ws.Signal())
	}
	return int32(ps.ExitCode())
}

// terminate sends SIGTERM to the task's PID 1 only, as `docker stop` does (so a shell that
// does not forward it keeps its children from hearing it), and schedules SIGKILL to the whole
// group after grace. Called with s.mu held.
func (s *Sim) terminate(p *proc, grace time.Duration) {
	if p.exited {
		return
	}
	if !p.termSent {
		p.termSent = true
		s.sendTerm(p)
	}
	time.AfterFunc(grace, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !p.exited {
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		}
	})
}

// sendTerm delivers SIGTERM to the task's PID 1. A container always has its PID 1 when docker
// stop signals it; in a PID namespace unshare forks it a moment after starting, and a TERM to
// unshare itself would end the task with 143 whatever its command does with TERM. So until the
// namespace's PID 1 exists, the signal waits for it. Called with s.mu held.
func (s *Sim) sendTerm(p *proc) {
	if p.exited {
		return
	}
	if pid, ok := p.init(); ok {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		return
	}
	time.AfterFunc(5*time.Millisecond, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.sendTerm(p)
	})
}

// init is the host PID of the task's PID 1: unshare's child in a PID namespace, else the
// leader itself. ok is false while unshare has not forked it yet.
func (p *proc) init() (pid int, ok bool) {
	if !p.ns {
		return p.pid, true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.pid, p.pid))
	if err != nil {
		return p.pid, true // unshare is gone: nothing left to signal but itself
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		if c, err := strconv.Atoi(f[0]); err == nil {
			return c, true
		}
	}
	return 0, false
}

// stopAllProcesses stops every process still running, for Close.
func (s *Sim) stopAllProcesses() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clusters {
		for _, svc := range c.services {
			for _, t := range svc.tasks {
				if t.proc == nil || t.proc.exited {
					continue
				}
				if t.wanted() {
					t.desiredStatus, t.stopCode, t.stoppedReason = statusStopped, "UserInitiated", "Simulator shut down"
					t.lastStatus, t.stoppingAt = statusStopping, s.now()
				}
				s.terminate(t.proc, min(t.stopTimeout, closeGrace))
			}
		}
	}
}
