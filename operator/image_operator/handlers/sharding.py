"""Sharding on Kubernetes itself (KEP-5866, alpha in 1.36): N groups of replicas split the
namespaced kinds by a hash of each object's UID, and the API server sends each group only its
hash range on list and watch (`shardSelector`). kopf passes the selector through
(`settings.watching.shard_selectors`).

Shard `i` of `n` owns [i·2⁶⁴/n, (i+1)·2⁶⁴/n) of FNV-1a-64(metadata.uid), so the ranges cover
the whole hash space with no gap and no overlap. ImageProviders are not sharded: every shard
needs every provider (its watch cache, handlers/providers.py), and shard 0 alone reconciles,
probes and resyncs them. An API server without the feature ignores an unknown `shardSelector`
and would send every shard everything, so a sharded operator checks first that the server
judges shard selectors (it refuses an empty range) and refuses to start otherwise: never two
shards silently doing the same work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from image_operator.api.common import GROUP, VERSION
from image_operator.handlers.context import context

HASH_SPACE = 1 << 64
# The kinds split between shards (ImageProviders are read by all, handled by shard 0).
SHARDED_PLURALS = ("images", "baseimages", "imagepipelines", "communitylistings")
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3


class ShardingUnsupported(RuntimeError):
    """The API server does not filter by shard: starting would duplicate every shard's work."""


def fnv1a64(value: str) -> int:
    """The API server's shard hash of a field (k8s.io/apimachinery/pkg/sharding, HashField)."""
    digest = _FNV_OFFSET
    for byte in value.encode():
        digest = ((digest ^ byte) * _FNV_PRIME) % HASH_SPACE
    return digest


def shard_range(index: int, count: int) -> tuple[int, int]:
    """[start, end) of shard `index` of `count` in the 64-bit hash space."""
    if not 0 <= index < count:
        raise ValueError(f"shard index {index} is not in 0..{count - 1}")
    return index * HASH_SPACE // count, (index + 1) * HASH_SPACE // count


def _bound(value: int) -> str:
    # The server compares bounds as text: 16 hex digits, except 2^64 itself (17).
    return f"'0x{value:016x}'"


def shard_selector(index: int, count: int) -> str:
    """The `shardSelector` of shard `index` of `count`."""
    start, end = shard_range(index, count)
    return f"shardRange(object.metadata.uid, {_bound(start)}, {_bound(end)})"


def owns(uid: str, index: int, count: int) -> bool:
    """Whether shard `index` of `count` owns the object with `uid`."""
    start, end = shard_range(index, count)
    return start <= fnv1a64(uid) < end


def selectors(index: int, count: int) -> dict[str, str]:
    """kopf's `settings.watching.shard_selectors` entries ("plural.group" -> selector)."""
    if count <= 1:
        return {}
    selector = shard_selector(index, count)
    return {f"{plural}.{GROUP}": selector for plural in SHARDED_PLURALS}


def handles_providers(**_: Any) -> bool:
    """kopf's `when=` for the ImageProvider handlers and timers: shard 0 (or the only one)."""
    return context().settings.shard_index == 0


def peering_name(base: str, index: int, count: int) -> str:
    """Each shard's replicas elect their active one among themselves, in a peering of their
    own: in one shared peering, the shards would pause one another."""
    return base if count <= 1 else f"{base}-shard-{index}"


# `list_one(path, selector)`: (HTTP status, decoded answer) of listing at most one object at
# `path` with `shardSelector=selector`.
List = Callable[[str, str], tuple[int, Mapping[str, Any]]]

# An empty range: a server that applies shard selectors refuses it as invalid; one that does
# not ignores it like any unknown parameter.
EMPTY_RANGE = f"shardRange(object.metadata.uid, {_bound(0)}, {_bound(0)})"


def check_server_filters(list_one: List, index: int, count: int) -> None:
    """Raise `ShardingUnsupported` unless the API server applies shard selectors.

    A filtered list of built-in kinds echoes the selector in `metadata.shardInfo`; Kubernetes
    1.36 does not set it on custom resources' lists (unstructured), though it filters them. So
    the test that holds for ours is the second: the server judges the selector, and refuses an
    empty range as invalid; a server without the feature answers it with an ordinary list."""
    if count <= 1:
        return
    path = f"/apis/{GROUP}/{VERSION}/{SHARDED_PLURALS[0]}"
    selector = shard_selector(index, count)
    status, answer = list_one(path, selector)
    echoed = ((answer.get("metadata") or {}).get("shardInfo") or {}).get("selector")
    if 200 <= status < 300 and echoed == selector:
        return
    status, answer = list_one(path, EMPTY_RANGE)
    message = str(answer.get("message", ""))
    if not 200 <= status < 300:
        if "shard selector" in message:
            return
        raise ShardingUnsupported(
            f"IMAGE_OPERATOR_SHARDS={count}: cannot tell whether the API server filters by "
            f"shard: listing {path} answered HTTP {status}: {message[:300]}"
        )
    raise ShardingUnsupported(
        f"IMAGE_OPERATOR_SHARDS={count} needs an API server that filters list and watch by "
        "shard (Kubernetes 1.36 or newer with the ShardedListAndWatch feature gate enabled); "
        "this one ignores shardSelector (an empty shard range was answered with an ordinary "
        f"list), so all {count} shards would handle every object. Enable the gate, or run one "
        "shard (sharding.shards: 1 in the chart)"
    )
