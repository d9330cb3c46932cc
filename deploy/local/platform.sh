#!/usr/bin/env bash
# Runs every process kind of deploy/Procfile on loopback (after infra.sh up), seeds the demo
# province once, and prints the URLs.   deploy/local/platform.sh up|down|status
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VAR="${CONGDOAN_VAR:-$ROOT/var}"
RUN="$VAR/run"
PY="$ROOT/.venv/bin/python"
export PATH="$ROOT/.venv/bin:$PATH"
export DB_PREFIX="${DB_PREFIX:-congdoan_}"
# A developer's machine: the services accept the development signing key only with PLATFORM_ENV=local
# (anywhere else they refuse to start with it; docs/security.md).
export PLATFORM_ENV="${PLATFORM_ENV:-local}"
cd "$ROOT"
mkdir -p "$RUN" "$VAR/log"
# The local store's PostgreSQL (FerretDB's tables get their GIN indexes from platformkit/store_prep.py).
if [[ -z "${FERRETDB_POSTGRESQL_URL:-}" ]]; then eval "$("$ROOT/deploy/local/infra.sh" env)"; fi

log() { printf '[platform] %s\n' "$*" >&2; }
alive() { [[ -f "$RUN/$1.pid" ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

processes() { grep -E '^[a-z0-9-]+:' "$ROOT/deploy/Procfile" || true; }

up() {
  while IFS= read -r line; do
    name="${line%%:*}"; cmd="${line#*: }"
    if alive "$name"; then continue; fi
    log "starting $name"
    setsid nohup bash -c "exec $cmd" >>"$VAR/log/$name.log" 2>&1 &
    echo $! >"$RUN/$name.pid"
  done < <(processes)
  for port in $(grep -oE '\$\{[A-Z_]+_PORT:-[0-9]+\}' "$ROOT/deploy/Procfile" | grep -oE '[0-9]+' | sort -u); do
    for _ in $(seq 1 150); do
      curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
      sleep 0.2
    done
  done
  if [[ -f "$ROOT/services/__init__.py" ]] && "$PY" -c "import services.demo" 2>/dev/null; then
    "$PY" -m services.demo seed --if-empty
  fi
  status
}

down() {
  for f in "$RUN"/*.pid; do
    [[ -e "$f" ]] || continue
    pid="$(cat "$f")"; name="$(basename "$f" .pid)"
    if kill -0 "$pid" 2>/dev/null; then log "stopping $name"; kill "$pid" 2>/dev/null || true; fi
    rm -f "$f"
  done
  sleep 1
}

status() {
  while IFS= read -r line; do
    name="${line%%:*}"
    if alive "$name"; then printf '%-24s up   pid %s\n' "$name" "$(cat "$RUN/$name.pid")"
    else printf '%-24s down\n' "$name"; fi
  done < <(processes)
  grep -oE '^[a-z]+-api:.*\$\{[A-Z_]+_PORT:-[0-9]+\}' "$ROOT/deploy/Procfile" | while IFS= read -r l; do
    svc="${l%%-api:*}"; port="$(echo "$l" | grep -oE ':-[0-9]+' | tail -1 | tr -d ':-')"
    printf '%-12s http://127.0.0.1:%s/docs   http://127.0.0.1:%s/api/v1/\n' "$svc" "$port" "$port"
  done
  if grep -q '^reporting-api' "$ROOT/deploy/Procfile"; then
    echo "dashboard    http://127.0.0.1:${REPORTING_PORT:-8004}/dashboard"
  fi
  if [[ -f "$VAR/demo-token.txt" ]]; then echo "token (province admin): $VAR/demo-token.txt"; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
