#!/bin/sh
# Benchmarks drainctl's fleet read and quiet-all against Sidekiq 6.4's own Ruby API on the
# same Redis data: 10,000 processes x 5 in-flight jobs in the Sidekiq 6.x layout, written by
# the Go benchmarks (internal/sidekiq/bench_test.go) into a redis-server this script starts on
# 127.0.0.1:$PORT and stops (by PID) at the end.
#
#   scripts/bench.sh     # needs redis-server, redis-cli, ruby-sidekiq 6.4.1, go, GNU time
#
# Environment: PORT (default 6390), BENCHTIME (default 20x), COUNT (Go repetitions, default 5),
# RUNS (Ruby repetitions, default 5), GOMEMLIMITS (Go soft memory limits to try, default
# "off 48MiB"). The machine is shared: compare best-of figures taken in the same run.
set -eu
cd "$(dirname "$0")/.."
PORT=${PORT:-6390}
BENCHTIME=${BENCHTIME:-20x}
COUNT=${COUNT:-5}
RUNS=${RUNS:-5}
GOMEMLIMITS=${GOMEMLIMITS:-off 48MiB}
tmp=$(mktemp -d)
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
  --daemonize no --loglevel warning >/dev/null &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
i=0
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do
  i=$((i + 1)); [ "$i" -lt 100 ] || { echo "redis-server did not start" >&2; exit 1; }; sleep 0.1
done
url="redis://127.0.0.1:$PORT/0"

go test -c -o "$tmp/sidekiq.test" ./internal/sidekiq
for lim in $GOMEMLIMITS; do
  for b in BenchmarkSnapshot BenchmarkQuietAll; do
    echo "== go $b, GOMEMLIMIT=$lim (the benchmark fills $url first)"
    GOMEMLIMIT=$lim DRAINCTL_BENCH_REDIS_URL=$url /usr/bin/time -v "$tmp/sidekiq.test" -test.run '^$' \
      -test.bench "^$b\$" -test.benchtime "$BENCHTIME" -test.count "$COUNT" -test.benchmem \
      2>"$tmp/time.txt" | grep -E '^Benchmark|FAIL' || { cat "$tmp/time.txt" >&2; exit 1; }
    grep -E 'Maximum resident set size' "$tmp/time.txt"
  done
done

echo "== ruby: Sidekiq's API on the fleet the last Go benchmark left in $url"
REDIS_URL=$url RUNS=$RUNS /usr/bin/time -v ruby scripts/bench-ruby.rb 2>"$tmp/time.txt"
grep -E 'Maximum resident set size' "$tmp/time.txt"

echo "== drainctl itself (its default soft memory limit) on the same fleet"
go build -o "$tmp/drainctl" ./cmd/drainctl
for args in "status --all --output json" "quiet --all --no-wait --output json"; do
  for i in 1 2 3; do
    # shellcheck disable=SC2086
    /usr/bin/time -f "drainctl $args: %e s, max RSS %M kB" "$tmp/drainctl" $args --redis-url "$url" >/dev/null 2>"$tmp/time.txt" \
      || { cat "$tmp/time.txt" >&2; exit 1; }
    tail -1 "$tmp/time.txt"
  done
done
