"""Process-wide state the handlers share: settings, the provider registry, error counters."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache

from image_operator.handlers.eventbudget import EventBudget
from image_operator.handlers.kube import KubeAccess
from image_operator.handlers.providers import ProviderRegistry
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
    events: EventBudget  # Normal events over it are dropped (handlers/eventbudget.py)
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
        events=EventBudget(settings.normal_events_per_second, settings.normal_events_burst),
    )
