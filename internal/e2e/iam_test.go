package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/stack"
	"github.com/drainctl/drainctl/internal/testenv"
)

// iamUses are the uses docs/iam-policy.json must describe, each exercised below.
var iamUses = []string{"deploy-drain-first", "deploy-overlap", "deploy-pause-hook", "dry-run", "check", "status"}

// iamPolicyFile is docs/iam-policy.json as the test reads it.
type iamPolicyFile struct {
	Uses map[string]struct {
		Description string `json:"description"`
		Policy      struct {
			Version   string `json:"Version"`
			Statement []struct {
				Sid      string   `json:"Sid"`
				Effect   string   `json:"Effect"`
				Action   []string `json:"Action"`
				Resource string   `json:"Resource"`
			} `json:"Statement"`
		} `json:"policy"`
	} `json:"uses"`
}

// iamRecorder collects, per use, the ECS operations drainctl runs made, and the operations
// proven optional: denied by the simulator in a run that still did the use's job.
type iamRecorder struct {
	mu       sync.Mutex
	ops      map[string]map[string]bool // use → ecs:Op called and answered
	refused  map[string]map[string]bool // use → ecs:Op called and denied
	optional map[string]map[string]bool // use → ecs:Op proven optional
}

// run runs drainctl against the stack for use and records the operations the simulator
// received during the run. Nothing else talks to the simulator meanwhile: the test's own
// ECS calls (stack start-up, WaitSteady) come before or after.
func (rec *iamRecorder) run(t *testing.T, s *stack.Stack, use string, args ...string) *proc {
	t.Helper()
	return rec.runDenied(t, s, use, nil, args...)
}

// runDenied is run with the operations in denied refused (AccessDeniedException) for the rest
// of the stack's life. Their calls are not recorded as used; the caller checks that the run
// did its job all the same and then calls proveOptional.
func (rec *iamRecorder) runDenied(t *testing.T, s *stack.Stack, use string, denied []string, args ...string) *proc {
	t.Helper()
	for _, op := range denied {
		s.Sim.Deny(op)
	}
	before := len(s.Sim.Ops())
	p := run(t, s, args...)
	ops := s.Sim.Ops()[before:]
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, op := range ops {
		if !slices.Contains(denied, op) {
			addTo(rec.ops, use, "ecs:"+op)
			continue
		}
		addTo(rec.refused, use, "ecs:"+op)
		// The user learns which permission is missing.
		if !strings.Contains(p.stderr.String(), "ecs:"+op) {
			t.Errorf("%s: ecs:%s was denied and stderr does not name it", use, op)
		}
	}
	t.Logf("%s: drainctl %s (denied %v) → exit %d, ops %s", use, args[0], denied, p.code, compactOps(ops))
	return p
}

// proveOptional records ops as optional for use: its caller saw a run with them denied do the
// use's job. At least one of them must have been called (and refused) in the use's runs, so
// that the denial was exercised; one not called at all is still done without (e.g.
// DescribeServiceDeployments is never reached once ListServiceDeployments is refused).
func (rec *iamRecorder) proveOptional(t *testing.T, use string, ops ...string) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	refused := false
	for _, op := range ops {
		refused = refused || rec.refused[use]["ecs:"+op]
		addTo(rec.optional, use, "ecs:"+op)
	}
	if !refused {
		t.Errorf("%s: none of %v was called while denied: the denial proves nothing", use, ops)
	}
}

func addTo(m map[string]map[string]bool, k, v string) {
	if m[k] == nil {
		m[k] = map[string]bool{}
	}
	m[k][v] = true
}

// compactOps is each operation once, in the order of first use, with its count, for the log.
func compactOps(ops []string) string {
	var order []string
	n := map[string]int{}
	for _, op := range ops {
		if n[op] == 0 {
			order = append(order, op)
		}
		n[op]++
	}
	var b strings.Builder
	for i, op := range order {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s×%d", op, n[op])
	}
	return b.String()
}

// readOnly runs status, live check and a dry run against the stack, before it is deployed.
func (rec *iamRecorder) readOnly(t *testing.T, s *stack.Stack, dryRunStrategy string) {
	t.Helper()
	p := rec.run(t, s, "status", append(append([]string{"status"}, s.Args()...), "--output", "json")...)
	if p.code != 0 {
		t.Errorf("status: exit %d, want 0", p.code)
	}
	p = rec.run(t, s, "check", append(append([]string{"check"}, s.Args()...), "--output", "json")...)
	if p.code != 0 && p.code != 7 {
		t.Errorf("check: exit %d, want 0 or 7 (findings)", p.code)
	}
	p = rec.run(t, s, "dry-run", deployArgs(s, "--strategy", dryRunStrategy, "--dry-run")...)
	if r := p.report(t); p.code != 0 || !r.DryRun {
		t.Errorf("dry run: exit %d dry_run %v (%s), want 0 true", p.code, r.DryRun, r.Error)
	}
}

// serviceDeploymentsAPI are the Service Deployments API's read operations.
var serviceDeploymentsAPI = []string{"ListServiceDeployments", "DescribeServiceDeployments"}

// TestIAM checks docs/iam-policy.json against what drainctl really calls: each use runs the
// built binary against stacks (real Redis, real Sidekiq tasks in the simulator), the ECS
// operations of its runs are recorded, and the test fails when one is missing from the use's
// policy or when the policy allows an action that the use's runs never made. Runs with some
// operations denied prove them optional; each use's description must name those.
func TestIAM(t *testing.T) {
	t.Parallel()
	pf := readIAMPolicy(t)
	rec := &iamRecorder{ops: map[string]map[string]bool{}, refused: map[string]map[string]bool{}, optional: map[string]map[string]bool{}}
	var skipped atomic.Bool
	noteSkip := func(t *testing.T) {
		if t.Skipped() {
			skipped.Store(true)
		}
	}
	// redeployable waits (outside any recorded run) until the service is steady again with
	// its processes registered, for the next deploy.
	redeployable := func(t *testing.T, s *stack.Stack) {
		t.Helper()
		ctx := ctxFor(t, 30*time.Second)
		must(t, s.WaitSteady(ctx))
		_, err := s.WaitRegistered(ctx, s.Opts.Tasks)
		must(t, err)
	}

	t.Run("uses", func(t *testing.T) {
		// A rolling service with room for overlap: the read-only uses, an overlap deploy, then
		// one without the Service Deployments API.
		t.Run("rolling-overlap", func(t *testing.T) {
			t.Parallel()
			defer noteSkip(t)
			s := startStack(t, stack.Options{Tasks: 2, Concurrency: 1})
			rec.readOnly(t, s, "auto")
			ctx := ctxFor(t, 60*time.Second)
			jids, err := s.Enqueue(ctx, 2, 0.2)
			must(t, err)
			p := rec.run(t, s, "deploy-overlap", overlapArgs(s)...)
			if r := p.report(t); p.code != 0 || r.Strategy.Name != "overlap" {
				t.Fatalf("overlap deploy: exit %d strategy %q (%s), want 0 overlap", p.code, r.Strategy.Name, r.Error)
			}
			nothingLost(t, s, jids)

			redeployable(t, s)
			p = rec.runDenied(t, s, "deploy-overlap", serviceDeploymentsAPI, overlapArgs(s)...)
			if r := p.report(t); p.code != 0 || r.Outcome != "succeeded" || r.Strategy.Name != "overlap" {
				t.Fatalf("overlap deploy without the Service Deployments API: exit %d outcome %q strategy %q (%s), want 0 succeeded overlap",
					p.code, r.Outcome, r.Strategy.Name, r.Error)
			}
			rec.proveOptional(t, "deploy-overlap", serviceDeploymentsAPI...)
		})
		// A drain-first deploy that succeeds; then, without task protection and the Service
		// Deployments API, a dry run and a deploy with --strategy auto, which fall back to
		// drain-first.
		t.Run("drain-first", func(t *testing.T) {
			t.Parallel()
			defer noteSkip(t)
			s := startStack(t, stack.Options{Tasks: 2, Concurrency: 1})
			rec.readOnly(t, s, "drain-first")
			ctx := ctxFor(t, 60*time.Second)
			jids, err := s.Enqueue(ctx, 2, 0.2)
			must(t, err)
			p := rec.run(t, s, "deploy-drain-first", deployArgs(s, "--drain-timeout", "20s")...)
			if r := p.report(t); p.code != 0 || r.Outcome != "succeeded" || r.Strategy.Name != "drain-first" {
				t.Fatalf("drain-first deploy: exit %d outcome %q strategy %q (%s), want 0 succeeded drain-first",
					p.code, r.Outcome, r.Strategy.Name, r.Error)
			}
			nothingLost(t, s, jids)

			redeployable(t, s)
			denied := append([]string{"GetTaskProtection"}, serviceDeploymentsAPI...)
			p = rec.runDenied(t, s, "dry-run", denied, deployArgs(s, "--strategy", "auto", "--dry-run")...)
			if r := p.report(t); p.code != 0 || !r.DryRun || r.Strategy.Name != "drain-first" {
				t.Fatalf("dry run without task protection: exit %d dry_run %v strategy %q (%s), want 0 true drain-first",
					p.code, r.DryRun, r.Strategy.Name, r.Error)
			}
			rec.proveOptional(t, "dry-run", "GetTaskProtection")
			p = rec.runDenied(t, s, "deploy-drain-first", denied, deployArgs(s, "--strategy", "auto", "--drain-timeout", "20s")...)
			if r := p.report(t); p.code != 0 || r.Outcome != "succeeded" || r.Strategy.Name != "drain-first" {
				t.Fatalf("auto deploy without task protection and the Service Deployments API: exit %d outcome %q strategy %q (%s), want 0 succeeded drain-first",
					p.code, r.Outcome, r.Strategy.Name, r.Error)
			}
			rec.proveOptional(t, "deploy-drain-first", denied...)
		})
		// A drain-first deploy whose rollout fails: the circuit breaker rolls back onto the
		// quieted tasks, which drainctl replaces (StopTask).
		t.Run("drain-first-rollback", func(t *testing.T) {
			t.Parallel()
			defer noteSkip(t)
			s := startStack(t, stack.Options{Tasks: 2, Concurrency: 1, CircuitBreaker: true})
			bad, err := s.RegisterRevision()
			must(t, err)
			s.Sim.FailTaskStarts(bad, true)
			p := rec.run(t, s, "deploy-drain-first", deployArgs(s, "--drain-timeout", "20s", "--task-definition", bad)...)
			r := p.report(t)
			if p.code != 4 || r.Outcome != "rolled_back" {
				t.Fatalf("failed drain-first deploy: exit %d outcome %q (%s), want 4 rolled_back", p.code, r.Outcome, r.Error)
			}
			if len(r.Services) != 1 || len(r.Services[0].ReplacedTasks) != s.Opts.Tasks {
				t.Errorf("services %+v, want the %d quieted tasks replaced", r.Services, s.Opts.Tasks)
			}
		})
		// A blue/green service with a PAUSE hook at POST_SCALE_UP: the read-only uses, then a
		// pause-hook deploy.
		t.Run("blue-green-pause-hook", func(t *testing.T) {
			t.Parallel()
			defer noteSkip(t)
			s := startStack(t, stack.Options{Tasks: 2, Concurrency: 1, Deployment: blueGreen(true)})
			rec.readOnly(t, s, "auto")
			ctx := ctxFor(t, 60*time.Second)
			jids, err := s.Enqueue(ctx, 2, 0.2)
			must(t, err)
			p := rec.run(t, s, "deploy-pause-hook", deployArgs(s, "--strategy", "pause-hook", "--drain-timeout", "60s")...)
			if r := p.report(t); p.code != 0 || r.Outcome != "succeeded" || r.Strategy.Name != "pause-hook" {
				t.Fatalf("pause-hook deploy: exit %d outcome %q strategy %q (%s), want 0 succeeded pause-hook",
					p.code, r.Outcome, r.Strategy.Name, r.Error)
			}
			nothingLost(t, s, jids)
		})
	})
	if skipped.Load() || t.Failed() {
		return // the recorded operations are incomplete
	}

	for _, use := range iamUses {
		u, ok := pf.Uses[use]
		if !ok {
			t.Errorf("docs/iam-policy.json: no use %q", use)
			continue
		}
		allowed := map[string]bool{}
		for _, st := range u.Policy.Statement {
			for _, a := range st.Action {
				allowed[a] = true
			}
		}
		used := rec.ops[use]
		t.Logf("%s: used %s; proven optional %s", use, strings.Join(sortedKeys(used), ", "),
			strings.Join(sortedKeys(rec.optional[use]), ", "))
		for _, a := range sortedKeys(used) {
			if !allowed[a] {
				t.Errorf("%s: drainctl called %s, which docs/iam-policy.json does not allow for this use", use, a)
			}
		}
		for _, a := range sortedKeys(allowed) {
			if !used[a] {
				t.Errorf("%s: docs/iam-policy.json allows %s, which this use's runs never called", use, a)
			}
		}
		for _, a := range sortedKeys(rec.optional[use]) {
			if !strings.Contains(u.Description, a) {
				t.Errorf("%s: the description does not name %s, which the use does without (denied in a run that succeeded)", use, a)
			}
		}
	}
}

// readIAMPolicy reads docs/iam-policy.json and checks its shape: exactly the uses above, each
// with a description and a 2012-10-17 policy of Allow statements on ecs: actions.
func readIAMPolicy(t *testing.T) *iamPolicyFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "iam-policy.json"))
	must(t, err)
	var pf iamPolicyFile
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pf); err != nil {
		t.Fatalf("docs/iam-policy.json: %v", err)
	}
	var names []string
	for name, u := range pf.Uses {
		names = append(names, name)
		if u.Description == "" {
			t.Errorf("docs/iam-policy.json: use %q has no description", name)
		}
		if u.Policy.Version != "2012-10-17" || len(u.Policy.Statement) == 0 {
			t.Errorf("docs/iam-policy.json: use %q: policy version %q with %d statements, want 2012-10-17 and at least one",
				name, u.Policy.Version, len(u.Policy.Statement))
		}
		for _, st := range u.Policy.Statement {
			if st.Sid == "" || st.Effect != "Allow" || st.Resource != "*" || len(st.Action) == 0 {
				t.Errorf("docs/iam-policy.json: use %q: statement %+v, want a Sid, Effect Allow, Resource * and actions", name, st)
			}
			for _, a := range st.Action {
				if !strings.HasPrefix(a, "ecs:") || strings.ContainsAny(a, "*?") {
					t.Errorf("docs/iam-policy.json: use %q: action %q, want an ecs: action without wildcards", name, a)
				}
			}
		}
	}
	sort.Strings(names)
	want := slices.Clone(iamUses)
	sort.Strings(want)
	if !slices.Equal(names, want) {
		t.Errorf("docs/iam-policy.json uses = %v, want %v", names, want)
	}
	return &pf
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
