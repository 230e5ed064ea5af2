#!/usr/bin/env bash
# Build the kstatus CLI (hack/kstatus: the kstatus library of sigs.k8s.io/cli-utils behind a
# JSON-in, JSON-out main) once per version and cache it, as helm is. The cache folder is named
# after the cli-utils version and a hash of the CLI's sources, so an edit of hack/kstatus builds
# anew. About 30 s with empty Go caches. Prints the path of the binary as its last line of stdout.
set -euo pipefail
source "$(dirname "$0")/cached-build.sh"
SRC="$(cd "$(dirname "$0")/kstatus" && pwd)"
VERSION="$(awk '$1 == "sigs.k8s.io/cli-utils" { print $2 }' "$SRC/go.mod")"
SOURCES_HASH="$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go" | sha256sum | cut -c1-12)"

build_into() {
  echo "[kstatus] building kstatus from sigs.k8s.io/cli-utils ${VERSION}"
  # go.sum pins every module: -mod=readonly builds exactly what was reviewed.
  (cd "$SRC" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" \
    go build -trimpath -ldflags "-s -w" -o "$1/kstatus.tmp" .)
  mv "$1/kstatus.tmp" "$1/kstatus"
}

cached_build kstatus "$CACHE_ROOT/kstatus/cli-utils-${VERSION}-${SOURCES_HASH}" kstatus
