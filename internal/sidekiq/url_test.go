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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/testenv"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		want     Options
		redacted string
	}{
		{"plain", "redis://localhost:6379/0", Options{Addrs: []string{"localhost:6379"}},
			"redis://localhost:6379/0"},
		{"defaults", "redis://", Options{Addrs: []string{"localhost:6379"}}, "redis://localhost:6379/0"},
		{"password only", "redis://:s3cret@10.0.0.5/2", Options{Addrs: []string{"10.0.0.5:6379"}, Password: "s3cret", DB: 2},
			"redis://:xxxxx@10.0.0.5:6379/2"},
		{"lone userinfo is the password", "redis://s3cret@h:1", Options{Addrs: []string{"h:1"}, Password: "s3cret"},
			"redis://:xxxxx@h:1/0"},
		{"acl user with reserved characters in the password", "rediss://app:p%40ss/w@rd?#@cache.example.com:6380/3?namespace=myapp",
			Options{Addrs: []string{"cache.example.com:6380"}, Username: "app", Password: "p@ss/w@rd?#", DB: 3, TLS: true, Namespace: "myapp"},
			"rediss://app:xxxxx@cache.example.com:6380/3?namespace=myapp"},
		{"ipv6", "redis://[::1]:7000", Options{Addrs: []string{"[::1]:7000"}}, "redis://[::1]:7000/0"},
		{"sentinel", "redis+sentinel://:pw@s1:26379,s2,s3:26380/mymaster/1?sentinel_password=spw",
			Options{Addrs: []string{"s1:26379", "s2:26379", "s3:26380"}, Password: "pw", DB: 1, MasterName: "mymaster", SentinelPassword: "spw"},
			"redis+sentinel://:xxxxx@s1:26379,s2:26379,s3:26380/mymaster/1?sentinel_password=xxxxx"},
		{"sentinel tls no db", "rediss+sentinel://s1/main", Options{Addrs: []string{"s1:26379"}, MasterName: "main", TLS: true},
			"rediss+sentinel://s1:26379/main/0"},
		{"namespace with colon", "redis://h/0?namespace=ns:", Options{Addrs: []string{"h:6379"}, Namespace: "ns"},
			"redis://h:6379/0?namespace=ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ParseURL(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*o, tt.want) {
				t.Errorf("ParseURL(%q)\n got %+v\nwant %+v", tt.raw, *o, tt.want)
			}
			if got := o.Redacted(); got != tt.redacted {
				t.Errorf("Redacted() = %q, want %q", got, tt.redacted)
			}
			again, err := ParseURL(o.Redacted())
			if err != nil {
				t.Fatalf("the redacted form does not parse: %v", err)
			}
			if again.Redacted() != o.Redacted() {
				t.Errorf("redacted form is not stable: %q", again.Redacted())
			}
		})
	}
}

func TestParseURLErrorsNameThePartAndHideThePassword(t *testing.T) {
	const pw = "Sup3rS3cretPw"
	tests := []struct {
		raw  string
		part string
	}{
		{"redis//:" + pw + "@h/0", "scheme"},
		{"http://:" + pw + "@h/0", "scheme"},
		{"redis:" + pw + "://h/0", "scheme"},
		{"redis://:" + pw + "@h:port/0", "port"},
		{"redis://:" + pw + "@h:99999/0", "port"},
		{"redis://:" + pw + "@h/zero", "database"},
		{"redis://:" + pw + "@h/-1", "database"},
		{"redis://:" + pw + "@h/0/1", "database"},
		{"redis://:" + pw + "@h1,h2/0", "host"},
		{"redis://:" + pw + "@[::1/0", "host"},
		{"redis://:" + pw + "@h h/0", "host"},
		{"redis://:" + pw + "%zz@h/0", "password"},
		{"redis://u%zz:" + pw + "@h/0", "user"},
		{"redis://:" + pw + "@h/0?foo=bar", "query"},
		{"redis://:" + pw + "@h/0?sentinel_password=x", "query"},
		{"redis://:" + pw + "@h/0#frag", "fragment"},
		{"redis+sentinel://:" + pw + "@s1,s2", "master"},
		{"redis+sentinel://:" + pw + "@s1/m/x", "database"},
		{"redis+sentinel://s1/m?sentinel_password=" + pw + "%zz", "query"},
	}
	for _, tt := range tests {
		t.Run(tt.part+" "+strings.ReplaceAll(tt.raw, pw, "PW"), func(t *testing.T) {
			_, err := ParseURL(tt.raw)
			if err == nil {
				t.Fatal("no error")
			}
			var ue *URLError
			if !errors.As(err, &ue) || ue.Part != tt.part {
				t.Errorf("error %q names part %v, want %q", err, ue, tt.part)
			}
			if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "Sup3r") {
				t.Errorf("error leaks the password: %q", err)
			}
		})
	}
}

func TestOpenAndPing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testenv.StartRedis(t, testenv.WithPassword("pingpw1234"))
	c := coreOpen(t, r, "ns")
	if !strings.Contains(c.Redacted(), "xxxxx") || strings.Contains(c.Redacted(), "pingpw1234") {
		t.Errorf("Redacted() = %q", c.Redacted())
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	keys, _ := r.Client(t).Keys(ctx, "ns:drainctl:ping:*").Result()
	if len(keys) != 1 {
		t.Fatalf("ping keys %v, want one under the namespace", keys)
	}
	if ttl := r.Client(t).TTL(ctx, keys[0]).Val(); ttl <= 0 || ttl.Seconds() > 10 {
		t.Errorf("ping key TTL %v", ttl)
	}

	o, _ := ParseURL("redis://:wrongpw5678@" + r.Addr + "/0")
	bad, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	err = bad.Ping(ctx)
	if err == nil {
		t.Fatal("ping with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wrongpw5678") {
		t.Errorf("error leaks the password: %v", err)
	}

	// A read-only replica is reachable but not writable.
	ro := testenv.StartRedis(t, testenv.WithArgs("--replicaof", "127.0.0.1", "1"))
	rc := coreOpen(t, ro, "")
	if err := rc.Ping(ctx); err == nil || !strings.Contains(err.Error(), "READONLY") {
		t.Errorf("ping on a replica: %v, want READONLY", err)
	}
}

func TestOpenRejects(t *testing.T) {
	for _, o := range []*Options{nil, {}, {Addrs: []string{"a:1", "b:2"}, Password: "pw9999"}} {
		c, err := Open(o)
		if err == nil {
			c.Close()
			t.Errorf("Open(%+v) succeeded", o)
		} else if strings.Contains(err.Error(), "pw9999") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

// selfSigned writes a CA-less self-signed certificate for 127.0.0.1 and its key into dir and
// returns their paths and a pool trusting it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "drainctl test redis"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "redis.crt"), filepath.Join(dir, "redis.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestOpenTLS connects through rediss:// to a real redis-server's TLS port.
func TestOpenTLS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	tlsPort := testenv.FreePort(t)
	r := testenv.StartRedis(t, testenv.WithPassword("tlspw4321"), testenv.WithArgs("--tls-port", strconv.Itoa(tlsPort),
		"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-ca-cert-file", certFile, "--tls-auth-clients", "no"))
	_ = r
	o, err := ParseURL(fmt.Sprintf("rediss://:tlspw4321@127.0.0.1:%d/0", tlsPort))
	if err != nil {
		t.Fatal(err)
	}
	// The system roots do not know this server: the handshake must fail.
	untrusted, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer untrusted.Close()
	if err := untrusted.Ping(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("ping with an unknown certificate: %v, want a certificate error", err)
	}
	o.TLSConfig = &tls.Config{RootCAs: pool}
	c, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping over TLS: %v", err)
	}
	if _, err := c.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestOpenSentinel connects through redis+sentinel:// to a real Sentinel that monitors a real
// master, and checks that the client reaches the master (writes land there).
func TestOpenSentinel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	master := testenv.StartRedis(t, testenv.WithPassword("masterpw55"))
	dir := t.TempDir()
	port := testenv.FreePort(t)
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster 127.0.0.1 %d 1\nsentinel auth-pass mymaster masterpw55\n",
		port, dir, master.Port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", conf, "--sentinel")
	if err := cmd.Start(); err != nil {
		testenv.Missing(t, "redis-server --sentinel: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sentinelURL := fmt.Sprintf("redis+sentinel://:masterpw55@127.0.0.1:%d/mymaster/0?namespace=sn", port)
	o, err := ParseURL(sentinelURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err = c.Ping(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ping through sentinel: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if strings.Contains(fmt.Sprint(err), "masterpw55") {
		t.Errorf("error leaks the password: %v", err)
	}
	keys, _ := master.Client(t).Keys(ctx, "sn:drainctl:ping:*").Result()
	if len(keys) == 0 {
		t.Error("the ping key did not land on the master")
	}
}
