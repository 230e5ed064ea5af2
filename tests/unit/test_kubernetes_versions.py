"""The Kubernetes versions we say we support are the ones `make test` runs.

The newest is hack/build-control-plane.sh's default (the whole integration tier runs on it), the
oldest is the Makefile's KUBERNETES_OLDEST (`make integration-oldest`); the chart's kubeVersion
and README's table must name the same two.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _found(pattern: str, path: str) -> str:
    match = re.search(pattern, (ROOT / path).read_text(), re.MULTILINE)
    assert match, f"{path} has no {pattern!r}"
    return match.group(1)


NEWEST = _found(
    r'^K8S_VERSION="\$\{1:-\$\{K8S_VERSION:-([0-9.]+)\}\}"$', "hack/build-control-plane.sh"
)
OLDEST = _found(r"^KUBERNETES_OLDEST \?= ([0-9.]+)$", "Makefile")


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def test_the_chart_refuses_what_is_older_than_the_oldest_we_test() -> None:
    chart = yaml.safe_load((ROOT / "charts" / "image-operator" / "Chart.yaml").read_text())

    assert chart["kubeVersion"] == f">={_minor(OLDEST)}.0-0"


def test_the_readme_table_names_the_versions_make_test_runs() -> None:
    readme = (ROOT / "README.md").read_text()

    assert f"| newest | {_minor(NEWEST)} | {NEWEST} |" in readme
    assert f"| oldest | {_minor(OLDEST)} | {OLDEST} |" in readme
