# Sidekiq 6.4 with a namespaced Redis connection (the redis-namespace gem; Sidekiq 7 dropped
# namespaces), for internal/sidekiq/namespace_test.go. Every Sidekiq key lives under
# "$SIDEKIQ_NAMESPACE:" (processes, <identity>, <identity>-signals, queue:default, ...).
# The jobs are jobs.rb's; their bookkeeping lists (drainctl:test:*) are written with a raw
# `call` that redis-namespace passes through unprefixed.
require "sidekiq"
require "redis-namespace"
require_relative "jobs"

namespaced_redis = { url: ENV.fetch("REDIS_URL"), namespace: ENV.fetch("SIDEKIQ_NAMESPACE") }
Sidekiq.configure_server { |config| config.redis = namespaced_redis }
Sidekiq.configure_client { |config| config.redis = namespaced_redis }
