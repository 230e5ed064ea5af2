"""Every metric the Grafana dashboard and the PrometheusRule name is one a running operator
exports: a scrape after an Image went Ready is the reference, so a panel or an alert that names
a made-up metric (or a suffix its type does not have, e.g. `_bucket` of a counter) fails here.
The same scrape shows the per-object gauge and the leadership gauge at work."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import CHART, Kube, OperatorProcess, image_manifest, render_chart
from tests.promql import exported_names, metric_names, variable_expression

pytestmark = pytest.mark.integration

DASHBOARD = CHART / "dashboards" / "image-operator.json"


def _queries(node: Any) -> Iterator[str]:
    """Every PromQL a dashboard holds: panel targets' `expr` and the variables' queries."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            elif key == "templating":
                for variable in value.get("list", []):
                    if variable.get("type") == "query":
                        query = variable["query"]
                        yield variable_expression(
                            query if isinstance(query, str) else query["query"]
                        )
            else:
                yield from _queries(value)
    elif isinstance(node, list):
        for value in node:
            yield from _queries(value)


def _rule_expressions(helm: str) -> list[str]:
    docs = render_chart(helm, "metrics.prometheusRule.enabled=true")
    (rule,) = [doc for doc in docs if doc["kind"] == "PrometheusRule"]
    return [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]


def _unexported(expressions: list[str], exported: set[str]) -> dict[str, set[str]]:
    return {e: missing for e in expressions if (missing := metric_names(e) - exported)}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def test_dashboard_and_alerts_name_only_exported_metrics(
    kube: Kube, operator: OperatorProcess, helm: str, dashboard: dict[str, Any]
) -> None:
    kube.create("images", image_manifest("charted"))
    kube.wait_ready("images", "charted")
    text = httpx.get(operator.metrics_url, timeout=10).raise_for_status().text
    families = list(text_string_to_metric_families(text))
    exported = exported_names((family.name, family.type) for family in families)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples
    }

    # The per-object gauge and the leader gauge are really there, with this test's objects.
    ready = (
        ("condition", "ready"),
        ("imageprovider", "argon"),
        ("kind", "Image"),
        ("namespace", kube.namespace),
    )
    assert samples[("imageops_objects", ready)] == 1
    assert (
        samples[("imageops_leader", (("shard", "0"),))] == 1
    )  # the test operator runs --standalone

    dashboard_queries = list(_queries(dashboard))
    rule_expressions = _rule_expressions(helm)
    assert len(dashboard_queries) >= 15 and len(rule_expressions) >= 9
    assert all(metric_names(e) for e in dashboard_queries + rule_expressions)
    assert _unexported(dashboard_queries, exported) == {}
    assert _unexported(rule_expressions, exported) == {}
    # The check bites: a panel with a made-up metric, or a suffix its type lacks, is caught.
    made_up = ["sum(rate(imageops_images_built_total[5m]))", "imageops_leader_count"]
    assert set(_unexported(made_up, exported)) == set(made_up)


def test_the_dashboard_configmap_ships_the_json_file(helm: str, dashboard: dict[str, Any]) -> None:
    assert not [d for d in render_chart(helm) if d["kind"] == "ConfigMap"]
    docs = render_chart(
        helm,
        "metrics.grafanaDashboard.enabled=true",
        "metrics.grafanaDashboard.namespace=monitoring",
    )
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert json.loads(configmap["data"]["image-operator.json"]) == dashboard
