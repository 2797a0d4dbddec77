#!/bin/sh
# A hand-made init: forward TERM to Sidekiq and wait for it to finish.
bundle exec sidekiq -t 20 &
pid=$!
trap 'kill -TERM "$pid"; wait "$pid"' TERM INT
wait "$pid"
