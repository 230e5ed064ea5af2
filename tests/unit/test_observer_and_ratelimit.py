"""ImageObserver (batched polling) and TokenBucket (client-side rate limit), on fake clocks."""

from __future__ import annotations

import random
import threading

import pytest

from image_operator.api.image import ImageSpec
from image_operator.providers.errors import Transient
from image_operator.providers.model import CloudState
from image_operator.providers.observer import ImageObserver
from image_operator.providers.ratelimit import DEFAULT_RATE_LIMIT, Clock, TokenBucket
from tests.unit.fakes import FakeClock, FakeProvider

MAX_AGE = 10.0

SPEC = ImageSpec.model_validate(
    {
        "providerRef": {"name": "fake"},
        "source": {"repository": {"image": "library/ubuntu:22.04"}},
        "displayName": "ubuntu",
    }
)


def cloud_with(n: int) -> tuple[FakeProvider, list[str]]:
    provider = FakeProvider()
    ids = [
        provider.seed(f"uid-{i}", spec=SPEC, state=CloudState.CREATING, progress=i)
        for i in range(n)
    ]
    return provider, ids


def batches(provider: FakeProvider) -> list[tuple[str, ...]]:
    return [args[0] for args in provider.calls_to("get_images")]


# -- ImageObserver ------------------------------------------------------------------------------
def test_many_pollers_within_max_age_cost_one_batch_call() -> None:
    provider, ids = cloud_with(10)
    clock = FakeClock()
    observer = ImageObserver(provider, max_age=MAX_AGE, clock=clock)
    for external_id in ids:  # each object's first poll registers its ID
        observer.observe(external_id)
    clock.advance(MAX_AGE)  # the next poll round
    provider.reset_calls()

    seen = []
    for external_id in ids:
        clock.advance(0.5)  # the objects' polls spread over a few seconds
        seen.append(observer.observe(external_id))

    assert provider.names() == ["get_images"]
    assert batches(provider) == [tuple(sorted(ids))]
    assert observer.batch_calls == 11
    assert [image.external_id for image in seen if image] == ids
    assert [image.progress for image in seen if image] == list(range(10))
    assert "get_image" not in provider.names()


def test_first_poll_of_a_new_id_is_one_call_for_everyone() -> None:
    provider, ids = cloud_with(3)
    clock = FakeClock()
    observer = ImageObserver(provider, max_age=MAX_AGE, clock=clock)
    observer.observe(ids[0])
    observer.observe(ids[1])
    # A new ID cannot wait for the cache: it is described at once, together with the others.
    assert batches(provider) == [(ids[0],), (ids[0], ids[1])]


def test_cached_answers_within_max_age_then_one_new_batch() -> None:
    provider, ids = cloud_with(3)
    clock = FakeClock()
    observer = ImageObserver(provider, max_age=MAX_AGE, clock=clock)
    for external_id in ids:
        observer.observe(external_id)
    provider.reset_calls()
    provider.advance(ids[0], CloudState.AVAILABLE, 100)

    clock.advance(MAX_AGE - 1)
    cached = observer.observe(ids[0])
    assert provider.calls == []
    assert cached is not None and cached.state is CloudState.CREATING  # old answer

    clock.advance(1)  # now exactly max_age old
    fresh = observer.observe(ids[0])
    assert batches(provider) == [tuple(sorted(ids))]
    assert fresh is not None and fresh.state is CloudState.AVAILABLE
    observer.observe(ids[1])
    observer.observe(ids[2])
    assert len(batches(provider)) == 1


def test_vanished_image_is_observed_as_none() -> None:
    provider, ids = cloud_with(2)
    observer = ImageObserver(provider, max_age=MAX_AGE, clock=FakeClock())
    provider.vanish(ids[1])
    assert observer.observe(ids[1]) is None
    assert observer.observe("img-never-existed") is None


def test_ids_nobody_asks_for_are_forgotten() -> None:
    provider, ids = cloud_with(3)
    clock = FakeClock()
    observer = ImageObserver(provider, max_age=MAX_AGE, forget_after=30.0, clock=clock)
    for external_id in ids:
        observer.observe(external_id)
    # Only ids[0] keeps polling (the others settled or were deleted).
    for _ in range(3):
        clock.advance(MAX_AGE)
        observer.observe(ids[0])

    assert batches(provider)[-1] == (ids[0],)
    assert batches(provider)[-2] == tuple(sorted(ids))  # at 20s the others were still wanted
    # A forgotten ID asked again is described afresh, not served from a stale cache.
    provider.advance(ids[1], CloudState.AVAILABLE, 100)
    again = observer.observe(ids[1])
    assert again is not None and again.state is CloudState.AVAILABLE
    assert batches(provider)[-1] == (ids[0], ids[1])


def test_default_forget_after_is_generous() -> None:
    provider = FakeProvider()
    assert ImageObserver(provider, max_age=5.0).forget_after == 60.0
    assert ImageObserver(provider, max_age=40.0).forget_after == 120.0


def test_invalidate_forces_a_refresh_of_that_id() -> None:
    provider, ids = cloud_with(2)
    clock = FakeClock()
    observer = ImageObserver(provider, max_age=MAX_AGE, clock=clock)
    observer.observe(ids[0])
    observer.observe(ids[1])
    provider.reset_calls()
    provider.advance(ids[0], CloudState.AVAILABLE, 100)

    observer.invalidate(ids[0])
    fresh = observer.observe(ids[0])
    assert fresh is not None and fresh.state is CloudState.AVAILABLE
    assert len(batches(provider)) == 1
    observer.observe(ids[1])  # still cached (refreshed by the same batch)
    assert len(batches(provider)) == 1
    observer.invalidate("img-unknown")  # harmless


def test_failed_batch_is_retried_on_the_next_observe() -> None:
    provider, ids = cloud_with(1)
    clock = FakeClock()
    observer = ImageObserver(provider, max_age=MAX_AGE, clock=clock)
    provider.fail_next("get_images", Transient("503"))
    with pytest.raises(Transient):
        observer.observe(ids[0])
    assert observer.batch_calls == 0
    image = observer.observe(ids[0])
    assert image is not None
    assert len(batches(provider)) == 2


def test_concurrent_pollers_share_one_batch() -> None:
    provider, ids = cloud_with(8)
    clock = FakeClock()
    observer = ImageObserver(provider, max_age=MAX_AGE, clock=clock)
    for external_id in ids:
        observer.observe(external_id)
    clock.advance(MAX_AGE)
    provider.reset_calls()

    barrier = threading.Barrier(len(ids))
    results: dict[str, object] = {}

    def poll(external_id: str) -> None:
        barrier.wait()
        results[external_id] = observer.observe(external_id)

    threads = [threading.Thread(target=poll, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    assert len(batches(provider)) == 1
    assert set(results) == set(ids)
    assert all(results.values())


# -- TokenBucket --------------------------------------------------------------------------------
def test_burst_passes_then_callers_wait_one_interval_each() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=4.0, burst=3, clock=clock, sleep=clock.sleep)

    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert clock.sleeps == []

    assert bucket.acquire() == pytest.approx(0.25)
    assert clock.sleeps == [pytest.approx(0.25)]
    assert bucket.acquire() == pytest.approx(0.25)  # the sleep used up the refill
    assert clock.sleeps == [pytest.approx(0.25)] * 2


def test_waiting_callers_queue_up_without_a_shared_sleep() -> None:
    clock = FakeClock()
    sleeps: list[float] = []
    bucket = TokenBucket(rate=2.0, burst=1, clock=clock, sleep=sleeps.append)  # time frozen
    assert bucket.acquire() == 0.0
    # Three callers arriving at once are spaced 1/rate apart, each owing one more token.
    assert [bucket.acquire() for _ in range(3)] == pytest.approx([0.5, 1.0, 1.5])


def test_tokens_refill_over_time_up_to_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=2, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    bucket.acquire()

    clock.advance(0.5)  # one token back
    assert bucket.acquire() == 0.0
    assert bucket.acquire() == pytest.approx(0.5)

    clock.advance(3600)  # a long idle period refills only up to burst
    assert [bucket.acquire() for _ in range(2)] == [0.0, 0.0]
    assert bucket.acquire() == pytest.approx(0.5)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 5), (1.0, 0)])
def test_rejects_bad_settings(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate must be > 0"):
        TokenBucket(rate=rate, burst=burst, clock=FakeClock())


def test_remembered_images_join_the_first_poll_round_as_one_batch() -> None:
    provider, ids = cloud_with(10)
    clock = FakeClock()
    observer = ImageObserver(provider, max_age=MAX_AGE, clock=clock)
    for external_id in ids:  # what create_image returned for each object
        observer.remember(provider.get_image(external_id))
    provider.reset_calls()

    fresh = [observer.observe(external_id) for external_id in ids]  # within max_age: cached
    assert provider.calls == []
    assert all(image is not None for image in fresh)

    clock.advance(MAX_AGE)
    for external_id in ids:
        observer.observe(external_id)

    assert batches(provider) == [tuple(sorted(ids))]


def test_the_default_limit_is_never_exceeded_in_any_window() -> None:
    """200 calls with uneven pauses between them (a seeded pattern): in every window of fake
    time, at most burst + rate x length calls got through."""
    clock = FakeClock()
    limit = DEFAULT_RATE_LIMIT
    bucket = TokenBucket.for_limit(None, Clock(now=clock, sleep=clock.sleep))
    pauses = random.Random(7)
    released: list[float] = []
    for _ in range(200):
        bucket.acquire()
        released.append(clock.now)
        clock.advance(pauses.choice([0.0, 0.0, 0.0, 0.01, 0.3, 2.5]))

    for length in (0.5, 1.0, 3.0, 10.0):
        allowed = limit.burst + limit.requests_per_second * length
        most = max(sum(1 for t in released if start <= t < start + length) for start in released)
        assert most <= allowed, f"{most} calls within {length}s (at most {allowed})"
    assert (bucket.rate, bucket.burst) == (10, 20)
