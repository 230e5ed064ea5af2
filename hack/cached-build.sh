# Sourced by hack/build-helm.sh (so also by build-helm4.sh), hack/build-kstatus.sh and
# hack/build-promtool.sh: build one Go binary once per cache folder, and print its path as the
# last line of stdout (what the Makefile and the tests read).
# The caller defines `build_into DIR`, which writes the binary into DIR.
CACHE_ROOT="${IMAGE_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/image-operator}"

# go_install_as DIR NAME PACKAGE@VERSION [go install flags...]: `go install` names the binary
# after its package; it is built into a folder of its own, then renamed to DIR/NAME, so a binary
# of another version or major in DIR is never touched.
go_install_as() {
  local out=$1 name=$2 package=$3 tmp="$1/.install"
  shift 3
  GOBIN="$tmp" CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod go install -trimpath "$@" "$package"
  mv "$tmp/$(basename "${package%@*}")" "$out/$name"
  rmdir "$tmp"
}

# cached_build LABEL DIR BINARY
cached_build() {
  local label=$1 out=$2 binary=$3 start
  if [[ -x "$out/$binary" ]]; then
    printf '[%s] cached: %s\n' "$label" "$out/$binary" >&2
    echo "$out/$binary"
    return 0
  fi
  command -v go >/dev/null || { printf '[%s] Go is required to build %s\n' "$label" "$binary" >&2; return 1; }
  mkdir -p "$out"
  # One build per folder at a time (parallel test workers may all ask): wait for a running one.
  exec 9>"$out/.lock"
  flock 9
  if [[ ! -x "$out/$binary" ]]; then
    start=$(date +%s)
    build_into "$out" >&2
    printf '[%s] %s ready in %ss\n' "$label" "$binary" "$(( $(date +%s) - start ))" >&2
  fi
  echo "$out/$binary"
}
