#!/usr/bin/env bash
# `make demo`: a self-contained image-operator on this machine.
#   up   - local kube-apiserver + etcd, the cloud emulator, the operator, then examples/demo,
#          showing the images until they are Ready; everything keeps running in the background.
#   down - stop all of it.
# State and logs live in .demo/ (KUBECONFIG=.demo/kubeconfig to use kubectl yourself).
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=.demo
BIN=.venv/bin
ARGON_PORT=18701

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

stop_all() {
  for name in operator emulator cluster; do
    if [[ -f $DEMO/$name.pid ]]; then
      pid=$(cat "$DEMO/$name.pid")
      if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$pid" 2>/dev/null || true
        echo "stopped $name (pid $pid)"
      fi
      rm -f "$DEMO/$name.pid"
    fi
  done
}

wait_for_line() {  # file, pattern, seconds, what, pid file
  local deadline=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    if ! kill -0 "$(cat "$5")" 2>/dev/null || ((SECONDS > deadline)); then
      echo "gave up waiting for $4; last lines of $1:" >&2
      tail -n 30 "$1" >&2 || true
      exit 1
    fi
    sleep 0.3
  done
}

case "${1:-up}" in
down)
  stop_all
  exit 0
  ;;
up) ;;
*)
  echo "usage: $0 up|down" >&2
  exit 2
  ;;
esac

stop_all >/dev/null
rm -rf "$DEMO"
mkdir -p "$DEMO"

say "control plane binaries (first run builds them from Go modules: 5-15 minutes, with progress)"
BIN_DIR=$(hack/build-control-plane.sh)
KUBECTL="$BIN_DIR/kubectl"

say "starting kube-apiserver + etcd on loopback and installing the CRDs"
nohup "$BIN/image-operator" local-cluster --bin-dir "$BIN_DIR" --work-dir "$DEMO/cluster" \
  --kubeconfig-out "$DEMO/kubeconfig" --crds crds >"$DEMO/cluster.log" 2>&1 &
echo $! >"$DEMO/cluster.pid"
wait_for_line "$DEMO/cluster.log" '"event": *"ready"' 180 "the local control plane" "$DEMO/cluster.pid"
export KUBECONFIG=$PWD/$DEMO/kubeconfig

say "starting the cloud emulator (Argon API on 127.0.0.1:$ARGON_PORT)"
if (exec 3<>"/dev/tcp/127.0.0.1/$ARGON_PORT") 2>/dev/null; then
  echo "port $ARGON_PORT is taken; stop what uses it (or run 'make demo-down') and retry" >&2
  exit 1
fi
nohup "$BIN/image-operator" emulator --config hack/demo-emulator.yaml >"$DEMO/emulator.log" 2>&1 &
echo $! >"$DEMO/emulator.pid"
wait_for_line "$DEMO/emulator.log" '"event": *"ready"' 30 "the emulator" "$DEMO/emulator.pid"

say "starting the operator (log: $DEMO/operator.log)"
# The emulator listens on loopback, which the operator refuses as an endpoint unless allowed.
IMAGE_OPERATOR_ALLOWED_ENDPOINT_CIDRS=127.0.0.0/8 \
  nohup "$BIN/image-operator" run --standalone >"$DEMO/operator.log" 2>&1 &
echo $! >"$DEMO/operator.pid"

say "applying examples/demo"
"$KUBECTL" apply -f examples/demo/

say "waiting for the images to become Ready"
deadline=$((SECONDS + 180))
while true; do
  "$KUBECTL" get imageops -n image-demo
  ready=$("$KUBECTL" get images -n image-demo \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    grep -c True || true)
  total=$("$KUBECTL" get images -n image-demo --no-headers | wc -l)
  if [[ $total -gt 0 && $ready -eq $total ]]; then break; fi
  if ((SECONDS > deadline)); then
    echo "not Ready after 180s; operator log tail:" >&2
    tail -n 40 "$DEMO/operator.log" >&2
    exit 1
  fi
  echo
  sleep 3
done

echo
say "kubectl get imageops -A"
"$KUBECTL" get imageops -A
echo
say "kubectl wait (the same condition Flux and Argo CD read)"
"$KUBECTL" wait --for=condition=Ready images --all -n image-demo --timeout=10s
echo
say "the transcode command rendered for a task"
"$BIN/image-operator" render examples/demo/20-transcode.yaml \
  --set inputs.task_id=42 --set inputs.date=2026-11-23 --set inputs.input_file=/data/in.mp4
echo
cat <<TXT
Everything keeps running. Try:
  export KUBECONFIG=$PWD/$DEMO/kubeconfig
  $KUBECTL describe image transcode -n image-demo
  $KUBECTL patch image transcode -n image-demo --type merge -p '{"spec":{"price":"2"}}'
  $KUBECTL delete image transcode -n image-demo
Stop it all with: make demo-down
TXT
