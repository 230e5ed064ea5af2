#!/usr/bin/env bash
# Build the helm CLI from its Go module once per version and cache it (no binary downloads here).
# Prints the path of the helm binary as its last line of stdout.
set -euo pipefail
HELM_VERSION="${HELM_VERSION:-3.22.0}"
CACHE_ROOT="${IMAGE_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/image-operator}"
OUT="$CACHE_ROOT/helm/v${HELM_VERSION}"
log() { printf '[helm] %s\n' "$*" >&2; }

if [[ -x "$OUT/helm" ]]; then
  log "cached: $OUT/helm"
  echo "$OUT/helm"
  exit 0
fi
command -v go >/dev/null || { log "Go is required to build helm"; exit 1; }
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9
if [[ ! -x "$OUT/helm" ]]; then
  log "building helm v${HELM_VERSION} from its Go module (1-4 minutes on a cold cache)"
  start=$(date +%s)
  GOBIN="$OUT" CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod \
    go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v${HELM_VERSION}" \
    "helm.sh/helm/v3/cmd/helm@v${HELM_VERSION}" >&2
  log "helm ready in $(( $(date +%s) - start ))s"
fi
echo "$OUT/helm"
