"""kopf's diff base as a digest (handlers/diffbase.py): changes are still told from no-ops."""

from __future__ import annotations

import json
from typing import Any

import kopf
from kopf._cogs.structs import bodies, patches

from image_operator.handlers.diffbase import DigestDiffBaseStorage

PROGRESS = kopf.AnnotationsProgressStorage(prefix="progress.kopf.imageops.io")
STORAGE = DigestDiffBaseStorage(
    prefix="kopf.imageops.io", key="last-handled-configuration", progress=PROGRESS
)


def _body(spec: dict[str, Any], **annotations: str) -> bodies.Body:
    return bodies.Body(
        {
            "apiVersion": "imageops.io/v1alpha1",
            "kind": "Image",
            "metadata": {"name": "x", "namespace": "ns", "annotations": annotations},
            "spec": spec,
            "status": {"phase": "Ready"},
        }
    )


def _stored(body: bodies.Body) -> bodies.Body:
    """`body` as kopf leaves it after handling: the essence stored in its annotations."""
    patch = patches.Patch()
    STORAGE.store(body=body, patch=patch, essence=STORAGE.build(body=body))
    raw = json.loads(json.dumps(dict(body)))
    raw["metadata"]["annotations"].update(patch["metadata"]["annotations"])
    return bodies.Body(raw)


def test_a_huge_spec_is_stored_as_a_small_digest() -> None:
    body = _stored(_body({"cover": "A" * 262144}))

    annotations = body.metadata.annotations
    assert max(len(v) for v in annotations.values()) < 128
    assert STORAGE.fetch(body=body) == STORAGE.build(body=body)  # no change seen


def test_a_spec_change_or_a_user_annotation_change_is_a_change() -> None:
    body = _stored(_body({"displayName": "a"}, **{"imageops.io/paused": "true"}))
    old = STORAGE.fetch(body=body)

    respec = _body({"displayName": "b"}, **dict(body.metadata.annotations))
    unpaused = dict(body.metadata.annotations)
    unpaused.pop("imageops.io/paused")
    reannotated = _body({"displayName": "a"}, **unpaused)

    assert old is not None
    assert STORAGE.build(body=respec) != old
    assert STORAGE.build(body=reannotated) != old


def test_kopf_bookkeeping_and_status_are_not_changes() -> None:
    body = _stored(_body({"displayName": "a"}))
    old = STORAGE.fetch(body=body)
    raw = json.loads(json.dumps(dict(body)))
    raw["status"] = {"phase": "Creating"}
    raw["metadata"]["annotations"]["progress.kopf.imageops.io/reconcile"] = '{"retries": 3}'
    raw["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}"

    assert STORAGE.build(body=bodies.Body(raw)) == old
