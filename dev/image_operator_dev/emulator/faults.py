"""Fault injection and request statistics, per vendor.

Both live outside the vendor modules so that every vendor gets the same faults and the same
counters; the vendor only decides how an injected error looks on its wire (`VendorService`).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from image_operator_dev.emulator.config import FaultSettings


class FaultKind(StrEnum):
    ERROR = "error"
    THROTTLE = "throttle"
    LATENCY = "latency"
    LATENCY_AFTER_COMMIT = "latency_after_commit"


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do to one request, decided before it is handled."""

    throttle: bool
    error: bool


class FaultInjector:
    """Decides, per request, whether to throttle or fail it, from the vendor's settings."""

    def __init__(self, settings: FaultSettings) -> None:
        self._settings = settings
        # Not for security: a seedable generator so a test can replay the same faults.
        self._rng = random.Random(settings.seed)  # noqa: S311

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def replace(self, settings: FaultSettings) -> None:
        """Swap the settings at runtime; a new seed restarts the random sequence."""
        self._settings = settings
        self._rng = random.Random(settings.seed)  # noqa: S311

    def decide(self) -> FaultDecision:
        # Always draw both numbers so that, for a given seed, the n-th request gets the same
        # fate whatever the rates are.
        throttle_draw = self._rng.random()
        error_draw = self._rng.random()
        return FaultDecision(
            throttle=throttle_draw < self._settings.throttle_rate,
            error=error_draw < self._settings.error_rate,
        )


@dataclass
class RequestStats:
    """Counts of vendor requests by route template and status, and of injected faults."""

    routes: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    faults: Counter[FaultKind] = field(default_factory=Counter)

    def record(self, method: str, route: str, status: int) -> None:
        key = f"{method} {route}"
        self.routes[key] += 1
        self.statuses.setdefault(key, Counter())[status] += 1

    def record_fault(self, kind: FaultKind) -> None:
        self.faults[kind] += 1

    def reset(self) -> None:
        self.routes.clear()
        self.statuses.clear()
        self.faults.clear()

    def snapshot(self) -> dict[str, object]:
        """JSON-ready view: `routes` keyed by "METHOD /route/{template}"."""
        return {
            "total": sum(self.routes.values()),
            "routes": {
                key: {
                    "count": count,
                    "statuses": {str(s): n for s, n in sorted(self.statuses[key].items())},
                }
                for key, count in sorted(self.routes.items())
            },
            "faults": {kind.value: self.faults[kind] for kind in FaultKind},
        }
