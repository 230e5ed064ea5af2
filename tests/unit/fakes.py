"""In-memory test doubles for the provider layer: a cloud in a dict, and clocks you turn by hand.

`FakeProvider` implements every abstract method of `Provider` honestly: images live in a dict
keyed by external ID, `find_image` looks up the request's idempotency key, `create_image`
refuses a key that is taken (`Conflict`), deletion is asynchronous (the image sits in
`DELETING` until the test calls `finish_delete`), and `get_images` is one batch call. Tests
drive the cloud (`advance`, `vanish`, `seed`), script failures (`fail_next`) and read the
call log (`calls`, `calls_to`, `names`).
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from image_operator.api.image import ImageSpec
from image_operator.providers.base import Provider
from image_operator.providers.capabilities import CopiesWithin
from image_operator.providers.errors import Conflict, InvalidInput, NotFound, ProviderError
from image_operator.providers.model import (
    CloudImage,
    CloudState,
    ImageMatch,
    ImageRequest,
    ImageSelector,
    Operation,
)

ALL_OPERATIONS = frozenset(Operation)

# The spec fields a cloud stores and a provider could push with an update.
_MANAGED = (
    "display_name",
    "group",
    "description",
    "price",
    "cover",
    "command",
    "inputs",
    "outputs",
    "configs",
    "tags",
)


def fingerprint(spec: ImageSpec) -> str:
    managed = spec.model_dump(mode="json", include=set(_MANAGED), exclude_none=True)
    return json.dumps(managed, sort_keys=True, ensure_ascii=False)


@dataclass
class FakeImage:
    """One image in the fake cloud."""

    external_id: str
    key: str
    state: CloudState
    fingerprint: str
    progress: int | None = None
    message: str | None = None
    name: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def view(self) -> CloudImage:
        return CloudImage(
            external_id=self.external_id,
            state=self.state,
            progress=self.progress,
            message=self.message,
            fingerprint=self.fingerprint,
        )


class FakeProvider(Provider, CopiesWithin):
    """A cloud in a dict. Every public Provider method is logged in `calls` as (name, args)."""

    type_name = "fake"

    def __init__(
        self, operations: Iterable[Operation] = ALL_OPERATIONS, *, probe_info: str = "fake cloud"
    ) -> None:
        self.operations = frozenset(operations)
        self.probe_info = probe_info
        self.images: dict[str, FakeImage] = {}
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._failures: dict[str, deque[ProviderError]] = defaultdict(deque)
        self._lagging_finds = 0
        self._ids = itertools.count(1)
        self.closed = False
        # The state a new image starts in: AVAILABLE for a cloud that makes images at once.
        self.made_state = CloudState.PENDING

    # -- test controls ---------------------------------------------------------------------
    def fail_next(self, method: str, error: ProviderError, times: int = 1) -> None:
        """The next `times` calls of `method` raise `error` (before touching the cloud)."""
        if not callable(getattr(self, method, None)):
            raise AttributeError(f"FakeProvider has no method {method!r}")
        self._failures[method].extend([error] * times)

    def lag_next_find(self, times: int = 1) -> None:
        """The lookup index lags: the next `times` find_image calls miss existing images."""
        self._lagging_finds += times

    def seed(
        self,
        key: str,
        *,
        spec: ImageSpec,
        state: CloudState = CloudState.AVAILABLE,
        progress: int | None = None,
        message: str | None = None,
        external_id: str | None = None,
        name: str = "",
        tags: dict[str, str] | None = None,
    ) -> str:
        """Put an image in the cloud as if an earlier create (or someone else) made it."""
        external_id = external_id or self._new_id()
        self.images[external_id] = FakeImage(
            external_id=external_id,
            key=key,
            state=state,
            fingerprint=fingerprint(spec),
            progress=progress,
            message=message,
            name=name,
            tags=dict(tags or {}),
        )
        return external_id

    def advance(
        self,
        external_id: str,
        state: CloudState,
        progress: int | None = None,
        message: str | None = None,
    ) -> None:
        """Move an image along its life, as the cloud's own worker would."""
        image = self.images[external_id]
        image.state = state
        image.progress = progress
        image.message = message

    def vanish(self, external_id: str) -> None:
        """Someone deleted the image behind our back."""
        del self.images[external_id]

    def finish_delete(self, external_id: str) -> None:
        """The cloud finishes an asynchronous delete."""
        assert self.images[external_id].state is CloudState.DELETING, "delete was never started"
        del self.images[external_id]

    def calls_to(self, method: str) -> list[tuple[Any, ...]]:
        return [args for name, args in self.calls if name == method]

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def reset_calls(self) -> None:
        self.calls.clear()

    # -- Provider --------------------------------------------------------------------------
    def _enter(self, method: str, *args: Any) -> None:
        self.calls.append((method, args))
        if self._failures[method]:
            raise self._failures[method].popleft()

    def _new_id(self) -> str:
        return f"img-{next(self._ids):04d}"

    def _get(self, external_id: str) -> FakeImage:
        image = self.images.get(external_id)
        if image is None:
            raise NotFound(f"fake cloud has no image {external_id!r}")
        return image

    def probe(self) -> str:
        self._enter("probe")
        return self.probe_info

    def create_image(self, request: ImageRequest) -> CloudImage:
        self._enter("create_image", request.idempotency_key)
        self.require_source(request.spec.source.kind())
        if any(image.key == request.idempotency_key for image in self.images.values()):
            raise Conflict(f"an image with client token {request.idempotency_key!r} exists")
        return self._add(request)

    def _add(self, request: ImageRequest) -> CloudImage:
        """A new image the cloud begins to make for `request`, carrying its key."""
        external_id = self._new_id()
        self.images[external_id] = FakeImage(
            external_id=external_id,
            key=request.idempotency_key,
            state=self.made_state,
            fingerprint=fingerprint(request.spec),
        )
        return self.images[external_id].view()

    def copy_within(self, request: ImageRequest, source_external_id: str) -> CloudImage:
        """A copy API: the copy carries the request's key, as a tag or name would."""
        self._enter("copy_within", request.idempotency_key, source_external_id)
        self.require(Operation.COPY)
        source = self._get(source_external_id)
        if source.state is not CloudState.AVAILABLE:
            raise InvalidInput(f"image {source_external_id!r} is {source.state.value}")
        return self._add(request)

    def find_image(self, request: ImageRequest) -> CloudImage | None:
        self._enter("find_image", request.idempotency_key)
        if self._lagging_finds:
            self._lagging_finds -= 1
            return None
        for image in self.images.values():
            if image.key == request.idempotency_key:
                return image.view()
        return None

    def get_image(self, external_id: str) -> CloudImage:
        self._enter("get_image", external_id)
        return self._get(external_id).view()

    def get_images(self, external_ids: Iterable[str]) -> dict[str, CloudImage | None]:
        ids = tuple(external_ids)
        self._enter("get_images", ids)
        return {i: (self.images[i].view() if i in self.images else None) for i in ids}

    def needs_update(self, request: ImageRequest, current: CloudImage) -> bool:
        self._enter("needs_update", current.external_id)
        return fingerprint(request.spec) != current.fingerprint

    def update_image(self, external_id: str, request: ImageRequest) -> CloudImage:
        self._enter("update_image", external_id)
        self.require(Operation.UPDATE)
        image = self._get(external_id)
        image.fingerprint = fingerprint(request.spec)
        return image.view()

    def delete_image(self, external_id: str) -> None:
        self._enter("delete_image", external_id)
        self.require(Operation.DELETE)
        image = self._get(external_id)
        image.state = CloudState.DELETING
        image.progress = None

    def find_images(self, selector: ImageSelector) -> list[ImageMatch]:
        self._enter("find_images", selector)
        return [
            ImageMatch(external_id=image.external_id, name=image.name)
            for image in self.images.values()
            if (selector.name is None or image.name == selector.name)
            and all(image.tags.get(k) == v for k, v in selector.tags.items())
        ]

    def close(self) -> None:
        self.closed = True


class FakeClock:
    """A monotonic clock that moves only when told; `sleep` moves it too."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
