"""Normal events at a human pace, not one write per object in a burst (handlers/eventbudget.py):
the budget's arithmetic, and that the handlers drop (and count) only Normal events over it."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any, cast

import kopf
import pytest

from image_operator import metrics
from image_operator.handlers import status
from image_operator.handlers.eventbudget import EventBudget
from image_operator.reconcilers.outcome import Event, Outcome


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = _Clock()
    budget = EventBudget(per_second=2, burst=3, clock=clock)
    assert [budget.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token back at 2/s
    assert [budget.take(), budget.take()] == [True, False]
    clock.now += 60  # refilled to the burst, not beyond it
    assert [budget.take() for _ in range(4)] == [True, True, True, False]


def test_a_zero_budget_posts_nothing() -> None:
    clock = _Clock()
    budget = EventBudget(per_second=0, burst=0, clock=clock)
    clock.now += 3600
    assert not budget.take()


def _dropped(reason: str) -> float:
    value = metrics.EVENTS_DROPPED.labels("Image", reason)._value.get()
    return float(value)


def test_normal_events_over_the_budget_are_dropped_and_counted_warnings_never(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    posted: list[tuple[str, str]] = []
    monkeypatch.setattr(
        kopf, "event", lambda body, *, type, reason, message: posted.append((type, reason))
    )
    clock = _Clock()
    ctx = SimpleNamespace(events=EventBudget(0, 2, clock=clock))
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
    assert posted.count(("Normal", "Ready")) == 2  # the burst
    assert posted.count(("Warning", "Failed")) == 4  # every one
    assert _dropped("Ready") - ready == 2
    assert _dropped("Failed") == failed
