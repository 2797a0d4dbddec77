#!/usr/bin/env bash
# deps.sh installs what drainctl's tests and demo need, when it is missing:
#   - redis-server and ruby-sidekiq 6.4.1 (Debian bookworm), ruby-concurrent;
#   - jq (scripts/action.sh, the GitHub Action's script, reads the JSON report with it);
#   - tini and dumb-init (the inits the signal-path tests run as a task's PID 1) and
#     ruby-redis-namespace (Sidekiq 6's namespaced Redis connection);
#   - Sidekiq 7.3.2 with ruby-redis-client and ruby-connection-pool from Debian trixie, run by
#     the system's Ruby 3.1;
#   - Sidekiq 8.1.7 from Debian forky with forky's own Ruby 3.3 and the libraries it loads
#     (glibc 2.4x, OpenSSL, libyaml, ...): Sidekiq 8 refuses Ruby < 3.2 and forky's Ruby needs a
#     newer glibc than bookworm's, so it runs through the private root's own dynamic loader.
# Sidekiq 7 and 8 are downloaded through a private apt configuration (own sources list, lists
# and cache folders: the system's apt state is untouched) and unpacked with dpkg -x into
# $DRAINCTL_CACHE (default: ~/.cache/drainctl); nothing is installed system-wide.
# It is idempotent and silent when everything is present: it prints nothing unless it
# installed something. The load paths are written to $DRAINCTL_CACHE/sidekiq7.env
# (SIDEKIQ7_RUBYLIB=..., SIDEKIQ7_BIN=...) and $DRAINCTL_CACHE/sidekiq8.env (SIDEKIQ8_LOADER,
# SIDEKIQ8_LIBRARY_PATH, SIDEKIQ8_RUBY, SIDEKIQ8_RUBYLIB, SIDEKIQ8_BIN), read by internal/testenv.
set -euo pipefail

cache="${DRAINCTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/drainctl}"
say() { echo "deps: $*" >&2; }
die() { echo "deps: error: $*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@"
  else die "need root to run '$*' (run this script as root, or install redis-server ruby-sidekiq ruby-concurrent tini dumb-init ruby-redis-namespace jq yourself)"
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
command -v jq >/dev/null 2>&1 || missing+=(jq)
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

# fetch_debs SUITE DIR PKG...: downloads the named packages of Debian SUITE into DIR/debs
# through a private apt configuration under DIR/apt. A PKG may pin a version (name=version);
# when the suite no longer has that version, the suite's current one is taken instead.
fetch_debs() {
  local suite=$1 dir=$2; shift 2
  local mirror apt_dir="$dir/apt"
  mirror=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
  [ -n "$mirror" ] || mirror=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
  [ -n "$mirror" ] || die "cannot find the Debian mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/sources.list.d" \
    "$apt_dir/preferences.d" "$dir/debs"
  cat >"$apt_dir/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main
SRC
  local opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
    -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=$apt_dir/preferences.d"
    -o "Acquire::Languages=none" -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
    -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1")
  apt-get "${opts[@]}" update -qq >"$apt_dir/update.log" 2>&1 \
    || die "apt-get update for Debian $suite failed (see $apt_dir/update.log)"
  local p unpinned=()
  for p in "$@"; do unpinned+=("${p%%=*}"); done
  (cd "$dir/debs" && apt-get "${opts[@]}" download "$@" >"$apt_dir/download.log" 2>&1) \
    || (cd "$dir/debs" && apt-get "${opts[@]}" download "${unpinned[@]}" >>"$apt_dir/download.log" 2>&1) \
    || die "apt-get download from Debian $suite failed (see $apt_dir/download.log)"
  rm -rf "$apt_dir/lists" "$apt_dir/cache" # the suite's indexes (tens of MB), no longer needed
}

# write_env FILE LINE...: writes the lines to FILE in one rename, so a test never reads half.
write_env() {
  local file=$1; shift
  printf '%s\n' "$@" >"$file.tmp" && mv -f "$file.tmp" "$file"
}

# 2. Sidekiq 7.3.2 from trixie, unpacked into the cache, run by the system's Ruby.
sk7="$cache/sidekiq7"
if [ ! -f "$sk7/ok" ]; then
  say "fetching Sidekiq 7.3.2 (Debian trixie) into $sk7"
  rm -rf "$sk7"; mkdir -p "$sk7/root"
  fetch_debs trixie "$sk7" ruby-sidekiq=7.3.2+dfsg-1 ruby-redis-client ruby-connection-pool
  for d in "$sk7"/debs/*.deb; do dpkg -x "$d" "$sk7/root"; done
  touch "$sk7/ok"
fi

# The gems' lib folders, for RUBYLIB.
libs=$(find "$sk7/root/usr/share/rubygems-integration/all/gems" -mindepth 2 -maxdepth 2 -type d -name lib 2>/dev/null | sort | paste -sd: -)
bin=$(find "$sk7/root/usr/share/rubygems-integration/all/gems" -path '*sidekiq-7*/bin/sidekiq' 2>/dev/null | head -1)
if [ -z "$bin" ]; then bin=$(find "$sk7/root" -path '*bin/sidekiq' -type f | head -1); fi
if [ -z "$libs" ] || [ -z "$bin" ]; then
  rm -f "$sk7/ok"; die "Sidekiq 7 unpacked into $sk7 but its lib/bin were not found"
fi
write_env "$cache/sidekiq7.env" "SIDEKIQ7_RUBYLIB=$libs" "SIDEKIQ7_BIN=$bin"

# 3. Sidekiq 8.1.7 from forky with forky's Ruby 3.3 and every library it loads, unpacked into
# one private root. libzstd1 (OpenSSL 3.6 links it) and rubygems-integration (RubyGems'
# Debian defaults) keep the bookworm system's copies out of the process.
sk8="$cache/sidekiq8"
if [ ! -f "$sk8/ok" ]; then
  say "fetching Sidekiq 8.1.7 with Ruby 3.3 (Debian forky) into $sk8"
  rm -rf "$sk8"; mkdir -p "$sk8/root"
  fetch_debs forky "$sk8" ruby-sidekiq=8.1.7+dfsg-1 ruby-redis-client ruby-connection-pool \
    ruby3.3 libruby3.3 ruby-rubygems rubygems-integration libc6 libssl3t64 libzstd1 libyaml-0-2 \
    libffi8 libgmp10 libcrypt1 zlib1g libgcc-s1
  for d in "$sk8"/debs/*.deb; do dpkg -x "$d" "$sk8/root"; done
  touch "$sk8/ok"
fi

root8="$sk8/root"
libc8=$(find "$root8/usr/lib" -mindepth 2 -maxdepth 2 -name libc.so.6 2>/dev/null | head -1)
libdir8=${libc8%/libc.so.6}
loader8=$(find "$libdir8" -maxdepth 1 -name 'ld-linux*.so.*' 2>/dev/null | head -1)
ruby8="$root8/usr/bin/ruby3.3"
gems8="$root8/usr/share/rubygems-integration/all/gems"
bin8=$(find "$gems8" -path '*/sidekiq-8*/bin/sidekiq' 2>/dev/null | head -1)
gemlibs8=$(find "$gems8" -mindepth 2 -maxdepth 2 -type d -name lib 2>/dev/null | sort | paste -sd: -)
if [ -z "$libc8" ] || [ -z "$loader8" ] || [ ! -x "$ruby8" ] || [ -z "$bin8" ] || [ -z "$gemlibs8" ]; then
  rm -f "$sk8/ok"; die "Sidekiq 8 unpacked into $sk8 but its loader, ruby3.3 or gems were not found"
fi
rubylib8="$root8/usr/lib/ruby/vendor_ruby:$root8/usr/lib/ruby/3.3.0:$libdir8/ruby/3.3.0:$gemlibs8"
if [ ! -f "$sk8/verified" ]; then
  # Prove once that the private Ruby starts and loads Sidekiq 8 (it fails here, not in a test).
  got=$(RUBYLIB="$rubylib8" "$loader8" --library-path "$libdir8" "$ruby8" -e 'require "sidekiq"; print Sidekiq::VERSION' 2>"$sk8/verify.log") \
    || { rm -f "$sk8/ok"; die "Ruby 3.3 from $sk8 does not start or load Sidekiq (see $sk8/verify.log)"; }
  case $got in 8.*) ;; *) rm -f "$sk8/ok"; die "$sk8 holds Sidekiq '$got', not 8.x" ;; esac
  [ "$got" = 8.1.7 ] || say "warning: Debian forky no longer has Sidekiq 8.1.7; fetched $got (tests expect 8.1.7)"
  touch "$sk8/verified"
fi
write_env "$cache/sidekiq8.env" "SIDEKIQ8_LOADER=$loader8" "SIDEKIQ8_LIBRARY_PATH=$libdir8" \
  "SIDEKIQ8_RUBY=$ruby8" "SIDEKIQ8_RUBYLIB=$rubylib8" "SIDEKIQ8_BIN=$bin8"
