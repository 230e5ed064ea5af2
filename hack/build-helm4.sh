#!/usr/bin/env bash
# Build Helm 4 (helm.sh/helm/v4) as `helm4`, beside Helm 3's `helm`, once per version: Helm 4's
# `--wait` reads our objects with kstatus (HIP-0022), which tests/integration/test_helm_wait.py
# checks. Prints the path of the binary as its last line of stdout.
set -euo pipefail
HELM_VERSION="${HELM4_VERSION:-4.3.2}" HELM_BINARY=helm4 exec "$(dirname "$0")/build-helm.sh"
