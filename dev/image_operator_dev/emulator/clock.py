"""Time sources for the emulator.

Lifecycles (pulling, deleting, …) are derived from stored wall-clock timestamps at read time,
so state survives a restart. Tests that need exact phases inject a `ManualClock` instead of
sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]
"""Returns the current time as seconds since the Unix epoch."""


def system_clock() -> float:
    return time.time()


class ManualClock:
    """A clock that only moves when told to; safe to advance from another thread."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by `seconds` and return the new time."""
        if seconds < 0:
            msg = "a clock cannot go backwards"
            raise ValueError(msg)
        with self._lock:
            self._now += seconds
            return self._now


def rfc3339(timestamp: float) -> str:
    """UTC RFC 3339 with milliseconds, e.g. 2020-12-21T08:02:13.250Z.

    The seed shows whole seconds; milliseconds make successive updates distinguishable and
    every RFC 3339 parser accepts them.
    """
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
