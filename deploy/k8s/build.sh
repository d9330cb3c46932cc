#!/usr/bin/env bash
# Makes a kustomize binary available without Docker or internet beyond the Go module proxy:
# builds it once into $CONGDOAN_CACHE (default ~/.cache/congdoan) and prints its path.
#
#   deploy/k8s/build.sh                      # install (if needed), print the binary's path
#   deploy/k8s/build.sh render [overlay]     # print the manifests of base or overlays/<overlay>
#
# tests/deploy runs `kustomize build` on base and every overlay when this binary is present.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${CONGDOAN_CACHE:-$HOME/.cache/congdoan}"
# v5.8.2+ require go >= 1.27; v5.8.1 builds with the go 1.26 of this project's machines.
VERSION="${KUSTOMIZE_VERSION:-v5.8.1}"
BIN="$CACHE/kustomize-$VERSION/kustomize"

ensure() {
  if [[ -x "$BIN" ]]; then return; fi
  if ! command -v go >/dev/null 2>&1; then
    echo "build.sh: go is needed to build kustomize $VERSION" >&2
    exit 1
  fi
  echo "[k8s] building kustomize $VERSION from the Go module proxy into $CACHE (first time only)" >&2
  mkdir -p "$CACHE/kustomize-$VERSION"
  (cd "$CACHE" && GOBIN="$CACHE/kustomize-$VERSION" GOTOOLCHAIN=local go install "sigs.k8s.io/kustomize/kustomize/v5@$VERSION")
}

ensure
case "${1:-}" in
  "") echo "$BIN" ;;
  render)
    dir="$ROOT/deploy/k8s/base"
    [[ -n "${2:-}" ]] && dir="$ROOT/deploy/k8s/overlays/$2"
    exec "$BIN" build "$dir" ;;
  *) echo "usage: $0 [render [overlay]]" >&2; exit 2 ;;
esac
