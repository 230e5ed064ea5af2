"""kopf's diff base as a digest: what kopf needs to tell a change from a no-op, without a copy of
the spec.

kopf decides between "changed" (run the update handler) and "nothing to do" by comparing the
object's essence (spec, labels, user annotations) with the essence it stored after the last
handling. Its stock storage keeps that essence verbatim in an annotation, so a spec near the
CRDs' documented maximum (a 256 KiB `cover`) makes the annotation exceed the API server's
262,144-byte limit: the patch is refused (422) on every attempt and the object never converges.
Our handlers never read kopf's `old`/`new`/`diff` (every reconcile is level-triggered from the
whole object), so a digest of the essence answers the only question asked of it: did anything
that matters change?
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import cast

import kopf
from kopf._cogs.structs import bodies, dicts

# Status fields that ask for a reconcile when they change, although status changes are not
# changes to kopf: `drift` is written by a provider's resync when a Ready Image's cloud image
# changed behind the operator's back (handlers/drift.py), and the Image must be reconciled.
RECONCILE_ASKING_STATUS = ("drift",)

# Bumped when the digested content changes meaning, so a stored digest never matches by accident.
DIGEST_VERSION = "sha256-v1"


class DigestDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """Stores `{"digest": "<version>:<sha256 of the essence>"}` in the diff-base annotation.

    `progress` is the operator's progress storage: its own annotations are dropped from the
    essence before it is digested (kopf drops them only after `build`, which is too late once
    the essence is a digest)."""

    def __init__(self, *, prefix: str, key: str, progress: kopf.ProgressStorage) -> None:
        super().__init__(prefix=prefix, key=key)
        self._progress = progress

    def build(
        self,
        *,
        body: bodies.Body,
        extra_fields: Iterable[dicts.FieldSpec] | None = None,
    ) -> bodies.BodyEssence:
        essence = super().build(body=body, extra_fields=extra_fields)
        essence = self._progress.clear(essence=essence)
        asks = {f: body.status[f] for f in RECONCILE_ASKING_STATUS if body.status.get(f)}
        if asks:  # a status field written to ask for a reconcile (see RECONCILE_ASKING_STATUS)
            essence = cast(bodies.BodyEssence, {**essence, "status": asks})
        return digest_essence(essence)


def digest_essence(essence: bodies.BodyEssence) -> bodies.BodyEssence:
    """The essence reduced to a fixed-size digest (keys sorted: equal essences, equal digests)."""
    canonical = json.dumps(essence, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return cast(bodies.BodyEssence, {"digest": f"{DIGEST_VERSION}:{digest}"})
