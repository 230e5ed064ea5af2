"""A thread-safe token bucket: the client-side rate limit of every ImageProvider, and the
operator's budget of Normal events (handlers/context.py).

`spec.rateLimit` sets a provider's; without one the schema's defaults apply
(`DEFAULT_RATE_LIMIT`), so no provider talks to its cloud unlimited.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from image_operator.api.provider import RateLimit

#: The limit of an ImageProvider without `spec.rateLimit` (docs/providers/README.md).
DEFAULT_RATE_LIMIT = RateLimit()


@dataclass(frozen=True)
class Clock:
    """Where a limiter reads the time and waits (a seam: tests pass a fake one)."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


SYSTEM_CLOCK = Clock()


class TokenBucket:
    """Allows `rate` calls per second on average and bursts of up to `burst` calls: `acquire`
    waits for its turn, `try_acquire` answers at once."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def _reserve(self) -> float:
        """Take a token (possibly going into debt); return how long the caller must wait."""
        with self._lock:
            self._refill()
            self._tokens -= 1
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def try_acquire(self) -> bool:
        """Take a token if there is one now, without waiting and without going into debt."""
        with self._lock:
            self._refill()
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False

    def acquire(self) -> float:
        """Block until a call is allowed; returns the seconds waited."""
        wait = self._reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    @classmethod
    def for_limit(cls, limit: RateLimit | None, clock: Clock = SYSTEM_CLOCK) -> TokenBucket:
        """The bucket for an ImageProvider's `spec.rateLimit` (the defaults when it has none)."""
        limit = limit or DEFAULT_RATE_LIMIT
        return cls(limit.requests_per_second, limit.burst, clock=clock.now, sleep=clock.sleep)
