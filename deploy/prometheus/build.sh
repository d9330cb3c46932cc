#!/usr/bin/env bash
# Builds promtool (Prometheus' rule checker) from the Go module proxy into $CONGDOAN_CACHE
# (default ~/.cache/congdoan) and prints its path. Heavy the first time (~4 min and ~2 GB of Go
# modules on 2 cores); tests/deploy then runs `promtool check rules` and `promtool test rules`.
#
#   deploy/prometheus/build.sh           # install (if needed), print the binary's path
#   deploy/prometheus/build.sh check     # check alerts.yaml and run alerts_test.yaml
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${CONGDOAN_CACHE:-$HOME/.cache/congdoan}"
# Prometheus v3.x is published on the module proxy as v0.3xx.y.
VERSION="${PROMTOOL_VERSION:-v0.316.0}"
BIN="$CACHE/promtool-$VERSION/promtool"

if [[ ! -x "$BIN" ]]; then
  command -v go >/dev/null 2>&1 || { echo "build.sh: go is needed to build promtool" >&2; exit 1; }
  echo "[prometheus] building promtool $VERSION from the Go module proxy into $CACHE (first time only)" >&2
  mkdir -p "$CACHE/promtool-$VERSION"
  (cd "$CACHE" && GOBIN="$CACHE/promtool-$VERSION" GOTOOLCHAIN=local go install "github.com/prometheus/prometheus/cmd/promtool@$VERSION")
fi
case "${1:-}" in
  "") echo "$BIN" ;;
  check) "$BIN" check rules "$HERE/alerts.yaml" && "$BIN" test rules "$HERE/alerts_test.yaml" ;;
  *) echo "usage: $0 [check]" >&2; exit 2 ;;
esac
