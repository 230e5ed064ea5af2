#!/usr/bin/env bash
# Build the helm CLI from its Go module once per version and cache it (no binary downloads here).
# HELM_VERSION picks the release (its major picks the module: helm.sh/helm/v3 or /v4) and
# HELM_BINARY the name of the binary (hack/build-helm4.sh: helm4, so both majors can sit side
# by side). Prints the path of the binary as its last line of stdout.
set -euo pipefail
source "$(dirname "$0")/cached-build.sh"
HELM_VERSION="${HELM_VERSION:-3.22.0}"
HELM_BINARY="${HELM_BINARY:-helm}"
MODULE="helm.sh/helm/v${HELM_VERSION%%.*}"

build_into() {
  echo "[$HELM_BINARY] building helm v${HELM_VERSION} from its Go module (1-4 minutes on a cold cache)"
  # `go install module@version` names the binary after its package (helm): it is built into a
  # folder of its own, then renamed, so a helm of another major in the cache is never touched.
  local tmp="$1/.install"
  GOBIN="$tmp" CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod \
    go install -trimpath \
    -ldflags "-s -w -X ${MODULE}/internal/version.version=v${HELM_VERSION}" \
    "${MODULE}/cmd/helm@v${HELM_VERSION}"
  mv "$tmp/helm" "$1/$HELM_BINARY"
  rmdir "$tmp"
}

cached_build "$HELM_BINARY" "$CACHE_ROOT/helm/v${HELM_VERSION}" "$HELM_BINARY"
