"""Decide the status of an `ImageProvider` from a cheap probe call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from image_operator.providers.base import Provider
from image_operator.providers.errors import ProviderError
from image_operator.reconcilers.outcome import Event, Outcome, now_rfc3339, set_conditions


def reconcile_provider(
    *,
    generation: int,
    status: Mapping[str, Any],
    provider: Provider | None,
    problem: str | None,
    retry_after: float,
) -> Outcome:
    """Probe the provider and report `Ready`. `problem` explains why no client could be built."""
    new = dict(status)
    new["observedGeneration"] = generation
    new["lastProbeTime"] = now_rfc3339()
    was_ready = new.get("phase") == "Ready"
    events: list[Event] = []
    if provider is None:
        message = problem or "the provider client could not be built"
        new["phase"] = "Error"
        new["conditions"] = set_conditions(
            new.get("conditions"),
            generation,
            ready=(False, "ConfigurationError", message),
            stalled=(True, "ConfigurationError", message),
        )
        if status.get("phase") != "Error" or _ready_message(status) != message:
            events.append(Event("ConfigurationError", message, "Warning"))
        return Outcome(status=new, events=events, requeue_after=retry_after)
    try:
        info = provider.probe()
    except ProviderError as exc:
        message = f"probe failed: {exc.message}"
        new["phase"] = "Error"
        new["conditions"] = set_conditions(
            new.get("conditions"),
            generation,
            ready=(False, exc.reason, message),
            reconciling=(exc.retryable, exc.reason, message),
            stalled=(not exc.retryable, exc.reason, message),
        )
        if was_ready or not status:
            events.append(Event(exc.reason, message, "Warning"))
        return Outcome(status=new, events=events, requeue_after=retry_after)
    new["phase"] = "Ready"
    new["endpointInfo"] = info
    new["conditions"] = set_conditions(
        new.get("conditions"), generation, ready=(True, "ProbeSucceeded", info)
    )
    if not was_ready:
        events.append(Event("Ready", f"probe succeeded: {info}"))
    return Outcome(status=new, events=events)


def _ready_message(status: Mapping[str, Any]) -> str | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("message"))
    return None
