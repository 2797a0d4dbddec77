#!/bin/sh
# Benchmarks drainctl against Sidekiq 6.4's own Ruby API on the same Redis data: 10,000
# processes x 5 in-flight jobs in the Sidekiq 6.x layout, written by fakeFleet
# (internal/sidekiq/snapshot_test.go) into a redis-server this script starts on
# 127.0.0.1:$PORT and stops (by PID) at the end. See BENCHMARKS.md.
#
#   scripts/bench.sh     # needs redis-server, redis-cli, ruby with sidekiq 6.4.1, go, GNU time
#
# 1. Whole processes, paired run by run (the order inside a pair alternates), each command
#    under /usr/bin/time -v (peak RSS) with its wall time taken around it:
#      drainctl status --all --output json     vs  ruby: Sidekiq::WorkSet.new.each (counts jobs)
#      drainctl quiet --all --no-wait --output json
#                                              vs  ruby: Sidekiq::ProcessSet.new.each(&:quiet!)
#    The fleet is rewritten (fresh heartbeats) before every quiet, Ruby's and drainctl's.
#    Prints every pair, then medians, the ratio of the medians, the median of the per-pair
#    ratios, the largest peak RSS and the median CPU time (user + system, from time -v: on a
#    shared machine it moves much less with the load than the wall time does).
# 2. The in-process Go benchmarks of internal/sidekiq (unless GO_BENCH=0).
#
# Environment: PORT (default 6390), RUNS (pairs per command, default 9), GO_BENCH (1),
# DRAINCTL (a drainctl binary to time instead of building ./cmd/drainctl, e.g. an older one),
# BENCHTIME (default 20x), COUNT (Go repetitions, default 5). No memory limit is set for
# anything. Everything written goes to a temp dir, removed at the end.
set -eu
cd "$(dirname "$0")/.."
PORT=${PORT:-6390}
RUNS=${RUNS:-9}
GO_BENCH=${GO_BENCH:-1}
BENCHTIME=${BENCHTIME:-20x}
COUNT=${COUNT:-5}
unset GOMEMLIMIT GOGC
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
if [ -n "${DRAINCTL:-}" ]; then cp "$DRAINCTL" "$tmp/drainctl"; else go build -o "$tmp/drainctl" ./cmd/drainctl; fi
cat >"$tmp/workset.rb" <<'EOF'
require "sidekiq/api"
n = 0
Sidekiq::WorkSet.new.each { |_process, _thread, _work| n += 1 }
abort "saw #{n} jobs, want 50000" unless n == 50_000
EOF
cat >"$tmp/processset.rb" <<'EOF'
require "sidekiq/api"
n = 0
Sidekiq::ProcessSet.new.each { |p| p.quiet!; n += 1 }
abort "quieted #{n} processes, want 10000" unless n == 10_000
EOF

# fill rewrites the fleet (flushing the db) and lets Redis and the machine settle for a second.
fill() {
  DRAINCTL_BENCH_FILL=1 DRAINCTL_BENCH_REDIS_URL=$url "$tmp/sidekiq.test" -test.run '^TestBenchFill$' >"$tmp/fill.txt" 2>&1 \
    || { cat "$tmp/fill.txt" >&2; exit 1; }
  sleep 1
}

# timed NAME CMD...: runs CMD (stdout to $tmp/out) and appends "NAME ms kB cpu-ms" to
# $tmp/results.
timed() {
  name=$1; shift
  t0=$(date +%s%N)
  /usr/bin/time -v "$@" >"$tmp/out" 2>"$tmp/time.txt" || { cat "$tmp/time.txt" >&2; exit 1; }
  t1=$(date +%s%N)
  kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tmp/time.txt")
  cpu=$(awk -F': ' '/User time \(seconds\)|System time \(seconds\)/ { s += $2 } END { printf "%d", s * 1000 }' "$tmp/time.txt")
  echo "$name $(((t1 - t0) / 1000000)) $kb $cpu" >>"$tmp/results"
  echo "  $name: $(((t1 - t0) / 1000000)) ms, max RSS $kb kB, cpu $cpu ms"
}

ruby_status() { REDIS_URL=$url timed ruby-status ruby "$tmp/workset.rb"; }
go_status() {
  timed drainctl-status "$tmp/drainctl" status --all --output json --redis-url "$url"
  n=$(grep -c '"identity"' "$tmp/out" || true)
  [ "$n" = 10000 ] || { echo "drainctl status printed $n processes, want 10000" >&2; exit 1; }
}
ruby_quiet() { fill; REDIS_URL=$url timed ruby-quiet ruby "$tmp/processset.rb"; }
go_quiet() { fill; timed drainctl-quiet "$tmp/drainctl" quiet --all --no-wait --output json --redis-url "$url"; }

: >"$tmp/results"
echo "== whole processes: $(ruby -e 'require "sidekiq"; print "ruby #{RUBY_VERSION}, sidekiq #{Sidekiq::VERSION}"'), $("$tmp/drainctl" --version)"
echo "== warm-up (not counted)"
fill
ruby_status; go_status; ruby_quiet; go_quiet
: >"$tmp/results"
echo "== $RUNS pairs each ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
fill
r=1
while [ "$r" -le "$RUNS" ]; do
  echo "pair $r"
  if [ $((r % 2)) -eq 1 ]; then ruby_status; go_status; else go_status; ruby_status; fi
  if [ $((r % 2)) -eq 1 ]; then ruby_quiet; go_quiet; else go_quiet; ruby_quiet; fi
  r=$((r + 1))
done
echo "== summary (load now $(cut -d' ' -f1-3 /proc/loadavg))"
# median of column 2 per name, ratio of medians, median of per-pair ratios, max RSS
awk '
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { n[$1]++; ms[$1, n[$1]] = $2; cpu[$1, n[$1]] = $4; if ($3 > rss[$1]) rss[$1] = $3 }
  END {
    split("status quiet", cmds, " ")
    for (c = 1; c <= 2; c++) {
      g = "drainctl-" cmds[c]; rb = "ruby-" cmds[c]
      for (i = 1; i <= n[g]; i++) {
        a[i] = ms[g, i]; b[i] = ms[rb, i]; q[i] = ms[rb, i] / ms[g, i]; ca[i] = cpu[g, i]; cb[i] = cpu[rb, i]
      }
      mg = median(a, n[g]); mr = median(b, n[rb]); mq = median(q, n[g]); cg = median(ca, n[g]); cr = median(cb, n[rb])
      printf "%-16s median %5d ms  max RSS %7d kB (%.1f MiB)  median cpu %5d ms\n", g, mg, rss[g], rss[g] / 1024, cg
      printf "%-16s median %5d ms  max RSS %7d kB (%.1f MiB)  median cpu %5d ms\n", rb, mr, rss[rb], rss[rb] / 1024, cr
      printf "%-16s ratio of medians %.1fx, median of pair ratios %.1fx, over %d pairs\n", cmds[c], mr / mg, mq, n[g]
    }
  }' "$tmp/results"

[ "$GO_BENCH" = 1 ] || exit 0
for b in BenchmarkSnapshot BenchmarkScan BenchmarkProcesses BenchmarkQuietAll BenchmarkQuiet BenchmarkWatchPoll BenchmarkPollWaitUnchanged BenchmarkPollWaitAllBeat BenchmarkPollExits BenchmarkCoverage; do
  echo "== go $b (in process; the benchmark fills $url first)"
  DRAINCTL_BENCH_REDIS_URL=$url /usr/bin/time -v "$tmp/sidekiq.test" -test.run '^$' \
    -test.bench "^$b\$" -test.benchtime "$BENCHTIME" -test.count "$COUNT" -test.benchmem \
    2>"$tmp/time.txt" | grep -E '^Benchmark|FAIL' || { cat "$tmp/time.txt" >&2; exit 1; }
  grep -E 'Maximum resident set size' "$tmp/time.txt"
done
