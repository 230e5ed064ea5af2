"""kopf's diff base as a digest kept in the status: what kopf needs to tell a change from a no-op,
without a copy of the spec and without a write to the main object.

kopf decides between "changed" (run the update handler) and "nothing to do" by comparing the
object's essence (spec, labels, user annotations) with the essence it stored after the last
handling. Its stock storage keeps that essence verbatim in an annotation, so a spec near the
CRDs' documented maximum (a 256 KiB `cover`) makes the annotation exceed the API server's
262,144-byte limit: the patch is refused (422) on every attempt and the object never converges.
Our handlers never read kopf's `old`/`new`/`diff` (every reconcile is level-triggered from the
whole object), so a digest of the essence answers the only question asked of it: did anything
that matters change?

It lives in `status.kopf.diffbase`, beside kopf's progress (`status.kopf.progress`), because kopf
writes both in the same patch as the status a handler returns: in an annotation, each handling
that ends cost a second PATCH of the main object (issue 14: 8 API writes per Image to Ready).
Objects handled by an older operator keep their digest in the annotation; it is read when the
status has none and removed the first time a digest is stored in the status.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import cast

import kopf
from kopf._cogs.structs import bodies, dicts, patches

from image_operator.api.common import GROUP

# Status fields that ask for a reconcile when they change, although status changes are not
# changes to kopf: `drift` is written by a provider's resync when a Ready Image's cloud image
# changed behind the operator's back (handlers/drift.py), and the Image must be reconciled.
RECONCILE_ASKING_STATUS = ("drift",)

# Bumped when the digested content changes meaning, so a stored digest never matches by accident.
DIGEST_VERSION = "sha256-v1"

# Where the digest lives, and where kopf's progress lives (handlers/setup.py).
DIFFBASE_FIELD = "status.kopf.diffbase"
PROGRESS_FIELD = "status.kopf.progress"

# Where operators before issue 14 kept them: annotations on the main object.
LEGACY_DIFFBASE_PREFIX = f"kopf.{GROUP}"
LEGACY_DIFFBASE_KEY = "last-handled-configuration"
LEGACY_PROGRESS_PREFIX = f"progress.kopf.{GROUP}"


class DigestDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """Stores `<version>:<sha256 of the essence>` in `status.kopf.diffbase`; `fetch` and `build`
    answer `{"digest": ...}`.

    `progress` is the operator's progress storage: its records are dropped from the essence
    before it is digested (kopf drops them only after `build`, which is too late once the
    essence is a digest), and so are the annotations older operators kept theirs in. The
    annotation base class is kept for exactly that: reading and clearing the legacy annotation."""

    def __init__(self, *, progress: kopf.ProgressStorage) -> None:
        super().__init__(prefix=LEGACY_DIFFBASE_PREFIX, key=LEGACY_DIFFBASE_KEY)
        self._progress = progress
        self._field = dicts.parse_field(DIFFBASE_FIELD)

    def build(
        self,
        *,
        body: bodies.Body,
        extra_fields: Iterable[dicts.FieldSpec] | None = None,
    ) -> bodies.BodyEssence:
        essence = super().build(body=essence_source(body, extra_fields), extra_fields=extra_fields)
        if extra_fields:  # only they can bring status (and kopf's progress in it) into it
            essence = self._progress.clear(essence=essence)
        # What the legacy progress storage's `clear` does, in place: it starts with a deep copy
        # of an essence that is ours already (kopf's `build` made it), on every watch event.
        annotations = essence.get("metadata", {}).get("annotations", {})
        legacy = {key for key in annotations if key.startswith(f"{LEGACY_PROGRESS_PREFIX}/")}
        self.remove_annotations(essence, legacy)
        self.remove_empty_stanzas(essence)
        asks = {f: body.status[f] for f in RECONCILE_ASKING_STATUS if body.status.get(f)}
        if asks:  # a status field written to ask for a reconcile (see RECONCILE_ASKING_STATUS)
            essence = cast(bodies.BodyEssence, {**essence, "status": asks})
        return digest_essence(essence)

    def fetch(self, *, body: bodies.Body) -> bodies.BodyEssence | None:
        stored = dicts.resolve(body, self._field, None)
        if isinstance(stored, str) and stored:
            return cast(bodies.BodyEssence, {"digest": stored})
        return super().fetch(body=body)  # handled by an operator before the status storage

    def store(
        self,
        *,
        body: bodies.Body,
        patch: patches.Patch,
        essence: bodies.BodyEssence,
    ) -> None:
        dicts.ensure(patch, self._field, essence.get("digest"))
        annotations = body.metadata.annotations
        for key in self.make_keys(self.key, body=body):
            if key in annotations:  # once per object handled by an older operator
                patch.meta.annotations[key] = None


def essence_source(
    body: bodies.Body, extra_fields: Iterable[dicts.FieldSpec] | None
) -> bodies.Body:
    """What kopf's `build` reads of `body`, without what it discards: everything but `status`,
    and of `metadata` only the labels and annotations. kopf's `build` starts from a deep copy of
    the whole body, managedFields and status included, and threw most of it away (6 % of the
    operator's CPU at N=1,000, issue 14); handed this, it copies only what it keeps, and
    builds the same essence. With `extra_fields` (fields kopf restores from anywhere in the
    body) the whole body is handed over, as kopf would read it."""
    if extra_fields:
        return body
    source = {key: value for key, value in body.items() if key not in ("metadata", "status")}
    meta = body.get("metadata") or {}
    source["metadata"] = {key: meta[key] for key in ("labels", "annotations") if key in meta}
    return bodies.Body(cast(bodies.RawBody, source))


def digest_essence(essence: bodies.BodyEssence) -> bodies.BodyEssence:
    """The essence reduced to a fixed-size digest (keys sorted: equal essences, equal digests)."""
    canonical = json.dumps(essence, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return cast(bodies.BodyEssence, {"digest": f"{DIGEST_VERSION}:{digest}"})
