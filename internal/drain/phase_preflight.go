package drain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/drainctl/drainctl/internal/check"
	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/finding"
	"github.com/drainctl/drainctl/internal/sidekiq"
)

// Preflight finding codes. Signal-path findings keep their SP codes from internal/check.
const (
	CodeBadConfig          = "PF000"
	CodeClusterNotFound    = "PF001"
	CodeServiceNotFound    = "PF002"
	CodeServiceNotActive   = "PF003"
	CodeControllerNotECS   = "PF004"
	CodeRolloutInProgress  = "PF005"
	CodeDesiredZero        = "PF006"
	CodeTaskDefNotFound    = "PF007"
	CodeTaskDefOtherFamily = "PF008"
	CodeAccessDenied       = "PF009"
	CodeBreakerOff         = "PF010"
	CodeBreakerNoRollback  = "PF011"
	CodeMinHealthyBelow100 = "PF012"
	CodeECSRead            = "PF019"
	CodeRedis              = "PF020"
	CodeStaleHeartbeat     = "PF021"
	CodeNotDrainable       = "PF022"
	CodeAlreadyQuiet       = "PF023"
	CodeSignalPathSkipped  = "PF024"
	CodeEmptySelection     = "PF025"
)

// preflight reads everything the strategy needs and refuses what cannot succeed, before the
// first write: the services, the target task definition and its signal path, Redis, the
// selection, the heartbeats and the lock. Every finding is recorded in the Result; the
// blocking ones come back in a *PreflightError.
func (x *run) preflight(ctx context.Context) (err error) {
	defer x.phase(PhasePreflight)(&err)
	var tasks [][]ecs.Task
	if len(x.cfg.Services) > 0 {
		tasks = x.preflightServices(ctx)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	x.count("redis.Ping")
	if err := x.fleet.Ping(ctx); err != nil {
		x.addFinding(finding.Finding{Code: CodeRedis, Name: "redis-unreachable", Severity: finding.Error, Subject: x.cfg.RedisURL,
			Message: fmt.Sprintf("redis: %v", err), Fix: "check --redis-url (host, port, password, db) and that Redis is reachable from here"})
		return x.preflightVerdict()
	}
	// A quiet that does not wait needs the heartbeats only, never the jobs in flight.
	read, readName := x.fleet.Snapshot, "redis.Snapshot"
	if x.cfg.Strategy == StrategyQuietOnly && x.cfg.NoWait {
		read, readName = x.fleet.Processes, "redis.Processes"
	}
	x.count(readName)
	snap, err := read(ctx)
	if err != nil {
		x.addFinding(finding.Finding{Code: CodeRedis, Name: "redis-unreachable", Severity: finding.Error, Subject: x.cfg.RedisURL,
			Message: fmt.Sprintf("read the sidekiq fleet: %v", err)})
		return x.preflightVerdict()
	}
	if err := x.preflightVerdict(); err != nil {
		return err // the services refused: the selection would say nothing more
	}
	if err := x.selectProcesses(snap, tasks); err != nil {
		return err
	}
	x.readQueues(ctx)
	for _, f := range staleFindings(x.selected, x.cfg.Now(), x.cfg.StaleAfter) {
		x.addFinding(f)
	}
	x.chooseStrategy(ctx)
	if x.lockName != "" {
		holder, err := x.fleet.LockHolder(ctx, x.lockName)
		x.count("redis.LockHolder")
		switch {
		case err != nil:
			x.addFinding(finding.Finding{Code: CodeRedis, Name: "redis-unreachable", Severity: finding.Error, Subject: x.lockName,
				Message: fmt.Sprintf("read deploy lock %q: %v", x.lockName, err)})
		case holder != nil && x.cfg.DryRun:
			x.res.Lock.Holder = holder
			if err := x.preflightVerdict(); err != nil {
				return err
			}
			return &LockedError{Name: x.lockName, Holder: *holder}
		case holder != nil:
			// The lock phase decides, before any write: it may take over a holder that is gone,
			// and its refusal says when the lock expires.
			x.res.Lock.Holder = holder
		}
	}
	return x.preflightVerdict()
}

// addFinding records a finding; one that does not block the run is also a warning line.
func (x *run) addFinding(f finding.Finding) {
	x.res.Findings = append(x.res.Findings, f)
	if f.Severity != finding.Info && !blocks(f, x.cfg.Strict) {
		msg := f.Message
		if f.Subject != "" {
			msg = f.Subject + ": " + msg
		}
		if f.Fix != "" {
			msg += " (fix: " + f.Fix + ")"
		}
		x.warn("%s %s", f.Code, msg)
	}
}

// blocks says whether a finding refuses the run: preflight errors always; signal-path
// findings (SP…, from drainctl check) and preflight warnings only with --strict.
func blocks(f finding.Finding, strict bool) bool {
	if strings.HasPrefix(f.Code, "SP") {
		return strict && f.Severity != finding.Info
	}
	return f.Severity == finding.Error || strict && f.Severity == finding.Warning
}

// preflightVerdict is the PreflightError of the blocking findings so far, or nil.
func (x *run) preflightVerdict() error {
	var block []finding.Finding
	for _, f := range x.res.Findings {
		if blocks(f, x.cfg.Strict) {
			block = append(block, f)
		}
	}
	if len(block) == 0 {
		return nil
	}
	return &PreflightError{Findings: block}
}

// preflightServices reads the services, checks that each can take the deployment, describes
// the target task definitions and lints their signal path, and lists the running tasks. It
// returns the running tasks per service (nil where they could not be read).
func (x *run) preflightServices(ctx context.Context) [][]ecs.Task {
	refs := x.cfg.Services
	tasks := make([][]ecs.Task, len(refs))
	clusters := map[string]bool{}
	var order []string
	for _, r := range refs {
		if !clusters[r.Cluster] {
			clusters[r.Cluster] = true
			order = append(order, r.Cluster)
		}
	}
	x.count("ecs.CheckClusters")
	if err := x.ecs.CheckClusters(ctx, order); err != nil {
		for _, f := range ecsFindings(err, CodeClusterNotFound, "cluster-not-found", strings.Join(order, ", ")) {
			x.addFinding(f)
		}
		return tasks
	}
	x.count("ecs.Describe")
	states, err := x.ecs.Describe(ctx, refs)
	if err != nil {
		for _, f := range ecsFindings(err, CodeServiceNotFound, "service-not-found", "") {
			x.addFinding(f)
		}
	}
	targets := map[string]*ecs.TaskDefinitionInfo{}
	for _, st := range states {
		i := x.serviceIndex(st.Ref)
		if i < 0 {
			continue
		}
		x.res.Services[i].State = st
		for _, f := range ServiceFindings(st, x.cfg.AllowInProgress) {
			x.addFinding(f)
		}
		target, fs := x.target(ctx, st, targets)
		for _, f := range fs {
			x.addFinding(f)
		}
		x.res.Services[i].Target = target
		if target != nil {
			for _, f := range signalPath(target, st) {
				x.addFinding(f)
			}
		}
		x.count("ecs.Tasks")
		ts, err := x.ecs.Tasks(ctx, st.Ref, "RUNNING")
		if err != nil {
			for _, f := range ecsFindings(err, CodeECSRead, "ecs-read-failed", st.Ref.String()) {
				x.addFinding(f)
			}
			continue
		}
		x.res.Services[i].TasksAtStart = ts
		tasks[i] = ts
	}
	return tasks
}

// target describes the task definition the deployment will run (Config.TaskDefinition, or
// the service's current one) and refuses one that does not exist, is inactive, or belongs to
// another family than the service's.
func (x *run) target(ctx context.Context, st ecs.ServiceState, cache map[string]*ecs.TaskDefinitionInfo) (*ecs.TaskDefinitionInfo, []finding.Finding) {
	name := x.cfg.TaskDefinition
	if name == "" {
		name = st.TaskDefinition
	}
	if name == "" {
		return nil, nil
	}
	subject := st.Ref.String()
	td, ok := cache[name]
	if !ok {
		x.count("ecs.TaskDefinition")
		var err error
		td, err = x.ecs.TaskDefinition(ctx, name)
		if err != nil {
			if !errors.Is(err, ecs.ErrNotFound) {
				return nil, ecsFindings(err, CodeECSRead, "ecs-read-failed", subject)
			}
			return nil, []finding.Finding{{Code: CodeTaskDefNotFound, Name: "task-definition-not-found", Severity: finding.Error,
				Subject: subject, Message: fmt.Sprintf("task definition %s does not exist", shortTD(name)) + x.latestOf(ctx, familyOf(name)),
				Fix: "pass --task-definition an existing ACTIVE revision (family:revision or ARN)"}}
		}
		cache[name] = td
	}
	var fs []finding.Finding
	if td.Status != "" && td.Status != "ACTIVE" {
		fs = append(fs, finding.Finding{Code: CodeTaskDefNotFound, Name: "task-definition-not-found", Severity: finding.Error,
			Subject: subject, Message: fmt.Sprintf("task definition %s:%d is %s: a service cannot be updated to it", td.Family, td.Revision, td.Status) +
				x.latestOf(ctx, td.Family), Fix: "pass --task-definition an ACTIVE revision"})
	}
	if cur := familyOf(shortTD(st.TaskDefinition)); x.cfg.TaskDefinition != "" && cur != "" && td.Family != cur {
		fs = append(fs, finding.Finding{Code: CodeTaskDefOtherFamily, Name: "task-definition-other-family", Severity: finding.Error,
			Subject: subject, Message: fmt.Sprintf("task definition %s:%d is of family %q, the service runs family %q", td.Family, td.Revision, td.Family, cur) +
				x.latestOf(ctx, cur), Fix: "pass a revision of the service's own family"})
	}
	return td, fs
}

// latestOf names the family's latest ACTIVE revision for a message, or says there is none.
func (x *run) latestOf(ctx context.Context, family string) string {
	if family == "" {
		return ""
	}
	x.count("ecs.TaskDefinition")
	td, err := x.ecs.TaskDefinition(ctx, family)
	switch {
	case err == nil && td != nil:
		return fmt.Sprintf("; the latest ACTIVE revision of %s is %s:%d", family, td.Family, td.Revision)
	case errors.Is(err, ecs.ErrNotFound):
		return fmt.Sprintf("; family %s has no ACTIVE revision", family)
	}
	return ""
}

// familyOf is the family of "family:revision", "family" or a task definition ARN.
func familyOf(name string) string {
	name = shortTD(name)
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		return name[:i]
	}
	return name
}

// shortTD turns a task definition ARN into family:revision.
func shortTD(td string) string {
	if i := strings.LastIndex(td, "/"); i >= 0 {
		return td[i+1:]
	}
	return td
}

// ecsFindings turns the errors of an ECS read into findings: not found under code/name,
// access denied as PF009 naming the IAM action, anything else as a failed read.
func ecsFindings(err error, code, name, subject string) []finding.Finding {
	var out []finding.Finding
	for _, e := range flatten(err) {
		f := finding.Finding{Severity: finding.Error, Subject: subject, Message: e.Error()}
		var ad *ecs.AccessDeniedError
		switch {
		case errors.As(e, &ad):
			f.Code, f.Name = CodeAccessDenied, "access-denied"
			f.Fix = "allow " + ad.Action + " in the IAM policy of these credentials (docs/iam-policy.json)"
		case errors.Is(e, ecs.ErrNotFound):
			f.Code, f.Name = code, name
			f.Fix = "check --cluster, --service and --region"
		default:
			f.Code, f.Name = CodeECSRead, "ecs-read-failed"
		}
		out = append(out, f)
	}
	return out
}

// flatten splits a joined error into its parts.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// ServiceFindings are the checks of one service that a read can make before any write:
// what UpdateService would refuse, and what makes a rollout risky.
func ServiceFindings(st ecs.ServiceState, allowInProgress bool) []finding.Finding {
	subject := st.Ref.String()
	f := func(code, name string, sev finding.Severity, msg, fix string) finding.Finding {
		return finding.Finding{Code: code, Name: name, Severity: sev, Subject: subject, Message: msg, Fix: fix}
	}
	var out []finding.Finding
	if st.Status != "ACTIVE" {
		out = append(out, f(CodeServiceNotActive, "service-not-active", finding.Error,
			fmt.Sprintf("service is %s, not ACTIVE: only an active service can be deployed", st.Status), "deploy an ACTIVE service"))
	}
	switch st.Controller {
	case "ECS", "":
	case "CODE_DEPLOY":
		out = append(out, f(CodeControllerNotECS, "controller-not-ecs", finding.Error,
			"the service uses the CODE_DEPLOY deployment controller: drainctl deploys services of the ECS controller only",
			"deploy it through CodeDeploy, or move it to the ECS controller (deploymentConfiguration.strategy BLUE_GREEN)"))
	default:
		out = append(out, f(CodeControllerNotECS, "controller-not-ecs", finding.Error,
			fmt.Sprintf("the service uses the %s deployment controller: drainctl deploys services of the ECS controller only", st.Controller),
			"deploy it through its own controller"))
	}
	if busy := inProgress(st.Deployments); busy != "" {
		if allowInProgress {
			out = append(out, f(CodeRolloutInProgress, "rollout-in-progress", finding.Warning,
				"a rollout is already in progress ("+busy+"): the forced deployment replaces it", ""))
		} else {
			out = append(out, f(CodeRolloutInProgress, "rollout-in-progress", finding.Error,
				"a rollout is already in progress ("+busy+")", "wait for it to end, or pass --allow-in-progress"))
		}
	}
	if st.Status == "ACTIVE" && st.Desired == 0 {
		out = append(out, f(CodeDesiredZero, "desired-count-zero", finding.Error,
			"desired count is 0: the deployment would start no task, and the quieted processes would never be replaced",
			"scale the service up first"))
	}
	switch {
	case !st.BreakerEnabled:
		out = append(out, f(CodeBreakerOff, "circuit-breaker-off", finding.Warning,
			"deployment circuit breaker is off: a bad rollout then only ends by --rollout-timeout",
			"enable deploymentConfiguration.deploymentCircuitBreaker with rollback"))
	case !st.BreakerRollback:
		out = append(out, f(CodeBreakerNoRollback, "circuit-breaker-no-rollback", finding.Warning,
			"deployment circuit breaker has rollback off: a failed rollout is marked FAILED and left in place",
			"set deploymentCircuitBreaker.rollback to true"))
	}
	if st.MinHealthy < 100 {
		out = append(out, f(CodeMinHealthyBelow100, "min-healthy-below-100", finding.Warning,
			fmt.Sprintf("minimumHealthyPercent is %d: ECS may stop old tasks before new ones are healthy", st.MinHealthy),
			"set minimumHealthyPercent to 100"))
	}
	return out
}

// inProgress describes a rollout already under way, or returns "".
func inProgress(deps []ecs.Deployment) string {
	if len(deps) > 1 {
		return fmt.Sprintf("%d deployments", len(deps))
	}
	for _, d := range deps {
		if d.Status == "PRIMARY" && d.RolloutState == "IN_PROGRESS" {
			return fmt.Sprintf("deployment %s is IN_PROGRESS", d.ID)
		}
	}
	return ""
}

// signalPath runs drainctl check's signal-path checks on the target task definition; its
// error and warning findings name the revision they are about.
func signalPath(td *ecs.TaskDefinitionInfo, st ecs.ServiceState) []finding.Finding {
	rev := fmt.Sprintf("%s:%d", td.Family, td.Revision)
	res, err := check.Run(CheckInput(td, st))
	if err != nil {
		return []finding.Finding{{Code: CodeSignalPathSkipped, Name: "signal-path-skipped", Severity: finding.Warning, Subject: rev,
			Message: "signal-path check of " + rev + " skipped: " + err.Error(), Fix: "name the container with drainctl check --container"}}
	}
	var out []finding.Finding
	for _, f := range res.Findings {
		// The circuit breaker is already a finding of the service (PF010).
		if f.Code == check.CodeCircuitBreakerOff || f.Severity == finding.Info {
			continue
		}
		f.Message = "signal path of " + rev + ": " + f.Message
		out = append(out, f)
	}
	return out
}

// checkTaskDefinition converts the ECS client's task definition for internal/check.
func checkTaskDefinition(td *ecs.TaskDefinitionInfo) check.TaskDefinition {
	var cs []check.Container
	for _, c := range td.Containers {
		cc := check.Container{Name: c.Name, Image: c.Image, Command: c.Command, EntryPoint: c.EntryPoint,
			InitProcessEnabled: c.InitProcessEnabled, Environment: c.Environment}
		ess := c.Essential
		cc.Essential = &ess
		if c.StopTimeout != nil {
			v := int(*c.StopTimeout)
			cc.StopTimeout = &v
		}
		for _, d := range c.DependsOn {
			cc.DependsOn = append(cc.DependsOn, check.Dependency{ContainerName: d.ContainerName, Condition: d.Condition})
		}
		cs = append(cs, cc)
	}
	t := check.NewTaskDefinition(td.Family, int(td.Revision), td.NetworkMode, td.RequiresCompatibilities, cs...)
	t.ARN = td.ARN
	return t
}

// checkDeployment is the service's deployment configuration for internal/check.
func checkDeployment(st ecs.ServiceState) *check.Deployment {
	minH, maxP := int(st.MinHealthy), int(st.MaxPercent)
	return &check.Deployment{MinimumHealthyPercent: &minH, MaximumPercent: &maxP,
		Strategy: st.Strategy.Name, DesiredCount: int(st.Desired), PauseHookPostScaleUp: st.Strategy.PauseHookAt(ecs.StagePostScaleUp) != nil,
		CircuitBreakerEnabled: st.BreakerEnabled, CircuitBreakerRollback: st.BreakerRollback}
}

// staleFindings refuses selected processes whose heartbeat is older than staleAfter: a
// frozen process never acknowledges quiet.
func staleFindings(ps []sidekiq.Process, now time.Time, staleAfter time.Duration) []finding.Finding {
	var stale []string
	for _, p := range ps {
		if age := now.Sub(p.Beat); age > staleAfter {
			stale = append(stale, fmt.Sprintf("%s (%s ago)", p.Identity, age.Round(time.Second)))
		}
	}
	if len(stale) == 0 {
		return nil
	}
	return []finding.Finding{{Code: CodeStaleHeartbeat, Name: "stale-heartbeat", Severity: finding.Error, Subject: "selection",
		Message: fmt.Sprintf("%d selected process(es) have no heartbeat in %v: %s", len(stale), staleAfter, strings.Join(stale, ", ")),
		Fix:     "check them, or leave them out of the selection (--identity)"}}
}

// selectProcesses fixes the selection: the selector's choice, or the processes placed in the
// services' running tasks. Dead leftovers and embedded processes are left out with a
// finding.
func (x *run) selectProcesses(snap *sidekiq.Snapshot, allTasks [][]ecs.Task) error {
	var flat []ecs.Task
	svcOfTask := map[string]string{}
	for i, ts := range allTasks {
		for _, t := range ts {
			flat = append(flat, t)
			svcOfTask[t.ARN] = x.cfg.Services[i].String()
		}
	}
	addrs := taskAddresses(flat)
	var candidates []sidekiq.Process
	if x.cfg.Selector != nil {
		sel, err := snap.Select(*x.cfg.Selector)
		if err != nil {
			var empty *sidekiq.EmptySelectionError
			if errors.As(err, &empty) || errors.Is(err, sidekiq.ErrNoSelector) {
				return x.emptySelection(snap, nil, err.Error())
			}
			return err
		}
		candidates = sel.Processes
	} else {
		for _, p := range snap.Processes {
			if _, ok := sidekiq.MatchTask(p, addrs); ok {
				candidates = append(candidates, p)
			} else {
				x.res.Unplaced = append(x.res.Unplaced, p.Identity)
			}
		}
	}
	x.selected = slices.Grow(x.selected, len(candidates))
	x.res.Processes = slices.Grow(x.res.Processes, len(candidates))
	for _, p := range candidates {
		if ok, why := sidekiq.Drainable(p); !ok {
			x.addFinding(finding.Finding{Code: CodeNotDrainable, Name: "not-drainable", Severity: finding.Warning, Subject: p.Identity,
				Message: "not drained: " + why})
			continue
		}
		busy := len(p.Jobs)
		if p.Jobs == nil {
			busy = p.Busy // heartbeats only (quiet --no-wait): Sidekiq's own count
		}
		pr := ProcessResult{Identity: p.Identity, Hostname: p.Hostname, Tag: p.Tag, Version: p.Version,
			Queues: p.Queues, State: sidekiq.StateRunning, LastBeat: p.Beat, BusyAtQuiet: busy}
		if p.Quiet {
			pr.State = sidekiq.StateQuiet
			x.addFinding(finding.Finding{Code: CodeAlreadyQuiet, Name: "already-quiet", Severity: finding.Warning, Subject: p.Identity,
				Message: "process is already quiet (an earlier run?): it is drained again"})
		}
		if a, ok := sidekiq.MatchTask(p, addrs); ok {
			x.taskOf[p.Identity] = a.TaskARN
			pr.TaskARN = a.TaskARN
			pr.Service = svcOfTask[a.TaskARN]
		}
		x.selected = append(x.selected, p)
		x.procIndex[p.Identity] = len(x.res.Processes)
		x.res.Processes = append(x.res.Processes, pr)
		for _, j := range p.Jobs {
			x.jobs.add(p.Identity, j)
		}
	}
	if len(x.selected) == 0 {
		var tasks []string
		if len(x.cfg.Services) > 0 {
			tasks = []string{}
			for _, t := range flat {
				tasks = append(tasks, describeTask(t))
			}
		}
		return x.emptySelection(snap, tasks, "")
	}
	return nil
}

// emptySelection is the refusal of a selection that matched nothing, listing what there is;
// why is the selector's own explanation, when a selector was given.
func (x *run) emptySelection(snap *sidekiq.Snapshot, tasks []string, why string) error {
	f := finding.Finding{Code: CodeEmptySelection, Name: "empty-selection", Severity: finding.Error,
		Subject: "selection", Fix: "run 'drainctl status --all' to see the fleet"}
	if why != "" {
		f.Message = why
		x.res.Findings = append(x.res.Findings, f)
		return &PreflightError{Findings: []finding.Finding{f}}
	}
	e := &EmptySelectionError{Tasks: tasks, Fleet: []string{}}
	for _, p := range snap.Processes {
		e.Fleet = append(e.Fleet, describeProcess(p))
	}
	f.Message = e.Error()
	x.res.Findings = append(x.res.Findings, f)
	return e
}

// taskAddresses is what sidekiq.MatchTask needs of the tasks.
func taskAddresses(tasks []ecs.Task) []sidekiq.TaskAddress {
	out := make([]sidekiq.TaskAddress, len(tasks))
	for i, t := range tasks {
		a := sidekiq.TaskAddress{TaskARN: t.ARN, PrivateIPv4: t.PrivateIPv4, PrivateDNS: t.PrivateDNS}
		for _, c := range t.Containers {
			if c.RuntimeID != "" {
				a.ContainerRuntimeIDs = append(a.ContainerRuntimeIDs, c.RuntimeID)
			}
		}
		out[i] = a
	}
	return out
}

// readQueues records the selection's queue depths; a failure is only a warning.
func (x *run) readQueues(ctx context.Context) {
	seen := map[string]bool{}
	var names []string
	for _, p := range x.selected {
		for _, q := range p.Queues {
			if !seen[q] {
				seen[q] = true
				names = append(names, q)
			}
		}
	}
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	x.count("redis.QueueStats")
	qs, err := x.fleet.QueueStats(ctx, names, x.cfg.Now())
	if err != nil {
		if ctx.Err() == nil {
			x.warn("read queue sizes: %v", err)
		}
		return
	}
	x.res.Queues = qs
}

func describeProcess(p sidekiq.Process) string {
	if p.Tag != "" {
		return fmt.Sprintf("%s (tag %s)", p.Identity, p.Tag)
	}
	return p.Identity
}

func describeTask(t ecs.Task) string {
	id := t.ID
	if id == "" {
		id = t.ARN
	}
	if t.PrivateIPv4 != "" {
		return id + " " + t.PrivateIPv4
	}
	return id
}
