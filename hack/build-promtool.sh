#!/usr/bin/env bash
# Build promtool (github.com/prometheus/prometheus/cmd/promtool) from its Go module once per
# version and cache it, as helm is: tests/integration/test_alerts.py runs `promtool check rules`
# and `promtool test rules` on the chart's PrometheusRule. Only the promtool package is built,
# and without Prometheus' service-discovery plugins (`remove_all_sd`: the AWS, Azure, GCE...
# SDKs are most of its code, and rule checks and tests need none of them). PROMTOOL_VERSION
# picks the module version (Prometheus 3.x is published as v0.3xx.y). Prints the path of the
# binary as its last line of stdout.
set -euo pipefail
source "$(dirname "$0")/cached-build.sh"
PROMTOOL_VERSION="${PROMTOOL_VERSION:-0.316.0}"
MODULE="github.com/prometheus/prometheus"

build_into() {
  echo "[promtool] building promtool from ${MODULE} v${PROMTOOL_VERSION} (minutes on a cold cache)"
  go_install_as "$1" promtool "${MODULE}/cmd/promtool@v${PROMTOOL_VERSION}" \
    -tags remove_all_sd -ldflags "-s -w"
}

cached_build promtool "$CACHE_ROOT/promtool/v${PROMTOOL_VERSION}-nosd" promtool
