"""Operator-wide kopf configuration, applied at startup."""

from __future__ import annotations

import logging
import socket
from typing import Any

import kopf

from image_operator.api.common import FINALIZER, GROUP
from image_operator.handlers.context import context
from image_operator.handlers.diffbase import DigestDiffBaseStorage
from image_operator.handlers.status import QuietRequeues


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    # Keep kopf's bookkeeping in annotations, out of the status we publish, under prefixes of
    # its own: kopf drops every annotation under its storage prefixes from the diff it reacts
    # to, so sharing `imageops.io/` would hide user changes to imageops.io/paused and
    # imageops.io/external-id.
    progress = kopf.AnnotationsProgressStorage(prefix=f"progress.kopf.{GROUP}")
    settings.persistence.progress_storage = progress
    # A digest, not a copy of the spec: a spec at the CRDs' maximum sizes still fits.
    settings.persistence.diffbase_storage = DigestDiffBaseStorage(
        prefix=f"kopf.{GROUP}", key="last-handled-configuration", progress=progress
    )
    settings.posting.level = logging.INFO
    # Events read "From image-operator" in `kubectl describe`, not "kopf".
    settings.posting.reporting_component = "image-operator"
    settings.posting.reporting_instance = socket.gethostname()
    settings.posting.event_name_prefix = "image-operator-"
    settings.watching.server_timeout = 300
    # A dead active replica's peering record blocks the standby until it expires (kopf renews a
    # live one every 1 to 5 s at this lifetime).
    settings.peering.lifetime = context().settings.peering_lifetime_seconds
    logging.getLogger("kopf.objects").addFilter(QuietRequeues())
