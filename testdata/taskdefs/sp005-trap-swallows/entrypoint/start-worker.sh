#!/bin/sh
# Log the stop instead of dying: looks harmless, swallows ECS's SIGTERM.
trap 'echo "got TERM, waiting for sidekiq"' TERM

cd /app
bundle exec sidekiq -t 20 -q default -q mailers
