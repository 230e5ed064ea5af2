#!/usr/bin/env bash
# Install a real OCI distribution registry (Debian `docker-registry`, distribution 2.8) once:
# the `registry` provider's contract and integration tests run against it.
#
# Idempotent: when /usr/bin/docker-registry is there it only says so. Otherwise it runs
# `apt-get update` (only when apt has no package lists yet, or the package is not known to
# them) and `apt-get install -y docker-registry`. Progress goes to stderr; the last line of
# stdout is the binary's path.
set -euo pipefail

BINARY="${DOCKER_REGISTRY_BIN:-/usr/bin/docker-registry}"

log() { printf '[registry] %s\n' "$*" >&2; }

if [[ -x "$BINARY" ]]; then
  log "installed: $BINARY ($("$BINARY" --version 2>/dev/null || echo 'version unknown'))"
  echo "$BINARY"
  exit 0
fi

command -v apt-get >/dev/null || {
  log "$BINARY is missing and there is no apt-get to install Debian's docker-registry with"
  exit 1
}
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { log "installing packages needs root (or sudo)"; exit 1; }
  SUDO=(sudo -n)
fi

# One install at a time (parallel test sessions may all ask for it); dpkg has its own lock,
# this one only keeps two runs from both deciding to update and install.
LOCK_DIR="${IMAGE_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/image-operator}"
mkdir -p "$LOCK_DIR"
if command -v flock >/dev/null; then
  exec 9>"$LOCK_DIR/.install-registry.lock"
  if ! flock -n 9; then
    log "another install is running; waiting for it"
    flock 9
  fi
  if [[ -x "$BINARY" ]]; then
    log "installed by the other run: $BINARY"
    echo "$BINARY"
    exit 0
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists (apt-cache knows nothing until the first update).
if ! apt-cache show docker-registry >/dev/null 2>&1; then
  log "apt-get update (the package lists do not know docker-registry yet)"
  "${SUDO[@]}" apt-get update -qq >&2
fi
log "apt-get install -y docker-registry"
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends docker-registry >&2

# The Debian package also enables a system service on port 5000; the tests start their own
# registries on free loopback ports and need nothing from it, so it is left as the package
# set it up.
[[ -x "$BINARY" ]] || { log "install finished but $BINARY is still missing"; exit 1; }
log "installed: $BINARY ($("$BINARY" --version 2>/dev/null || echo 'version unknown'))"
echo "$BINARY"
