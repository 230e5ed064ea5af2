"""Process-wide state the handlers share: settings, the provider registry, error counters."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache

from image_operator.handlers.kube import KubeAccess
from image_operator.handlers.providers import ProviderRegistry
from image_operator.providers.ratelimit import TokenBucket
from image_operator.reconcilers.managed import Backoff
from image_operator.settings import Settings


class ErrorCounter:
    """Consecutive retryable failures per object, so backoff grows with errors, not polls."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, uid: str, default: int = 0) -> int:
        with self._lock:
            return self._counts.get(uid, default)

    def record(self, uid: str, failed: bool) -> None:
        with self._lock:
            if failed:
                self._counts[uid] = self._counts.get(uid, 0) + 1
            else:
                self._counts.pop(uid, None)

    def forget(self, uid: str) -> None:
        with self._lock:
            self._counts.pop(uid, None)


@dataclass
class Context:
    settings: Settings
    kube: KubeAccess
    providers: ProviderRegistry
    backoff: Backoff
    # The budget of Normal events: one over it is logged and counted, not posted
    # (handlers/status.py apply_outcome); None when the settings allow none.
    events: TokenBucket | None
    errors: ErrorCounter = field(default_factory=ErrorCounter)


@lru_cache(maxsize=1)
def context() -> Context:
    settings = Settings()
    kube = KubeAccess(settings.secret_cache_seconds)
    backoff = Backoff(
        base=settings.retry_backoff_base_seconds,
        maximum=settings.poll_backoff_max_seconds,
        provider_wait=settings.provider_wait_seconds,
    )
    return Context(
        settings=settings,
        kube=kube,
        providers=ProviderRegistry(kube, settings.endpoint_policy()),
        backoff=backoff,
        events=event_budget(settings),
    )


def event_budget(settings: Settings) -> TokenBucket | None:
    """The bucket Normal events are tried against; None (post none) when a rate or a burst of 0
    is set."""
    rate, burst = settings.normal_events_per_second, settings.normal_events_burst
    return TokenBucket(rate, burst) if rate > 0 and burst > 0 else None
