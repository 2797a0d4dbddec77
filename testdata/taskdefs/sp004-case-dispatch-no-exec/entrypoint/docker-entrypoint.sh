#!/bin/sh
# One image, several roles: the first argument picks one.
set -e

case "$1" in
  web)
    shift
    exec bundle exec puma -C config/puma.rb "$@"
    ;;
  sidekiq|worker)
    shift
    bundle exec sidekiq "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
