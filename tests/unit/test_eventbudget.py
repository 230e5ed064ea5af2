"""Normal events at a human pace, not one write per object in a burst (handlers/status.py, a
TokenBucket tried, never waited on): the budget's arithmetic, and that the handlers drop (and
count) only Normal events over it."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any, cast

import kopf
import pytest

from image_operator import metrics
from image_operator.handlers import status
from image_operator.handlers.context import event_budget
from image_operator.providers.ratelimit import TokenBucket
from image_operator.reconcilers.outcome import Event, Outcome
from image_operator.settings import Settings


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = _Clock()
    budget = TokenBucket(2, 3, clock=clock)
    assert [budget.try_acquire() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token back at 2/s
    assert [budget.try_acquire(), budget.try_acquire()] == [True, False]
    clock.now += 60  # refilled to the burst, not beyond it
    assert [budget.try_acquire() for _ in range(4)] == [True, True, True, False]


@pytest.mark.parametrize(("rate", "burst"), [(0, 0), (0, 100), (10, 0)])
def test_a_zero_rate_or_burst_posts_nothing(rate: float, burst: int) -> None:
    settings = Settings(normal_events_per_second=rate, normal_events_burst=burst)
    assert event_budget(settings) is None  # apply_outcome posts no Normal event then (below)


def test_the_settings_budget_is_a_burst_then_a_rate() -> None:
    budget = event_budget(Settings(normal_events_per_second=10, normal_events_burst=100))
    assert budget is not None and (budget.rate, budget.burst) == (10, 100)


def _dropped(reason: str) -> float:
    value = metrics.EVENTS_DROPPED.labels("Image", reason)._value.get()
    return float(value)


@pytest.mark.parametrize(("burst", "posted_normal"), [(2, 2), (None, 0)])
def test_normal_events_over_the_budget_are_dropped_and_counted_warnings_never(
    monkeypatch: pytest.MonkeyPatch, burst: int | None, posted_normal: int
) -> None:
    posted: list[tuple[str, str]] = []
    monkeypatch.setattr(
        kopf, "event", lambda body, *, type, reason, message: posted.append((type, reason))
    )
    clock = _Clock()  # stands still: the burst is all there is
    budget = TokenBucket(1, burst, clock=clock) if burst else None
    ctx = SimpleNamespace(events=budget)
    monkeypatch.setattr(status, "context", lambda: ctx)
    raw: dict[str, Any] = {"metadata": {"namespace": "ns", "name": "vm", "uid": "u-1"}}
    body = kopf.Body(cast(kopf.RawBody, raw))
    ready, failed = _dropped("Ready"), _dropped("Failed")
    outcome = Outcome(
        status={"phase": "Ready"},
        events=[Event("Ready", "image is available"), Event("Failed", "quota", type="Warning")],
    )
    for _ in range(4):
        status.apply_outcome(
            outcome,
            kind="Image",
            body=body,
            old_status={},
            patch=kopf.Patch(),
            logger=logging.getLogger("test"),
        )
    assert posted.count(("Normal", "Ready")) == posted_normal  # the burst, or none
    assert posted.count(("Warning", "Failed")) == 4  # every one
    assert _dropped("Ready") - ready == 4 - posted_normal
    assert _dropped("Failed") == failed
