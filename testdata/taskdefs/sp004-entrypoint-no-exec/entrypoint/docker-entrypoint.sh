#!/bin/bash
set -euo pipefail

echo "starting $*"
bundle exec rake assets:check
bundle exec "$@"
