"""`imageops_objects` from the watch: every object of the five kinds counted once, under its
kind, namespace, provider and condition, moved when its status changes, dropped when it is gone.

The watch, not the reconcile outcomes, is the source: a resumed Image that is already settled
is never reconciled (handlers/image.py), an object waiting on its ImageProvider may not be
either, and only the watch sees the status that was really written and the final DELETED (after
the finalizer let go). kopf lists every object again when this replica becomes active, so the
counts are rebuilt from scratch after a stand-by (handlers/leadership.py clears them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from image_operator import metrics
from image_operator.api import ALL_KINDS
from image_operator.api.common import GROUP, VERSION
from image_operator.handlers.sharding import handles_providers
from image_operator.statusview.health import object_verdict

#: The imageprovider label of kinds whose spec names no ImageProvider (CommunityListing).
NO_PROVIDER = "none"


def labels(body: Mapping[str, Any]) -> metrics.ObjectLabels:
    """kind, namespace, provider, condition of one object: the condition is the state the
    status tree shows for it (statusview.health), so the panel and `image-operator status`
    agree."""
    meta = body.get("metadata") or {}
    kind = str(body.get("kind") or "")
    if kind == "ImageProvider":
        provider = str(meta.get("name") or "")
    else:
        provider = str(((body.get("spec") or {}).get("providerRef") or {}).get("name") or "")
    condition = object_verdict(dict(body)).health.name.lower()
    return (kind, str(meta.get("namespace") or ""), provider or NO_PROVIDER, condition)


def seen(event: Mapping[str, Any]) -> None:
    """One watch event (or one object of kopf's initial list: type None)."""
    body = event.get("object")
    if not isinstance(body, Mapping):
        return
    uid = str((body.get("metadata") or {}).get("uid") or "")
    if not uid:
        return
    if event.get("type") == "DELETED":
        metrics.OBJECT_STATES.observe(uid, None)
        metrics.set_in_flight(str(body.get("kind") or ""), uid, False)
    else:
        metrics.OBJECT_STATES.observe(uid, labels(body))


def _on_event(event: kopf.RawEvent, **_: Any) -> None:
    seen(event)


# Every shard watches the ImageProviders; shard 0 alone counts them (it alone handles them), so
# a sum over the shards counts each object once.
for _model in ALL_KINDS:
    _providers = _model.crd.plural == "imageproviders"
    kopf.on.event(
        GROUP, VERSION, _model.crd.plural, when=handles_providers if _providers else None
    )(_on_event)
