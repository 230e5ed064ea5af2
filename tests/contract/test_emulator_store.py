"""The emulator keeps up with many stored images: a batched describe of k IDs decodes k stored
documents, not every document stored (issue 14, part 5).

Each test stores many images through the vendor's API, then describes a few by ID the way the
operator's provider does, and compares the store's count of decoded documents (`store.decoded`
in `/_emulator/stats`) before and after. Nothing is timed: the count is what grows with N when
a lookup scans the table, and what the benchmark in bench/scale.py needs to stay flat.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from image_operator.api.provider import ImageProviderSpec
from image_operator.providers.aliyun import AliyunProvider
from image_operator.providers.argon import ArgonProvider
from image_operator.providers.factory import build_provider
from image_operator.providers.model import CloudState
from image_operator_dev.emulator.aliyun_testing import AliyunHarness, aliyun_config
from image_operator_dev.emulator.clock import ManualClock
from image_operator_dev.emulator.store import Store
from image_operator_dev.emulator.testing import ArgonHarness
from tests.contract.conftest import StartArgon
from tests.contract.test_aliyun_provider import DISK, REGION
from tests.contract.test_aliyun_provider import url_request as aliyun_request
from tests.contract.test_argon_provider import _request as argon_request
from tests.contract.test_compshare_emulator import MAKING, start_compshare
from tests.contract.test_compshare_provider import provider as compshare_provider
from tests.contract.test_compshare_provider import request as compshare_request
from tests.contract.test_ucloudstack_emulator import UCloudStackHarness, ucloudstack_config
from tests.contract.test_ucloudstack_provider import provider as ucloudstack_provider
from tests.contract.test_ucloudstack_provider import vm_request as ucloudstack_request
from tests.loopback import LOOPBACK_ENDPOINTS

STORED = 500  # images stored, the described ones among them
K = 5  # images described in one batch


def test_get_many_reads_the_named_objects_of_one_scope_by_name(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for scope in ("a", "b"):
        for i in range(1200):  # more names than one IN (...) query carries
            store.insert("v", "image", scope, f"n{i:04d}", {"i": i, "scope": scope})
    store.insert("v", "other", "a", "n0001", {"kind": "other"})
    names = [f"n{i:04d}" for i in range(1199, -1, -2)] + ["missing", "n0001"]
    before = store.decoded

    found = store.get_many("v", "image", "a", names)

    assert [o.name for o in found] == sorted({f"n{i:04d}" for i in range(1, 1200, 2)})
    assert all(o.doc["scope"] == "a" and o.kind == "image" for o in found)
    assert store.decoded - before == 600
    assert store.get_many("v", "image", "a", []) == []
    store.close()


def decoded(base_url: str) -> int:
    """Documents the emulator's store has decoded so far (a counter that is never reset)."""
    stats = httpx.get(f"{base_url}/_emulator/stats", timeout=10).raise_for_status().json()
    return int(stats["store"]["decoded"])


@pytest.fixture
def argon(start_argon: StartArgon) -> ArgonHarness:
    return start_argon(creation_seconds=0)


def test_argon_list_by_names_decodes_only_the_named_images(argon: ArgonHarness) -> None:
    provider = ArgonProvider(endpoint=argon.url, namespace="default", token=argon.token)
    ids = [
        provider.create_image(argon_request(f"img{i}", uid=f"{i:08d}-x")).external_id
        for i in range(STORED)
    ]
    wanted = ids[STORED // 2 : STORED // 2 + K]
    before = decoded(argon.url)

    described = provider.get_images([*wanted, "missing-image"])

    assert len(wanted) == K
    assert decoded(argon.url) - before == K
    assert described["missing-image"] is None
    assert {image.state for i in wanted if (image := described[i])} == {CloudState.AVAILABLE}


def test_argon_list_without_names_still_reads_everything(argon: ArgonHarness) -> None:
    # The counter counts: the same store, listed whole, decodes every image.
    for i in range(20):
        argon.create({"name": f"img{i}", "displayName": "x", "repository": "nvidia/cuda"})
    before = decoded(argon.url)

    listed = argon.api.get(argon.images_path()).json()["items"]

    assert len(listed) == 20
    assert decoded(argon.url) - before == 20


@pytest.fixture
def ucs(state_dir: Path) -> Iterator[UCloudStackHarness]:
    harness = UCloudStackHarness(ucloudstack_config(state_dir))
    yield harness
    harness.close()


def test_ucloudstack_describe_by_image_ids_decodes_only_those(ucs: UCloudStackHarness) -> None:
    p = ucloudstack_provider(ucs)
    ids = [
        p.create_image(ucloudstack_request(f"img{i}", uid=f"uid-{i}")).external_id
        for i in range(STORED)
    ]
    wanted = ids[-K:]
    before = decoded(ucs.url)

    described = p.get_images([*wanted, "image-missing"])

    assert decoded(ucs.url) - before == K
    assert described["image-missing"] is None
    assert all((image := described[i]) is not None and image.external_id == i for i in wanted)


@pytest.fixture
def aliyun(tmp_path: Path) -> Iterator[AliyunHarness]:
    harness = AliyunHarness(aliyun_config(tmp_path / "state", import_seconds=0))
    yield harness
    harness.close()


def test_aliyun_describe_images_by_id_decodes_only_those(aliyun: AliyunHarness) -> None:
    # Built as the operator builds it, with a client-side rate limit high enough that storing
    # the images does not wait for it.
    spec = ImageProviderSpec.model_validate(
        {
            "type": "aliyun",
            "endpoint": aliyun.url,
            "region": REGION,
            "credentialsSecretRef": {"name": "aliyun-keys"},
            "rateLimit": {"requestsPerSecond": 1000, "burst": 1000},
        }
    )
    keys = {"accessKeyId": aliyun.key_id, "accessKeySecret": aliyun.key_secret}
    p = build_provider(spec, keys, endpoints=LOOPBACK_ENDPOINTS)
    assert isinstance(p, AliyunProvider)
    url = aliyun.put_object("images", "disk.qcow2", DISK)
    ids = [
        p.create_image(
            aliyun_request(url, name=f"img{i}", uid=f"{i:08d}-0000-4000-8000-0")
        ).external_id
        for i in range(STORED)
    ]
    wanted = ids[:K]
    before = decoded(aliyun.url)

    described = p.get_images([*wanted, "m-doesnotexist00000000"])

    assert decoded(aliyun.url) - before == K
    assert described["m-doesnotexist00000000"] is None
    assert {i for i, image in described.items() if image is not None} == set(wanted)


def test_compshare_describe_by_image_id_decodes_only_that_image(tmp_path: Path) -> None:
    # CompShare's describe takes one CompShareImageId (no list): by ID it reads one document.
    clock = ManualClock()
    cs = start_compshare(tmp_path / "state", clock)
    try:
        p = compshare_provider(cs)
        ids = [
            p.create_image(compshare_request(f"img{i}", uid=f"{i:08d}-x")).external_id
            for i in range(STORED)
        ]
        clock.advance(MAKING)
        before = decoded(cs.url)

        image = p.get_image(ids[STORED // 2])

        assert decoded(cs.url) - before == 1
        assert image.state is CloudState.AVAILABLE
    finally:
        cs.close()
