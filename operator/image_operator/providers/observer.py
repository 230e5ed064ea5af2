"""Batched polling: many objects waiting on one provider cost one describe call per poll.

Every reconcile that polls asks `ImageObserver.observe(id)`. When that ID's last observation is
older than `max_age`, the observer describes *all* IDs asked for recently in one batch call
(`Provider.get_images`) and caches the answers, so the other objects' polls that follow within
`max_age` are served from memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from image_operator.providers.base import Provider
from image_operator.providers.model import CloudImage


@dataclass
class _Entry:
    image: CloudImage | None
    observed_at: float


class ImageObserver:
    def __init__(
        self,
        provider: Provider,
        *,
        max_age: float,
        forget_after: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.max_age = max_age
        # IDs nobody asked about for this long drop out of the batch (deleted, settled, ...).
        self.forget_after = forget_after if forget_after is not None else max(3 * max_age, 60.0)
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._wanted: dict[str, float] = {}
        self._lock = threading.Lock()
        self.batch_calls = 0

    def observe(self, external_id: str) -> CloudImage | None:
        """The cloud's view of one image, at most `max_age` seconds old; None if it is gone."""
        return self.observe_all([external_id]).get(external_id)

    def observe_all(self, external_ids: list[str]) -> dict[str, CloudImage | None]:
        """The cloud's view of several images (a poll asks for one, the drift resync for all
        Ready ones): if any is older than `max_age`, every ID asked for recently is described
        in one batch call, and the answers serve the polls that follow."""
        with self._lock:
            now = self._clock()
            for key in external_ids:
                self._wanted[key] = now
            if any(
                key not in self._entries or now - self._entries[key].observed_at >= self.max_age
                for key in external_ids
            ):
                self._describe_wanted(now)
            return {key: self._entries[key].image for key in external_ids if key in self._entries}

    def _describe_wanted(self, now: float) -> None:
        """One batch call for every ID asked about within `forget_after`; IDs nobody asked
        about since drop out. Called holding the lock, so concurrent pollers wait for this
        batch instead of each issuing their own."""
        self._wanted = {
            key: asked for key, asked in self._wanted.items() if now - asked < self.forget_after
        }
        results = self.provider.get_images(sorted(self._wanted))
        self.batch_calls += 1
        observed_at = self._clock()
        for key, image in results.items():
            self._entries[key] = _Entry(image, observed_at)
        for key in [k for k in self._entries if k not in self._wanted]:
            del self._entries[key]

    def remember(self, image: CloudImage) -> None:
        """Record what a create/update/lookup just returned: the ID joins the batch, and its
        next poll is served from this answer until it is `max_age` old."""
        with self._lock:
            now = self._clock()
            self._wanted[image.external_id] = now
            self._entries[image.external_id] = _Entry(image, now)

    def invalidate(self, external_id: str) -> None:
        """Forget a cached observation (after we changed the object ourselves)."""
        with self._lock:
            self._entries.pop(external_id, None)
