"""Every manifest in examples/ is accepted by the real API server with the generated CRDs."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# gitops/ holds Argo CD and Flux objects, for clusters that run those (their CRDs are not here).
FILES = sorted(
    p
    for p in EXAMPLES.rglob("*.yaml")
    if p.name != "00-namespace.yaml" and "gitops" not in p.relative_to(EXAMPLES).parts
)


def _kubectl(control_plane: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(control_plane.kubectl), *args],
        check=False,
        capture_output=True,
        text=True,
        env=control_plane.env(),
        timeout=60,
    )


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example_is_accepted_by_the_api_server(control_plane: Any, path: Path) -> None:
    namespace = _kubectl(control_plane, "apply", "-f", str(EXAMPLES / "demo" / "00-namespace.yaml"))
    assert namespace.returncode == 0, namespace.stderr

    result = _kubectl(control_plane, "apply", "--dry-run=server", "-f", str(path))

    assert result.returncode == 0, result.stderr
    assert "(server dry run)" in result.stdout
