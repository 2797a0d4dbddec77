// Package stack starts a throwaway local copy of what drainctl works against — a
// redis-server, the ECS simulator and an ECS service whose tasks are real Sidekiq processes
// — for the end-to-end tests (internal/e2e) and the README demo (cmd/drainctl-demo). It takes
// no testing.TB: the caller owns the Stack and must Close it, which stops every process the
// stack started, by PID.
//
// Options.ExtraServices adds more services to the same cluster, run like the first and
// sharing its redis-server and simulator, for deploys of several services in one run; the
// Stack's task helpers (Tasks, RunningTasks, TaskProcesses, Settle, …) then cover every
// service, while ForceNewDeployment and WaitRolloutCompleted act on the first.
//
// Two signal paths can be chosen for the service's tasks:
//   - working (the default): the task runs Sidekiq in exec form, so the SIGTERM of a stopping
//     task reaches Sidekiq, which requeues what is still running after its -t timeout and
//     exits before the container's stop timeout;
//   - broken (Options.BrokenSignalPath): the task's command is a shell wrapper
//     (`sh -c "cd / && sidekiq …"`) that never passes the SIGTERM on, so Sidekiq is SIGKILLed
//     after the stop timeout (exit code 137) with its jobs in flight, which are then lost
//     unless someone rescues them. With PID 1 semantics (ecssim.PID1Semantics: root and
//     unshare) the wrapper is really broken the way it is in a container; without, the
//     simulator's ProcessTemplate.BrokenSignalPath stands in for it.
package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/redis/go-redis/v9"

	"github.com/drainctl/drainctl/internal/ecs/ecssim"
	"github.com/drainctl/drainctl/internal/testenv"
)

// Defaults of Options: small and fast, so that a deploy against the stack takes seconds.
const (
	DefaultCluster        = "demo"           // the cluster's name
	DefaultService        = "worker"         // the service's name
	DefaultFamily         = "worker"         // the task definition family
	DefaultTasks          = 3                // the service's desired count
	DefaultSidekiqTimeout = 2                // Sidekiq's -t (seconds): short shutdowns
	DefaultConcurrency    = 2                // Sidekiq's -c
	DefaultTimeScale      = 20               // simulated seconds per real second
	DefaultHealthyAfter   = 20 * time.Second // simulated: 1 s of real time at DefaultTimeScale
	// DefaultBrokenStopTimeout is the real time between SIGTERM and SIGKILL on the broken
	// signal path: short, since nothing listens to the SIGTERM anyway.
	DefaultBrokenStopTimeout = 2 * time.Second
	// Region is the region the stack's ARNs and the binary's environment name.
	Region = "us-east-1"
)

// Options describes the stack to start. Zero values select the defaults above.
type Options struct {
	// Cluster and Service name the ECS cluster and service; defaults demo and worker.
	Cluster, Service string
	// ExtraServices names more services to create in the same cluster, each like Service
	// (same task definition, Tasks tasks, signal path and Sidekiq command) and sharing the
	// redis-server and the simulator. Empty means the one service.
	ExtraServices []string
	// Tasks is the service's desired count; zero means 3.
	Tasks int
	// SidekiqVersion is the Sidekiq release the tasks run; empty means 6.4.1.
	SidekiqVersion testenv.SidekiqVersion
	// SidekiqTimeout is Sidekiq's -t in seconds; zero means 2.
	SidekiqTimeout int
	// Concurrency is Sidekiq's -c; zero means 2.
	Concurrency int
	// Tag is Sidekiq's -g; empty means none.
	Tag string
	// BrokenSignalPath wraps the task command in a shell that does not pass SIGTERM on.
	BrokenSignalPath bool
	// StopTimeout is the real time between a stopping task's SIGTERM and SIGKILL. Zero means
	// SidekiqTimeout + 4 s on the working signal path, 2 s on the broken one.
	StopTimeout time.Duration
	// TimeScale is the simulator's simulated seconds per real second; zero means 20.
	TimeScale float64
	// HealthyAfter is the simulated time before a running task counts healthy; zero means 20 s.
	HealthyAfter time.Duration
	// CircuitBreaker turns on the service's deployment circuit breaker with rollback.
	CircuitBreaker bool
	// MaximumPercent and MinimumHealthyPercent are the service's deployment configuration;
	// zero means ECS's defaults (200 and 100).
	MaximumPercent, MinimumHealthyPercent int32
	// Deployment sets the service's deployment strategy, bake time, lifecycle hooks and early
	// success criteria (only those fields of it are used); nil means rolling.
	Deployment *ecssim.ServiceSpec
	// RedisPassword makes redis-server require this password (it is part of RedisURL).
	RedisPassword string
	// Dir receives the Redis data folder and one log per task; empty means a new temporary
	// folder that Close removes.
	Dir string
	// RegisterTimeout bounds the wait for every task's Sidekiq to register; zero means 60 s.
	RegisterTimeout time.Duration
	// Logf receives the simulator's event lines; nil means silent.
	Logf func(format string, args ...any)
}

func (o Options) withDefaults() Options {
	if o.Cluster == "" {
		o.Cluster = DefaultCluster
	}
	if o.Service == "" {
		o.Service = DefaultService
	}
	if o.Tasks <= 0 {
		o.Tasks = DefaultTasks
	}
	if o.SidekiqVersion == "" {
		o.SidekiqVersion = testenv.Sidekiq6
	}
	if o.SidekiqTimeout <= 0 {
		o.SidekiqTimeout = DefaultSidekiqTimeout
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.StopTimeout <= 0 {
		if o.BrokenSignalPath {
			o.StopTimeout = DefaultBrokenStopTimeout
		} else {
			o.StopTimeout = time.Duration(o.SidekiqTimeout)*time.Second + 4*time.Second
		}
	}
	if o.TimeScale <= 0 {
		o.TimeScale = DefaultTimeScale
	}
	if o.HealthyAfter <= 0 {
		o.HealthyAfter = DefaultHealthyAfter
	}
	if o.RegisterTimeout <= 0 {
		o.RegisterTimeout = 60 * time.Second
	}
	return o
}

// ErrMissing wraps the error when a part of the stack (redis-server, Sidekiq) is not
// installed, so callers can skip (testenv.Missing) or tell the user to run scripts/deps.sh.
var ErrMissing = errors.New("integration part missing")

// Stack is a running redis-server, ECS simulator and Sidekiq service.
type Stack struct {
	// Opts are the options in effect (defaults filled in).
	Opts Options
	// Redis is the redis-server.
	Redis *testenv.Redis
	// Sim is the in-process ECS simulator.
	Sim *ecssim.Sim
	// RDB is a Redis client for the caller's own reads and writes.
	RDB *redis.Client
	// TaskDefinitionARN is the service's first task definition revision.
	TaskDefinitionARN string
	// LogDir holds one <task id>.log per task.
	LogDir string

	dir, ownDir string
	argv, env   []string
	closeOnce   sync.Once
	closeErr    error
}

// Start starts redis-server, the simulator and the service, and returns once every task's
// Sidekiq has registered in Redis and the service's first rollout has completed. On error everything already started is stopped.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	o = o.withDefaults()
	s := &Stack{Opts: o, dir: o.Dir}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "drainctl-stack-"); err != nil {
			return nil, fmt.Errorf("create stack folder: %w", err)
		}
		s.ownDir = s.dir
	}
	s.LogDir = filepath.Join(s.dir, "tasks")
	redisDir := filepath.Join(s.dir, "redis")
	for _, d := range []string{s.LogDir, redisDir} {
		if err = os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create stack folder: %w", err)
		}
	}

	var ropts []testenv.RedisOption
	if o.RedisPassword != "" {
		ropts = append(ropts, testenv.WithPassword(o.RedisPassword))
	}
	if s.Redis, err = testenv.StartRedisServer(redisDir, ropts...); err != nil {
		if errors.Is(err, testenv.ErrNoRedisServer) {
			return nil, fmt.Errorf("%w: %w", ErrMissing, err)
		}
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	s.RDB = redis.NewClient(&redis.Options{Addr: s.Redis.Addr, Password: s.Redis.Password})

	s.argv, s.env, err = testenv.SidekiqCommand(testenv.SidekiqOptions{
		Version: o.SidekiqVersion, RedisURL: s.Redis.URL(), Tag: o.Tag,
		Concurrency: o.Concurrency, Timeout: o.SidekiqTimeout, JobsFile: JobsFile(),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMissing, err)
	}

	s.Sim = ecssim.New(ecssim.Options{
		Region: Region, TimeScale: o.TimeScale, HealthyAfter: o.HealthyAfter,
		Tick: 20 * time.Millisecond, Logf: o.Logf,
	})
	if err = s.Sim.Start(); err != nil {
		return nil, fmt.Errorf("start ECS simulator: %w", err)
	}
	s.Sim.CreateCluster(o.Cluster)
	if s.TaskDefinitionARN, err = s.RegisterRevision(); err != nil {
		return nil, err
	}
	spec := ecssim.ServiceSpec{
		Cluster: o.Cluster, Name: o.Service, TaskDefinition: s.TaskDefinitionARN,
		DesiredCount: int32(o.Tasks), Process: s.processTemplate(),
	}
	if o.CircuitBreaker {
		spec.CircuitBreaker = &ecssim.CircuitBreaker{Enable: true, Rollback: true}
	}
	if o.MaximumPercent > 0 {
		spec.MaximumPercent = &o.MaximumPercent
	}
	if o.MinimumHealthyPercent > 0 {
		spec.MinimumHealthyPercent = &o.MinimumHealthyPercent
	}
	if d := o.Deployment; d != nil {
		spec.Strategy, spec.BakeTimeInMinutes, spec.LifecycleHooks = d.Strategy, d.BakeTimeInMinutes, d.LifecycleHooks
		spec.LinearConfiguration, spec.CanaryConfiguration, spec.EarlySuccessCriteria = d.LinearConfiguration, d.CanaryConfiguration, d.EarlySuccessCriteria
	}
	for _, name := range s.Services() {
		spec.Name = name
		if err = s.Sim.CreateService(spec); err != nil {
			return nil, fmt.Errorf("create service %q in cluster %q: %w", name, o.Cluster, err)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, o.RegisterTimeout)
	defer cancel()
	if _, err = s.WaitRegistered(rctx, o.Tasks*len(s.Services())); err != nil {
		return nil, err
	}
	if err = s.WaitSteady(rctx); err != nil {
		return nil, fmt.Errorf("service %q: first rollout: %w", o.Service, err)
	}
	for _, name := range o.ExtraServices {
		if err = s.waitCompleted(rctx, name, ""); err != nil {
			return nil, fmt.Errorf("service %q: first rollout: %w", name, err)
		}
	}
	return s, nil
}

// Services names the stack's services: Options.Service, then Options.ExtraServices.
func (s *Stack) Services() []string {
	return append([]string{s.Opts.Service}, s.Opts.ExtraServices...)
}

// processTemplate is how every task of the service runs Sidekiq.
func (s *Stack) processTemplate() *ecssim.ProcessTemplate {
	pt := &ecssim.ProcessTemplate{
		Argv: s.argv, Env: s.env, Dir: testenv.RepoRoot(), HostnameEnv: "DYNO",
		StopTimeout: s.Opts.StopTimeout, LogDir: s.LogDir,
	}
	if !ecssim.PID1Semantics() {
		// Without a PID namespace per task the simulator stands in for the wrapper.
		pt.BrokenSignalPath = s.Opts.BrokenSignalPath
		return pt
	}
	argv := s.argv
	if s.Opts.BrokenSignalPath {
		// As a container's PID 1, dash forks a compound command and ignores the SIGTERM it
		// has no handler for: Sidekiq never hears it.
		argv = []string{"sh", "-c", "cd / && " + shellJoin(s.argv)}
	}
	// The simulator gives the task its own PID namespace and /proc, as a container has.
	pt.Argv = argv
	return pt
}

// RegisterRevision registers a new revision of the service's task definition (same command)
// and returns its ARN, e.g. for a deploy with --task-definition whose tasks are made to fail.
// Its container command mirrors the signal path the tasks really run, so drainctl's checks
// see what ECS would show them.
func (s *Stack) RegisterRevision() (string, error) {
	cmd := []string{"bundle", "exec", "sidekiq", "-t", fmt.Sprint(s.Opts.SidekiqTimeout)}
	if s.Opts.BrokenSignalPath {
		cmd = []string{"sh", "-c", "cd /app && bundle exec sidekiq -t " + fmt.Sprint(s.Opts.SidekiqTimeout)}
	}
	stop := int32(min(120, max(2, s.Opts.StopTimeout.Seconds()*s.Opts.TimeScale)))
	arn, err := s.Sim.RegisterTaskDefinition(ecssim.TaskDefinition{
		Family: DefaultFamily,
		Containers: []ecssim.Container{{
			Name: "sidekiq", Image: "app:latest", Command: cmd, StopTimeout: &stop,
		}},
	})
	if err != nil {
		return "", fmt.Errorf("register task definition %q: %w", DefaultFamily, err)
	}
	return arn, nil
}

// JobsFile is the Ruby file the stack's Sidekiq processes load: SleepJob and RerunJob.
func JobsFile() string {
	return filepath.Join(testenv.RepoRoot(), "internal", "stack", "testdata", "jobs.rb")
}

// shellJoin quotes argv for sh -c.
func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// RedisURL is the redis:// URL of the stack's server, with the password when one is set.
func (s *Stack) RedisURL() string { return s.Redis.URL() }

// Args are the drainctl flags that name the stack's services (one --service each).
func (s *Stack) Args() []string {
	args := []string{"--cluster", s.Opts.Cluster}
	for _, name := range s.Services() {
		args = append(args, "--service", name)
	}
	return args
}

// Env is the environment for a drainctl binary run against the stack: the caller's
// environment without anything that could point it elsewhere (AWS_*, DRAINCTL_*, REDIS_URL,
// GitHub Actions variables), plus REDIS_URL, the simulator as the SDK's ECS endpoint
// (AWS_ENDPOINT_URL_ECS), a region and dummy credentials. Name the service with Args.
func (s *Stack) Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "AWS_"), strings.HasPrefix(k, "DRAINCTL_"), strings.HasPrefix(k, "GITHUB_"),
			k == "REDIS_URL", k == "CI":
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"REDIS_URL="+s.RedisURL(),
		"AWS_ENDPOINT_URL_ECS="+s.Sim.URL(),
		"AWS_REGION="+Region,
		"AWS_ACCESS_KEY_ID=AKIDDRAINCTLSTACK",
		"AWS_SECRET_ACCESS_KEY=stack-secret",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
	)
}

// ECS returns a real SDK client pointed at the simulator, for the caller's own ECS calls
// (the naive forced deployment, checks).
func (s *Stack) ECS() *awsecs.Client {
	cfg := aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDDRAINCTLSTACK", "stack-secret", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 5
				o.MaxBackoff = 50 * time.Millisecond
				o.RateLimiter = ratelimit.None
			})
		},
	}
	return awsecs.NewFromConfig(cfg, func(o *awsecs.Options) { o.BaseEndpoint = aws.String(s.Sim.URL()) })
}

// Tasks lists the tasks of the stack's services, stopped ones included: each service's
// (in Services order) oldest first.
func (s *Stack) Tasks() []ecssim.TaskInfo {
	var out []ecssim.TaskInfo
	for _, name := range s.Services() {
		out = append(out, s.ServiceTasks(name)...)
	}
	return out
}

// ServiceTasks lists one service's tasks, stopped ones included, oldest first.
func (s *Stack) ServiceTasks(service string) []ecssim.TaskInfo {
	return s.Sim.Tasks(s.Opts.Cluster, service)
}

// RunningTasks lists the services' tasks whose last status is RUNNING and that want to run.
func (s *Stack) RunningTasks() []ecssim.TaskInfo {
	var out []ecssim.TaskInfo
	for _, t := range s.Tasks() {
		if t.LastStatus == "RUNNING" && t.DesiredStatus == "RUNNING" {
			out = append(out, t)
		}
	}
	return out
}

// TaskLog returns the output of the task's process (empty when there is none).
func (s *Stack) TaskLog(taskID string) string {
	b, _ := os.ReadFile(filepath.Join(s.LogDir, taskID+".log"))
	return string(b)
}

// Close stops the simulator (and with it every task process: SIGTERM, then SIGKILL) and
// redis-server, and removes the stack's temporary folder. It is safe to call twice.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.Sim != nil {
			if err := s.Sim.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close ECS simulator: %w", err))
			}
		}
		if s.RDB != nil {
			_ = s.RDB.Close()
		}
		if s.Redis != nil {
			s.Redis.Stop()
		}
		if s.ownDir != "" {
			if err := os.RemoveAll(s.ownDir); err != nil {
				errs = append(errs, fmt.Errorf("remove stack folder: %w", err))
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
