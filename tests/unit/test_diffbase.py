"""kopf's diff base as a digest in the status (handlers/diffbase.py): changes are still told from
no-ops, and nothing of kopf's is written to the main object."""

from __future__ import annotations

import json
from typing import Any, cast

import kopf
from kopf._cogs.structs import bodies, patches

from image_operator.handlers.diffbase import (
    LEGACY_DIFFBASE_KEY,
    LEGACY_DIFFBASE_PREFIX,
    LEGACY_PROGRESS_PREFIX,
    PROGRESS_FIELD,
    DigestDiffBaseStorage,
    digest_essence,
)

PROGRESS = kopf.StatusProgressStorage(field=PROGRESS_FIELD)
STORAGE = DigestDiffBaseStorage(progress=PROGRESS)
LEGACY_ANNOTATION = f"{LEGACY_DIFFBASE_PREFIX}/{LEGACY_DIFFBASE_KEY}"


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


def _merged(body: bodies.Body, patch: patches.Patch) -> bodies.Body:
    """`body` with a merge patch applied (None removes), as the API server would leave it."""

    def merge(into: dict[str, Any], change: dict[str, Any]) -> None:
        for key, value in change.items():
            if value is None:
                into.pop(key, None)
            elif isinstance(value, dict):
                merge(into.setdefault(key, {}), value)
            else:
                into[key] = value

    raw = json.loads(json.dumps(dict(body)))
    merge(raw, json.loads(json.dumps(dict(patch))))
    return bodies.Body(raw)


def _stored(body: bodies.Body) -> tuple[bodies.Body, patches.Patch]:
    """`body` as kopf leaves it after handling, and the patch that stored the essence."""
    patch = patches.Patch()
    STORAGE.store(body=body, patch=patch, essence=STORAGE.build(body=body))
    return _merged(body, patch), patch


def test_the_digest_is_written_to_the_status_and_nothing_to_the_main_object() -> None:
    body, patch = _stored(_body({"cover": "A" * 262144}))

    assert set(patch) == {"status"}  # one PATCH of the status subresource, none of the object
    stored = body.status["kopf"]["diffbase"]
    assert stored.startswith("sha256-v1:") and len(stored) < 128
    assert STORAGE.fetch(body=body) == STORAGE.build(body=body)  # no change seen


def test_a_spec_change_or_a_user_annotation_change_is_a_change() -> None:
    body, _ = _stored(_body({"displayName": "a"}, **{"imageops.io/paused": "true"}))
    old = STORAGE.fetch(body=body)

    respec = _body({"displayName": "b"}, **dict(body.metadata.annotations))
    unpaused = dict(body.metadata.annotations)
    unpaused.pop("imageops.io/paused")
    reannotated = _body({"displayName": "a"}, **unpaused)

    assert old is not None
    assert STORAGE.build(body=respec) != old
    assert STORAGE.build(body=reannotated) != old


def test_kopf_bookkeeping_and_status_are_not_changes() -> None:
    body, _ = _stored(_body({"displayName": "a"}))
    old = STORAGE.fetch(body=body)
    raw = json.loads(json.dumps(dict(body)))
    raw["status"] = {"phase": "Creating", "kopf": {"progress": {"reconcile": {"retries": 3}}}}
    # What operators before the status storage left behind.
    raw["metadata"]["annotations"]["progress.kopf.imageops.io/reconcile"] = '{"retries": 3}'
    raw["metadata"]["annotations"][LEGACY_ANNOTATION] = '{"digest": "sha256-v1:0"}'
    raw["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}"

    assert STORAGE.build(body=bodies.Body(cast(bodies.RawBody, raw))) == old


def test_an_object_handled_by_an_older_operator_is_read_from_its_annotation_then_moved() -> None:
    plain = _body({"displayName": "a"})
    digest = STORAGE.build(body=plain)["digest"]  # type: ignore[typeddict-item]
    legacy = _body({"displayName": "a"}, **{LEGACY_ANNOTATION: json.dumps({"digest": digest})})

    assert STORAGE.fetch(body=legacy) == STORAGE.build(body=legacy)  # not a change: no reconcile

    moved, patch = _stored(legacy)
    assert LEGACY_ANNOTATION not in moved.metadata.annotations
    assert patch["metadata"]["annotations"] == {LEGACY_ANNOTATION: None}
    assert STORAGE.fetch(body=moved) == STORAGE.build(body=moved)


class _NotCopyable(dict[str, Any]):
    """A mapping that fails the test if anything deep-copies it."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        raise AssertionError("deep-copied a part of the body the essence does not keep")


def _full_body() -> dict[str, Any]:
    return {
        "apiVersion": "imageops.io/v1alpha1",
        "kind": "Image",
        "metadata": {
            "name": "x",
            "namespace": "ns",
            "uid": "u-1",
            "generation": 3,
            "labels": {"team": "ml"},
            "annotations": {
                "note": "kept",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                f"{LEGACY_DIFFBASE_PREFIX}/{LEGACY_DIFFBASE_KEY}": "{}",
                f"{LEGACY_PROGRESS_PREFIX}/create": "{}",
            },
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            "finalizers": ["imageops.io/finalizer"],
        },
        "spec": {"displayName": "x", "inputs": [{"name": "a", "type": "string"}]},
        "status": {"phase": "Ready", "kopf": {"progress": {"h": {"success": True}}}},
    }


def test_the_essence_is_built_without_copying_status_or_managed_fields() -> None:
    raw = _full_body()
    raw["status"] = _NotCopyable(raw["status"])
    raw["metadata"]["managedFields"] = [_NotCopyable(raw["metadata"]["managedFields"][0])]
    # Raises if kopf's deep copy of the whole body is reached.
    STORAGE.build(body=bodies.Body(cast(bodies.RawBody, raw)))


def test_the_essence_is_the_one_kopf_builds_from_the_whole_body() -> None:
    # The digests stored by earlier releases must keep matching: an unchanged object is not
    # handled again after an upgrade. kopf's own build over the whole body is the reference.
    only_progress = {f"{LEGACY_PROGRESS_PREFIX}/create": "{}"}
    for labels, user_annotations in (({"team": "ml"}, None), ({}, None), ({}, only_progress)):
        raw = _full_body()
        raw["metadata"]["labels"] = labels
        if user_annotations is not None:
            raw["metadata"]["annotations"] = user_annotations
        body = bodies.Body(cast(bodies.RawBody, raw))
        reference = kopf.AnnotationsDiffBaseStorage(
            prefix=LEGACY_DIFFBASE_PREFIX, key=LEGACY_DIFFBASE_KEY
        ).build(body=body)
        reference = PROGRESS.clear(essence=reference)
        reference = kopf.AnnotationsProgressStorage(prefix=LEGACY_PROGRESS_PREFIX).clear(
            essence=reference
        )
        assert STORAGE.build(body=body) == digest_essence(reference)
