#!/usr/bin/env bash
# action.sh is the shell of the GitHub Action (action.yml at the repo root): it installs the
# drainctl of the action's version, runs `drainctl deploy`, appends the Markdown report to the
# job summary and writes the step's outputs. action.yml only calls it; its tests
# (internal/action) run it with a runner-like environment against the local stack.
#
#   action.sh [run]           install if needed, deploy, summary, outputs; exits with drainctl's code
#   action.sh asset-name      print the release asset for RUNNER_OS/RUNNER_ARCH and the version
#   action.sh install-plan    print how drainctl would be got (path|download|go-install …), do nothing
#   action.sh install         only the install step: the wanted drainctl on PATH (and GITHUB_PATH)
#   action.sh deploy-args     print the deploy arguments built from the inputs, one a line
#   action.sh exit-meaning N  print the meaning of exit code N
#
# Inputs come as INPUT_* variables (INPUT_CLUSTER, INPUT_SERVICE, INPUT_REDIS_URL,
# INPUT_TASK_DEFINITION, INPUT_STRATEGY, INPUT_DRAIN_TIMEOUT, INPUT_EXIT_TIMEOUT,
# INPUT_ON_TIMEOUT, INPUT_DRY_RUN, INPUT_EXTRA_ARGS, INPUT_VERSION), never as DRAINCTL_*:
# drainctl reads DRAINCTL_<FLAG> as its flags. ACTION_REF is the action's own ref (the
# version when INPUT_VERSION is empty); DRAINCTL_ACTION_REPO (default drainctl/drainctl) and
# GITHUB_SERVER_URL say where releases are downloaded from.
#
# Written for bash 3.2 too (macOS runners): no associative arrays, no mapfile.
set -euo pipefail

# --- The drainctl.report/v1 fields this script reads (docs/report-schema.md), as jq
# expressions over the JSON report. The one place to change when report fields are renamed.
readonly FIELD_EXIT_CODE='.exit_code'
readonly FIELD_OUTCOME='.outcome'
readonly FIELD_DEPLOYMENT_ID='[.services[]? | .deployment_id // empty | select(. != "")] | join(",")'
readonly FIELD_JOBS_FINISHED='.jobs.finished'
readonly FIELD_JOBS_REQUEUED='.jobs.requeued'
readonly FIELD_JOBS_RESCUED='.jobs.rescued'

readonly MODULE=github.com/drainctl/drainctl
readonly REPO="${DRAINCTL_ACTION_REPO:-drainctl/drainctl}"

log() { echo "drainctl-action: $*" >&2; }
die() { echo "::error::drainctl-action: $*" >&2; exit 2; }

# exit_meaning CODE: drainctl's exit code table (README "Exit codes", internal/exitcode) as
# short names for `if:` conditions.
exit_meaning() {
  case $1 in
    0) echo succeeded ;;
    1) echo failure ;;
    2) echo usage ;;
    3) echo drain-timeout ;;
    4) echo rollout-failed ;;
    5) echo rollout-timeout ;;
    6) echo locked ;;
    7) echo check-findings ;;
    130) echo interrupted ;;
    *) echo unknown ;;
  esac
}

# wanted_version: the drainctl version to run: the version input, else the action's ref,
# else "latest".
wanted_version() {
  local v="${INPUT_VERSION:-}"
  [ -n "$v" ] || v="${ACTION_REF:-}"
  [ -n "$v" ] || v=latest
  echo "$v"
}

# asset_name OS ARCH VERSION: the release archive (.goreleaser.yaml's name_template) for a
# runner's RUNNER_OS and RUNNER_ARCH; fails for a platform without a release binary.
asset_name() {
  local os arch
  case $1 in
    Linux) os=linux ;;
    macOS) os=darwin ;;
    *) return 1 ;;
  esac
  case $2 in
    X64) arch=amd64 ;;
    ARM64) arch=arm64 ;;
    *) return 1 ;;
  esac
  echo "drainctl_${3#v}_${os}_${arch}.tar.gz"
}

# is_release VERSION: a tag that has release assets (vMAJOR.MINOR.PATCH[-pre]), not a branch,
# a commit or "latest".
is_release() {
  [[ $1 =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]
}

# installed_version: the version of the drainctl on PATH ("" when there is none): the second
# word of `drainctl version`'s first line.
installed_version() {
  command -v drainctl >/dev/null 2>&1 || return 0
  drainctl version 2>/dev/null | awk 'NR == 1 { print $2 }' || true
}

# install_plan: one line: "path BINARY" (the right drainctl is on PATH), "download URL" (a
# release asset) or "go-install MODULE@VERSION".
install_plan() {
  local want have asset
  want=$(wanted_version)
  have=$(installed_version)
  if [ -n "$have" ] && { [ "$want" = latest ] || [ "${have#v}" = "${want#v}" ]; }; then
    echo "path $(command -v drainctl)"
    return
  fi
  if is_release "$want" && asset=$(asset_name "${RUNNER_OS:-}" "${RUNNER_ARCH:-}" "$want"); then
    echo "download ${GITHUB_SERVER_URL:-https://github.com}/$REPO/releases/download/$want/$asset"
    return
  fi
  echo "go-install $MODULE/cmd/drainctl@$want"
}

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | awk '{print $1}'
  else shasum -a 256 "$1" | awk '{print $1}'
  fi
}

# download URL DIR: fetches the archive and checksums.txt beside it, checks the archive's
# SHA-256 and unpacks drainctl into DIR.
download() {
  local url=$1 dir=$2 tmp asset want got
  asset=${url##*/}
  tmp=$(mktemp -d)
  curl -fsSL --retry 3 -o "$tmp/$asset" "$url" || { rm -rf "$tmp"; return 1; }
  curl -fsSL --retry 3 -o "$tmp/checksums.txt" "${url%/*}/checksums.txt" || { rm -rf "$tmp"; return 1; }
  want=$(awk -v a="$asset" '$2 == a { print $1 }' "$tmp/checksums.txt")
  got=$(sha256 "$tmp/$asset")
  if [ -z "$want" ] || [ "$want" != "$got" ]; then
    log "checksum mismatch for $asset (checksums.txt: '${want}', file: $got)"
    rm -rf "$tmp"
    return 1
  fi
  mkdir -p "$dir"
  tar -xzf "$tmp/$asset" -C "$dir" drainctl || { rm -rf "$tmp"; return 1; }
  rm -rf "$tmp"
}

# install: makes sure `drainctl` on PATH is the wanted version, and adds its folder to
# GITHUB_PATH for later steps.
install() {
  local plan want dir
  plan=$(install_plan)
  want=$(wanted_version)
  dir="${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}}/drainctl/${want//\//_}/${RUNNER_ARCH:-unknown}"
  case $plan in
    path\ *)
      log "using ${plan#path } ($(installed_version)) on PATH"
      return ;;
    download\ *)
      log "downloading ${plan#download }"
      if ! download "${plan#download }" "$dir"; then
        log "download failed; falling back to go install $MODULE/cmd/drainctl@$want"
        plan="go-install $MODULE/cmd/drainctl@$want"
      fi ;;
  esac
  if [ "${plan%% *}" = go-install ]; then
    command -v go >/dev/null 2>&1 || die "no release binary for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?} at $want, and no Go to build one (add actions/setup-go before this step)"
    log "go install ${plan#go-install }"
    mkdir -p "$dir"
    GOBIN="$dir" CGO_ENABLED=0 go install "${plan#go-install }" || die "go install ${plan#go-install } failed"
  fi
  export PATH="$dir:$PATH"
  if [ -n "${GITHUB_PATH:-}" ]; then echo "$dir" >>"$GITHUB_PATH"; fi
  log "installed $(installed_version) into $dir"
}

# truthy VALUE: the action's boolean inputs.
truthy() {
  case $1 in true | True | TRUE | 1 | yes) return 0 ;; *) return 1 ;; esac
}

# deploy_args: the deploy command line from the inputs, one argument a line. The Redis URL
# is never an argument (it goes to drainctl as REDIS_URL).
deploy_args() {
  local s extra n=0
  [ -n "${INPUT_CLUSTER:-}" ] || die "the cluster input is required"
  printf '%s\n' deploy --cluster "$INPUT_CLUSTER"
  # service: newline- or comma-separated, blanks ignored.
  while IFS= read -r s; do
    s="${s#"${s%%[![:space:]]*}"}"
    s="${s%"${s##*[![:space:]]}"}"
    [ -n "$s" ] || continue
    printf '%s\n' --service "$s"
    n=$((n + 1))
  done < <(printf '%s\n' "${INPUT_SERVICE:-}" | tr ',' '\n')
  [ "$n" -gt 0 ] || die "the service input is required"
  [ -z "${INPUT_TASK_DEFINITION:-}" ] || printf '%s\n' --task-definition "$INPUT_TASK_DEFINITION"
  [ -z "${INPUT_STRATEGY:-}" ] || printf '%s\n' --strategy "$INPUT_STRATEGY"
  [ -z "${INPUT_DRAIN_TIMEOUT:-}" ] || printf '%s\n' --drain-timeout "$INPUT_DRAIN_TIMEOUT"
  [ -z "${INPUT_EXIT_TIMEOUT:-}" ] || printf '%s\n' --exit-timeout "$INPUT_EXIT_TIMEOUT"
  [ -z "${INPUT_ON_TIMEOUT:-}" ] || printf '%s\n' --on-timeout "$INPUT_ON_TIMEOUT"
  if truthy "${INPUT_DRY_RUN:-false}"; then printf '%s\n' --dry-run; fi
  # extra-args: split on whitespace (newlines too), no quoting, no globbing.
  local extras=()
  read -r -a extras <<<"$(printf '%s' "${INPUT_EXTRA_ARGS:-}" | tr '\n' ' ')" || true
  for extra in ${extras[@]+"${extras[@]}"}; do printf '%s\n' "$extra"; done
}

# mask_redis: tells the runner to hide the Redis URL and its password in every log line.
mask_redis() {
  local url="${INPUT_REDIS_URL:-}" rest userinfo pass
  [ -n "$url" ] || return 0
  echo "::add-mask::$url"
  rest=${url#*://}
  case $rest in
    *@*)
      userinfo=${rest%@*}
      pass=${userinfo#*:}
      [ -z "$pass" ] || echo "::add-mask::$pass"
      ;;
  esac
}

# field JSON EXPR: one field of the report, "" when missing or unreadable.
field() {
  jq -r "($2) // empty" "$1" 2>/dev/null | head -n 1 || true
}

# output NAME VALUE: one line in GITHUB_OUTPUT (newlines in VALUE become spaces).
output() {
  local v=${2//$'\n'/ }
  if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "$1=$v" >>"$GITHUB_OUTPUT"; else echo "$1=$v"; fi
}

run() {
  command -v jq >/dev/null 2>&1 || die "jq is required (GitHub's runners have it; apt-get install jq)"
  mask_redis
  install

  local argtext args=() a
  argtext=$(deploy_args)
  while IFS= read -r a; do args+=("$a"); done <<<"$argtext"
  if [ -n "${INPUT_STRATEGY:-}" ] && ! drainctl deploy --help 2>/dev/null | grep -q -- '--strategy'; then
    die "this drainctl ($(installed_version)) has no --strategy flag; leave the strategy input empty"
  fi

  local dir md json rc
  dir=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/drainctl-report.XXXXXX")
  md="$dir/report.md"
  json="$dir/report.json"
  # drainctl deploy has one --report flag: the JSON report is its --output json on stdout,
  # the Markdown one its --report file. GITHUB_STEP_SUMMARY is left out of its environment
  # so that the summary gets the report once, from here.
  log "drainctl ${args[*]}"
  set +e
  if [ -n "${INPUT_REDIS_URL:-}" ]; then
    env -u GITHUB_STEP_SUMMARY REDIS_URL="$INPUT_REDIS_URL" drainctl "${args[@]}" --output json --report "$md" >"$json"
  else
    env -u GITHUB_STEP_SUMMARY drainctl "${args[@]}" --output json --report "$md" >"$json"
  fi
  rc=$?
  set -e

  local meaning code
  meaning=$(exit_meaning "$rc")
  if [ -s "$json" ] && jq -e . "$json" >/dev/null 2>&1; then
    code=$(field "$json" "$FIELD_EXIT_CODE")
    if [ -n "$code" ] && [ "$code" != "$rc" ]; then
      log "warning: the report says exit code $code, drainctl exited $rc"
    fi
  else
    log "drainctl wrote no JSON report (exit $rc: $meaning)"
    : >"$json"
  fi

  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    if [ -s "$md" ]; then
      cat "$md" >>"$GITHUB_STEP_SUMMARY"
    else
      printf '### drainctl deploy\n\nExited %s (%s) without a report: see the step log.\n' "$rc" "$meaning" >>"$GITHUB_STEP_SUMMARY"
    fi
  fi

  output exit-code "$rc"
  output exit-meaning "$meaning"
  output outcome "$(field "$json" "$FIELD_OUTCOME")"
  output deployment-id "$(field "$json" "$FIELD_DEPLOYMENT_ID")"
  output jobs-finished "$(field "$json" "$FIELD_JOBS_FINISHED")"
  output jobs-requeued "$(field "$json" "$FIELD_JOBS_REQUEUED")"
  output jobs-rescued "$(field "$json" "$FIELD_JOBS_RESCUED")"
  output report-path "$json"
  output report-markdown-path "$md"
  return "$rc"
}

main() {
  local cmd=${1:-run}
  case $cmd in
    run) run ;;
    asset-name)
      asset_name "${RUNNER_OS:-}" "${RUNNER_ARCH:-}" "$(wanted_version)" \
        || die "no release binary for RUNNER_OS=${RUNNER_OS:-} RUNNER_ARCH=${RUNNER_ARCH:-}" ;;
    install-plan) install_plan ;;
    install) install ;;
    deploy-args) deploy_args ;;
    exit-meaning) exit_meaning "${2:?exit-meaning needs a code}" ;;
    *) die "unknown command '$cmd' (run, asset-name, install-plan, install, deploy-args, exit-meaning)" ;;
  esac
}

main "$@"
