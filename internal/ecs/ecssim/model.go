package ecssim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Task, deployment and service states as ECS spells them.
const (
	statusProvisioning = "PROVISIONING"
	statusPending      = "PENDING"
	statusRunning      = "RUNNING"
	statusStopping     = "STOPPING"
	statusStopped      = "STOPPED"

	depPrimary  = "PRIMARY"
	depActive   = "ACTIVE"
	depInactive = "INACTIVE"

	rolloutInProgress = "IN_PROGRESS"
	rolloutCompleted  = "COMPLETED"
	rolloutFailed     = "FAILED"
)

// Simulated durations of a task's start and of a simulated (non-process) task's stop.
const (
	provisionDelay = 2 * time.Second
	pendingDelay   = 3 * time.Second
	simStopDelay   = 2 * time.Second
	defaultStop    = 30 * time.Second
	maxEvents      = 100
)

type cluster struct {
	s         *Sim
	name, arn string
	services  map[string]*service
	order     []string
}

type taskDef struct {
	arn, family string
	revision    int32
	raw         map[string]any // the register input, without tags
	containers  []containerDef
	networkMode string
	registered  time.Time
}

type containerDef struct {
	Name        string   `json:"name"`
	Image       string   `json:"image"`
	Command     []string `json:"command"`
	EntryPoint  []string `json:"entryPoint"`
	Essential   *bool    `json:"essential"`
	StopTimeout *int32   `json:"stopTimeout"`
	// LinuxParameters carries initProcessEnabled, which runs a process task under tini.
	LinuxParameters *struct {
		InitProcessEnabled *bool `json:"initProcessEnabled"`
	} `json:"linuxParameters"`
	Environment []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"environment"`
}

type service struct {
	c                      *cluster
	name, arn              string
	taskDef                string
	desired                int32
	minPct, maxPct         int32
	breaker                CircuitBreaker
	controller, launchType string
	proc                   *ProcessTemplate
	dc                     deployConfig // strategy, bake time, hooks, early success
	createdAt              time.Time
	status                 string // "" means ACTIVE; see SetServiceStatus

	deployments []*deployment // PRIMARY first, then ACTIVE ones, newest first
	history     []*deployment // every deployment ever, oldest first
	tasks       []*task       // every task ever, oldest first
	events      []event       // newest first, at most maxEvents
}

type event struct {
	id, message string
	at          time.Time
}

type deployment struct {
	id, status, taskDef         string
	rolloutState, rolloutReason string
	failedTasks                 int32
	createdAt, updatedAt        time.Time
	completed                   bool // reached COMPLETED at least once
	heldNoted                   bool // the event about protected tasks holding it was posted

	// Strategy and lifecycle stages (see strategy.go).
	dc        deployConfig // the service's settings when the deployment was made
	direct    bool         // the service's first deployment: no stages, no hooks
	stage     string       // lifecycleStage
	stageAt   time.Time
	hooks     []*hookRun // hook invocations of the current stage
	weight    float64    // production traffic share of this revision, percent
	shifted   bool       // the current traffic step is done; its bake runs until stepUntil
	stepUntil time.Time

	// Service Deployments API view.
	sdStatus, sdReason string
	sources            []*deployment
	failures           int32 // not reset, unlike failedTasks
	threshold          int32
	breakerTriggered   bool
	rollbackReason     string
	rollbackTo         *deployment
	rollbackDone       string // statusReason once the rollback succeeded
	rollbackAt         time.Time
	finishedAt         time.Time
	stoppedAt          time.Time
}

type task struct {
	svc  *service
	dep  *deployment
	td   *taskDef
	id   string
	arn  string
	ip   string
	eni  string
	att  string
	rtID string

	lastStatus, desiredStatus string
	createdAt, pullStartedAt  time.Time
	startedAt, stoppingAt     time.Time
	stoppedAt, nextAt         time.Time
	healthyAt                 time.Time
	healthy                   bool
	stopCode, stoppedReason   string
	containerReason           string
	exitCode                  *int32
	stopTimeout               time.Duration
	proc                      *proc
	protectedUntil            time.Time // scale-in protection's expiry; zero when off
}

func (t *task) hostname() string { return "ip-" + strings.ReplaceAll(t.ip, ".", "-") }

func (t *task) info() TaskInfo {
	ti := TaskInfo{
		ARN: t.arn, ID: t.id, DeploymentID: t.dep.id, LastStatus: t.lastStatus, DesiredStatus: t.desiredStatus,
		PrivateIPv4: t.ip, Hostname: t.hostname(), RuntimeID: t.rtID, StopCode: t.stopCode,
		StoppedReason: t.stoppedReason, Healthy: t.healthy && t.wanted(), StartedAt: t.startedAt, StoppedAt: t.stoppedAt,
	}
	if now := t.svc.c.s.now(); t.wanted() && t.protected(now) {
		ti.Protected, ti.ProtectionExpiresAt = true, t.protectedUntil
	}
	if t.exitCode != nil {
		c := *t.exitCode
		ti.ExitCode = &c
	}
	if t.proc != nil {
		ti.PID = t.proc.pid
	}
	return ti
}

// live is true until the task has STOPPED: it still counts against maximumPercent.
func (t *task) live() bool { return t.lastStatus != statusStopped }

// wanted is true for tasks the scheduler has not asked to stop.
func (t *task) wanted() bool { return t.desiredStatus == statusRunning }

func randHex(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randDigits(n int) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		lo := int64(0)
		if i == 0 {
			lo = 1
		}
		d, _ := rand.Int(rand.Reader, big.NewInt(10-lo))
		sb.WriteString(strconv.FormatInt(d.Int64()+lo, 10))
	}
	return sb.String()
}

func initialIPSeq() int {
	n, _ := rand.Int(rand.Reader, big.NewInt(50000))
	return int(n.Int64())
}

func (s *Sim) nextIP() string {
	n := s.ipSeq
	s.ipSeq++
	return fmt.Sprintf("10.0.%d.%d", (n/250)%254+1, n%250+4)
}

func (s *Sim) arn(resource string) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:%s", s.o.Region, s.o.AccountID, resource)
}

// now is the simulator's clock: real time plus what Advance added. Called with s.mu held.
func (s *Sim) now() time.Time { return time.Now().Add(s.offset) }

// scaled converts a simulated duration to real time.
func (s *Sim) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) / s.o.TimeScale)
}

func (s *Sim) logf(format string, args ...any) {
	if s.o.Logf != nil {
		s.o.Logf(format, args...)
	}
}

func (s *Sim) createCluster(name string) *cluster {
	if c := s.clusters[name]; c != nil {
		return c
	}
	c := &cluster{s: s, name: name, arn: s.arn("cluster/" + name), services: map[string]*service{}}
	s.clusters[name] = c
	return c
}

// findCluster accepts a name or an ARN; "" means "default".
func (s *Sim) findCluster(ref string) *cluster {
	if ref == "" {
		ref = "default"
	}
	if strings.HasPrefix(ref, "arn:") {
		_, ref, _ = strings.Cut(ref, ":cluster/")
	}
	return s.clusters[ref]
}

// findService accepts a name or an ARN (arn:...:service/<cluster>/<name> or the old
// arn:...:service/<name>).
func (c *cluster) findService(ref string) *service {
	if strings.HasPrefix(ref, "arn:") {
		_, rest, _ := strings.Cut(ref, ":service/")
		if i := strings.LastIndex(rest, "/"); i >= 0 {
			rest = rest[i+1:]
		}
		ref = rest
	}
	return c.services[ref]
}

func (td TaskDefinition) registerInput() (json.RawMessage, error) {
	nm := td.NetworkMode
	if nm == "" {
		nm = "awsvpc"
	}
	in := map[string]any{"family": td.Family, "networkMode": nm}
	if len(td.RequiresCompatibilities) > 0 {
		in["requiresCompatibilities"] = td.RequiresCompatibilities
	}
	var cds []map[string]any
	for _, c := range td.Containers {
		cd := map[string]any{"name": c.Name, "image": c.Image}
		if c.Command != nil {
			cd["command"] = c.Command
		}
		if c.EntryPoint != nil {
			cd["entryPoint"] = c.EntryPoint
		}
		if c.Essential != nil {
			cd["essential"] = *c.Essential
		}
		if c.StopTimeout != nil {
			cd["stopTimeout"] = *c.StopTimeout
		}
		if c.InitProcessEnabled != nil {
			cd["linuxParameters"] = map[string]any{"initProcessEnabled": *c.InitProcessEnabled}
		}
		if len(c.Environment) > 0 {
			var env []map[string]string
			for k, v := range c.Environment {
				env = append(env, map[string]string{"name": k, "value": v})
			}
			cd["environment"] = env
		}
		cds = append(cds, cd)
	}
	in["containerDefinitions"] = cds
	b, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("ecssim: encode task definition %q: %w", td.Family, err)
	}
	return b, nil
}

// registerTaskDef stores a register-task-definition input as the family's next revision.
func (s *Sim) registerTaskDef(raw []byte) (*taskDef, error) {
	var in map[string]any
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, invalidParam("register task definition: %v", err)
	}
	var typed struct {
		Family               string         `json:"family"`
		NetworkMode          string         `json:"networkMode"`
		ContainerDefinitions []containerDef `json:"containerDefinitions"`
	}
	if err := json.Unmarshal(raw, &typed); err != nil {
		return nil, invalidParam("register task definition: %v", err)
	}
	if typed.Family == "" {
		return nil, invalidParam("Family must not be empty.")
	}
	if len(typed.ContainerDefinitions) == 0 {
		return nil, invalidParam("Container definitions must not be empty.")
	}
	for _, cd := range typed.ContainerDefinitions {
		if cd.Name == "" || cd.Image == "" {
			return nil, invalidParam("Container.name and Container.image should not be null or empty.")
		}
	}
	delete(in, "tags")
	rev := int32(len(s.families[typed.Family]) + 1)
	td := &taskDef{
		family: typed.Family, revision: rev, raw: in, containers: typed.ContainerDefinitions,
		networkMode: typed.NetworkMode, registered: s.now(),
		arn: s.arn(fmt.Sprintf("task-definition/%s:%d", typed.Family, rev)),
	}
	s.families[td.family] = append(s.families[td.family], td)
	s.tdByARN[td.arn] = td
	return td, nil
}

// findTaskDef accepts an ARN, family:revision or family (latest revision).
func (s *Sim) findTaskDef(ref string) *taskDef {
	if td := s.tdByARN[ref]; td != nil {
		return td
	}
	if strings.HasPrefix(ref, "arn:") {
		_, ref, _ = strings.Cut(ref, ":task-definition/")
	}
	fam, rev, hasRev := strings.Cut(ref, ":")
	tds := s.families[fam]
	if len(tds) == 0 {
		return nil
	}
	if !hasRev {
		return tds[len(tds)-1]
	}
	n, err := strconv.Atoi(rev)
	if err != nil || n < 1 || n > len(tds) {
		return nil
	}
	return tds[n-1]
}

func (s *Sim) createService(spec ServiceSpec) error {
	c := s.findCluster(spec.Cluster)
	if c == nil {
		return clusterNotFound()
	}
	if spec.Name == "" {
		return invalidParam("Service name must not be empty.")
	}
	if c.services[spec.Name] != nil {
		return invalidParam("Creation of service was not idempotent.")
	}
	td := s.findTaskDef(spec.TaskDefinition)
	if td == nil {
		return &apiError{code: "ClientException", msg: "TaskDefinition not found."}
	}
	svc := &service{
		c: c, name: spec.Name, arn: s.arn("service/" + c.name + "/" + spec.Name), taskDef: td.arn,
		desired: spec.DesiredCount, minPct: 100, maxPct: 200, controller: spec.DeploymentController,
		launchType: spec.LaunchType, proc: spec.Process, createdAt: s.now(),
	}
	if spec.MinimumHealthyPercent != nil {
		svc.minPct = *spec.MinimumHealthyPercent
	}
	if spec.MaximumPercent != nil {
		svc.maxPct = *spec.MaximumPercent
	}
	if err := checkPercents(svc.minPct, svc.maxPct); err != nil {
		return err
	}
	if err := checkDesired(spec.DesiredCount); err != nil {
		return err
	}
	if spec.CircuitBreaker != nil {
		svc.breaker = *spec.CircuitBreaker
	}
	if svc.controller == "" {
		svc.controller = "ECS"
	}
	switch svc.controller {
	case "ECS", "CODE_DEPLOY", "EXTERNAL":
	default:
		return invalidParam("Invalid deployment controller type: %s", svc.controller)
	}
	svc.dc = deployConfig{}.merged(wireDeployConfig{
		Strategy: spec.Strategy, BakeTimeInMinutes: spec.BakeTimeInMinutes, LifecycleHooks: spec.LifecycleHooks,
		LinearConfiguration: spec.LinearConfiguration, CanaryConfiguration: spec.CanaryConfiguration,
		EarlySuccessCriteria: spec.EarlySuccessCriteria,
	})
	if err := svc.dc.validate(svc.minPct, svc.controller); err != nil {
		return err
	}
	if svc.launchType == "" {
		svc.launchType = "FARGATE"
	}
	c.services[svc.name] = svc
	c.order = append(c.order, svc.name)
	d := s.newDeployment(svc, td.arn)
	d.direct, d.stage = true, stageScaleUp
	return nil
}

// maxDesired is ECS's default quota of tasks per service.
const maxDesired = 5000

func checkDesired(n int32) error {
	if n < 0 || n > maxDesired {
		return invalidParam("desiredCount must be between 0 and %d.", maxDesired)
	}
	return nil
}

func checkPercents(minPct, maxPct int32) error {
	if minPct < 0 || minPct > 100 {
		return invalidParam("minimumHealthyPercent must be between 0 and 100.")
	}
	if maxPct < 100 {
		return invalidParam("maximumPercent must be at least 100.")
	}
	return nil
}

// newDeployment makes a new PRIMARY deployment of td; the former PRIMARY becomes ACTIVE.
func (s *Sim) newDeployment(svc *service, td string) *deployment {
	now := s.now()
	d := &deployment{
		id: "ecs-svc/" + randDigits(19), status: depPrimary, taskDef: td,
		rolloutState: rolloutInProgress, rolloutReason: "ECS deployment in progress.",
		createdAt: now, updatedAt: now, sdStatus: "IN_PROGRESS", dc: svc.dc,
	}
	for _, old := range svc.deployments {
		old.status = depActive
		old.updatedAt = now
		d.sources = append(d.sources, old)
		if old.sdStatus == "IN_PROGRESS" || old.sdStatus == "PENDING" {
			old.sdStatus, old.sdReason, old.stoppedAt = "STOPPED", "Service deployment superseded by a newer deployment.", now
		}
	}
	svc.deployments = append([]*deployment{d}, svc.deployments...)
	svc.history = append(svc.history, d)
	svc.taskDef = td
	s.logf("ecssim: service %s: deployment %s of %s created", svc.name, d.id, td)
	return d
}

func (svc *service) addEvent(format string, args ...any) {
	e := event{id: randUUID(), message: fmt.Sprintf(format, args...), at: svc.c.s.now()}
	svc.events = append([]event{e}, svc.events...)
	if len(svc.events) > maxEvents {
		svc.events = svc.events[:maxEvents]
	}
}

func randUUID() string {
	h := randHex(32)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// breakerThreshold is ECS's failed-task threshold: half the desired count, 3 to 200.
func breakerThreshold(desired int32) int32 {
	t := (desired + 1) / 2
	return max(3, min(200, t))
}
