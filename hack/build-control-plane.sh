#!/usr/bin/env bash
# Build kube-apiserver, kubectl and etcd from their Go modules once per version and cache them.
#
# Usage: hack/build-control-plane.sh [KUBERNETES_VERSION]   (default: $K8S_VERSION, else 1.36.3,
# the newest release we test; `make integration-oldest` builds the oldest one we support).
#
# There is no Docker engine and no binary download on our machines, but the Go module proxy is
# reachable: this is the envtest approach with binaries we compile ourselves. A cold build takes
# 5-15 minutes on 2 cores (several hundred MB of modules); later runs reuse the cache and return
# at once. Prints the directory holding the three binaries as its last line of stdout.
#
# Honours KUBEBUILDER_ASSETS: when it names a folder that already holds kube-apiserver and etcd,
# that folder is used and nothing is built.
set -euo pipefail

K8S_VERSION="${1:-${K8S_VERSION:-1.36.3}}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
CACHE_ROOT="${IMAGE_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/image-operator}"
OUT="$CACHE_ROOT/control-plane/k8s-v${K8S_VERSION}-etcd-v${ETCD_VERSION}"

log() { printf '[control-plane] %s\n' "$*" >&2; }

if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/kube-apiserver" && -x "$KUBEBUILDER_ASSETS/etcd" ]]; then
  log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

if [[ -x "$OUT/kube-apiserver" && -x "$OUT/etcd" && -x "$OUT/kubectl" ]]; then
  log "cached: $OUT"
  echo "$OUT"
  exit 0
fi

command -v go >/dev/null || { log "Go is required to build the control plane (go 1.25+)"; exit 1; }
mkdir -p "$OUT"
# One build per cache folder at a time (parallel test workers may all ask for it): wait for a
# running one, then use what it built.
if command -v flock >/dev/null; then
  exec 9>"$OUT/.build.lock"
  if ! flock -n 9; then
    log "another build into $OUT is running; waiting for it"
    flock 9
  fi
  if [[ -x "$OUT/kube-apiserver" && -x "$OUT/etcd" && -x "$OUT/kubectl" ]]; then
    log "built by the other run: $OUT"
    echo "$OUT"
    exit 0
  fi
fi
WORK="$(mktemp -d)"
# (Never `kill 0`: with HEARTBEAT unset that would signal our caller's whole process group.)
trap '[[ -n "${HEARTBEAT:-}" ]] && kill "$HEARTBEAT" 2>/dev/null; rm -rf "$WORK"' EXIT
START=$(date +%s)

# A heartbeat so a cold build never means minutes of silence. It sleeps in 1 s steps because
# killing it leaves its current `sleep` running, and that must not hold our stdout (a caller
# reading it to EOF would wait) or the lock for long.
heartbeat() {
  local ticks=0 n
  while sleep 1; do
    (( ++ticks % 30 == 0 )) || continue
    n=0
    [[ -f "$WORK/build.log" ]] && n=$(wc -l <"$WORK/build.log")
    log "still building ($(( $(date +%s) - START ))s elapsed, $n packages compiled so far)"
  done
}
heartbeat 9>&- >/dev/null &
HEARTBEAT=$!

# `go build -v` lists compiled packages on stderr (the heartbeat counts them). On failure, show
# the compiler's errors: they would otherwise vanish with $WORK.
gobuild() {
  go build -v "$@" 2>"$WORK/build.log" || {
    log "go build failed; last lines of its output:"
    tail -n 60 "$WORK/build.log" >&2
    return 1
  }
}

export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

# --- etcd: a tiny module around etcdmain.Main, separate from kube-apiserver's dependency graph.
# One build per etcd version, shared by every Kubernetes version's folder (make test builds two).
ETCD_SHARED="$CACHE_ROOT/control-plane/etcd-v${ETCD_VERSION}/etcd"
if [[ ! -x "$OUT/etcd" && -x "$ETCD_SHARED" ]]; then
  cp "$ETCD_SHARED" "$OUT/etcd.tmp" && mv "$OUT/etcd.tmp" "$OUT/etcd"
  log "etcd v${ETCD_VERSION}: reused $ETCD_SHARED"
fi
if [[ ! -x "$OUT/etcd" ]]; then
  log "building etcd v${ETCD_VERSION} (step 1/2)"
  mkdir -p "$WORK/etcd"
  cd "$WORK/etcd"
  cat >main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go mod init image-operator.local/etcd >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}" >&2
  go mod tidy >&2
  gobuild -trimpath -o "$OUT/etcd.tmp" .
  mv "$OUT/etcd.tmp" "$OUT/etcd"
  mkdir -p "$(dirname "$ETCD_SHARED")"
  cp "$OUT/etcd" "$ETCD_SHARED.tmp" && mv "$ETCD_SHARED.tmp" "$ETCD_SHARED"
  log "etcd ready ($(( $(date +%s) - START ))s)"
fi

# --- kube-apiserver and kubectl: k8s.io/kubernetes requires its staging modules at v0.0.0, so
# every one of them is replaced by the published k8s.io/<m> v0.Y.Z (generated from its go.mod).
log "building kube-apiserver and kubectl v${K8S_VERSION} (step 2/2; the longest part)"
mkdir -p "$WORK/kube"
cd "$WORK/kube"
go mod init image-operator.local/kube >/dev/null 2>&1
GOMOD_JSON="$(go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}")"
GOMOD_FILE="$(printf '%s' "$GOMOD_JSON" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
STAGING_VERSION="v0.${K8S_VERSION#1.}"
{
  echo "require k8s.io/kubernetes v${K8S_VERSION}"
  echo "replace ("
  sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$GOMOD_FILE" | while read -r m; do
    echo "  $m => $m $STAGING_VERSION"
  done
  echo ")"
} >>go.mod
mkdir -p apiserver kubectl
cat >apiserver/main.go <<'GO'
package main

import (
	"os"

	_ "time/tzdata"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() { os.Exit(cli.Run(app.NewAPIServerCommand())) }
GO
cat >kubectl/main.go <<'GO'
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"

	_ "k8s.io/client-go/plugin/pkg/client/auth"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
GO
log "downloading Go modules (several hundred MB on a cold cache)"
# Up to 1.30, kube-apiserver links the in-tree cloud providers unless built `providerless`, and
# the module proxy does not serve every k8s.io/legacy-cloud-providers (v0.29.6: 403). Tidy sees
# every build tag, so it may only warn (-e) about what the providerless build below never
# imports. No file of 1.35 or 1.36 depends on the tag: there it changes nothing.
go mod tidy -e >&2
LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=v${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION")"
LDFLAGS="$LDFLAGS -X k8s.io/client-go/pkg/version.gitVersion=v${K8S_VERSION}"
gobuild -trimpath -tags selinux,notest,providerless -ldflags "$LDFLAGS" -o "$OUT/kube-apiserver.tmp" ./apiserver
mv "$OUT/kube-apiserver.tmp" "$OUT/kube-apiserver"
log "kube-apiserver ready ($(( $(date +%s) - START ))s)"
gobuild -trimpath -ldflags "$LDFLAGS" -o "$OUT/kubectl.tmp" ./kubectl
mv "$OUT/kubectl.tmp" "$OUT/kubectl"
log "kubectl ready; control plane built in $(( $(date +%s) - START ))s into $OUT"
echo "$OUT"
