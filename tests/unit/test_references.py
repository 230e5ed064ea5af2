"""One rule for "is the referenced object Ready?", used by every kind that references another:
a Ready written for an older generation describes a spec that is not applied yet."""

from __future__ import annotations

from typing import Any

from image_operator.reconcilers.managed import reference


def body(generation: int, ready: str, observed: int | None) -> dict[str, Any]:
    condition: dict[str, Any] = {"type": "Ready", "status": ready, "message": "m"}
    if observed is not None:
        condition["observedGeneration"] = observed
    return {
        "metadata": {"generation": generation},
        "spec": {"providerRef": {"name": "p"}},
        "status": {"externalID": "img-1", "conditions": [condition]},
    }


def test_a_ready_of_the_current_generation_is_ready() -> None:
    ref = reference(body(3, "True", 3))
    assert (ref.found, ref.ready, ref.external_id, ref.provider_name) == (True, True, "img-1", "p")


def test_a_ready_left_from_an_older_generation_is_not_ready() -> None:
    assert reference(body(4, "True", 3)).ready is False


def test_not_ready_and_missing_objects() -> None:
    assert reference(body(1, "False", 1)).ready is False
    missing = reference(None)
    assert (missing.found, missing.ready) == (False, False)
