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
  go_install_as "$1" "$HELM_BINARY" "${MODULE}/cmd/helm@v${HELM_VERSION}" \
    -ldflags "-s -w -X ${MODULE}/internal/version.version=v${HELM_VERSION}"
}

cached_build "$HELM_BINARY" "$CACHE_ROOT/helm/v${HELM_VERSION}" "$HELM_BINARY"
