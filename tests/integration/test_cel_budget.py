"""The Image CRD's CEL rules within the API server's cost budget, at the schema's maxima.

The placeholder rules of `spec.command` are the costliest of our CRDs: the API server estimates
their worst case when the CRD is applied (Kubernetes 1.29 refuses it: "estimated rule cost exceeds
budget by factor of more than 100x"; README, "Kubernetes versions") and measures their real cost
on every write. This writes the worst case the schema admits — every line of `command` at its
longest and full of placeholders, every parameter list at its longest — as a server-side dry run:
it must be admitted, on every Kubernetes release we support (`make integration-oldest` runs it on
the oldest).
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from image_operator.api.image import MAX_COMMAND_LINE_LENGTH, MAX_COMMAND_LINES, MAX_PARAMETERS
from tests.integration.conftest import GROUP, VERSION, image_manifest

pytestmark = pytest.mark.integration

KINDS = ("inputs", "configs", "outputs")


def _parameters(kind: str) -> list[dict[str, Any]]:
    return [{"name": f"{kind[0]}{i:02d}", "index": i} for i in range(MAX_PARAMETERS)]


def _longest_line() -> str:
    """A line of exactly the maximum length, each declared parameter named in turn."""
    names = [f"{{{{{kind}.{kind[0]}{i:02d}}}}}" for i in range(MAX_PARAMETERS) for kind in KINDS]
    line, turn = "", 0
    while len(line) + len(names[turn % len(names)]) + 1 <= MAX_COMMAND_LINE_LENGTH:
        line += names[turn % len(names)] + " "
        turn += 1
    return line.ljust(MAX_COMMAND_LINE_LENGTH, "x")


def test_a_command_and_parameters_at_their_maxima_are_admitted(control_plane: Any) -> None:
    body = image_manifest(
        "at-the-maxima",
        command=[_longest_line()] * MAX_COMMAND_LINES,
        **{kind: _parameters(kind) for kind in KINDS},
    )
    body["apiVersion"] = f"{GROUP}/{VERSION}"
    assert all(len(line) == MAX_COMMAND_LINE_LENGTH for line in body["spec"]["command"])

    admitted = client.CustomObjectsApi(control_plane.api_client()).create_namespaced_custom_object(
        GROUP, VERSION, "default", "images", body, dry_run="All"
    )

    assert isinstance(admitted, dict)
    assert admitted["spec"]["command"] == body["spec"]["command"]
