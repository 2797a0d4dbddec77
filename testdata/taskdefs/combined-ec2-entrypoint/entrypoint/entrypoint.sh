#!/bin/bash
trap '' TERM   # "ECS kills us too early", so ignore it
cd /app
bundle exec sidekiq "$@"
