# Times Sidekiq's own Ruby API on the fleet the Go benchmarks wrote (see BENCHMARKS.md and
# scripts/bench.sh): Sidekiq::WorkSet.new.each (every in-flight job) and
# Sidekiq::ProcessSet.new.each(&:quiet!) (quiet every process). Run with Sidekiq 6.4.1:
#
#   REDIS_URL=redis://127.0.0.1:6390/0 RUNS=3 ruby scripts/bench-ruby.rb
#
# Prints one line per run and the best and median of each.
require "sidekiq"
require "sidekiq/api"

runs = Integer(ENV.fetch("RUNS", "3"))
Sidekiq.logger.level = Logger::WARN

def clock
  t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  yield
  Process.clock_gettime(Process::CLOCK_MONOTONIC) - t
end

results = Hash.new { |h, k| h[k] = [] }
runs.times do |i|
  jobs = 0
  results["WorkSet.new.each"] << clock { Sidekiq::WorkSet.new.each { |_process, _thread, _work| jobs += 1 } }
  procs = 0
  results["ProcessSet.new.each(&:quiet!)"] << clock { Sidekiq::ProcessSet.new.each { |p| p.quiet!; procs += 1 } }
  puts format("run %d: WorkSet.new.each %.3f s (%d jobs); ProcessSet.new.each(&:quiet!) %.3f s (%d processes)",
    i + 1, results["WorkSet.new.each"].last, jobs, results["ProcessSet.new.each(&:quiet!)"].last, procs)
  abort "expected 50000 jobs and 10000 processes: fill Redis first (scripts/bench.sh)" unless jobs == 50_000 && procs == 10_000
end
results.each do |name, times|
  sorted = times.sort
  puts format("sidekiq %s %s: best %.3f s, median %.3f s over %d runs", Sidekiq::VERSION, name, sorted.first, sorted[sorted.size / 2], times.size)
end
