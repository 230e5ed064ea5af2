"""The Image handler's decode asks the API server for the namespace's Images (the one-owner
rule) only when an answer can change what happens: before adopting, and before the delete is
sent; not on every pass that waits for the cloud to finish deleting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import kopf
import pytest

from image_operator.handlers import image as image_handlers


@dataclass
class _Kube:
    listed: list[tuple[str, str]] = field(default_factory=list)

    def list_objects(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        self.listed.append((plural, namespace))
        return []


@dataclass
class _Context:
    kube: _Kube = field(default_factory=_Kube)


def _body(reconciling_reason: str | None) -> kopf.Body:
    conditions = []
    if reconciling_reason:
        conditions.append(
            {
                "type": "Reconciling",
                "status": "True",
                "reason": reconciling_reason,
                "message": "waiting",
                "lastTransitionTime": "2026-12-01T00:00:00Z",
                "observedGeneration": 1,
            }
        )
    raw: dict[str, Any] = {
        "metadata": {
            "name": "img",
            "namespace": "ns",
            "uid": "u-1",
            "generation": 1,
            "deletionTimestamp": "2026-12-01T00:00:00Z",
        },
        "spec": {"providerRef": {"name": "argon"}},
        "status": {"externalID": "img-u1", "conditions": conditions},
    }
    return kopf.Body(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reason", "lists"), [(None, 1), ("WaitingForProvider", 1), ("Deleting", 0)]
)
def test_the_owner_lookup_runs_only_until_the_delete_was_sent(
    monkeypatch: pytest.MonkeyPatch, reason: str | None, lists: int
) -> None:
    fake = _Context()
    monkeypatch.setattr(image_handlers, "context", lambda: fake)

    image_handlers.decode(_body(reason))

    assert fake.kube.listed == [("images", "ns")] * lists
