// Package testenv starts the real parts drainctl's integration tests run against: a
// redis-server on a free loopback port and real Sidekiq 6.4.1 / 7.3.2 / 8.1.7 processes running
// the job file in testdata/sidekiq. Everything it starts is ended by PID when the test ends.
//
// Tests choose a Sidekiq release with SidekiqOptions.Version and cover every release by ranging
// over Versions. 6.4.1 is the system's (Debian bookworm); 7.3.2 and 8.1.7 live in the cache
// scripts/deps.sh fills ($DRAINCTL_CACHE, default ~/.cache/drainctl). 8.1.7 runs on Debian
// forky's Ruby 3.3 and glibc through that root's own dynamic loader, so its process title starts
// with the loader's path: find it by PID, never by command line.
//
// When a part is missing the test is skipped, unless DRAINCTL_REQUIRE_INTEGRATION=1 (as in
// .ci/run), which turns the skip into a failure.
package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lists the job file writes to.
const (
	StartedList = "drainctl:test:started"
	DoneList    = "drainctl:test:done"
)

// Required reports whether missing integration parts fail the test instead of skipping it.
func Required() bool { return os.Getenv("DRAINCTL_REQUIRE_INTEGRATION") == "1" }

// Missing skips the test, or fails it when integration tests are required.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (run scripts/deps.sh)"
	if Required() {
		t.Fatalf("integration part missing: %s", msg)
	}
	t.Skipf("integration part missing: %s", msg)
}

// RepoRoot is the repository's top folder, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Redis is a redis-server child process on a loopback port.
type Redis struct {
	Addr     string
	Port     int
	Password string
	dir      string
	extra    []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// RedisOption changes how StartRedis configures the server.
type RedisOption func(*Redis)

// WithPassword makes the server require a password (requirepass).
func WithPassword(pw string) RedisOption { return func(r *Redis) { r.Password = pw } }

// WithArgs adds raw redis-server arguments.
func WithArgs(args ...string) RedisOption {
	return func(r *Redis) { r.extra = append(r.extra, args...) }
}

// StartRedis starts a redis-server for this test and stops it at cleanup.
func StartRedis(t testing.TB, opts ...RedisOption) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		Missing(t, "redis-server not on PATH")
	}
	r, err := StartRedisServer(t.TempDir(), opts...)
	if err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(r.Stop)
	return r
}

// ErrNoRedisServer is returned by StartRedisServer when redis-server is not on PATH.
var ErrNoRedisServer = errors.New("redis-server not on PATH")

// StartRedisServer starts a redis-server on a free loopback port with dir as its working
// folder, without a testing.TB, for the demo and the local stack (internal/stack). The caller
// must call Stop.
func StartRedisServer(dir string, opts ...RedisOption) (*Redis, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, ErrNoRedisServer
	}
	r := &Redis{dir: dir}
	for _, o := range opts {
		o(r)
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if r.Port, err = freePort(); err != nil {
			continue
		}
		r.Addr = fmt.Sprintf("127.0.0.1:%d", r.Port)
		if err = r.start(); err == nil {
			return r, nil
		}
	}
	return nil, err
}

// PID is the server's process ID, 0 once stopped.
func (r *Redis) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URL is the redis:// URL of the server (with the password when one is set).
func (r *Redis) URL() string {
	if r.Password != "" {
		return fmt.Sprintf("redis://:%s@%s/0", r.Password, r.Addr)
	}
	return fmt.Sprintf("redis://%s/0", r.Addr)
}

func (r *Redis) start() error {
	args := []string{"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--daemonize", "no", "--loglevel", "warning"}
	if r.Password != "" {
		args = append(args, "--requirepass", r.Password)
	}
	args = append(args, r.extra...)
	cmd := exec.Command("redis-server", args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server on port %d exited at start", r.Port)
		default:
		}
		if r.serves(cmd.Process.Pid) {
			r.mu.Lock()
			r.cmd = cmd
			r.mu.Unlock()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return fmt.Errorf("redis-server on port %d did not accept connections in 10s", r.Port)
}

// serves reports whether the server answering on r.Addr is the process pid. Answering alone
// is not enough: between a Stop and a Restart, or between freePort and the bind, another
// test's redis-server can take the port, and two tests sharing one Redis flush or expire each
// other's keys (TestLockRefresh lost its lock that way under load).
func (r *Redis) serves(pid int) bool {
	c := redis.NewClient(&redis.Options{Addr: r.Addr, Password: r.Password, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: time.Second, MaxRetries: -1, PoolSize: 1, DisableIdentity: true})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := c.Info(ctx, "server").Result()
	return err == nil && strings.Contains(info, "\nprocess_id:"+strconv.Itoa(pid)+"\r\n")
}

// Stop ends the server by PID. Data is lost (no persistence).
func (r *Redis) Stop() {
	r.mu.Lock()
	cmd := r.cmd
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for {
			if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
				close(done)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
	}
}

// Restart stops the server and starts a fresh one on the same port (its data is gone,
// as after a failover to an empty replica).
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	r.Stop()
	var err error
	for i := 0; i < 50; i++ {
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("restart redis-server: %v", err)
}

// Client returns a go-redis client for the test's own assertions; closed at cleanup.
func (r *Redis) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr, Password: r.Password})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// SidekiqVersion names one of the Sidekiq releases the tests run.
type SidekiqVersion string

// The Sidekiq releases under test.
const (
	Sidekiq6 SidekiqVersion = "6.4.1" // Debian bookworm's, on the system's Ruby 3.1
	Sidekiq7 SidekiqVersion = "7.3.2" // Debian trixie's gems, on the system's Ruby 3.1
	Sidekiq8 SidekiqVersion = "8.1.7" // Debian forky's gems, Ruby 3.3 and glibc, in a private root
)

// Versions lists every Sidekiq release the tests run, oldest first, for table tests.
var Versions = []SidekiqVersion{Sidekiq6, Sidekiq7, Sidekiq8}

// InfoVersion is the "version" field this release writes into its heartbeat's info JSON; empty
// for 6.4.1, which writes none (the field came in 7.0.2).
func (v SidekiqVersion) InfoVersion() string {
	if v == Sidekiq6 || v == "" {
		return ""
	}
	return string(v)
}

// BeatInterval is how often this release writes its heartbeat (Sidekiq's BEAT_PAUSE): 5 s on
// 6.x, 10 s on 7 and 8. A signal pushed through Redis is acted on within one interval and shows
// as quiet="true" within two.
func (v SidekiqVersion) BeatInterval() time.Duration {
	if v == Sidekiq6 || v == "" {
		return 5 * time.Second
	}
	return 10 * time.Second
}

// SidekiqOptions describes one Sidekiq process.
type SidekiqOptions struct {
	Version     SidekiqVersion
	RedisURL    string
	Hostname    string   // DYNO: the hostname part of the identity; empty = the machine's
	Tag         string   // -g
	Concurrency int      // -c; zero means 2
	Timeout     int      // -t seconds; zero means 5
	Queues      []string // -q; empty means default
	Env         []string // extra environment
	JobsFile    string   // -r; empty means testdata/sidekiq/jobs.rb
}

// SidekiqCommand returns argv and environment (additions to os.Environ) that run Sidekiq
// with these options, or an error naming what is missing. The ECS simulator's local-process
// tasks use it too.
func SidekiqCommand(o SidekiqOptions) (argv []string, env []string, err error) {
	if o.Concurrency == 0 {
		o.Concurrency = 2
	}
	if o.Timeout == 0 {
		o.Timeout = 5
	}
	if o.JobsFile == "" {
		o.JobsFile = filepath.Join(RepoRoot(), "testdata", "sidekiq", "jobs.rb")
	}
	flags := []string{"-r", o.JobsFile, "-c", strconv.Itoa(o.Concurrency), "-t", strconv.Itoa(o.Timeout)}
	if o.Tag != "" {
		flags = append(flags, "-g", o.Tag)
	}
	for _, q := range o.Queues {
		flags = append(flags, "-q", q)
	}
	env = append(env, "REDIS_URL="+o.RedisURL, "RAILS_ENV=test", "APP_ENV=test")
	if o.Hostname != "" {
		env = append(env, "DYNO="+o.Hostname)
	}
	env = append(env, o.Env...)
	switch o.Version {
	case Sidekiq6, "":
		// bookworm's ruby-sidekiq installs the sidekiq program itself.
		bin, lerr := exec.LookPath("sidekiq")
		if lerr != nil {
			return nil, nil, errors.New("sidekiq 6.4.1 not on PATH (apt-get install ruby-sidekiq)")
		}
		return append([]string{bin}, flags...), env, nil
	case Sidekiq7, Sidekiq8:
		ruby, renv, cache, rerr := rubyCommand(o.Version)
		if rerr != nil {
			return nil, nil, rerr
		}
		argv = append(append(ruby, cache[cacheEnvKeys[o.Version].bin]), flags...)
		return argv, append(env, renv...), nil
	}
	return nil, nil, fmt.Errorf("unknown Sidekiq version %q", o.Version)
}

// RubyCommand returns the command (argv before the script and its arguments) and environment
// (additions to os.Environ) of the Ruby that runs Sidekiq release v, with v's gems on the load
// path: for a test's own Ruby script that uses Sidekiq's API (`require "sidekiq/api"`). 6.4.1
// and 7.3.2 use the system's ruby; 8.1.7 its private Ruby 3.3, started through its own loader
// (the system's Ruby 3.1 cannot load Sidekiq 8).
func RubyCommand(v SidekiqVersion) (argv []string, env []string, err error) {
	argv, env, _, err = rubyCommand(v)
	return argv, env, err
}

// rubyCommand is RubyCommand that also returns what deps.sh wrote for a cached release.
func rubyCommand(v SidekiqVersion) (argv, env []string, cache map[string]string, err error) {
	switch v {
	case Sidekiq6, "", Sidekiq7:
		if v == Sidekiq7 {
			if cache, err = readCacheEnv(v); err != nil {
				return nil, nil, nil, err
			}
			env = []string{"RUBYLIB=" + cache["SIDEKIQ7_RUBYLIB"]}
		}
		ruby, lerr := exec.LookPath("ruby")
		if lerr != nil {
			return nil, nil, nil, errors.New("ruby not on PATH (apt-get install ruby)")
		}
		return []string{ruby}, env, cache, nil
	case Sidekiq8:
		if cache, err = readCacheEnv(v); err != nil {
			return nil, nil, nil, err
		}
		argv = []string{cache["SIDEKIQ8_LOADER"], "--library-path", cache["SIDEKIQ8_LIBRARY_PATH"], cache["SIDEKIQ8_RUBY"]}
		return argv, []string{"RUBYLIB=" + cache["SIDEKIQ8_RUBYLIB"]}, cache, nil
	}
	return nil, nil, nil, fmt.Errorf("unknown Sidekiq version %q", v)
}

// cacheEnvKeys lists, per cached release, the file scripts/deps.sh writes into the cache and the
// keys it must hold; every *_BIN, *_LOADER and *_RUBY value names a file that must exist.
var cacheEnvKeys = map[SidekiqVersion]struct {
	file string
	keys []string
	bin  string
}{
	Sidekiq7: {"sidekiq7.env", []string{"SIDEKIQ7_RUBYLIB", "SIDEKIQ7_BIN"}, "SIDEKIQ7_BIN"},
	Sidekiq8: {"sidekiq8.env", []string{"SIDEKIQ8_LOADER", "SIDEKIQ8_LIBRARY_PATH", "SIDEKIQ8_RUBY",
		"SIDEKIQ8_RUBYLIB", "SIDEKIQ8_BIN"}, "SIDEKIQ8_BIN"},
}

// CacheDir is the folder scripts/deps.sh unpacks Sidekiq 7 and 8 into: $DRAINCTL_CACHE, else
// $XDG_CACHE_HOME/drainctl, else ~/.cache/drainctl.
func CacheDir() string {
	if cache := os.Getenv("DRAINCTL_CACHE"); cache != "" {
		return cache
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "drainctl")
}

// readCacheEnv reads the load path scripts/deps.sh wrote for a cached release and checks that
// the files it names exist.
func readCacheEnv(v SidekiqVersion) (map[string]string, error) {
	spec, ok := cacheEnvKeys[v]
	if !ok {
		return nil, fmt.Errorf("sidekiq %s is not a cached release", v)
	}
	path := filepath.Join(CacheDir(), spec.file)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sidekiq %s not installed: %s missing", v, path)
	}
	defer f.Close()
	e := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if k, val, ok := strings.Cut(sc.Text(), "="); ok {
			e[k] = val
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	for _, k := range spec.keys {
		if e[k] == "" {
			return nil, fmt.Errorf("sidekiq %s load path incomplete: %s has no %s", v, path, k)
		}
		if strings.HasSuffix(k, "_BIN") || strings.HasSuffix(k, "_LOADER") || strings.HasSuffix(k, "_RUBY") {
			if _, err := os.Stat(e[k]); err != nil {
				return nil, fmt.Errorf("sidekiq %s not installed: %w", v, err)
			}
		}
	}
	return e, nil
}

// Sidekiq is a running Sidekiq child process.
type Sidekiq struct {
	Opts SidekiqOptions
	PID  int
	Log  string // path of its combined output

	cmd    *exec.Cmd
	exited chan struct{}
	state  *os.ProcessState
}

// StartSidekiq starts a Sidekiq process and kills it (by PID) at cleanup if it still runs.
// It returns once the process is started; use WaitRegistered to wait for its first heartbeat.
func StartSidekiq(t testing.TB, o SidekiqOptions) *Sidekiq {
	t.Helper()
	argv, env, err := SidekiqCommand(o)
	if err != nil {
		Missing(t, "%v", err)
	}
	logPath := filepath.Join(t.TempDir(), "sidekiq.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = RepoRoot()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sidekiq: %v", err)
	}
	s := &Sidekiq{Opts: o, PID: cmd.Process.Pid, Log: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		s.state = cmd.ProcessState
		logf.Close()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("sidekiq %s pid %d log:\n%s", o.Version, s.PID, tail(string(b), 4000))
			}
		}
	})
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Signal sends sig to the process.
func (s *Sidekiq) Signal(sig syscall.Signal) error { return s.cmd.Process.Signal(sig) }

// Exited is closed when the process has ended.
func (s *Sidekiq) Exited() <-chan struct{} { return s.exited }

// Wait waits up to d for the process to end and returns its exit state (nil on timeout).
func (s *Sidekiq) Wait(d time.Duration) *os.ProcessState {
	select {
	case <-s.exited:
		return s.state
	case <-time.After(d):
		return nil
	}
}

// WaitRegistered waits until the process has written its heartbeat to Redis and returns its
// identity (hostname:pid:nonce). Namespace is the key prefix without the colon ("" for none).
func (s *Sidekiq) WaitRegistered(t testing.TB, rdb *redis.Client, namespace string, within time.Duration) string {
	t.Helper()
	key := "processes"
	if namespace != "" {
		key = namespace + ":" + key
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	suffix := ":" + strconv.Itoa(s.PID) + ":"
	for {
		ids, _ := rdb.SMembers(ctx, key).Result()
		for _, id := range ids {
			if strings.Contains(id, suffix) {
				return id
			}
		}
		select {
		case <-s.exited:
			b, _ := os.ReadFile(s.Log)
			t.Fatalf("sidekiq %s exited before registering:\n%s", s.Opts.Version, tail(string(b), 4000))
		case <-ctx.Done():
			b, _ := os.ReadFile(s.Log)
			t.Fatalf("sidekiq %s pid %d not registered within %s:\n%s", s.Opts.Version, s.PID, within, tail(string(b), 4000))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// NewJID returns a random 24-hex job id, like Sidekiq's.
func NewJID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Enqueue pushes a job the way Sidekiq's client does (SADD queues, LPUSH queue:<q> with the
// JSON payload, float-second timestamps) and returns its jid. Namespace prefixes the keys.
func Enqueue(ctx context.Context, rdb *redis.Client, namespace, queue, class string, args ...any) (string, error) {
	if queue == "" {
		queue = "default"
	}
	if args == nil {
		args = []any{}
	}
	jid := NewJID()
	now := float64(time.Now().UnixNano()) / 1e9
	payload, err := json.Marshal(map[string]any{
		"class": class, "args": args, "queue": queue, "jid": jid, "retry": true,
		"created_at": now, "enqueued_at": now,
	})
	if err != nil {
		return "", err
	}
	prefix := ""
	if namespace != "" {
		prefix = namespace + ":"
	}
	_, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, prefix+"queues", queue)
		p.LPush(ctx, prefix+"queue:"+queue, payload)
		return nil
	})
	return jid, err
}

// DoneCounts returns how many times each jid appears in the done list.
func DoneCounts(ctx context.Context, rdb *redis.Client) (map[string]int, error) {
	ids, err := rdb.LRange(ctx, DoneList, 0, -1).Result()
	if err != nil {
		return nil, err
	}
	m := make(map[string]int, len(ids))
	for _, id := range ids {
		m[id]++
	}
	return m, nil
}
