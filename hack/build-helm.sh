#!/usr/bin/env bash
# Build the helm CLI from its Go module once per version and cache it (no binary downloads here).
# Prints the path of the helm binary as its last line of stdout.
set -euo pipefail
source "$(dirname "$0")/cached-build.sh"
HELM_VERSION="${HELM_VERSION:-3.22.0}"

build_into() {
  echo "[helm] building helm v${HELM_VERSION} from its Go module (1-4 minutes on a cold cache)"
  GOBIN="$1" CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod \
    go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v${HELM_VERSION}" \
    "helm.sh/helm/v3/cmd/helm@v${HELM_VERSION}"
}

cached_build helm "$CACHE_ROOT/helm/v${HELM_VERSION}" helm
