# Jobs for drainctl's integration tests and demo, shared by every Sidekiq release under test:
# 6.4.1 (redis-rb), 7.3.2 and 8.1.7 (redis-client). Sidekiq::Job is the one mixin all three
# know (6.3+ alias it to Sidekiq::Worker; 8 removed Sidekiq::Worker), and `call` sends a raw
# command through either Redis library. Every job records its jid in drainctl:test:started when it begins and in
# drainctl:test:done when it finishes, so a test can tell finished, requeued and lost jobs apart.
require "sidekiq"

module DrainctlTest
  def self.record(list, value)
    Sidekiq.redis { |c| c.call("RPUSH", list, value) }
  end
end

# SleepJob sleeps for the given number of seconds (a float), then records its jid as done.
class SleepJob
  include Sidekiq::Job

  def perform(seconds, _label = nil)
    DrainctlTest.record("drainctl:test:started", jid)
    sleep seconds.to_f
    DrainctlTest.record("drainctl:test:done", jid)
  end
end
