"""The PromQL tokenizer the dashboard-metric test relies on finds exactly the metric names."""

from __future__ import annotations

import pytest

from tests.promql import exported_names, metric_names, variable_expression


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ("imageops_leader", {"imageops_leader"}),
        ("absent(imageops_leader)", {"imageops_leader"}),
        (
            'sum by (kind, le) (rate(imageops_reconcile_duration_seconds_bucket{kind=~"$kind"}'
            "[$__rate_interval]))",
            {"imageops_reconcile_duration_seconds_bucket"},
        ),
        (
            "histogram_quantile(0.95, sum by (provider, action, le) "
            "(rate(x_seconds_bucket[5m]))) > 1e3",
            {"x_seconds_bucket"},
        ),
        (
            'sum by (provider) (rate(a_total{outcome!~"ok|NotFound"}[10m])) / sum by (provider) '
            "(rate(a_total[10m])) > 0.2",
            {"a_total"},
        ),
        (
            "sum by (kind) (in_flight) > 0 unless on (kind) sum by (kind) "
            "(increase(r_total[30m])) > 0",
            {"in_flight", "r_total"},
        ),
        ("max_over_time(deriv(g[5m])[30m:1m]) offset 1h", {"g"}),
        ('sum(objects{condition="stalled"}) or vector(0)', {"objects"}),
        ("a * on (pod) group_left (node) b", {"a", "b"}),
        ('{__name__="x"}', set()),
    ],
)
def test_metric_names(expression: str, names: set[str]) -> None:
    assert metric_names(expression) == names


def test_only_the_suffixes_of_a_metric_type_are_exported() -> None:
    names = exported_names(
        [("imageops_reconciles", "counter"), ("imageops_leader", "gauge"), ("d", "histogram")]
    )
    assert {"imageops_reconciles_total", "imageops_leader", "d_bucket", "d_count"} <= names
    assert "imageops_leader_count" not in names
    assert "imageops_reconciles_total_bucket" not in names
    assert "d" not in names


def test_a_grafana_variable_reads_the_expression_inside_label_values() -> None:
    assert variable_expression("label_values(imageops_objects, namespace)") == "imageops_objects"
    assert metric_names(variable_expression('label_values(a{k="v"}, kind)')) == {"a"}
    assert variable_expression("up") == "up"
