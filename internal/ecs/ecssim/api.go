package ecssim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Options configures a simulator. Zero values select the documented defaults.
type Options struct {
	// Region and AccountID appear in every ARN. Defaults us-east-1 and 123456789012.
	Region, AccountID string
	// TimeScale is simulated seconds per real second; 0 means 1. With 10, the 40 s healthy
	// delay takes 4 s of real time. Every simulated duration is divided by it.
	TimeScale float64
	// HealthyAfter is the simulated time a RUNNING task needs before it counts healthy
	// (ECS without a health check or load balancer). Zero means 40s.
	HealthyAfter time.Duration
	// Tick is the real time between scheduler steps. Zero means 50ms.
	Tick time.Duration
	// Logf receives one line per notable event (task started/stopped, deployment state). Nil
	// means silent.
	Logf func(format string, args ...any)
}

// Sim is an in-process ECS endpoint speaking the AWS JSON 1.1 protocol, with a rolling-update
// scheduler and optional real local processes as tasks. It is safe for concurrent use.
type Sim struct {
	o Options

	mu       sync.Mutex
	clusters map[string]*cluster // by name
	families map[string][]*taskDef
	tdByARN  map[string]*taskDef
	faults   faults
	calls    map[string]int
	ops      []string      // every request's operation, in order
	offset   time.Duration // added to the real clock by Advance
	ipSeq    int
	closed   bool

	srv    *http.Server
	ln     net.Listener
	stopCh chan struct{}
	wg     sync.WaitGroup // scheduler and HTTP server goroutines
	procWG sync.WaitGroup // process reapers
}

// TaskDefinition is a task definition to register through the Go API (tests and the ecssim
// command); the HTTP RegisterTaskDefinition op accepts the full AWS input instead.
type TaskDefinition struct {
	Family                  string
	NetworkMode             string // default awsvpc
	RequiresCompatibilities []string
	Containers              []Container
	// Raw is optional: a full register-task-definition input (JSON). When set it wins over
	// every other field.
	Raw json.RawMessage
}

// Container is one container definition of a TaskDefinition.
type Container struct {
	Name, Image         string
	Command, EntryPoint []string
	Essential           *bool
	// StopTimeout is in simulated seconds; nil means 30.
	StopTimeout        *int32
	InitProcessEnabled *bool
	Environment        map[string]string
}

// CircuitBreaker is a service's deployment circuit breaker setting.
type CircuitBreaker struct {
	Enable   bool `json:"enable"`
	Rollback bool `json:"rollback"`
}

// ServiceSpec describes a service to create with CreateService.
type ServiceSpec struct {
	Cluster, Name  string
	TaskDefinition string // ARN, family:revision or family (latest ACTIVE revision)
	DesiredCount   int32
	// MinimumHealthyPercent and MaximumPercent: nil means 100 and 200.
	MinimumHealthyPercent, MaximumPercent *int32
	// CircuitBreaker: nil means disabled.
	CircuitBreaker *CircuitBreaker
	// DeploymentController is "ECS" (default), "CODE_DEPLOY" or "EXTERNAL".
	DeploymentController string
	// LaunchType defaults to FARGATE.
	LaunchType string
	// Process makes every task a real local process; nil means tasks are pure simulation.
	Process *ProcessTemplate
	// Strategy is deploymentConfiguration.strategy: "" or ROLLING, BLUE_GREEN, LINEAR or
	// CANARY. The service's first deployment (made here) starts its tasks directly, without
	// stages or hooks; later ones (UpdateService) follow the strategy.
	Strategy string
	// BakeTimeInMinutes is how long blue keeps running after the production traffic shift
	// (simulated minutes); nil means 0.
	BakeTimeInMinutes *int32
	// LifecycleHooks, LinearConfiguration, CanaryConfiguration and EarlySuccessCriteria are
	// the deploymentConfiguration fields of those names; nil means none.
	LifecycleHooks       []LifecycleHook
	LinearConfiguration  *LinearConfiguration
	CanaryConfiguration  *CanaryConfiguration
	EarlySuccessCriteria *EarlySuccessCriteria
}

// ProcessTemplate makes every task of a service a real local process, so tests can watch a
// real Sidekiq worker being started and stopped the way ECS does it.
type ProcessTemplate struct {
	// Argv is the command; Argv[0] is looked up in PATH.
	Argv []string
	// Env holds additions to os.Environ() ("K=V").
	Env []string
	// Dir is the working directory; empty means the simulator's.
	Dir string
	// HostnameEnv names the env var that gets the task's hostname (e.g. "DYNO" →
	// ip-10-0-1-23). Empty means none is set.
	HostnameEnv string
	// BrokenSignalPath runs Argv under a shell wrapper that receives SIGTERM and does not
	// forward it (like `sh -c "cd app; sidekiq"` as a container's PID 1): only the SIGKILL
	// after the stop timeout reaches the real process.
	BrokenSignalPath bool
	// StopTimeout is real time between SIGTERM and SIGKILL. Zero means the container's
	// stopTimeout (or 30 s) in simulated time, divided by TimeScale.
	StopTimeout time.Duration
	// LogDir, when set, receives one <task id>.log file per task with its stdout and stderr.
	LogDir string
}

// TaskInfo is the simulator's view of one task, for tests.
type TaskInfo struct {
	ARN, ID, DeploymentID, LastStatus, DesiredStatus string
	PrivateIPv4, Hostname, RuntimeID                 string
	StopCode, StoppedReason                          string
	// Healthy is true while the task counts toward minimumHealthyPercent.
	Healthy bool
	// PID is the task's process (the wrapper with BrokenSignalPath); 0 when the task is not a
	// process or it has not started.
	PID int
	// Protected is true while the task's scale-in protection is on; ProtectionExpiresAt is
	// then its expiry on the simulator's clock.
	Protected           bool
	ProtectionExpiresAt time.Time
	// ExitCode is the essential container's exit code once it stopped.
	ExitCode             *int32
	StartedAt, StoppedAt time.Time
}

// New returns a simulator with no clusters; call Start to serve it or use Handler.
func New(o Options) *Sim {
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.AccountID == "" {
		o.AccountID = "123456789012"
	}
	if o.TimeScale <= 0 {
		o.TimeScale = 1
	}
	if o.HealthyAfter <= 0 {
		o.HealthyAfter = 40 * time.Second
	}
	if o.Tick <= 0 {
		o.Tick = 50 * time.Millisecond
	}
	return &Sim{
		o:        o,
		clusters: map[string]*cluster{},
		families: map[string][]*taskDef{},
		tdByARN:  map[string]*taskDef{},
		faults:   newFaults(),
		calls:    map[string]int{},
		ipSeq:    initialIPSeq(),
		stopCh:   make(chan struct{}),
	}
}

// Start serves the simulator on 127.0.0.1 at a free port and starts its scheduler.
func (s *Sim) Start() error { return s.Listen("127.0.0.1:0") }

// Listen serves the simulator on addr (host:port) and starts its scheduler; Start is
// Listen("127.0.0.1:0"). It is an addition to the agreed API, for the ecssim command.
func (s *Sim) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("ecssim: listen on %s: %w", addr, err)
	}
	s.mu.Lock()
	if s.ln != nil || s.closed {
		s.mu.Unlock()
		ln.Close()
		return errors.New("ecssim: already started or closed")
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Unlock()
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln)
	}()
	go func() {
		defer s.wg.Done()
		s.run()
	}()
	return nil
}

// URL is the simulator's endpoint, http://127.0.0.1:port — the SDK's BaseEndpoint. It is
// empty before Start.
func (s *Sim) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Handler is the ECS endpoint as an http.Handler, for callers that serve it themselves
// (the scheduler then runs only after Start; see Step).
func (s *Sim) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Close stops the server and the scheduler, then stops every task process (SIGTERM, then
// SIGKILL after its stop timeout, at most 5 s) and reaps them. It is safe to call twice.
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv := s.srv
	close(s.stopCh)
	s.mu.Unlock()
	var err error
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = srv.Shutdown(ctx)
		cancel()
		if err != nil {
			err = srv.Close()
		}
	}
	s.wg.Wait()
	s.stopAllProcesses()
	s.procWG.Wait()
	return err
}

// CreateCluster creates an ACTIVE cluster; creating an existing one does nothing.
func (s *Sim) CreateCluster(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.createCluster(name)
}

// RegisterTaskDefinition registers a new revision of td.Family and returns its ARN.
func (s *Sim) RegisterTaskDefinition(td TaskDefinition) (arn string, err error) {
	raw := td.Raw
	if len(raw) == 0 {
		raw, err = td.registerInput()
		if err != nil {
			return "", err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.registerTaskDef(raw)
	if err != nil {
		return "", err
	}
	return t.arn, nil
}

// CreateService creates a service with one PRIMARY deployment that the scheduler starts
// tasks for. The cluster must exist and the task definition must be registered.
func (s *Sim) CreateService(spec ServiceSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createService(spec)
}

// Throttle makes the next n calls of op ("" = any op) fail with HTTP 400
// ThrottlingException.
func (s *Sim) Throttle(op string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.throttle[op] += n
}

// ServerErrors makes the next n calls of op ("" = any op) fail with HTTP 500 ServerException.
func (s *Sim) ServerErrors(op string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.server[op] += n
}

// SetLatency delays every response by d (real time); zero removes the delay.
func (s *Sim) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.latency = d
}

// Deny makes every call of op fail with AccessDeniedException naming the IAM action ecs:<op>.
func (s *Sim) Deny(op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.deny[op] = true
}

// FailTaskStarts makes tasks of the task definition (by ARN) stop as they start, with stop
// code EssentialContainerExited and exit code 1, so the circuit breaker counts them.
func (s *Sim) FailTaskStarts(taskDefinitionARN string, fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.failStart[taskDefinitionARN] = fail
}

// NeverComplete keeps the service's tasks that are not yet RUNNING in PENDING while on, so a
// rollout never completes (and never fails: nothing is counted for the breaker).
func (s *Sim) NeverComplete(cluster, service string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.never[cluster+"/"+service] = on
}

// SetServiceStatus sets the status DescribeServices reports for the service ("DRAINING",
// "INACTIVE", or "ACTIVE" again), as after a DeleteService; UpdateService on a service that
// is not ACTIVE answers ServiceNotActiveException, as ECS does. Its tasks are left alone.
func (s *Sim) SetServiceStatus(cluster, service, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.clusters[cluster]; c != nil {
		if svc := c.findService(service); svc != nil {
			svc.status = status
		}
	}
}

// statusOrActive is the service's status as ECS reports it.
func (svc *service) statusOrActive() string {
	if svc.status == "" {
		return "ACTIVE"
	}
	return svc.status
}

// Unimplemented makes op answer UnknownOperationException, like some third-party ECS
// implementations do for the newer operations.
func (s *Sim) Unimplemented(op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.unimplemented[op] = true
}

// Calls counts the requests received for op ("" = all ops), faulted ones included.
func (s *Sim) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op == "" {
		n := 0
		for _, c := range s.calls {
			n += c
		}
		return n
	}
	return s.calls[op]
}

// Ops lists the operation of every request received, in order, faulted and unknown ones
// included (requests without the ECS X-Amz-Target prefix are not): which ECS actions a client used, e.g. to check
// an IAM policy against it.
func (s *Sim) Ops() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ops...)
}

// Advance moves the simulator's clock forward by d of simulated time (d/TimeScale of real
// time), as if that time had passed: task start-up and health delays, task protection
// expiry, lifecycle hook timeouts and bake times all see it at the next scheduler step.
// Timestamps on the wire follow the moved clock. The SIGKILL after a stop timeout is real
// time and is not affected.
func (s *Sim) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += s.scaled(d)
}

// Tasks lists every task of the service, stopped ones included, oldest first. It returns
// nil when the cluster or service does not exist.
func (s *Sim) Tasks(cluster, service string) []TaskInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clusters[cluster]
	if c == nil {
		return nil
	}
	svc := c.services[service]
	if svc == nil {
		return nil
	}
	var out []TaskInfo
	for _, t := range svc.tasks {
		out = append(out, t.info())
	}
	return out
}

type faults struct {
	throttle, server           map[string]int
	deny, unimplemented, never map[string]bool
	failStart                  map[string]bool
	latency                    time.Duration
}

func newFaults() faults {
	return faults{
		throttle: map[string]int{}, server: map[string]int{},
		deny: map[string]bool{}, unimplemented: map[string]bool{}, never: map[string]bool{},
		failStart: map[string]bool{},
	}
}
