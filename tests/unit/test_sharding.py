"""Sharding by UID hash (handlers/sharding.py): the ranges cover the hash space exactly, the
hash is the API server's, and an API server that does not filter is refused."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import ValidationError

from image_operator.handlers.sharding import (
    EMPTY_RANGE,
    HASH_SPACE,
    ShardingUnsupported,
    check_server_filters,
    fnv1a64,
    owns,
    peering_name,
    selectors,
    shard_range,
    shard_selector,
)
from image_operator.settings import Settings


@pytest.mark.parametrize("count", [2, 3, 5, 7, 64])
def test_the_shards_cover_the_hash_space_with_no_gap_and_no_overlap(count: int) -> None:
    ranges = [shard_range(i, count) for i in range(count)]

    assert ranges[0][0] == 0 and ranges[-1][1] == HASH_SPACE
    assert all(ranges[i][1] == ranges[i + 1][0] for i in range(count - 1))
    assert all(start < end for start, end in ranges)


def test_every_uid_belongs_to_exactly_one_shard() -> None:
    uids = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(500)] + [str(uuid.uuid4())]
    for count in (2, 3, 4):
        owners = [[i for i in range(count) if owns(uid, i, count)] for uid in uids]
        assert all(len(o) == 1 for o in owners)


def test_the_hash_is_fnv1a_64_as_the_api_server_computes_it() -> None:
    # The FNV-1a reference values (IETF draft-eastlake-fnv, test vectors for FNV-1a 64).
    assert fnv1a64("") == 0xCBF29CE484222325
    assert fnv1a64("a") == 0xAF63DC4C8601EC8C
    assert fnv1a64("foobar") == 0x85944171F73967E8


def test_the_selector_writes_bounds_as_the_server_compares_them() -> None:
    assert shard_selector(0, 2) == (
        "shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')"
    )
    assert shard_selector(1, 2) == (
        "shardRange(object.metadata.uid, '0x8000000000000000', '0x10000000000000000')"
    )


def test_one_shard_sets_no_selector_and_keeps_the_peering() -> None:
    assert selectors(0, 1) == {}
    assert peering_name("image-operator", 0, 1) == "image-operator"


def test_shards_select_every_kind_but_providers_and_peer_among_themselves() -> None:
    chosen = selectors(1, 2)

    assert set(chosen) == {
        "images.imageops.io",
        "baseimages.imageops.io",
        "imagepipelines.imageops.io",
        "communitylistings.imageops.io",
    }
    assert set(chosen.values()) == {shard_selector(1, 2)}
    assert len({peering_name("image-operator", i, 3) for i in range(3)}) == 3


def test_an_api_server_that_ignores_the_selector_is_refused_naming_the_gate() -> None:
    asked: list[tuple[str, str]] = []

    def unfiltered(path: str, selector: str) -> tuple[int, Mapping[str, Any]]:
        asked.append((path, selector))
        return 200, {"metadata": {"resourceVersion": "5"}, "items": []}

    with pytest.raises(ShardingUnsupported) as refused:
        check_server_filters(unfiltered, 1, 2)

    path = "/apis/imageops.io/v1alpha1/images"
    assert asked == [(path, shard_selector(1, 2)), (path, EMPTY_RANGE)]
    assert "ShardedListAndWatch" in str(refused.value) and "1.36" in str(refused.value)


def test_an_api_server_that_echoes_the_selector_is_accepted() -> None:
    def filtered(path: str, selector: str) -> tuple[int, Mapping[str, Any]]:
        return 200, {"metadata": {"shardInfo": {"selector": selector}}, "items": []}

    check_server_filters(filtered, 0, 2)  # no exception: the server filters


def test_an_api_server_that_judges_the_selector_of_custom_resources_is_accepted() -> None:
    """Kubernetes 1.36 filters custom resources without echoing shardInfo; it does refuse an
    empty range (kube-apiserver 1.36.3: 'invalid shard selector: shard range start ... must be
    less than end ...')."""

    def judges(path: str, selector: str) -> tuple[int, Mapping[str, Any]]:
        if selector == EMPTY_RANGE:
            return 500, {
                "kind": "Status",
                "message": "invalid shard selector: shard range "
                "start 0x0000000000000000 must be less than end 0x0000000000000000",
            }
        return 200, {"metadata": {}, "items": []}

    check_server_filters(judges, 1, 2)  # no exception


def test_an_error_that_is_not_about_the_selector_is_not_taken_for_support() -> None:
    def forbidden(path: str, selector: str) -> tuple[int, Mapping[str, Any]]:
        return 403, {"kind": "Status", "message": "images.imageops.io is forbidden"}

    with pytest.raises(
        ShardingUnsupported, match=re.escape("HTTP 403: images.imageops.io is forbidden")
    ):
        check_server_filters(forbidden, 0, 2)


def test_a_shard_index_outside_the_shards_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_OPERATOR_SHARDS", "2")
    monkeypatch.setenv("IMAGE_OPERATOR_SHARD_INDEX", "2")

    with pytest.raises(ValidationError, match="use 0 to 1"):
        Settings()
