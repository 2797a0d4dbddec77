package sidekiq

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/drainctl/drainctl/internal/testenv"
)

// testCA is a throwaway certificate authority and a server certificate it signed for
// 127.0.0.1 (an IP SAN) and localhost, written as PEM files for redis-server.
type testCA struct {
	pool              *x509.CertPool // the CA, for a client's RootCAs
	caFile            string
	certFile, keyFile string // the server's
}

func newTestCA(t testing.TB, dir, name string) *testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{
		pool:     x509.NewCertPool(),
		caFile:   filepath.Join(dir, name+"-ca.pem"),
		certFile: filepath.Join(dir, name+"-server.pem"),
		keyFile:  filepath.Join(dir, name+"-server.key"),
	}
	ca.pool.AddCert(caCert)
	for path, block := range map[string]*pem.Block{
		ca.caFile:   {Type: "CERTIFICATE", Bytes: caDER},
		ca.certFile: {Type: "CERTIFICATE", Bytes: srvDER},
		ca.keyFile:  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca
}

// startTLSRedis starts a redis-server (testenv's) that also listens with TLS on a port of its
// own, with the CA's server certificate and no client certificate required. Its plain port
// (r.Addr) is the test's own, for filling it; drainctl connects to the TLS port only.
func startTLSRedis(t *testing.T, ca *testCA, password string) (r *testenv.Redis, tlsAddr string) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		testenv.Missing(t, "redis-server not on PATH")
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ { // the TLS port may have been taken meanwhile
		port := testenv.FreePort(t)
		r, err = testenv.StartRedisServer(t.TempDir(), testenv.WithPassword(password), testenv.WithArgs(
			"--tls-port", strconv.Itoa(port),
			"--tls-cert-file", ca.certFile, "--tls-key-file", ca.keyFile, "--tls-ca-cert-file", ca.caFile,
			"--tls-auth-clients", "no"))
		if err == nil {
			t.Cleanup(r.Stop)
			return r, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
	}
	t.Fatalf("start redis-server with TLS: %v", err)
	return nil, ""
}

// sameAsGoRedis checks that Snapshot, Processes and Scan through c (streamed, on a connection
// of their own) read what go-redis's own pipeline (SnapshotOf) reads of ids, and that the
// fleet is all there: n processes of jobs jobs each.
func sameAsGoRedis(t *testing.T, c *Client, ids []string, jobs int) {
	t.Helper()
	ctx := context.Background()
	ids = append([]string(nil), ids...)
	sort.Strings(ids)
	ref, err := c.SnapshotOf(ctx, ids)
	if err != nil {
		t.Fatalf("go-redis pipeline: %v", err)
	}
	if len(ref.Processes) != len(ids) || len(ref.Jobs()) != jobs*len(ids) {
		t.Fatalf("reference: %d processes, %d jobs; want %d, %d", len(ref.Processes), len(ref.Jobs()), len(ids), jobs*len(ids))
	}
	// Processes and NoJobs read no work hash, so a work hash's reply error is not theirs: their
	// reference is go-redis's pipeline without the work hashes.
	refNoJobs, err := c.read(ctx, ids, true, false)
	if err != nil {
		t.Fatalf("go-redis pipeline without jobs: %v", err)
	}
	noJobs := refNoJobs.Processes
	same := func(what string, got, want []Process) {
		t.Helper()
		if reflect.DeepEqual(got, want) {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d processes, go-redis %d", what, len(got), len(want))
		}
		for i := range got {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("%s differs from go-redis at %d:\n got %+v\nwant %+v", what, i, got[i], want[i])
			}
		}
	}
	snap, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	same("Snapshot", snap.Processes, ref.Processes)
	procs, err := c.Processes(ctx)
	if err != nil {
		t.Fatalf("Processes: %v", err)
	}
	same("Processes", procs.Processes, noJobs)
	fleet, super, err := c.FleetIDs(ctx)
	if err != nil {
		t.Fatalf("FleetIDs: %v", err)
	}
	for _, opt := range []ScanOptions{{Chunk: 7, Workers: 3}, {Chunk: 1, Workers: 1, NoJobs: true}} {
		var got []Process
		err := Scan(ctx, c, fleet, super, opt, func(ps []Process) []Process { return ps },
			func(ps []Process) error { got = append(got, ps...); return nil })
		if err != nil {
			t.Fatalf("Scan %+v: %v", opt, err)
		}
		want := ref.Processes
		if opt.NoJobs {
			want = noJobs
		}
		same(fmt.Sprintf("Scan %+v", opt), got, want)
	}
}

// oneLineNoSecret fails t when err is nil, spans several lines, or holds one of the secrets.
func oneLineNoSecret(t *testing.T, what string, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("%s: error of several lines: %q", what, msg)
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Errorf("%s: error %q holds a password", what, msg)
		}
	}
}

// TestStreamTLS: over rediss:// (drainctl's URL, with a private CA given as Options.TLSConfig,
// since neither the URL nor the command line can name one), with a password, a database other
// than 0 and a namespace, Snapshot, Processes and Scan read what go-redis's pipeline reads.
// A server whose certificate another CA signed, or that the system's roots do not trust,
// fails both go-redis and the stream with a one-line error that holds no password.
func TestStreamTLS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	ca := newTestCA(t, dir, "good")
	other := newTestCA(t, dir, "other")
	const password = "tls-hunter2-pw"
	r, tlsAddr := startTLSRedis(t, ca, password)
	admin := redis.NewClient(&redis.Options{Addr: r.Addr, Password: password, DB: 2})
	t.Cleanup(func() { _ = admin.Close() })
	ids, err := fakeFleet(ctx, admin, "shop", 450, 3)
	if err != nil {
		t.Fatal(err)
	}
	admin.Set(ctx, "shop:"+ids[5]+":work", "not a hash", 0) // a reply error inside the stream

	open := func(t *testing.T, cfg *tls.Config) *Client {
		t.Helper()
		o, err := ParseURL("rediss://:" + password + "@" + tlsAddr + "/2?namespace=shop")
		if err != nil {
			t.Fatal(err)
		}
		if !o.TLS || o.TLSConfig != nil {
			t.Fatalf("ParseURL(rediss://…): TLS %v, TLSConfig %v", o.TLS, o.TLSConfig)
		}
		o.TLSConfig = cfg
		o.Timeout = 2 * time.Second
		c, err := Open(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	t.Run("trusted CA", func(t *testing.T) {
		c := open(t, &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12})
		sc := newStreamCounter(t, r)
		sameAsGoRedis(t, c, ids, 3)
		// go-redis's pool plus one connection per stream (2 Scans, Snapshot, Processes).
		if n := sc.take(t); n < 4 {
			t.Errorf("%d connections accepted, want at least the 4 streams'", n)
		}
		snap, err := c.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range snap.Processes {
			if p.Identity == ids[5] && !strings.Contains(p.Err, "WRONGTYPE") {
				t.Errorf("process with a WRONGTYPE work hash over TLS: Err %q", p.Err)
			}
		}
	})

	for _, tt := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"another CA", &tls.Config{RootCAs: other.pool, MinVersion: tls.VersionTLS12}},
		{"system roots", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := open(t, tt.cfg)
			_, err := c.Snapshot(ctx) // go-redis's dial (FleetIDs) fails first
			oneLineNoSecret(t, "Snapshot", err, password)
			var ce *ConnError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tlsAddr+" with TLS") ||
				!strings.Contains(err.Error(), "certificate") {
				t.Errorf("Snapshot: %v; want a ConnError naming %s with TLS and the certificate", err, tlsAddr)
			}
			// The stream's own dial, given the identities.
			err = Scan(ctx, c, ids, nil, ScanOptions{}, func([]Process) int { return 0 }, func(int) error { return nil })
			oneLineNoSecret(t, "Scan", err, password)
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), "certificate signed by unknown authority") ||
				!strings.Contains(err.Error(), "rediss://:xxxxx@"+tlsAddr) {
				t.Errorf("Scan: %v; want a ConnError on rediss://:xxxxx@%s, certificate signed by unknown authority", err, tlsAddr)
			}
		})
	}
}
