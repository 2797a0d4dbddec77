package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/ecs/ecssim"
)

// TestCheckLiveDependsOn: live mode reads dependsOn from ECS, so a sidecar that Sidekiq
// depends on is not reported as able to stop first (SP009), and one it does not is.
func TestCheckLiveDependsOn(t *testing.T) {
	t.Parallel()
	sim := ecssim.New(ecssim.Options{TimeScale: 20, Tick: 20 * time.Millisecond})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	sim.CreateCluster("prod")
	for _, svc := range []string{"good-sidecar-dependson", "sp009-sidecar"} {
		raw, err := os.ReadFile(corpus(svc))
		if err != nil {
			t.Fatal(err)
		}
		td, err := sim.RegisterTaskDefinition(ecssim.TaskDefinition{Raw: raw})
		if err != nil {
			t.Fatal(err)
		}
		if err := sim.CreateService(ecssim.ServiceSpec{Cluster: "prod", Name: svc, TaskDefinition: td, DesiredCount: 1,
			CircuitBreaker: &ecssim.CircuitBreaker{Enable: true, Rollback: true}}); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := runBinary(t, sim.URL(), nil, "check", "--cluster", "prod", "--service", "good-sidecar-dependson", "--strict")
	if code != exitOK || strings.Contains(out, "SP009") {
		t.Errorf("good sidecar: exit %d, want 0 without SP009; stderr %q\n%s", code, errs, out)
	}
	code, out, errs = runBinary(t, sim.URL(), nil, "check", "--cluster", "prod", "--service", "sp009-sidecar", "--strict")
	if code != exitCheckFindings || !strings.Contains(out, "SP009") {
		t.Errorf("sidecar without dependsOn: exit %d, want 7 with SP009; stderr %q\n%s", code, errs, out)
	}
}
