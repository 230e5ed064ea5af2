#!/usr/bin/env bash
# Install a real OpenStack Glance (PyPI `glance`) plus a WSGI server into a cached venv, once
# per version: the `openstack` provider's contract and integration tests run against it.
#
# Glance has its own venv because its oslo.* dependency tree must not mix with the operator's.
# A cold install downloads ~250 MB and takes about half a minute; later runs find the cache and
# return at once. Progress goes to stderr; the last line of stdout is the venv folder (its
# bin/ holds `gunicorn` and `glance-manage`).
set -euo pipefail

GLANCE_VERSION="${GLANCE_VERSION:-33.0.0}"
GUNICORN_VERSION="${GLANCE_GUNICORN_VERSION:-23.0.0}"
PYTHON="${GLANCE_PYTHON:-python3}"
CACHE_ROOT="${IMAGE_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/image-operator}"
OUT="$CACHE_ROOT/glance-${GLANCE_VERSION}"
VENV="$OUT/venv"
# The stamp names both pins: changing the WSGI server's version reinstalls.
STAMP="$OUT/.installed-glance-${GLANCE_VERSION}-gunicorn-${GUNICORN_VERSION}"

log() { printf '[glance] %s\n' "$*" >&2; }

installed() { [[ -f "$STAMP" && -x "$VENV/bin/gunicorn" && -x "$VENV/bin/glance-manage" ]]; }

if installed; then
  log "cached: $VENV"
  echo "$VENV"
  exit 0
fi

mkdir -p "$OUT"
# One install per cache folder at a time (parallel test sessions may all ask for it): wait for
# a running one, then use what it installed.
if command -v flock >/dev/null; then
  exec 9>"$OUT/.install.lock"
  if ! flock -n 9; then
    log "another install into $OUT is running; waiting for it"
    flock 9
  fi
  if installed; then
    log "installed by the other run: $VENV"
    echo "$VENV"
    exit 0
  fi
fi

START=$(date +%s)
# A half-made venv from an interrupted run is not trusted: start clean.
rm -rf "$VENV" "$OUT"/.installed-*
log "creating $VENV with $($PYTHON --version 2>&1)"
"$PYTHON" -m venv "$VENV"
log "installing glance==$GLANCE_VERSION and gunicorn==$GUNICORN_VERSION (cold: ~250 MB, ~30 s)"
# pip's own progress (one line per package) goes to stderr so stdout stays the result; its
# full output is kept for when it fails.
if ! "$VENV/bin/pip" install --disable-pip-version-check --progress-bar off \
  "glance==$GLANCE_VERSION" "gunicorn==$GUNICORN_VERSION" 2>&1 \
  | tee "$OUT/pip.log" \
  | { grep --line-buffered -E '^(Collecting|Successfully installed|ERROR)' >&2 || true; }; then
  log "pip install failed; last lines of its output ($OUT/pip.log):"
  tail -n 40 "$OUT/pip.log" >&2
  exit 1
fi
if ! "$VENV/bin/python" -c 'import glance, gunicorn'; then
  log "install failed: glance or gunicorn cannot be imported from $VENV"
  exit 1
fi
[[ -x "$VENV/bin/glance-manage" && -x "$VENV/bin/gunicorn" ]] || {
  log "install failed: $VENV/bin lacks glance-manage or gunicorn"
  exit 1
}
touch "$STAMP"
log "installed in $(( $(date +%s) - START ))s: $VENV"
echo "$VENV"
