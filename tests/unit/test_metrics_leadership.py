"""`imageops_leader` follows kopf's own peering decisions: kopf's peering code is run here on
peering objects, so a kopf release that words its pause differently fails this test."""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Iterator
from typing import Any

import kopf
import pytest
from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.structs import references
from kopf._core.engines import peering
from prometheus_client import REGISTRY

from image_operator import metrics
from image_operator.handlers import leadership

PEERING = references.Resource("kopf.dev", "v1", "clusterkopfpeerings", namespaced=False)


def _leader() -> float | None:
    return REGISTRY.get_sample_value("imageops_leader", {"shard": "0"})


@pytest.fixture
def kopf_settings() -> Iterator[kopf.OperatorSettings]:
    settings = kopf.OperatorSettings()
    settings.peering.name = "image-operator"
    settings.peering.priority = 100
    settings.peering.mandatory = True
    logger = logging.getLogger(leadership.PEERING_LOGGER)
    level = logger.level
    yield settings
    logger.handlers = [h for h in logger.handlers if not isinstance(h, leadership.PeeringWatch)]
    logger.setLevel(level)


def _peers(**priorities: int) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.UTC).isoformat()
    status = {
        peer: {"priority": p, "lifetime": 60, "lastseen": now} for peer, p in priorities.items()
    }
    return {"object": {"metadata": {"name": "image-operator"}, "status": status}}


async def _process(settings: kopf.OperatorSettings, event: dict[str, Any], paused: bool) -> bool:
    """kopf's peering step on one event, with the pause toggle it would hand it; the new pause."""
    toggle = aiotoggles.Toggle(paused)
    woken = asyncio.Event()
    woken.set()  # its wait for the other peers' expiry returns at once
    await peering.process_peering_event(
        raw_event=event,  # type: ignore[arg-type]
        namespace=None,
        resource=PEERING,
        identity=peering.Identity("me"),
        settings=settings,
        autoclean=False,
        stream_pressure=woken,
        conflicts_found=toggle,
    )
    return toggle.is_on()


def test_mandatory_peering_starts_standing_by_then_leads_when_alone(
    kopf_settings: kopf.OperatorSettings,
) -> None:
    leadership.follow(kopf_settings)
    assert _leader() == 0
    paused = asyncio.run(_process(kopf_settings, _peers(me=100), paused=True))
    assert not paused
    assert _leader() == 1


def test_a_higher_priority_peer_makes_it_stand_by_and_empties_the_object_gauges(
    kopf_settings: kopf.OperatorSettings,
) -> None:
    leadership.follow(kopf_settings)
    asyncio.run(_process(kopf_settings, _peers(me=100), paused=True))
    metrics.OBJECT_STATES.observe("uid-a", ("Image", "ns", "argon", "ready"))
    metrics.set_in_flight("Image", "uid-a", True)

    paused = asyncio.run(_process(kopf_settings, _peers(me=100, other=200), paused=False))
    assert paused
    assert _leader() == 0
    assert metrics.OBJECT_STATES.counts() == {}
    labels = {"kind": "Image", "namespace": "ns", "imageprovider": "argon", "condition": "ready"}
    assert REGISTRY.get_sample_value("imageops_objects", labels) is None
    assert REGISTRY.get_sample_value("imageops_operations_in_flight", {"kind": "Image"}) == 0


def test_standalone_leads_from_the_start(kopf_settings: kopf.OperatorSettings) -> None:
    kopf_settings.peering.standalone = True
    kopf_settings.peering.mandatory = False
    leadership.follow(kopf_settings)
    assert _leader() == 1


def test_a_quiet_log_level_still_lets_the_pause_lines_through(
    kopf_settings: kopf.OperatorSettings,
) -> None:
    logger = logging.getLogger(leadership.PEERING_LOGGER)
    logger.setLevel(logging.WARNING)
    leadership.follow(kopf_settings)
    asyncio.run(_process(kopf_settings, _peers(me=100), paused=True))
    assert _leader() == 1
