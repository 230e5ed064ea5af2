"""`Provider.find_images` (adoption by selector, spec.adopt) through each vendor's SDK against the
emulator: an exact name (never a neighbour the vendor's fuzzy filter also returns), every tag
of a selector, nothing found, and what a provider cannot match."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from image_operator.providers.errors import Unsupported
from image_operator.providers.instrumented import InstrumentedProvider
from image_operator.providers.model import ImageSelector
from image_operator_dev.emulator.aliyun_testing import AliyunHarness
from image_operator_dev.emulator.testing import ArgonHarness
from tests.contract import test_aliyun_provider as ali
from tests.contract import test_ucloudstack_provider as ucs_provider
from tests.contract.test_aliyun_provider import aliyun, start  # noqa: F401 - fixtures
from tests.contract.test_argon_provider import _provider as argon_provider
from tests.contract.test_argon_provider import _request as argon_request
from tests.contract.test_ucloudstack_emulator import UCloudStackHarness
from tests.contract.test_ucloudstack_provider import harnesses  # noqa: F401 - fixture


def mutating(stats: dict[str, Any]) -> dict[str, int]:
    """The emulator's request counts of the routes that change something."""
    return {
        route: int(entry["count"])
        for route, entry in stats["routes"].items()
        if route.split()[0] in ("POST", "PUT", "PATCH", "DELETE")
    }


def ids(matches: list[Any]) -> set[str]:
    return {m.external_id for m in matches}


# -- argon: a name is the ID; no tags ---------------------------------------------------------


def test_argon_finds_by_exact_name_and_cannot_match_tags(argon: ArgonHarness) -> None:
    provider = argon_provider(argon)
    made = provider.create_image(argon_request(name="golden"))
    provider.create_image(argon_request(name="golden-two", uid="9f3ede4c-0000"))
    before = argon.stats()

    found = provider.find_images(ImageSelector(name=made.external_id))
    missing = provider.find_images(ImageSelector(name="no-such-image"))

    assert [(m.external_id, m.name) for m in found] == [(made.external_id, made.external_id)]
    assert missing == []
    after = argon.stats()
    assert after["total"] - before["total"] == 2  # one GET each
    assert mutating(after) == mutating(before)
    with pytest.raises(Unsupported, match=r"spec\.adopt\.selector\.tags"):
        provider.find_images(ImageSelector(tags={"pool": "gpu"}))


# -- ucloudstack: DescribeImage's Keyword, filtered to the exact name; tags read back ----------


def test_ucloudstack_finds_by_exact_name_and_by_every_tag(
    harnesses: list[UCloudStackHarness],  # noqa: F811
    state_dir: Path,
) -> None:
    ucs = ucs_provider.start(harnesses, state_dir)
    provider = ucs_provider.provider(ucs)
    gpu = provider.create_image(
        ucs_provider.vm_request("golden", uid="u-1", tags={"pool": "gpu", "team": "ml"})
    )
    near = provider.create_image(
        ucs_provider.vm_request("golden-2", uid="u-2", tags={"pool": "gpu"})
    )
    provider.create_image(ucs_provider.vm_request("other", uid="u-3", tags={"pool": "cpu"}))

    by_name = provider.find_images(ImageSelector(name="golden"))
    by_tags = provider.find_images(ImageSelector(tags={"pool": "gpu"}))
    by_both_tags = provider.find_images(ImageSelector(tags={"pool": "gpu", "team": "ml"}))

    assert [(m.external_id, m.name) for m in by_name] == [(gpu.external_id, "golden")]
    assert ids(by_tags) == {gpu.external_id, near.external_id}
    assert ids(by_both_tags) == {gpu.external_id}
    assert provider.find_images(ImageSelector(tags={"pool": "tpu"})) == []


# -- aliyun: DescribeImages' ImageName (fuzzy, filtered) and Tag filters ----------------------


def test_aliyun_finds_by_exact_name_and_by_every_tag(aliyun: AliyunHarness) -> None:  # noqa: F811
    provider = ali.provider(aliyun)
    url = aliyun.put_object("images", "disk.qcow2", ali.DISK)
    gpu = provider.create_image(
        ali.url_request(url, name="golden", uid="u-1", tags={"pool": "gpu", "team": "ml"})
    )
    near = provider.create_image(
        ali.url_request(url, name="golden-two", uid="u-2", tags={"pool": "gpu"})
    )
    gpu_name = ali.available(provider, gpu.external_id).raw["ImageName"]

    by_name = provider.find_images(ImageSelector(name=gpu_name))
    by_tags = provider.find_images(ImageSelector(tags={"pool": "gpu"}))
    by_both_tags = provider.find_images(ImageSelector(tags={"pool": "gpu", "team": "ml"}))

    assert [(m.external_id, m.name) for m in by_name] == [(gpu.external_id, gpu_name)]
    assert ids(by_tags) == {gpu.external_id, near.external_id}
    assert ids(by_both_tags) == {gpu.external_id}
    assert provider.find_images(ImageSelector(name="nothing-like-it")) == []


def test_the_lookup_is_metered_through_the_instrumented_wrapper(argon: ArgonHarness) -> None:
    """The wrapper forwards it (a base-class default would answer Unsupported for every
    provider the handlers use) and counts it as a cloud call."""
    wrapped = InstrumentedProvider(argon_provider(argon))
    labels = {"provider": "argon", "action": "find_images", "outcome": "ok"}

    def count() -> float:
        return REGISTRY.get_sample_value("imageops_cloud_requests_total", labels) or 0.0

    before = count()
    assert wrapped.find_images(ImageSelector(name="no-such-image")) == []
    assert count() == before + 1
