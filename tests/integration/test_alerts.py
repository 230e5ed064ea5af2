"""The chart's PrometheusRule: rendered by `helm template`, checked and unit-tested by promtool
(built from github.com/prometheus/prometheus by hack/build-promtool.sh). The scenarios are in
tests/integration/alerts/*.yaml; each alert must fire in at least one of them, so an alert that
stops firing there, or a new alert with no scenario, fails this file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import ROOT, _built, render_chart

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).parent / "alerts"
RULES_FILE = "rules.yaml"  # the name the scenarios' rule_files give


@pytest.fixture(scope="module")
def promtool() -> str:
    return _built("build-promtool.sh")


def _rule(helm: str, *sets: str) -> dict[str, Any]:
    docs = render_chart(helm, "metrics.prometheusRule.enabled=true", *sets)
    rules = [doc for doc in docs if doc["kind"] == "PrometheusRule"]
    assert len(rules) == 1, [doc["kind"] for doc in docs]
    return rules[0]


def _alerts(rule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def _promtool(promtool: str, *args: str, cwd: Path) -> str:
    result = subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{output}"
    return output


def test_the_rule_is_off_by_default(helm: str) -> None:
    assert not [doc for doc in render_chart(helm) if doc["kind"] == "PrometheusRule"]


def test_promtool_checks_the_rules_and_every_alert_fires_in_its_scenario(
    helm: str, promtool: str, tmp_path: Path
) -> None:
    rule = _rule(helm, "metrics.prometheusRule.labels.release=prometheus")
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    (tmp_path / RULES_FILE).write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    scenarios = sorted(SCENARIOS.glob("*.yaml"))
    for scenario in scenarios:
        shutil.copy(scenario, tmp_path / scenario.name)

    assert "SUCCESS" in _promtool(promtool, "check", "rules", RULES_FILE, cwd=tmp_path)
    _promtool(promtool, "test", "rules", *(s.name for s in scenarios), cwd=tmp_path)

    firing = {
        case["alertname"]
        for scenario in scenarios
        for test in yaml.safe_load(scenario.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert firing == set(_alerts(rule)), "every alert needs a scenario in which it fires"
    for name, alert in _alerts(rule).items():
        annotations = alert["annotations"]
        assert annotations["summary"] and annotations["description"], name
        assert annotations["runbook_url"].endswith(f"troubleshooting.md#{name.lower()}"), name


def test_every_runbook_anchor_is_a_heading_of_the_troubleshooting_guide(helm: str) -> None:
    guide = (ROOT / "docs" / "troubleshooting.md").read_text()
    for name in _alerts(_rule(helm)):
        assert f"\n### {name}\n" in guide, f"docs/troubleshooting.md has no runbook for {name}"


def test_thresholds_are_values(helm: str) -> None:
    alerts = _alerts(
        _rule(
            helm,
            "metrics.prometheusRule.stalledFor=2h",
            "metrics.prometheusRule.reconcileLatencySeconds=20",
            "metrics.prometheusRule.runbookUrl=https://runbooks.example/imageops",
        )
    )
    assert alerts["ImageOperatorObjectsStalled"]["for"] == "2h"
    assert "> 20" in alerts["ImageOperatorReconcileSlow"]["expr"]
    assert alerts["ImageOperatorDown"]["annotations"]["runbook_url"] == (
        "https://runbooks.example/imageops#imageoperatordown"
    )
