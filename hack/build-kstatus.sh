#!/usr/bin/env bash
# Build the kstatus CLI (hack/kstatus: the kstatus library of sigs.k8s.io/cli-utils behind a
# JSON-in, JSON-out main) once per version and cache it, as helm and the control plane are.
# The cache folder is named after the cli-utils version and a hash of the CLI's sources, so an
# edit of hack/kstatus builds anew. Prints the path of the binary as its last line of stdout.
set -euo pipefail
SRC="$(cd "$(dirname "$0")/kstatus" && pwd)"
VERSION="$(awk '$1 == "sigs.k8s.io/cli-utils" { print $2 }' "$SRC/go.mod")"
SOURCES_HASH="$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go" | sha256sum | cut -c1-12)"
CACHE_ROOT="${IMAGE_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/image-operator}"
OUT="$CACHE_ROOT/kstatus/cli-utils-${VERSION}-${SOURCES_HASH}"
log() { printf '[kstatus] %s\n' "$*" >&2; }

if [[ -x "$OUT/kstatus" ]]; then
  log "cached: $OUT/kstatus"
  echo "$OUT/kstatus"
  exit 0
fi
command -v go >/dev/null || { log "Go is required to build kstatus"; exit 1; }
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9
if [[ ! -x "$OUT/kstatus" ]]; then
  log "building kstatus from sigs.k8s.io/cli-utils ${VERSION} (about 30 s on a cold Go cache)"
  start=$(date +%s)
  # go.sum pins every module: -mod=readonly builds exactly what was reviewed.
  (cd "$SRC" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" \
    go build -trimpath -ldflags "-s -w" -o "$OUT/kstatus.tmp" .) >&2
  mv "$OUT/kstatus.tmp" "$OUT/kstatus"
  log "kstatus ready in $(( $(date +%s) - start ))s"
fi
echo "$OUT/kstatus"
