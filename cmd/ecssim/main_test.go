package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

const config = `{
  "clusters": ["prod"],
  "taskDefinitions": [
    {"family": "worker", "networkMode": "awsvpc",
     "containerDefinitions": [{"name": "sidekiq", "image": "app:1", "stopTimeout": 30}]}
  ],
  "services": [
    {"cluster": "prod", "name": "worker", "taskDefinition": "worker:1", "desiredCount": 2,
     "circuitBreaker": {"enable": true, "rollback": true},
     "process": {"argv": ["sh", "-c", "echo $DYNO > \"$OUT/$DYNO\"; exec sleep 60"], "env": ["OUT=%OUT%"], "hostnameEnv": "DYNO"}},
    {"cluster": "prod", "name": "bg", "taskDefinition": "worker:1", "desiredCount": 1,
     "strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5,
     "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"],
                         "timeoutConfiguration": {"timeoutInMinutes": 60, "action": "ROLLBACK"}}]}
  ]
}`

func TestRunServesConfigAndStopsProcesses(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "ecssim.json")
	if err := os.WriteFile(cfgPath, []byte(strings.ReplaceAll(config, "%OUT%", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"--config", cfgPath, "--time-scale", "100", "--tick", "10ms", "--quiet"}, pw, &stderr)
		pw.Close()
		done <- code
	}()
	url, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("read URL: %v", err)
	}
	go io.Copy(io.Discard, pr)
	url = strings.TrimSpace(url)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("URL = %q", url)
	}
	api := awsecs.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")},
		func(o *awsecs.Options) { o.BaseEndpoint = aws.String(url) })

	var svc ecstypes.Service
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := api.DescribeServices(ctx, &awsecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"worker"}})
		if err != nil {
			t.Fatalf("describe services: %v", err)
		}
		svc = out.Services[0]
		if svc.RunningCount == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("service never ran 2 tasks: %+v", svc)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !svc.DeploymentConfiguration.DeploymentCircuitBreaker.Rollback {
		t.Errorf("circuit breaker config lost: %+v", svc.DeploymentConfiguration)
	}
	bg, err := api.DescribeServices(ctx, &awsecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"bg"}})
	if err != nil || len(bg.Services) != 1 {
		t.Fatalf("describe bg: %+v, %v", bg, err)
	}
	if dc := bg.Services[0].DeploymentConfiguration; dc.Strategy != ecstypes.DeploymentStrategyBlueGreen || aws.ToInt32(dc.BakeTimeInMinutes) != 5 ||
		len(dc.LifecycleHooks) != 1 || dc.LifecycleHooks[0].TargetType != ecstypes.DeploymentLifecycleHookTargetTypePause ||
		aws.ToInt32(dc.LifecycleHooks[0].TimeoutConfiguration.TimeoutInMinutes) != 60 {
		t.Errorf("bg deployment configuration = %+v", dc)
	}
	var hosts []string
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir(dir)
		hosts = hosts[:0]
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "ip-10-0-") {
				hosts = append(hosts, e.Name())
			}
		}
		if len(hosts) == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(hosts) != 2 {
		t.Fatalf("task processes wrote %v, want two ip-10-0-x-y files", hosts)
	}
	lt, err := api.ListTasks(ctx, &awsecs.ListTasksInput{Cluster: aws.String("prod"), ServiceName: aws.String("worker")})
	if err != nil || len(lt.TaskArns) != 2 {
		t.Fatalf("list tasks: %v %v", lt, err)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("run = %d, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	// Every "sleep 60" was ended: no process still runs with the test's OUT in its environment.
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte("OUT="+dir+"\x00")) {
			pid := filepath.Base(filepath.Dir(p))
			if st, _ := os.ReadFile(filepath.Join("/proc", pid, "stat")); !bytes.Contains(st, []byte(") Z ")) {
				t.Errorf("task process %s still running after shutdown", pid)
			}
		}
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"clusterz": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	badHook := filepath.Join(dir, "bad-hook.json")
	if err := os.WriteFile(badHook, []byte(`{"clusters": ["c"], "taskDefinitions": [{"family": "w", "containerDefinitions": [{"name": "w", "image": "w"}]}],
  "services": [{"cluster": "c", "name": "s", "taskDefinition": "w", "strategy": "BLUE_GREEN",
    "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"]}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown flag", []string{"--nope"}, 2, "flag provided but not defined"},
		{"bad time scale", []string{"--time-scale", "0"}, 2, "--time-scale must be positive"},
		{"missing config", []string{"--config", filepath.Join(dir, "missing.json")}, 1, "no such file"},
		{"unknown config field", []string{"--config", bad}, 1, `unknown field "clusterz"`},
		{"PAUSE hook at a traffic shift", []string{"--config", badHook}, 1, "PAUSE hooks cannot be configured at the PRODUCTION_TRAFFIC_SHIFT stage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tc.args, &stdout, &stderr); code != tc.code {
				t.Errorf("code = %d, want %d", code, tc.code)
			}
			if !strings.Contains(stderr.String(), tc.msg) {
				t.Errorf("stderr = %q, want it to mention %q", stderr.String(), tc.msg)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}
