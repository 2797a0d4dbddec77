package sidekiq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/drainctl/drainctl/internal/testenv"
)

// sentinel is a redis-server in Sentinel mode, ended by PID at cleanup.
type sentinel struct {
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// startSentinel starts `redis-server sentinel.conf --sentinel` on a free loopback port,
// monitoring masterName at master (authenticating with masterPassword) with a quorum of 1,
// itself requiring password when set; it returns once the Sentinel names the master.
func startSentinel(t *testing.T, masterName string, master *testenv.Redis, password string) *sentinel {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		dir := t.TempDir()
		port := testenv.FreePort(t)
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndaemonize no\ndir %q\nloglevel warning\n"+
			"sentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 60000\n",
			port, dir, masterName, master.Port, masterName)
		if master.Password != "" {
			conf += fmt.Sprintf("sentinel auth-pass %s %q\n", masterName, master.Password)
		}
		if password != "" {
			conf += fmt.Sprintf("requirepass %q\n", password)
		}
		path := filepath.Join(dir, "sentinel.conf") // Sentinel rewrites it: a file of its own
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("redis-server", path, "--sentinel")
		log, err := os.Create(filepath.Join(dir, "sentinel.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			log.Close()
			t.Fatalf("start sentinel: %v", err)
		}
		s := &sentinel{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, done: make(chan struct{})}
		go func() { _ = cmd.Wait(); log.Close(); close(s.done) }()
		t.Cleanup(s.stop)
		if lastErr = s.waitMaster(masterName, master.Addr, password); lastErr == nil {
			return s
		}
		s.stop()
		b, _ := os.ReadFile(log.Name())
		lastErr = fmt.Errorf("%w; log:\n%s", lastErr, b)
	}
	t.Fatalf("start sentinel: %v", lastErr)
	return nil
}

// waitMaster waits until the Sentinel answers SENTINEL get-master-addr-by-name with want.
func (s *sentinel) waitMaster(name, want, password string) error {
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, Password: password, MaxRetries: -1})
	defer sc.Close()
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("sentinel on %s exited at start", s.Addr)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var addr []string
		addr, err = sc.GetMasterAddrByName(ctx, name).Result()
		cancel()
		if err == nil && len(addr) == 2 && net.JoinHostPort(addr[0], addr[1]) == want {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("master at %v, want %s", addr, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("sentinel on %s: no master %s within 10s: %v", s.Addr, name, err)
}

// stop ends the Sentinel by PID: SIGTERM, then SIGKILL after 5 seconds.
func (s *sentinel) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// TestStreamSentinel: through redis+sentinel:// (drainctl's URL: the master's password and
// database in the URL, the Sentinel's own password as sentinel_password), the stream finds
// the master through the Sentinel as go-redis does, and Snapshot, Processes and Scan read
// what go-redis's pipeline reads. An unknown master name, a wrong sentinel_password or a wrong
// master password fails Snapshot, SnapshotOf and Scan with a one-line error that holds no
// password (the first two used to read as an empty fleet, or as processes all gone).
func TestStreamSentinel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const masterPW, sentinelPW = "mast3r-hunter2", "sent1nel-hunter2"
	master := testenv.StartRedis(t, testenv.WithPassword(masterPW))
	admin := redis.NewClient(&redis.Options{Addr: master.Addr, Password: masterPW, DB: 1})
	t.Cleanup(func() { _ = admin.Close() })
	ids, err := fakeFleet(ctx, admin, "shop", 450, 3)
	if err != nil {
		t.Fatal(err)
	}
	admin.Set(ctx, "shop:"+ids[5]+":work", "not a hash", 0)

	for _, tt := range []struct {
		name       string
		sentinelPW string
	}{
		{"open sentinel", ""},
		{"sentinel with a password", sentinelPW},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startSentinel(t, "mymaster", master, tt.sentinelPW)
			open := func(t *testing.T, userinfo, name string) *Client {
				t.Helper()
				raw := "redis+sentinel://" + userinfo + s.Addr + "/" + name + "/1?namespace=shop"
				if tt.sentinelPW != "" {
					raw += "&sentinel_password=" + tt.sentinelPW
				}
				o, err := ParseURL(raw)
				if err != nil {
					t.Fatal(err)
				}
				o.Timeout = 2 * time.Second
				c, err := Open(o)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.Close() })
				return c
			}
			t.Run("equivalence", func(t *testing.T) {
				c := open(t, ":"+masterPW+"@", "mymaster")
				sc := newStreamCounter(t, master)
				sameAsGoRedis(t, c, ids, 3)
				if n := sc.take(t); n < 4 {
					t.Errorf("the master accepted %d connections, want at least the 4 streams'", n)
				}
			})
			t.Run("unknown master", func(t *testing.T) {
				c := open(t, ":"+masterPW+"@", "nosuchmaster")
				// No Sentinel knows the name: an error, not an empty fleet (go-redis's dial error
				// wraps redis.Nil) nor processes that are all gone.
				snap, err := c.Snapshot(ctx)
				if err == nil {
					t.Fatalf("Snapshot of an unknown master: no error, %d processes", len(snap.Processes))
				}
				oneLineNoSecret(t, "Snapshot", err, masterPW, sentinelPW)
				var ce *ConnError
				if !errors.As(err, &ce) {
					t.Errorf("Snapshot: %v; want a ConnError", err)
				}
				snap, err = c.SnapshotOf(ctx, ids[:3])
				if err == nil {
					t.Fatalf("SnapshotOf of an unknown master: no error, %+v", snap.Processes[0])
				}
				oneLineNoSecret(t, "SnapshotOf", err, masterPW, sentinelPW)
				if holder, err := c.LockHolder(ctx, "deploy"); err == nil {
					t.Errorf("LockHolder of an unknown master: no error, holder %v", holder)
				}
				if beats, err := c.Beats(ctx, ids[:3]); err == nil {
					t.Errorf("Beats of an unknown master: no error, %+v (read as processes gone)", beats)
				}
				err = Scan(ctx, c, ids, nil, ScanOptions{}, func([]Process) int { return 0 }, func(int) error { return nil })
				oneLineNoSecret(t, "Scan", err, masterPW, sentinelPW)
				if !strings.Contains(err.Error(), `Sentinel master "nosuchmaster" via `+s.Addr) {
					t.Errorf("Scan: %v; want it to name the Sentinel and the master", err)
				}
			})
			if tt.sentinelPW != "" {
				t.Run("wrong sentinel password", func(t *testing.T) {
					o, err := ParseURL("redis+sentinel://:" + masterPW + "@" + s.Addr + "/mymaster/1?namespace=shop&sentinel_password=wrong-hunter2")
					if err != nil {
						t.Fatal(err)
					}
					o.Timeout = 2 * time.Second
					c, err := Open(o)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = c.Close() })
					_, err = c.Snapshot(ctx)
					oneLineNoSecret(t, "Snapshot", err, masterPW, sentinelPW, "wrong-hunter2")
					var ce *ConnError
					if !errors.As(err, &ce) {
						t.Errorf("Snapshot: %v; want a ConnError", err)
					}
					// SnapshotOf (the watcher's read) must fail too, not report each process's
					// error as a reply of its own.
					_, err = c.SnapshotOf(ctx, ids[:3])
					oneLineNoSecret(t, "SnapshotOf", err, masterPW, sentinelPW, "wrong-hunter2")
					err = Scan(ctx, c, ids, nil, ScanOptions{}, func([]Process) int { return 0 }, func(int) error { return nil })
					oneLineNoSecret(t, "Scan", err, masterPW, sentinelPW, "wrong-hunter2")
					if !errors.As(err, &ce) {
						t.Errorf("Scan: %v; want a ConnError", err)
					}
				})
			}
			t.Run("wrong master password", func(t *testing.T) {
				c := open(t, ":wrong-hunter2@", "mymaster")
				err := Scan(ctx, c, ids, nil, ScanOptions{}, func([]Process) int { return 0 }, func(int) error { return nil })
				oneLineNoSecret(t, "Scan", err, masterPW, sentinelPW, "wrong-hunter2")
				if !strings.Contains(err.Error(), "WRONGPASS") {
					t.Errorf("Scan: %v; want WRONGPASS", err)
				}
			})
		})
	}
}
