"""`spec.sharing` on aliyun against the emulator: the provider's `Shares`
(ModifyImageSharePermission in batches of ten, DescribeImageSharePermission paged) and the
Image reconciler end to end (share, the spec as the whole list, unshare), every call through
`InstrumentedProvider`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_ecs20140526 import models as ecs  # type: ignore[import-untyped]

from image_operator.api.image import ImageSpec
from image_operator.api.sharing import MemberState
from image_operator.providers.errors import InvalidInput, NotFound, Unsupported
from image_operator.providers.instrumented import InstrumentedProvider
from image_operator.providers.observer import ImageObserver
from image_operator.providers.sharing import Member
from image_operator.reconcilers.image import ImageObject, ImageReconciler
from image_operator.reconcilers.managed import Backoff, ProviderHandle
from image_operator.reconcilers.outcome import Outcome, condition
from image_operator_dev.emulator.aliyun_testing import AliyunHarness, aliyun_config
from tests.contract.test_aliyun_provider import DISK, REGION, available, provider, url_request

BACKOFF = Backoff(base=1.0, maximum=5.0, provider_wait=5.0, spread=lambda: 1.0)
ACCOUNTS = [str(10**10 + i) for i in range(12)]


@pytest.fixture
def aliyun(tmp_path: Path) -> Iterator[AliyunHarness]:
    harness = AliyunHarness(aliyun_config(tmp_path / "state"))
    yield harness
    harness.close()


def _image(aliyun: AliyunHarness) -> str:
    p = provider(aliyun)
    url = aliyun.put_object("images", "disk.qcow2", DISK)
    return str(available(p, p.create_image(url_request(url)).external_id).external_id)


def test_twelve_accounts_take_two_modify_calls_and_one_describe(aliyun: AliyunHarness) -> None:
    image_id = _image(aliyun)
    sharer = InstrumentedProvider(provider(aliyun)).sharer
    assert sharer is not None
    before = aliyun.calls()

    sharer.change_members(image_id, ACCOUNTS, [])
    listed = sharer.list_members(image_id)

    calls = aliyun.calls()
    assert calls["ModifyImageSharePermission"] - before.get("ModifyImageSharePermission", 0) == 2
    assert (
        calls["DescribeImageSharePermission"] - before.get("DescribeImageSharePermission", 0) == 1
    )
    assert listed == [Member(member_id=a, state=MemberState.SHARED) for a in ACCOUNTS]

    sharer.change_members(image_id, [], ACCOUNTS[:11])
    assert sharer.list_members(image_id) == [
        Member(member_id=ACCOUNTS[11], state=MemberState.SHARED)
    ]


def test_the_emulator_pages_and_refuses_as_ecs_does(aliyun: AliyunHarness) -> None:
    image_id = _image(aliyun)
    provider(aliyun).change_members(image_id, ACCOUNTS, [])
    client = aliyun.client()

    def describe(**fields: Any) -> Any:
        request = ecs.DescribeImageSharePermissionRequest(region_id=REGION, **fields)
        return client.describe_image_share_permission(request).body

    page = describe(image_id=image_id, page_number=2, page_size=10)
    assert (page.total_count, page.page_number, page.page_size) == (12, 2, 10)
    assert [a.aliyun_id for a in page.accounts.account] == ACCOUNTS[10:]
    assert describe(image_id=image_id).page_size == 10  # ECS's default page
    with pytest.raises(Exception, match="PageSize"):
        describe(image_id=image_id, page_size=101)
    with pytest.raises(Exception, match=r"InvalidImageId\.NotFound"):
        describe(image_id="m-missing")
    with pytest.raises(NotFound):
        provider(aliyun).list_members("m-missing")


def test_member_ids_are_judged_before_any_call(aliyun: AliyunHarness) -> None:
    p = provider(aliyun)
    assert p.member_problem(["1234567890"]) is None
    problem = p.member_problem(["123", "project-a", str(2**63)])
    assert problem is not None and "'project-a'" in problem and str(2**63) in problem
    assert "'123'" not in problem
    with pytest.raises(InvalidInput):  # what ECS itself says, had the check been skipped
        p.change_members(_image(aliyun), ["project-a"], [])
    with pytest.raises(Unsupported, match=r"spec\.sharing\.accept"):
        p.accept_shared("m-any")


def _reconcile(handle: ProviderHandle, obj: ImageObject) -> Outcome:
    return ImageReconciler(BACKOFF).reconcile(obj, handle)


def test_the_image_reconciler_shares_reconciles_and_unshares(aliyun: AliyunHarness) -> None:
    image_id = _image(aliyun)
    inner = provider(aliyun)
    wrapped = InstrumentedProvider(inner)
    handle = ProviderHandle("ali", wrapped, ImageObserver(wrapped, max_age=0.0))
    url = aliyun.put_object("images", "disk.qcow2", DISK)

    def spec(sharing: dict[str, Any] | None) -> ImageSpec:
        extra: dict[str, Any] = {} if sharing is None else {"sharing": sharing}
        return url_request(url, **extra).spec

    obj = ImageObject(
        name="ubuntu",
        namespace="ns",
        uid="7d4b1a52-0c1e-4d8e-9f00-1234567890ab",
        generation=1,
        annotations={},
        spec=spec(_members("1111111111", "2222222222")),
        status={"externalID": image_id},
    )

    shared = _reconcile(handle, obj)

    assert _ready(shared)
    assert [(m["id"], m["state"]) for m in shared.status["sharing"]] == [
        ("1111111111", "Shared"),
        ("2222222222", "Shared"),
    ]
    assert aliyun.images()[image_id]["IsSelfShared"] == "True"

    inner.change_members(image_id, ["3333333333"], [])  # shared in the console meanwhile
    fewer = replace(obj, spec=spec(_members("2222222222")), status=shared.status, generation=2)
    narrowed = _reconcile(handle, fewer)
    assert _ready(narrowed)
    assert [m.member_id for m in inner.list_members(image_id)] == ["2222222222"]
    assert [m["id"] for m in narrowed.status["sharing"]] == ["2222222222"]

    gone = replace(obj, spec=spec(None), status=narrowed.status, generation=3)
    unshared = _reconcile(handle, gone)
    assert _ready(unshared)
    assert inner.list_members(image_id) == []
    assert unshared.status.get("sharing") is None
    assert aliyun.images()[image_id]["IsSelfShared"] == "False"


def _members(*ids: str) -> dict[str, Any]:
    return {"members": [{"id": i} for i in ids]}


def _ready(outcome: Outcome) -> bool:
    ready = condition(outcome.status, "Ready")
    return ready is not None and ready["status"] == "True"
