"""Operator-wide kopf configuration, applied at startup."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from image_operator.api.common import FINALIZER, GROUP
from image_operator.handlers.status import QuietRequeues


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    # Keep kopf's bookkeeping in our own annotation namespace, out of the status we publish.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=f"progress.{GROUP}"
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    logging.getLogger("kopf.objects").addFilter(QuietRequeues())
