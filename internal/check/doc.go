// Package check finds the broken signal path before it drops jobs: it reads an ECS task
// definition (and, when given, entry point scripts, the service's deployment configuration
// and live evidence) and reports how SIGTERM would reach Sidekiq when ECS stops the task.
//
// How ECS stops a task: SIGTERM to each container's PID 1, SIGKILL after stopTimeout. Sidekiq
// must be PID 1 itself (exec form, or a shell/script that ends in `exec`), or sit below an
// init that forwards TERM to it. A shell that waits for Sidekiq as its child is the classic
// failure: as PID 1 it ignores TERM, Sidekiq is SIGKILLed and its running jobs are lost.
//
// The engine is pure: Run takes Inputs built from this package's own types
// (ReadTaskDefinition and ParseTaskDefinition for JSON files or stdin, at most 1 MiB of UTF-8
// text, with errors in the document's own terms; NewTaskDefinition or the struct fields for
// values the ECS client read) and returns a Result — finding.Findings with stable codes
// (SP001…), Targets with the numbers it settled on, and a Summary. It never prints; internal/report renders a Result as text, JSON
// or Markdown, and Result.ExitCode gives `drainctl check`'s exit code (0, or 7).
//
// Shell scripts (`sh -c` strings and entry point scripts) are parsed with mvdan.cc/sh in the
// shell's own grammar (POSIX for sh and dash, bash for bash, from the shebang for a script
// file) and walked as one run would go: "$@", $1 and the container's environment are
// expanded, `case "$1" in` and simple `[ "$1" = x ]` tests are decided when their words are
// known (otherwise every branch counts, and the branch that starts Sidekiq without exec
// decides), functions are followed where they are called, and an exec or exit in the shell's
// own process ends the walk.
//
// What is proven against behaviour (behaviour_test.go): for corpus commands run as real
// local-process tasks of the ECS simulator with a real Sidekiq, the ones Run flags as broken
// are the ones whose job was lost, and the ones it passes requeued their job. The shell model
// behind SP002 (bash execs a lone command and the last of an and-list, dash execs neither:
// a lone `sh -c` command is an error, under bash an info, bash's and-list a warning) is
// checked against the machine's real bash and dash (shell_test.go).
package check
