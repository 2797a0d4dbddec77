#!/usr/bin/env bash
# deps.sh installs what drainctl's tests and demo need, when it is missing:
#   - redis-server and ruby-sidekiq 6.4.1 (Debian bookworm), ruby-concurrent;
#   - tini and dumb-init (the inits the signal-path tests run as a task's PID 1) and
#     ruby-redis-namespace (Sidekiq 6's namespaced Redis connection);
#   - Sidekiq 7.3.2 with ruby-redis-client and ruby-connection-pool from Debian trixie,
#     downloaded through a private apt configuration (the system's apt state is untouched)
#     and unpacked with dpkg -x into $DRAINCTL_CACHE (default: ~/.cache/drainctl).
# It is idempotent and silent when everything is present. On success it prints nothing
# unless it installed something; the Sidekiq 7 load path is written to
# $DRAINCTL_CACHE/sidekiq7.env (SIDEKIQ7_RUBYLIB=..., SIDEKIQ7_BIN=...).
set -euo pipefail

cache="${DRAINCTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/drainctl}"
sk7="$cache/sidekiq7"
say() { echo "deps: $*" >&2; }
die() { echo "deps: error: $*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@"
  else die "need root to run '$*' (run this script as root, or install redis-server ruby-sidekiq ruby-concurrent tini dumb-init ruby-redis-namespace yourself)"
  fi
}

apt_updated=""
apt_update() {
  [ -n "$apt_updated" ] && return 0
  as_root apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed (no network to the Debian mirror?)"
  apt_updated=1
}

# 1. System packages (bookworm).
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
dpkg -s ruby-sidekiq >/dev/null 2>&1 || missing+=(ruby-sidekiq)
dpkg -s ruby-concurrent >/dev/null 2>&1 || missing+=(ruby-concurrent)
dpkg -s tini >/dev/null 2>&1 || missing+=(tini)
dpkg -s dumb-init >/dev/null 2>&1 || missing+=(dumb-init)
dpkg -s ruby-redis-namespace >/dev/null 2>&1 || missing+=(ruby-redis-namespace)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt_update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
fi

# 2. Sidekiq 7.3.2 from trixie, unpacked into the cache.
if [ ! -f "$sk7/ok" ]; then
  say "fetching Sidekiq 7.3.2 (Debian trixie) into $sk7"
  mirror=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
  [ -n "$mirror" ] || mirror=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1 || true)
  [ -n "$mirror" ] || die "cannot find the Debian mirror in /etc/apt/sources.list.d/*.sources"
  apt_dir="$sk7/apt"
  rm -rf "$sk7"; mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs" "$sk7/root"
  cat >"$apt_dir/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main
SRC
  opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=-"
        -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
        -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=-"
        -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1")
  apt-get "${opts[@]}" update -qq >"$apt_dir/update.log" 2>&1 || die "apt-get update for trixie failed (see $apt_dir/update.log)"
  (cd "$apt_dir/debs" && apt-get "${opts[@]}" download ruby-sidekiq=7.3.2+dfsg-1 ruby-redis-client ruby-connection-pool >"$apt_dir/download.log" 2>&1) \
    || (cd "$apt_dir/debs" && apt-get "${opts[@]}" download ruby-sidekiq ruby-redis-client ruby-connection-pool >>"$apt_dir/download.log" 2>&1) \
    || die "apt-get download of trixie's ruby-sidekiq failed (see $apt_dir/download.log)"
  for d in "$apt_dir"/debs/*.deb; do dpkg -x "$d" "$sk7/root"; done
  touch "$sk7/ok"
fi

# The gems' lib folders, for RUBYLIB.
libs=$(find "$sk7/root/usr/share/rubygems-integration/all/gems" -mindepth 2 -maxdepth 2 -type d -name lib 2>/dev/null | sort | paste -sd: -)
bin=$(find "$sk7/root/usr/share/rubygems-integration/all/gems" -path '*sidekiq-7*/bin/sidekiq' 2>/dev/null | head -1)
if [ -z "$bin" ]; then bin=$(find "$sk7/root" -path '*bin/sidekiq' -type f | head -1); fi
[ -n "$libs" ] && [ -n "$bin" ] || { rm -f "$sk7/ok"; die "Sidekiq 7 unpacked into $sk7 but its lib/bin were not found"; }
printf 'SIDEKIQ7_RUBYLIB=%s\nSIDEKIQ7_BIN=%s\n' "$libs" "$bin" >"$cache/sidekiq7.env"
