// Package e2e holds drainctl's end-to-end tests: the built drainctl binary against a real
// redis-server, real Sidekiq workers running as tasks of the ECS simulator, and the
// simulator itself (internal/stack starts them). It has no code of its own besides the tests.
//
// TestMain builds ./cmd/drainctl once (with -race when the tests run with -race) and, unless
// -parallel is given, runs 4 tests at a time: they mostly wait for Sidekiq heartbeats. Each
// test starts its own stack. Run with
//
//	go test -race -count=1 ./internal/e2e/
//
// DRAINCTL_E2E_ARTIFACTS=<dir> keeps every drainctl run's stdout and stderr there.
package e2e
