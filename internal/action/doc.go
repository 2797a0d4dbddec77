// Package action holds the tests of the GitHub Action (action.yml at the repo root and the
// script it calls, scripts/action.sh); it has no code of its own.
//
// The tests run the script the way a runner would: RUNNER_OS, RUNNER_ARCH, RUNNER_TEMP,
// GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and GITHUB_PATH set to values and temporary files, the
// inputs as INPUT_* variables, and a PATH whose first folder holds a drainctl built by
// TestMain with the version the action asks for stamped in, so the script's install step
// finds the right version on PATH and downloads nothing (GITHUB_SERVER_URL points at a closed
// port, so an attempted download would fail the run). The deploys go to the local stack
// (internal/stack): a real redis-server with a password, real Sidekiq processes and the ECS
// simulator.
package action
