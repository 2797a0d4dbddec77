# Jobs for the local stack (internal/stack): the harness's SleepJob (testdata/sidekiq/jobs.rb)
# plus RerunJob, so that end-to-end tests and the demo can have jobs that outlast a drain
# without paying that time again when a job runs a second time.
require_relative "../../../testdata/sidekiq/jobs"

# RerunJob sleeps `first` seconds on its first `long_runs` runs (default 1) and `again` seconds
# on every later run (after Sidekiq requeued it or drainctl rescued it). It records its jid in
# drainctl:test:started and drainctl:test:done like SleepJob, counts its runs in
# drainctl:test:runs:<jid> and lists the hosts (DYNO: the ECS task) that ran it in
# drainctl:test:hosts:<jid>.
class RerunJob
  include Sidekiq::Job

  def perform(first, again, _label = nil, long_runs = 1)
    DrainctlTest.record("drainctl:test:started", jid)
    DrainctlTest.record("drainctl:test:hosts:#{jid}", ENV["DYNO"].to_s)
    n = Sidekiq.redis { |c| c.call("INCR", "drainctl:test:runs:#{jid}") }
    sleep(n.to_i <= long_runs.to_i ? first.to_f : again.to_f)
    DrainctlTest.record("drainctl:test:done", jid)
  end
end
