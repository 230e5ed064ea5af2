"""The operator's Prometheus endpoint moves while it works."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Kube, OperatorProcess, image_manifest, wait_for

pytestmark = pytest.mark.integration


def _samples(operator: OperatorProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(operator.metrics_url, timeout=10).raise_for_status().text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _total(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and all((k, v) in sample_labels for k, v in labels.items())
    )


def test_reconciles_and_cloud_calls_are_counted(kube: Kube, operator: OperatorProcess) -> None:
    before = wait_for(lambda: _samples(operator), timeout=30, what="the metrics endpoint")

    kube.create("images", image_manifest("metered"))
    kube.wait_ready("images", "metered")

    after = _samples(operator)
    assert _total(after, "imageops_reconciles_total", kind="Image", result="settled") > _total(
        before, "imageops_reconciles_total", kind="Image", result="settled"
    )
    assert _total(
        after,
        "imageops_cloud_requests_total",
        provider="argon",
        action="create_image",
        outcome="ok",
    ) >= 1 + _total(
        before,
        "imageops_cloud_requests_total",
        provider="argon",
        action="create_image",
        outcome="ok",
    )
    assert _total(after, "imageops_cloud_request_duration_seconds_count", provider="argon") > 0
    assert _total(after, "imageops_reconcile_duration_seconds_count", kind="Image") > 0
    assert ("imageops_operations_in_flight", (("kind", "Image"),)) in after
