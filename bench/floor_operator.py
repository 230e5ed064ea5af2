"""The framework floor for bench/scale.py: a bare kopf operator on the same Image CRD that only
marks each new Image Ready, with no cloud, no provider and no events.

What it costs (API writes, CPU, memory, time to Ready) is what any kopf operator pays for an
object, so image-operator's figures are read against it, measured in the same run.

    kopf run --standalone --namespace NS bench/floor_operator.py
"""

from __future__ import annotations

import datetime
from typing import Any

import kopf


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # No Kubernetes events: the floor is the least a kopf operator must write.
    settings.posting.enabled = False


@kopf.on.create("imageops.io", "v1alpha1", "images")
def ready(patch: kopf.Patch, meta: kopf.Meta, **_: Any) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch.status["observedGeneration"] = meta.get("generation")
    patch.status["phase"] = "Ready"
    patch.status["conditions"] = [
        {"type": "Ready", "status": "True", "reason": "Floor", "lastTransitionTime": now}
    ]
