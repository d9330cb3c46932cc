#!/bin/sh
# Container entrypoint: `entrypoint.sh KIND [ARGS...]` execs the command that deploy/Procfile (a
# process kind) or deploy/Jobfile (a one-off job) gives for KIND, so the image, compose and k8s
# can never drift from the Procfile that deploy/local/platform.sh runs. Extra ARGS are appended
# (e.g. `rebuild --help`). Anything that is not a known name is exec'd as is (`python -c ...`).
#
# In a container the APIs must listen on every interface: a Procfile bind of 127.0.0.1 (what the
# loopback-only local runner wants) is replaced by $BIND_HOST (default 0.0.0.0).
set -eu

HERE="$(cd "$(dirname "$0")" && pwd)"
PROCFILE="${PROCFILE:-$HERE/Procfile}"
JOBFILE="${JOBFILE:-$HERE/Jobfile}"
BIND_HOST="${BIND_HOST:-0.0.0.0}"
export BIND_HOST

lookup() { # file name -> command (empty when absent)
  [ -f "$1" ] || return 0
  grep -E "^$2:" "$1" | head -n 1 | sed -E "s/^$2:[[:space:]]*//"
}

list() {
  for f in "$PROCFILE" "$JOBFILE"; do
    [ -f "$f" ] && grep -oE '^[a-z0-9-]+:' "$f" | tr -d ':' | sed "s|^|  |"
  done
}

kind="${1:-help}"
case "$kind" in
  help | --help | -h | "")
    echo "usage: entrypoint.sh KIND [ARGS...]   (or any command)"
    echo "process kinds and jobs:"
    list
    exit 0 ;;
  list) list; exit 0 ;;
esac

if ! printf '%s' "$kind" | grep -qE '^[a-z0-9-]+$'; then exec "$@"; fi
cmd="$(lookup "$PROCFILE" "$kind")"
[ -n "$cmd" ] || cmd="$(lookup "$JOBFILE" "$kind")"
if [ -z "$cmd" ]; then
  if command -v "$kind" >/dev/null 2>&1; then exec "$@"; fi
  echo "entrypoint: unknown process kind or job '$kind'; known:" >&2
  list >&2
  exit 64
fi
shift
cmd="$(printf '%s' "$cmd" | sed -E 's/-b 127\.0\.0\.1:/-b ${BIND_HOST}:/')"
# The command is shell syntax (${VAR:-default}, quotes): let sh expand it, then exec it so the
# process gets signals directly (SIGTERM -> graceful stop) as PID 1's only child.
exec /bin/sh -c "exec $cmd \"\$@\"" "$kind" "$@"
