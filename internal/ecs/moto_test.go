package ecs_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/testenv"
)

// startMoto runs moto_server on a free loopback port and returns its URL; the process is
// ended by PID when the test ends. The test is skipped when moto_server is not installed: it
// checks a third-party ECS implementation and is not required in CI.
func startMoto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skip("moto_server not on PATH: skipping the third-party ECS check")
	}
	port := testenv.FreePort(t)
	log, err := os.Create(filepath.Join(t.TempDir(), "moto.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start moto_server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = log.Close()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return "http://" + addr
		}
		select {
		case <-done:
			out, _ := os.ReadFile(log.Name())
			t.Fatalf("moto_server exited before listening:\n%s", out)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not listen on %s within 30s", addr)
		}
	}
}

// TestMoto checks Preflight and Deploy's single UpdateService against moto, a third-party ECS
// implementation. moto never completes rollouts, so the rollout is not watched.
func TestMoto(t *testing.T) {
	url := startMoto(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	creds := credentials.NewStaticCredentialsProvider("AKIDMOTO", "moto-secret", "")

	raw := awsecs.New(awsecs.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(url)})
	if _, err := raw.CreateCluster(ctx, &awsecs.CreateClusterInput{ClusterName: aws.String("prod")}); err != nil {
		t.Fatalf("moto create cluster: %v", err)
	}
	td, err := raw.RegisterTaskDefinition(ctx, &awsecs.RegisterTaskDefinitionInput{
		Family:      aws.String("worker"),
		NetworkMode: ecstypes.NetworkModeAwsvpc,
		ContainerDefinitions: []ecstypes.ContainerDefinition{{
			Name:        aws.String("sidekiq"),
			Image:       aws.String("example/worker:1"),
			Command:     []string{"bundle", "exec", "sidekiq", "-t", "25"},
			StopTimeout: aws.Int32(30),
			Memory:      aws.Int32(512),
		}},
	})
	if err != nil {
		t.Fatalf("moto register task definition: %v", err)
	}
	tdARN := aws.ToString(td.TaskDefinition.TaskDefinitionArn)
	if _, err := raw.CreateService(ctx, &awsecs.CreateServiceInput{
		Cluster:        aws.String("prod"),
		ServiceName:    aws.String("worker"),
		TaskDefinition: aws.String(tdARN),
		DesiredCount:   aws.Int32(2),
		DeploymentConfiguration: &ecstypes.DeploymentConfiguration{
			DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: true},
		},
	}); err != nil {
		t.Fatalf("moto create service: %v", err)
	}

	proxy := newCountingProxy(t, url)
	c, err := ecs.New(ctx, ecs.Options{Region: "us-east-1", Endpoint: proxy.url, Credentials: creds, MaxAttempts: 2, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ref := ecs.ServiceRef{Cluster: "prod", Service: "worker"}
	// moto leaves every deployment IN_PROGRESS, the service's first one included.
	if err := c.CheckClusters(ctx, []string{"prod"}); err != nil {
		t.Fatalf("CheckClusters against moto: %v", err)
	}
	states, err := c.Describe(ctx, []ecs.ServiceRef{ref})
	if err != nil {
		t.Fatalf("Describe against moto: %v", err)
	}
	if len(states) != 1 {
		t.Fatalf("Describe returned %d states, want 1", len(states))
	}
	st := states[0]
	if st.Status != "ACTIVE" || st.TaskDefinition != tdARN || st.Controller != "ECS" {
		t.Errorf("state = status %q, td %q, controller %q; want ACTIVE, %q, ECS", st.Status, st.TaskDefinition, st.Controller, tdARN)
	}
	if p := st.Primary(); p == nil || p.RolloutState != "IN_PROGRESS" {
		t.Errorf("primary deployment = %+v, want IN_PROGRESS (moto never completes a rollout)", p)
	}
	tdi, err := c.TaskDefinition(ctx, st.TaskDefinition)
	if err != nil || len(tdi.Containers) != 1 || tdi.Containers[0].Name != "sidekiq" {
		t.Fatalf("task definition detail = %+v, %v; want one container named sidekiq", tdi, err)
	}
	if got := tdi.Containers[0].StopTimeout; got == nil || *got != 30 {
		t.Errorf("stopTimeout = %v, want 30", got)
	}
	_, missingErr := c.Describe(ctx, []ecs.ServiceRef{{Cluster: "prod", Service: "nope"}})
	if want := `service "nope" not found in cluster "prod" (region us-east-1)`; missingErr == nil || missingErr.Error() != want {
		t.Errorf("missing service error = %v, want %q", missingErr, want)
	}

	before := primaryIDs(t, raw)
	updates := proxy.count("UpdateService")
	dep, err := c.Deploy(ctx, ref, "")
	if err != nil {
		t.Fatalf("Deploy against moto: %v", err)
	}
	if dep.DeploymentID == "" || dep.TaskDefinition != tdARN {
		t.Errorf("Deploy = %+v, want a deployment ID and task definition %s", dep, tdARN)
	}
	if n := proxy.count("UpdateService") - updates; n != 1 {
		t.Errorf("Deploy made %d UpdateService calls, want exactly 1", n)
	}
	after := primaryIDs(t, raw)
	if after != dep.DeploymentID {
		t.Errorf("PRIMARY after Deploy = %s, Deploy returned %s (before: %s)", after, dep.DeploymentID, before)
	}
}

// countingProxy forwards to an ECS endpoint and counts the operations that pass, by their
// X-Amz-Target header.
type countingProxy struct {
	url   string
	mu    sync.Mutex
	calls map[string]int
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := neturl.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{calls: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := r.Header.Get("X-Amz-Target")
		op = op[strings.LastIndexByte(op, '.')+1:]
		p.mu.Lock()
		p.calls[op]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

func (p *countingProxy) count(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[op]
}

func primaryIDs(t *testing.T, raw *awsecs.Client) string {
	t.Helper()
	out, err := raw.DescribeServices(context.Background(), &awsecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"worker"}})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("moto describe services: %v", err)
	}
	for _, d := range out.Services[0].Deployments {
		if aws.ToString(d.Status) == "PRIMARY" {
			return aws.ToString(d.Id)
		}
	}
	return fmt.Sprintf("(none of %d)", len(out.Services[0].Deployments))
}
