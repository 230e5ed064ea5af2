"""Decide the status of an `ImageProvider` from a cheap probe call.

A Ready provider does not leave Ready on one failed probe: a transient failure (the cloud
unreachable, throttled) is probed again `ProbeRetry.attempts` times, `ProbeRetry.delay` apart,
with the status left as it is; only when those fail too does it become `Ready=False`. A refusal
that will not pass by itself (credentials refused, an endpoint the operator does not talk to)
is reported at once. `status.endpointInfo` always describes the last probe that succeeded with
the current client: it goes as soon as a probe fails or no client can be built (after a
credential rotation, the old account's answer must not stay).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from image_operator.api.common import ANNOTATION_PAUSED
from image_operator.api.provider import ImageProviderSpec, ImageProviderStatus
from image_operator.providers.base import Provider
from image_operator.providers.errors import NotFound, ProviderError
from image_operator.reconcilers.fields import with_field_names
from image_operator.reconcilers.outcome import Event, Outcome, now_rfc3339
from image_operator.reconcilers.step import Step

AWAITING_KEYS = "WaitingForSecret"


@dataclass(frozen=True)
class _Probed:
    generation: int
    status: Mapping[str, Any]


@dataclass(frozen=True)
class ProbeRetry:
    """How a transient probe failure of a Ready provider is confirmed before it is reported."""

    attempts: int = 2
    delay: float = 5.0


def reconcile_provider(
    *,
    generation: int,
    status: Mapping[str, Any],
    provider: Provider | None,
    problem: str | None,
    retry_after: float,
    build_error: ProviderError | None = None,
    attempt: int = 0,
    retry: ProbeRetry = ProbeRetry(),
    paused: bool = False,
    spec: ImageProviderSpec | None = None,
    secret_missing: bool = False,
) -> Outcome:
    """Probe the provider and report `Ready`. `problem` explains why no client could be built
    and `build_error` is the provider error that said so, if one did. `attempt` counts the
    consecutive failed probes before this one; `retry_after` is when to probe again after a
    transient failure that has been reported. `spec` (the provider's, when it is valid) lets a
    failure's message name the fields it is about. `secret_missing`: `problem` is that the
    Secret the spec names does not exist, which is waited for (it may be applied after the
    provider), not a configuration error."""
    step = Step.start(_Probed(generation, status), ImageProviderStatus)
    before = step.condition("Ready")
    was_ready = step.status.phase == "Ready"
    current = step.status.observed_generation == generation
    if paused:
        # The rule of every kind: no cloud call, Ready kept, a changed spec not reported as
        # observed (kstatus reads InProgress until the pause is lifted and the change probed).
        message = f"{ANNOTATION_PAUSED} is true: no probe until it is removed"
        return step.outcome(
            phase="Paused",
            ready=step.kept_ready("paused before the first probe"),
            reconciling=(False, "Paused", message),
            applied=False,
        )
    if provider is None and build_error is None and secret_missing:
        message = f"{problem}; the provider is probed when it exists"
        step.status.endpoint_info = None
        if before is None or before.reason != AWAITING_KEYS:
            step.events.append(Event(AWAITING_KEYS, message))
        return step.waiting(AWAITING_KEYS, message, retry_after, phase="Pending")
    if provider is None and build_error is None:
        message = problem or "the provider client could not be built"
        step.status.last_probe_time = now_rfc3339()
        step.status.endpoint_info = None
        if step.status.phase != "Error" or before is None or before.message != message:
            step.events.append(Event("ConfigurationError", message, "Warning"))
        return step.outcome(
            phase="Error",
            ready=(False, "ConfigurationError", message),
            stalled=(True, "ConfigurationError", message),
        )
    try:
        info = _probe(provider, build_error)
    except ProviderError as exc:
        # A client that could not be built sent nothing: its error says why, not "probe".
        message = exc.message if exc is build_error else _probe_failed(exc, spec)
        if exc.retryable and was_ready and current and before and attempt < retry.attempts:
            # Not reported yet: one failed probe of a Ready provider is often a blip.
            step.events.append(
                Event(
                    "ProbeRetrying",
                    f"{message}; probing again in {retry.delay:g}s "
                    f"({attempt + 1} of {retry.attempts}) before reporting it",
                )
            )
            return step.outcome(
                phase="Ready",
                ready=(True, before.reason, before.message),
                requeue_after=retry.delay,
            )
        step.status.last_probe_time = now_rfc3339()
        step.status.endpoint_info = None
        # Once per change of reason: the first failure (no Ready condition yet; a new object's
        # status is not empty, the CRD defaults observedGeneration to -1), or a new reason.
        if was_ready or before is None or before.reason != exc.reason:
            step.events.append(Event(exc.reason, message, "Warning"))
        return step.outcome(
            phase="Error",
            ready=(False, exc.reason, message),
            reconciling=(exc.retryable, exc.reason, message),
            stalled=(not exc.retryable, exc.reason, message),
            requeue_after=retry_after if exc.retryable else None,
            retrying=exc.retryable,
        )
    step.status.last_probe_time = now_rfc3339()
    step.status.endpoint_info = info
    if not was_ready:
        step.events.append(Event("Ready", f"probe succeeded: {info}"))
    return step.outcome(phase="Ready", ready=(True, "ProbeSucceeded", info))


def _probe_failed(exc: ProviderError, spec: ImageProviderSpec | None) -> str:
    """The probe's failure, naming the spec fields it is about: those whose values the cloud
    quotes (`"cn-nowhere" is not a region ... (cn-nowhere is spec.region)`), and, for a probe
    that found nothing, the fields that make the address it asked (the probe reads what every
    account has, so a 404 means the address is wrong, e.g. an endpoint path `/../../admin`)."""
    message = with_field_names(f"probe failed: {exc.message}", spec)
    if isinstance(exc, NotFound) and spec is not None:
        named = [
            field
            for field, value in (("spec.endpoint", spec.endpoint), ("spec.project", spec.project))
            if value and field not in message
        ]
        if named:
            message += (
                f"; the probe asks for what every account has, so the address made from "
                f"{' and '.join(named)} is wrong: check {'them' if len(named) > 1 else 'it'}"
            )
    return message


def _probe(provider: Provider | None, build_error: ProviderError | None) -> str:
    if build_error is not None:
        raise build_error
    # The caller reports a missing client before probing: reaching here without one is our bug.
    assert provider is not None, "probe without a provider client"
    return provider.probe()
