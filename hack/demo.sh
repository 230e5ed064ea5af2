#!/usr/bin/env bash
# `make demo`: image-operator working on this machine.
#   up   - a cluster, the cloud emulator, the operator, then examples/demo, showing the images
#          until they are Ready; everything keeps running in the background.
#   down - stop all of it (on an existing cluster: delete the demo's objects first).
#
# Which cluster (DEMO_CLUSTER):
#   local (default) - a kube-apiserver + etcd of our own on loopback, built from Go modules.
#   existing        - the cluster your kubeconfig (KUBECONFIG, else ~/.kube/config) points at:
#                     kind, k3d, a dev cluster. The CRDs are applied to it; the operator and the
#                     emulator run here, on this machine, and the operator watches only the
#                     namespace image-demo. Never chosen by itself: a kubeconfig is often a
#                     real cluster's, and the demo writes CRDs and objects into it.
#
# State and logs live in $DEMO_DIR (.demo/; KUBECONFIG=.demo/kubeconfig reaches the cluster in
# both modes). DEMO_ARGON_PORT (18701) is the emulator's Argon port; DEMO_BIN (.venv/bin) holds
# image-operator.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${DEMO_DIR:-.demo}
[[ $DEMO == /* ]] || DEMO=$PWD/$DEMO
BIN=${DEMO_BIN:-.venv/bin}
ARGON_PORT=${DEMO_ARGON_PORT:-18701}
NAMESPACE=image-demo
FIELD_MANAGER=image-operator-demo

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() {
  echo "error: $*" >&2
  exit 1
}

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

# On an existing cluster, the demo's objects go while the operator still runs: their
# finalizers delete the cloud images (in the emulator) and let go. Without the operator they
# would hang in the cluster. The namespace and the CRDs stay: the cluster may hold more of
# either than the demo put there.
delete_objects() {
  [[ -f $DEMO/mode && $(cat "$DEMO/mode") == existing ]] || return 0
  local kubectl
  kubectl=$(cat "$DEMO/kubectl")
  say "deleting the demo's objects from namespace $NAMESPACE (the operator lets go of each)"
  if ! "$kubectl" --kubeconfig "$DEMO/kubeconfig" delete --ignore-not-found --timeout=90s \
    -f examples/demo/20-transcode.yaml -f examples/demo/30-notebook.yaml; then
    echo "the Images did not go within 90 s; 'kubectl get images -n $NAMESPACE' shows why" >&2
  fi
  "$kubectl" --kubeconfig "$DEMO/kubeconfig" delete --ignore-not-found --timeout=60s \
    -f examples/demo/10-provider.yaml || true
  echo "kept: namespace $NAMESPACE and the imageops CRDs (kubectl delete namespace $NAMESPACE;" \
    "kubectl delete -f crds/ removes every imageops object of the cluster with them)"
}

wait_for_line() { # file, pattern, seconds, what, pid file
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
  delete_objects
  stop_all
  exit 0
  ;;
up) ;;
*)
  echo "usage: $0 up|down" >&2
  exit 2
  ;;
esac

MODE=${DEMO_CLUSTER:-local}
[[ $MODE == local || $MODE == existing ]] ||
  die "DEMO_CLUSTER=$MODE: expected local (the default: a control plane of our own) or existing"

delete_objects >/dev/null 2>&1 || true # a previous demo on an existing cluster
stop_all >/dev/null
rm -rf "$DEMO"
mkdir -p "$DEMO"
echo "$MODE" >"$DEMO/mode"

if [[ $MODE == existing ]]; then
  if command -v kubectl >/dev/null; then
    KUBECTL=$(command -v kubectl)
  else
    say "kubectl (not on PATH: building it with the control plane, cached after the first time)"
    KUBECTL="$(hack/build-control-plane.sh)/kubectl"
  fi
  [[ -n ${KUBECONFIG:-} || -f $HOME/.kube/config ]] ||
    die "DEMO_CLUSTER=existing uses the cluster of your kubeconfig, and there is none: set KUBECONFIG"
  context=$("$KUBECTL" config current-context 2>/dev/null) ||
    die "DEMO_CLUSTER=existing: your kubeconfig has no current context (kubectl config use-context NAME)"
  # The operator, kubectl and `make demo-down` all use this copy of the context, so that a
  # later `kubectl config use-context` cannot send them to another cluster. It holds your
  # credentials for that cluster: readable by you only, and removed by the next `make demo`.
  (umask 077 && "$KUBECTL" config view --minify --flatten --raw >"$DEMO/kubeconfig")
  server=$("$KUBECTL" --kubeconfig "$DEMO/kubeconfig" config view -o jsonpath='{.clusters[0].cluster.server}')
  say "using the existing cluster of your kubeconfig: context $context, server $server (DEMO_CLUSTER=existing)"
  "$KUBECTL" --kubeconfig "$DEMO/kubeconfig" get --raw=/version --request-timeout=15s >/dev/null ||
    die "cannot reach $server (context $context): start the cluster, or check the kubeconfig"
  can=$("$KUBECTL" --kubeconfig "$DEMO/kubeconfig" auth can-i create customresourcedefinitions.apiextensions.k8s.io 2>/dev/null || true)
  [[ $can == yes ]] ||
    die "context $context may not create CustomResourceDefinitions, which the demo applies; use a context with cluster-admin (kind and k3d give you one)"
  echo "$KUBECTL" >"$DEMO/kubectl"
  say "applying the imageops CRDs (server-side, field manager $FIELD_MANAGER)"
  "$KUBECTL" --kubeconfig "$DEMO/kubeconfig" apply --server-side --force-conflicts \
    --field-manager="$FIELD_MANAGER" -f crds/
  "$KUBECTL" --kubeconfig "$DEMO/kubeconfig" wait --for=condition=Established --timeout=60s -f crds/
  # Only the demo's namespace: the cluster may run other operators, or an image-operator of its own.
  OPERATOR_ARGS=(--namespace "$NAMESPACE")
else
  if [[ -n ${KUBECONFIG:-} || -f $HOME/.kube/config ]]; then
    say "using a local control plane of our own; the cluster of your kubeconfig is left alone (make demo DEMO_CLUSTER=existing uses it instead)"
  fi
  say "control plane binaries (first run builds them from Go modules: 5-15 minutes, with progress)"
  BIN_DIR=$(hack/build-control-plane.sh)
  KUBECTL="$BIN_DIR/kubectl"
  echo "$KUBECTL" >"$DEMO/kubectl"

  say "starting kube-apiserver + etcd on loopback and installing the CRDs"
  nohup "$BIN/image-operator" local-cluster --bin-dir "$BIN_DIR" --work-dir "$DEMO/cluster" \
    --kubeconfig-out "$DEMO/kubeconfig" --crds crds >"$DEMO/cluster.log" 2>&1 &
  echo $! >"$DEMO/cluster.pid"
  wait_for_line "$DEMO/cluster.log" '"event": *"ready"' 180 "the local control plane" "$DEMO/cluster.pid"
  OPERATOR_ARGS=()
fi
export KUBECONFIG=$DEMO/kubeconfig

say "starting the cloud emulator (Argon API on 127.0.0.1:$ARGON_PORT)"
if (exec 3<>"/dev/tcp/127.0.0.1/$ARGON_PORT") 2>/dev/null; then
  echo "port $ARGON_PORT is taken; stop what uses it (or run 'make demo-down') and retry" >&2
  exit 1
fi
nohup "$BIN/image-operator" emulator --config hack/demo-emulator.yaml --state-dir "$DEMO/emulator" \
  --argon-port "$ARGON_PORT" >"$DEMO/emulator.log" 2>&1 &
echo $! >"$DEMO/emulator.pid"
wait_for_line "$DEMO/emulator.log" '"event": *"ready"' 30 "the emulator" "$DEMO/emulator.pid"

say "starting the operator here, against that cluster (log: $DEMO/operator.log)"
# The emulator listens on loopback, which the operator refuses as an endpoint unless allowed.
# It is reachable because the operator runs on this machine too, in either mode.
IMAGE_OPERATOR_ALLOWED_ENDPOINT_CIDRS=127.0.0.0/8 \
  nohup "$BIN/image-operator" run --standalone ${OPERATOR_ARGS[@]+"${OPERATOR_ARGS[@]}"} \
  >"$DEMO/operator.log" 2>&1 &
echo $! >"$DEMO/operator.pid"

say "applying examples/demo"
if [[ $ARGON_PORT == 18701 ]]; then
  "$KUBECTL" apply -f examples/demo/
else # the examples name the default port
  for file in examples/demo/*.yaml; do
    sed "s|http://127.0.0.1:18701|http://127.0.0.1:$ARGON_PORT|" "$file"
    echo "---"
  done | "$KUBECTL" apply -f -
fi

say "waiting for the images to become Ready"
deadline=$((SECONDS + 180))
while true; do
  "$KUBECTL" get imageops -n "$NAMESPACE"
  ready=$("$KUBECTL" get images -n "$NAMESPACE" \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    grep -c True || true)
  total=$("$KUBECTL" get images -n "$NAMESPACE" --no-headers | wc -l)
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
"$KUBECTL" wait --for=condition=Ready images --all -n "$NAMESPACE" --timeout=10s
echo
say "image-operator status -n $NAMESPACE (also: kubectl imageops status, with $BIN on PATH)"
"$BIN/image-operator" status -n "$NAMESPACE"
echo
say "the transcode command rendered for a task"
"$BIN/image-operator" render examples/demo/20-transcode.yaml \
  --set inputs.task_id=42 --set inputs.date=2026-11-23 --set inputs.input_file=/data/in.mp4
where="on the local control plane"
[[ $MODE == existing ]] && where="on the existing cluster, context $context"
echo
cat <<TXT
Everything keeps running ($where). Try:
  export KUBECONFIG=$DEMO/kubeconfig
  $BIN/image-operator status -n $NAMESPACE --watch
  $KUBECTL patch image transcode -n $NAMESPACE --type merge -p '{"spec":{"price":"2"}}'
  $KUBECTL delete image transcode -n $NAMESPACE
Stop it all with: make demo-down
TXT
