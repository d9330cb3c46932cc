#!/usr/bin/env bash
# What `make up` and `make test` need on this machine, installed when missing. Idempotent, and quick
# when everything is there (no apt-get, no network: a few `command -v` and file checks).
#
#   deploy/local/prereqs.sh [up|test]        (default: test)
#
# up:    python3 with venv; Java 17 (`java`) and Maven (`mvn`) for Kafka's jars from Maven Central;
#        Go for FerretDB and Debian's postgresql for its private cluster (both when no MONGO_URL and
#        no mongod: deploy/local/infra.sh builds FerretDB and runs it on PostgreSQL).
# test:  the above, and Debian's chromium (the dashboard tests run in a real headless browser),
#        kustomize (deploy/k8s/build.sh) and promtool (deploy/prometheus/build.sh), built once from
#        the Go module proxy into $CONGDOAN_CACHE (default ~/.cache/congdoan): promtool takes 4 to 10 min
#        on 2 cores the first time.
#
# Debian packages are installed with apt-get only when their command is missing, and only as root;
# otherwise the script prints what to install and fails. Go is not taken from apt (Debian 12's is
# too old for these modules): without it the script says so and fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${CONGDOAN_CACHE:-$HOME/.cache/congdoan}"
FERRETDB_VERSION="v1.24.2"                         # keep in step with deploy/local/infra.sh
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.8.1}"   # keep in step with deploy/k8s/build.sh
PROMTOOL_VERSION="${PROMTOOL_VERSION:-v0.316.0}"   # keep in step with deploy/prometheus/build.sh
WHAT="${1:-test}"
case "$WHAT" in up | test) ;; *) echo "usage: $0 [up|test]" >&2; exit 2 ;; esac

log() { printf '[prereqs] %s\n' "$*" >&2; }

# Debian packages whose command is missing, one entry per package.
missing_packages() {
  local -a pkgs=()
  command -v python3 >/dev/null 2>&1 || pkgs+=(python3)
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || pkgs+=(python3-venv)
  command -v java >/dev/null 2>&1 || pkgs+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null 2>&1 || pkgs+=(maven)
  if [[ -z "${MONGO_URL:-}" ]] && ! command -v mongod >/dev/null 2>&1; then
    # FerretDB's store (infra.sh): the server, initdb and psql; the package also creates the
    # `postgres` system user that runs the cluster when infra.sh runs as root.
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || pkgs+=(postgresql)
  fi
  if [[ "$WHAT" == test ]]; then
    command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ||
      command -v google-chrome >/dev/null 2>&1 || pkgs+=(chromium)  # as tests/reporting/browser.py looks
  fi
  echo "${pkgs[*]}"
}

# Go binaries not yet in the cache (nor, for the tools, on the PATH).
missing_builds() {
  local -a todo=()
  if [[ -z "${MONGO_URL:-}" ]] && ! command -v mongod >/dev/null 2>&1 &&
    [[ ! -x "$CACHE/ferretdb-$FERRETDB_VERSION/ferretdb" ]]; then
    todo+=(ferretdb)
  fi
  if [[ "$WHAT" == test ]]; then
    [[ -x "$CACHE/kustomize-$KUSTOMIZE_VERSION/kustomize" ]] || command -v kustomize >/dev/null 2>&1 || todo+=(kustomize)
    [[ -x "$CACHE/promtool-$PROMTOOL_VERSION/promtool" ]] || command -v promtool >/dev/null 2>&1 || todo+=(promtool)
  fi
  echo "${todo[*]}"
}

packages="$(missing_packages)"
builds="$(missing_builds)"
if [[ -z "$packages" && -z "$builds" ]]; then exit 0; fi

if [[ -n "$packages" && "$(id -u)" != 0 ]]; then
  log "missing Debian packages: $packages"
  log "install them, then run make again:  sudo apt-get update && sudo apt-get install -y $packages"
  exit 1
fi
if [[ -n "$packages" ]] && ! command -v apt-get >/dev/null 2>&1; then
  log "missing: $packages (the names of Debian's packages); install them with this system's package manager"
  exit 1
fi
if [[ -n "$builds" ]] && ! command -v go >/dev/null 2>&1; then
  log "Go is needed to build $builds from the Go module proxy (this project's machines have Go 1.26;"
  log "Debian 12's golang-go is too old): install Go and put \`go\` on the PATH, then run make again"
  exit 1
fi

# Something is missing: one installer at a time (two `make test` started together, say).
mkdir -p "$CACHE"
exec 8>"$CACHE/prereqs.lock"
flock 8
packages="$(missing_packages)"
builds="$(missing_builds)"

if [[ -n "$packages" ]]; then
  log "installing Debian packages: $packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # shellcheck disable=SC2086 # one word per package
  apt-get install -y -q $packages >/dev/null
  left="$(missing_packages)"
  if [[ -n "$left" ]]; then log "still missing after apt-get install: $left"; exit 1; fi
fi

if [[ -n "$builds" ]]; then
  for b in $builds; do
    case "$b" in
      # infra.sh builds FerretDB when it starts the database; `up` needs only Go for it (checked above).
      ferretdb) ;;
      kustomize) "$ROOT/deploy/k8s/build.sh" >/dev/null ;;
      promtool) "$ROOT/deploy/prometheus/build.sh" >/dev/null ;;
    esac
  done
fi
