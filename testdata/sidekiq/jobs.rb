# Jobs for drainctl's integration tests and demo. Works on Sidekiq 6.4 (redis-rb) and 7.3
# (redis-client). Every job records its jid in drainctl:test:started when it begins and in
# drainctl:test:done when it finishes, so a test can tell finished, requeued and lost jobs apart.
require "sidekiq"

module DrainctlTest
  def self.record(list, value)
    Sidekiq.redis { |c| c.call("RPUSH", list, value) }
  end
end

# SleepJob sleeps for the given number of seconds (a float), then records its jid as done.
class SleepJob
  include Sidekiq::Worker

  def perform(seconds, _label = nil)
    DrainctlTest.record("drainctl:test:started", jid)
    sleep seconds.to_f
    DrainctlTest.record("drainctl:test:done", jid)
  end
end
