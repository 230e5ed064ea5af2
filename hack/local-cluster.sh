#!/usr/bin/env bash
# Run a local control plane (etcd + kube-apiserver, built by hack/build-control-plane.sh on first
# use) in the foreground until Ctrl-C / SIGTERM. Prints one JSON line {"event":"ready",...} with
# the kubeconfig path and the server URL once usable. Same as `image-operator local-cluster`.
#
#   hack/local-cluster.sh --kubeconfig-out /tmp/io.kubeconfig --crds crds/
#   KUBECONFIG=/tmp/io.kubeconfig kubectl get crds
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[[ -x "$PYTHON" ]] || PYTHON=python3
exec "$PYTHON" -m image_operator_dev.localcluster "$@"
