"""Decide the status of an `ImageProvider` from a cheap probe call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from image_operator.api.provider import ImageProviderStatus
from image_operator.providers.base import Provider
from image_operator.providers.errors import ProviderError
from image_operator.reconcilers.outcome import Event, Outcome, now_rfc3339
from image_operator.reconcilers.step import Step


@dataclass(frozen=True)
class _Probed:
    generation: int
    status: Mapping[str, Any]


def reconcile_provider(
    *,
    generation: int,
    status: Mapping[str, Any],
    provider: Provider | None,
    problem: str | None,
    retry_after: float,
) -> Outcome:
    """Probe the provider and report `Ready`. `problem` explains why no client could be built."""
    step = Step.start(_Probed(generation, status), ImageProviderStatus)
    before = step.condition("Ready")
    was_ready = step.status.phase == "Ready"
    step.status.last_probe_time = now_rfc3339()
    if provider is None:
        message = problem or "the provider client could not be built"
        if step.status.phase != "Error" or before is None or before.message != message:
            step.events.append(Event("ConfigurationError", message, "Warning"))
        return step.outcome(
            phase="Error",
            ready=(False, "ConfigurationError", message),
            stalled=(True, "ConfigurationError", message),
            requeue_after=retry_after,
        )
    try:
        info = provider.probe()
    except ProviderError as exc:
        message = f"probe failed: {exc.message}"
        if was_ready or not status:
            step.events.append(Event(exc.reason, message, "Warning"))
        return step.outcome(
            phase="Error",
            ready=(False, exc.reason, message),
            reconciling=(exc.retryable, exc.reason, message),
            stalled=(not exc.retryable, exc.reason, message),
            requeue_after=retry_after,
        )
    step.status.endpoint_info = info
    if not was_ready:
        step.events.append(Event("Ready", f"probe succeeded: {info}"))
    return step.outcome(phase="Ready", ready=(True, "ProbeSucceeded", info))
