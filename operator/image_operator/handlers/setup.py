"""Operator-wide kopf configuration, applied at startup."""

from __future__ import annotations

import logging
import socket
from typing import Any

import kopf

from image_operator.api.common import FINALIZER
from image_operator.handlers.context import context
from image_operator.handlers.diffbase import PROGRESS_FIELD, DigestDiffBaseStorage
from image_operator.handlers.sharding import selectors
from image_operator.handlers.status import QuietRoutine
from image_operator.memory import Trimmer, start_trimmer

_trimmer: list[Trimmer] = []  # the running one, stopped at cleanup


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    # kopf's bookkeeping (handler progress, the diff base) in the status, under `status.kopf`
    # (preserved by every CRD): kopf writes it in the same PATCH as the status a handler
    # returns, where annotations cost a second PATCH of the main object per handling.
    progress = kopf.StatusProgressStorage(field=PROGRESS_FIELD)
    settings.persistence.progress_storage = progress
    # A digest, not a copy of the spec: a spec at the CRDs' maximum sizes still fits.
    settings.persistence.diffbase_storage = DigestDiffBaseStorage(progress=progress)
    settings.posting.level = logging.INFO
    # Events read "From image-operator" in `kubectl describe`, not "kopf".
    settings.posting.reporting_component = "image-operator"
    settings.posting.reporting_instance = socket.gethostname()
    settings.posting.event_name_prefix = "image-operator-"
    settings.watching.server_timeout = 300
    ours = context().settings
    for resource, selector in selectors(ours.shard_index, ours.shards).items():
        settings.watching.shard_selectors[resource] = selector
    # A dead active replica's peering record blocks the standby until it expires (kopf renews a
    # live one every 1 to 5 s at this lifetime).
    settings.peering.lifetime = context().settings.peering_lifetime_seconds
    logging.getLogger("kopf.objects").addFilter(QuietRoutine())
    trimmer = start_trimmer(ours.memory_trim_seconds)
    if trimmer is not None:
        _trimmer.append(trimmer)


@kopf.on.cleanup()
def stop_trimming(**_: Any) -> None:
    while _trimmer:
        _trimmer.pop().stop()
