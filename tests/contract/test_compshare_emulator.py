"""Contract tests of the emulator's CompShare vendor, driven by the official UCloud SDK.

Every call goes through `ucloud-sdk-python3` (its typed `ucompshare` methods or its generic
`invoke`), exactly as the provider sends it; a few tests hand-build wire requests (GET, JSON,
tampered or unsigned ones), still signed with the SDK's own `Credential`. Lifecycles are
checked with a manual clock, so no test sleeps.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from ucloud.client import Client  # type: ignore[import-untyped]
from ucloud.core.auth import Credential  # type: ignore[import-untyped]
from ucloud.core.exc import (  # type: ignore[import-untyped]
    HTTPStatusException,
    RetCodeException,
    ValidationException,
)
from ucloud.core.typesystem import encoder  # type: ignore[import-untyped]
from ucloud.core.utils.middleware import Middleware  # type: ignore[import-untyped]

from image_operator_dev.emulator.clock import Clock, ManualClock
from image_operator_dev.emulator.config import CompShareSettings, EmulatorConfig
from image_operator_dev.emulator.server import EmulatorThread

PUBLIC_KEY = "contract-public-key"
PRIVATE_KEY = "contract-private-key"
OTHER_PUBLIC_KEY = "other-account-public-key"
OTHER_PRIVATE_KEY = "other-account-private-key"
REGION, ZONE, OTHER_ZONE = "cn-wlcb", "cn-wlcb-01", "cn-wlcb-02"
CONTAINER, VM = "uhost-container1", "uhost-vm1"
MAKING, REVIEW = 10.0, 60.0

# Seed 000's Python example, transcribed as is; only the image ID must name a real image.
SEED_REQUEST: dict[str, Any] = {
    "CompShareImageId": "compshareImage-xxxx",
    "CommunityImageName": "我的AI环境",
    "VersionName": "v1.0",
    "Price": 0,
    "Tags": ["深度学习", "PyTorch"],
    "Description": "预装PyTorch 2.1和CUDA 12.1",
}
COVER = base64.b64encode(b"\x89PNG\r\n\x1a\n fake cover").decode()


def sdk(url: str, public_key: str = PUBLIC_KEY, private_key: str = PRIVATE_KEY) -> Any:
    """The SDK's ucompshare client, quiet (its default middleware logs every call)."""
    config = {
        "region": REGION,
        "public_key": public_key,
        "private_key": private_key,
        "base_url": url,
    }
    return Client(config, middleware=Middleware()).ucompshare()


@dataclass
class CompShare:
    """A running emulator with the CompShare vendor, an SDK client and an admin client."""

    thread: EmulatorThread
    clock: Clock
    url: str = ""
    client: Any = None
    admin: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def __post_init__(self) -> None:
        self.url = self.thread.start()["compshare"]
        self.client = sdk(self.url)

    def close(self) -> None:
        self.admin.close()
        self.thread.stop()

    def state(self) -> dict[str, Any]:
        return dict(self.admin.get(f"{self.url}/_emulator/state").raise_for_status().json())

    def reset_stats(self) -> None:
        self.admin.delete(f"{self.url}/_emulator/stats").raise_for_status()

    def calls(self) -> int:
        """How many API calls the emulator answered since the last reset."""
        stats = self.admin.get(f"{self.url}/_emulator/stats").raise_for_status().json()
        return int(stats["total"])

    def set_faults(self, **faults: Any) -> None:
        self.admin.put(f"{self.url}/_emulator/faults", json=faults).raise_for_status()

    def make_image(self, name: str, instance: str = CONTAINER, **extra: Any) -> str:
        answer = self.client.create_comp_share_custom_image(
            {"Zone": ZONE, "Name": name, "UHostId": instance, **extra}
        )
        return str(answer["CompShareImageId"])

    def describe(self, image_id: str) -> dict[str, Any]:
        answer = self.client.describe_comp_share_custom_images(
            {"Zone": ZONE, "CompShareImageId": image_id}
        )
        (image,) = answer["ImageSet"]
        return dict(image)

    def groups(self, **filters: str) -> list[dict[str, Any]]:
        answer = self.client.describe_self_community_images({"Zone": ZONE, **filters})
        return [dict(group) for group in answer["ImageSetGroup"]]

    def raw(
        self,
        params: dict[str, Any],
        *,
        private_key: str = PRIVATE_KEY,
        public_key: str = PUBLIC_KEY,
        method: str = "POST",
        as_json: bool = False,
        after_signing: Callable[[dict[str, str]], None] | None = None,
    ) -> httpx.Response:
        """A hand-built wire request, signed with the SDK's own Credential."""
        payload = encoder.encode({"Region": REGION, **params})
        payload["Signature"] = Credential(public_key, private_key).verify_ac(payload)
        if after_signing is not None:
            after_signing(payload)
        if method == "GET":
            return self.admin.get(self.url + "/", params=payload)
        if as_json:
            return self.admin.post(self.url + "/", json=payload)
        return self.admin.post(self.url + "/", data=payload)


def settings(**overrides: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "keys": {PUBLIC_KEY: PRIVATE_KEY, OTHER_PUBLIC_KEY: OTHER_PRIVATE_KEY},
        "regions": {REGION: [ZONE, OTHER_ZONE]},
        "making_seconds": MAKING,
        "review_seconds": REVIEW,
        **overrides,
    }


def start_compshare(state_dir: Path, clock: Clock, **overrides: Any) -> CompShare:
    """An emulator serving only CompShare (the Argon vendor switched off) on `state_dir`."""
    config = EmulatorConfig.model_validate(
        {
            "state_dir": state_dir,
            "argon": {"enabled": False},
            "compshare": settings(**overrides),
        }
    )
    return CompShare(EmulatorThread(config, clock=clock), clock)


StartCompShare = Callable[..., CompShare]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def start(tmp_path: Path, clock: ManualClock) -> Iterator[StartCompShare]:
    """Start an emulator (a second call after closing the first is a restart on its state)."""
    running: list[CompShare] = []

    def launch(**overrides: Any) -> CompShare:
        emulator = start_compshare(tmp_path / "state", clock, **overrides)
        running.append(emulator)
        return emulator

    yield launch
    for emulator in running:
        emulator.close()


@pytest.fixture
def cs(start: StartCompShare) -> CompShare:
    return start()


def available_image(cs: CompShare, clock: ManualClock, name: str = "ai-env") -> str:
    image_id = cs.make_image(name)
    clock.advance(MAKING)
    assert cs.describe(image_id)["Status"] == "Available"
    return image_id


def refused(call: Callable[[], Any]) -> RetCodeException:
    with pytest.raises(RetCodeException) as error:
        call()
    return error.value


# --- seed 000: PublishCompShareImage ---------------------------------------------------------


def test_seed_example_request_is_accepted(cs: CompShare, clock: ManualClock) -> None:
    image_id = available_image(cs, clock)
    # The client exactly as the seed builds it (region, keys, base_url), default middleware.
    client = Client(
        {
            "region": "cn-wlcb",
            "public_key": PUBLIC_KEY,
            "private_key": PRIVATE_KEY,
            "base_url": cs.url,
        }
    ).ucompshare()

    answer = client.invoke("PublishCompShareImage", {**SEED_REQUEST, "CompShareImageId": image_id})

    assert answer == {"RetCode": 0, "Action": "PublishCompShareImageResponse"}
    (group,) = cs.groups(CompShareImageId=image_id)
    assert group["GroupId"].startswith("group-")
    assert group["ImageName"] == "我的AI环境"
    (version,) = group["Data"]
    assert version["Status"] == "Reviewing"
    assert version["VersionName"] == "v1.0"
    assert version["Tags"] == ["深度学习", "PyTorch"]
    assert version["Description"] == "预装PyTorch 2.1和CUDA 12.1"
    assert version["Price"] == 0.0
    assert version["Visibility"] == 0


def test_seed_request_without_version_name_is_refused_naming_it(
    cs: CompShare, clock: ManualClock
) -> None:
    image_id = available_image(cs, clock)
    request = {k: v for k, v in SEED_REQUEST.items() if k != "VersionName"}

    error = refused(
        lambda: cs.client.invoke("PublishCompShareImage", {**request, "CompShareImageId": image_id})
    )

    assert error.code == 220
    assert error.message == "Missing params [VersionName]"
    assert cs.groups() == []


def test_typed_sdk_method_cannot_send_the_seed_request(cs: CompShare, clock: ManualClock) -> None:
    image_id = available_image(cs, clock)
    request = {**SEED_REQUEST, "CompShareImageId": image_id}

    # The SDK's own schema wants a Zone the seed does not send ...
    with pytest.raises(ValidationException, match="Zone"):
        cs.client.publish_comp_share_image(dict(request))
    # ... and with one, it silently drops VersionName, which the emulator then misses.
    error = refused(lambda: cs.client.publish_comp_share_image({**request, "Zone": ZONE}))
    assert (error.code, error.message) == (220, "Missing params [VersionName]")


@pytest.mark.parametrize("version", ["1.0", "v1", "v1.0-beta", "V1.0", "v1..0", "version1.0"])
def test_a_version_name_that_is_not_like_v1_0_is_refused(
    cs: CompShare, clock: ManualClock, version: str
) -> None:
    image_id = available_image(cs, clock)

    error = refused(
        lambda: cs.client.invoke(
            "PublishCompShareImage",
            {**SEED_REQUEST, "CompShareImageId": image_id, "VersionName": version},
        )
    )

    assert error.code == 230
    assert error.message.startswith("Params [VersionName] not available: must be a version")


@pytest.mark.parametrize("version", ["v1.0", "v2.10", "v1.0.1"])
def test_version_names_like_v1_0_are_accepted(
    cs: CompShare, clock: ManualClock, version: str
) -> None:
    image_id = available_image(cs, clock)
    cs.client.invoke(
        "PublishCompShareImage", {"CompShareImageId": image_id, "VersionName": version}
    )
    assert cs.groups()[0]["Data"][0]["VersionName"] == version


def test_every_seed_field_is_stored_and_shown(cs: CompShare, clock: ManualClock) -> None:
    image_id = available_image(cs, clock)

    cs.client.invoke(
        "PublishCompShareImage",
        {
            "Zone": ZONE,
            "CompShareImageId": image_id,
            "CommunityImageName": "我的AI环境",
            "VersionName": "v1.0",
            "VersionDesc": "首次发布",
            "Price": 1.5,
            "Cover": COVER,
            "Tags": ["深度学习", "PyTorch"],
            "Description": "预装PyTorch 2.1",
            "Readme": "# 使用说明",
            "SupportedGpuTypes": ["4090", "A100"],
            "AutoStart": True,
        },
    )
    clock.advance(REVIEW)

    (version,) = cs.groups(CompShareImageId=image_id)[0]["Data"]
    assert version["Status"] == "Available"
    assert version["VersionDesc"] == "首次发布"
    assert version["Price"] == 1.5
    assert version["ImageCharge"] is True
    assert version["Cover"].startswith("https://")  # the API answers a URL for the picture
    assert version["Readme"] == "# 使用说明"
    assert version["AutoStart"] is True
    assert version["PubTime"] == int(clock())
    # The SDK's response model has no SupportedGpuTypes; the emulator's state shows them.
    (dumped,) = cs.state()["groups"]
    assert dumped["Data"][0]["SupportedGpuTypes"] == ["4090", "A100"]


@pytest.mark.parametrize(
    ("extra", "field", "why"),
    [
        ({"Price": -1}, "Price", "must be a number ≥ 0"),
        ({"Price": "free"}, "Price", "must be a number"),
        ({"Cover": "not base64!"}, "Cover", "must be Base64"),
        ({"Tags": ["a", "b", "c", "d"]}, "Tags", "at most 3 items"),
        ({"Tags": [""]}, "Tags", "item 0 must be 1-32 characters"),
        ({"AutoStart": "maybe"}, "AutoStart", "must be true or false"),
        ({"CommunityImageName": "x" * 65}, "CommunityImageName", "must be 1-64 characters"),
        ({"SupportedGpuTypes": ["x" * 33]}, "SupportedGpuTypes", "item 0 must be 1-32"),
        ({"Version": "v1.0"}, "Version", "accepts no such parameter"),
    ],
)
def test_publish_parameters_are_checked(
    cs: CompShare, clock: ManualClock, extra: dict[str, Any], field: str, why: str
) -> None:
    image_id = available_image(cs, clock)

    error = refused(
        lambda: cs.client.invoke(
            "PublishCompShareImage", {"CompShareImageId": image_id, "VersionName": "v1.0", **extra}
        )
    )

    assert error.code == 230
    assert error.message.startswith(f"Params [{field}] not available: ")
    assert why in error.message


def test_a_vm_image_cannot_be_published(cs: CompShare, clock: ManualClock) -> None:
    image_id = cs.make_image("vm-made", instance=VM)
    clock.advance(MAKING)
    assert cs.describe(image_id)["Container"] == "False"

    error = refused(
        lambda: cs.client.invoke(
            "PublishCompShareImage", {**SEED_REQUEST, "CompShareImageId": image_id}
        )
    )

    assert error.code == 8105
    assert "only images made from a container can be published" in error.message
    assert cs.groups() == []


def test_an_image_still_being_made_cannot_be_published(cs: CompShare, clock: ManualClock) -> None:
    image_id = cs.make_image("not-yet")
    clock.advance(MAKING / 2)

    error = refused(
        lambda: cs.client.invoke(
            "PublishCompShareImage", {**SEED_REQUEST, "CompShareImageId": image_id}
        )
    )

    assert error.code == 8104
    assert "is Making; only an Available image can be published" in error.message


def test_a_failed_image_cannot_be_published(start: StartCompShare, clock: ManualClock) -> None:
    cs = start(fail_image_pattern="^broken")
    image_id = cs.make_image("broken-env")
    clock.advance(MAKING)

    error = refused(
        lambda: cs.client.invoke(
            "PublishCompShareImage", {**SEED_REQUEST, "CompShareImageId": image_id}
        )
    )

    assert error.code == 8104
    assert "is UnAvailable" in error.message


def test_an_unknown_image_cannot_be_published(cs: CompShare) -> None:
    error = refused(lambda: cs.client.invoke("PublishCompShareImage", SEED_REQUEST))
    assert (error.code, error.message) == (8101, "CompShareImage [compshareImage-xxxx] not found")


def test_review_publishes_after_review_seconds(cs: CompShare, clock: ManualClock) -> None:
    image_id = available_image(cs, clock)
    cs.client.invoke("PublishCompShareImage", {**SEED_REQUEST, "CompShareImageId": image_id})

    clock.advance(REVIEW - 1)
    group = cs.groups()[0]
    assert (group["Status"], group["Data"][0]["Status"]) == ("UnAvailable", "Reviewing")
    assert cs.describe(image_id)["Visibility"] == 0

    clock.advance(1)
    group = cs.groups()[0]
    assert (group["Status"], group["Data"][0]["Status"]) == ("Available", "Available")
    assert group["Data"][0]["Visibility"] == 1
    image = cs.describe(image_id)
    assert (image["Visibility"], image["GroupId"], image["VersionName"]) == (
        1,
        group["GroupId"],
        "v1.0",
    )
    assert cs.client.describe_self_community_images({"Zone": ZONE})["AvailableTotalCount"] == 1


def test_review_rejects_names_matching_the_pattern_with_a_reason(
    start: StartCompShare, clock: ManualClock
) -> None:
    cs = start(reject_listing_pattern="违规", reject_reason="the cover shows a trademark")
    image_id = available_image(cs, clock)
    cs.client.invoke(
        "PublishCompShareImage",
        {"CompShareImageId": image_id, "VersionName": "v1.0", "CommunityImageName": "违规镜像"},
    )
    assert cs.groups()[0]["Data"][0]["Status"] == "Reviewing"
    assert "FailedReason" not in cs.groups()[0]["Data"][0]  # the verdict is not known before

    clock.advance(REVIEW)

    group = cs.groups()[0]
    (version,) = group["Data"]
    assert version["Status"] == "UnAvailable"
    assert version["FailedReason"] == "the cover shows a trademark"
    assert group["Status"] == "UnAvailable"
    assert cs.describe(image_id)["Visibility"] == 0


def test_a_rejected_image_may_be_submitted_again(start: StartCompShare, clock: ManualClock) -> None:
    cs = start(reject_listing_pattern="^bad")
    image_id = available_image(cs, clock)
    cs.client.invoke(
        "PublishCompShareImage",
        {"CompShareImageId": image_id, "VersionName": "v1.0", "CommunityImageName": "bad name"},
    )
    clock.advance(REVIEW)
    group_id = cs.groups()[0]["GroupId"]

    cs.client.invoke(
        "PublishCompShareImage",
        {
            "CompShareImageId": image_id,
            "VersionName": "v1.0",
            "CommunityImageName": "good name",
            "GroupId": group_id,
        },
    )

    (group,) = cs.groups()
    assert [v["Status"] for v in group["Data"]] == ["Reviewing"]  # the rejected one withdrawn
    clock.advance(REVIEW)
    assert cs.groups()[0]["Data"][0]["Status"] == "Available"


def test_an_image_in_review_or_published_cannot_be_published_again(
    cs: CompShare, clock: ManualClock
) -> None:
    image_id = available_image(cs, clock)
    request = {**SEED_REQUEST, "CompShareImageId": image_id}
    cs.client.invoke("PublishCompShareImage", request)

    error = refused(lambda: cs.client.invoke("PublishCompShareImage", dict(request)))
    assert error.code == 8108
    assert "already in review as version v1.0" in error.message

    clock.advance(REVIEW)
    error = refused(lambda: cs.client.invoke("PublishCompShareImage", dict(request)))
    assert error.code == 8108
    assert "already published" in error.message
    assert len(cs.groups()) == 1


def test_a_second_version_joins_the_same_group(cs: CompShare, clock: ManualClock) -> None:
    first = available_image(cs, clock, "env-v1")
    cs.client.invoke("PublishCompShareImage", {**SEED_REQUEST, "CompShareImageId": first})
    clock.advance(REVIEW)
    group_id = cs.groups()[0]["GroupId"]
    second = available_image(cs, clock, "env-v2")

    cs.client.invoke(
        "PublishCompShareImage",
        {
            "CompShareImageId": second,
            "GroupId": group_id,
            "VersionName": "v1.1",
            "VersionDesc": "升级CUDA",
        },
    )

    (group,) = cs.groups(GroupId=group_id)
    assert [(v["CompShareImageId"], v["VersionName"], v["Status"]) for v in group["Data"]] == [
        (first, "v1.0", "Available"),
        (second, "v1.1", "Reviewing"),
    ]
    assert group["Data"][1]["Name"] == "我的AI环境"  # the listing's name carries over
    assert cs.groups(CompShareImageId=second)[0]["GroupId"] == group_id
    assert cs.describe(second)["GroupId"] == group_id


def test_a_version_name_is_unique_within_its_group(cs: CompShare, clock: ManualClock) -> None:
    first = available_image(cs, clock, "env-v1")
    cs.client.invoke("PublishCompShareImage", {**SEED_REQUEST, "CompShareImageId": first})
    group_id = cs.groups()[0]["GroupId"]
    second = available_image(cs, clock, "env-v2")

    error = refused(
        lambda: cs.client.invoke(
            "PublishCompShareImage",
            {"CompShareImageId": second, "GroupId": group_id, "VersionName": "v1.0"},
        )
    )

    assert error.code == 8107
    assert "already has version v1.0" in error.message
    assert len(cs.groups()[0]["Data"]) == 1


def test_an_unknown_group_is_refused(cs: CompShare, clock: ManualClock) -> None:
    image_id = available_image(cs, clock)
    error = refused(
        lambda: cs.client.invoke(
            "PublishCompShareImage",
            {"CompShareImageId": image_id, "GroupId": "group-nope", "VersionName": "v1.0"},
        )
    )
    assert (error.code, error.message) == (8106, "Group [group-nope] not found")
    assert "GroupId" not in cs.describe(image_id)


# --- signature and the RPC envelope ------------------------------------------------------------


def test_a_wrong_private_key_fails_the_signature_check(cs: CompShare) -> None:
    client = sdk(cs.url, private_key="not-the-private-key")
    error = refused(lambda: client.describe_comp_share_custom_images({"Zone": ZONE}))
    assert (error.code, error.message) == (171, "Signature VerifyAC Error")


def test_a_tampered_request_fails_the_signature_check(cs: CompShare) -> None:
    def tamper(payload: dict[str, str]) -> None:
        payload["Zone"] = "cn-wlcb-02"  # changed after signing

    answer = cs.raw(
        {"Action": "DescribeCompShareCustomImages", "Zone": ZONE}, after_signing=tamper
    ).json()

    assert answer == {
        "RetCode": 171,
        "Message": "Signature VerifyAC Error",
        "Action": "DescribeCompShareCustomImagesResponse",
    }


def test_unsigned_and_unknown_key_requests_are_refused(cs: CompShare) -> None:
    def unsign(payload: dict[str, str]) -> None:
        del payload["Signature"]

    unsigned = cs.raw(
        {"Action": "DescribeCompShareCustomImages", "Zone": ZONE}, after_signing=unsign
    )
    assert (unsigned.status_code, unsigned.json()["RetCode"]) == (200, 170)
    client = sdk(cs.url, public_key="nobody", private_key="nothing")
    error = refused(lambda: client.describe_comp_share_custom_images({"Zone": ZONE}))
    assert (error.code, error.message) == (172, "User Not Exists")


def test_a_get_query_is_verified_like_a_form_and_json_is_refused(cs: CompShare) -> None:
    params = {"Action": "DescribeCompShareCustomImages", "Zone": ZONE}

    answer = cs.raw(params, method="GET")
    bad = cs.raw(params, method="GET", private_key="x").json()
    as_json = cs.raw(params, as_json=True).json()

    assert answer.json() == {
        "RetCode": 0,
        "Action": "DescribeCompShareCustomImagesResponse",
        "ImageSet": [],
        "TotalCount": 0,
    }
    assert answer.headers["X-UCLOUD-REQUEST-UUID"]  # what the SDK puts in its exceptions
    assert bad["RetCode"] == 171
    assert as_json["RetCode"] == 230 and "x-www-form-urlencoded" in as_json["Message"]


def test_missing_and_unknown_actions_are_refused(cs: CompShare) -> None:
    assert cs.raw({"Zone": ZONE}).json() == {
        "RetCode": 160,
        "Message": "Missing Action",
        "Action": "",
    }
    unknown = cs.raw({"Action": "DescribeEverything"}).json()
    assert unknown == {
        "RetCode": 161,
        "Message": "Action [DescribeEverything] not found",
        "Action": "DescribeEverythingResponse",
    }


def test_region_and_zone_must_exist(cs: CompShare) -> None:
    wrong_region = Client(
        {
            "region": "cn-sh2",
            "public_key": PUBLIC_KEY,
            "private_key": PRIVATE_KEY,
            "base_url": cs.url,
        },
        middleware=Middleware(),
    ).ucompshare()
    error = refused(lambda: wrong_region.describe_comp_share_custom_images({"Zone": ZONE}))
    assert (error.code, error.message.split(":")[0]) == (230, "Params [Region] not available")
    error = refused(lambda: cs.client.describe_comp_share_custom_images({"Zone": "cn-wlcb-09"}))
    assert (error.code, error.message.split(":")[0]) == (230, "Params [Zone] not available")
    answer = cs.raw(
        {"Action": "CreateCompShareCustomImage", "Name": "x", "UHostId": CONTAINER}
    ).json()
    assert (answer["RetCode"], answer["Message"]) == (220, "Missing params [Zone]")


def test_arrays_must_be_indexed_from_zero(cs: CompShare, clock: ManualClock) -> None:
    image_id = available_image(cs, clock)
    base = {"Action": "PublishCompShareImage", "CompShareImageId": image_id, "VersionName": "v1.0"}

    gap = cs.raw({**base, "Tags.0": "a", "Tags.2": "c"}).json()
    flat = cs.raw({**base, "Tags": "a"}).json()

    assert (gap["RetCode"], gap["Message"]) == (
        230,
        "Params [Tags] not available: array indices must run 0, 1, 2, … (got [0, 2])",
    )
    assert flat["RetCode"] == 230 and "send an array as Tags.0" in flat["Message"]


# --- custom images ---------------------------------------------------------------------------


def test_making_progresses_to_available(cs: CompShare, clock: ManualClock) -> None:
    image_id = cs.make_image("ai-env", Description="PyTorch 2.1")
    progress = {"Zone": ZONE, "CompShareImageId": image_id}

    assert cs.describe(image_id)["Status"] == "Making"
    assert cs.client.get_comp_share_image_create_progress(progress)["Process"] == 0.0
    clock.advance(MAKING / 4)
    quarter = cs.client.get_comp_share_image_create_progress(progress)
    assert (quarter["Process"], quarter["RemainingDuration"], quarter["TotalDuration"]) == (
        25.0,
        "8",
        "10",
    )
    clock.advance(MAKING)
    done = cs.client.get_comp_share_image_create_progress(progress)
    assert done["Process"] == 100.0

    image = cs.describe(image_id)
    assert image["Status"] == "Available"
    assert image["Name"] == "ai-env"
    assert image["Description"] == "PyTorch 2.1"
    assert image["Container"] == "True"
    assert image["ImageType"] == "Custom"


def test_a_name_matching_the_fail_pattern_ends_unavailable(
    start: StartCompShare, clock: ManualClock
) -> None:
    cs = start(fail_image_pattern="^broken")
    image_id = cs.make_image("broken-env")

    clock.advance(MAKING / 2)

    image = cs.describe(image_id)
    assert image["Status"] == "UnAvailable"
    assert "broken-env" in image["FailedReason"]


def test_create_checks_instance_name_and_uniqueness(cs: CompShare) -> None:
    cs.make_image("taken")

    unknown = refused(lambda: cs.make_image("other", instance="uhost-nope"))
    duplicate = refused(lambda: cs.make_image("taken"))
    bad_name = refused(lambda: cs.make_image("no spaces allowed"))

    assert (unknown.code, unknown.message) == (8102, "UHost [uhost-nope] not found")
    assert duplicate.code == 8103 and "[taken] already exists" in duplicate.message
    assert bad_name.code == 230 and bad_name.message.startswith("Params [Name] not available")


def test_softwares_are_taken_as_the_sdk_sends_them(cs: CompShare) -> None:
    image_id = cs.make_image(
        "with-softwares", Softwares={"Application": ["jupyter"], "CUDAVersion": "12.1"}
    )
    assert cs.describe(image_id)["Softwares"] == {
        "Applications": ["jupyter"],
        "CUDAVersion": "12.1",
    }


def test_describe_pages_newest_first(cs: CompShare, clock: ManualClock) -> None:
    ids = []
    for index in range(5):
        ids.append(cs.make_image(f"img{index}"))
        clock.advance(1)

    page = cs.client.describe_comp_share_custom_images({"Zone": ZONE, "Offset": 1, "Limit": 2})

    assert page["TotalCount"] == 5
    assert [i["CompShareImageId"] for i in page["ImageSet"]] == [ids[3], ids[2]]
    error = refused(
        lambda: cs.client.describe_comp_share_custom_images({"Zone": ZONE, "Limit": 101})
    )
    assert error.code == 230 and "Limit" in error.message


def test_images_live_in_their_zone_and_copies_may_move(cs: CompShare, clock: ManualClock) -> None:
    image_id = available_image(cs, clock)
    other_zone = {"Zone": OTHER_ZONE, "CompShareImageId": image_id}

    assert cs.client.describe_comp_share_custom_images(other_zone)["ImageSet"] == []
    error = refused(lambda: cs.client.terminate_comp_share_custom_image(other_zone))
    assert (error.code, error.message) == (
        8101,
        f"CompShareImage [{image_id}] not found in zone {OTHER_ZONE}",
    )
    moved = cs.client.copy_comp_share_custom_image(other_zone)["NewCompShareImageId"]
    listing = cs.client.describe_comp_share_custom_images({"Zone": OTHER_ZONE})
    assert [i["CompShareImageId"] for i in listing["ImageSet"]] == [moved]
    assert cs.describe(image_id)["Status"] == "Available"  # the source stays where it was


def test_accounts_do_not_see_each_other(cs: CompShare) -> None:
    cs.make_image("mine")
    other = sdk(cs.url, OTHER_PUBLIC_KEY, OTHER_PRIVATE_KEY)

    assert other.describe_comp_share_custom_images({"Zone": ZONE})["TotalCount"] == 0
    other.create_comp_share_custom_image({"Zone": ZONE, "Name": "mine", "UHostId": CONTAINER})


def test_copy_makes_a_new_image_of_the_same_kind(cs: CompShare, clock: ManualClock) -> None:
    source = available_image(cs, clock)

    copy_id = cs.client.copy_comp_share_custom_image(
        {"CompShareImageId": source, "TargetImageName": "ai-env-copy"}
    )["NewCompShareImageId"]

    assert copy_id != source
    copied = cs.describe(copy_id)
    assert (copied["Status"], copied["Name"], copied["Container"]) == (
        "Making",
        "ai-env-copy",
        "True",
    )
    clock.advance(MAKING)
    assert cs.describe(copy_id)["Status"] == "Available"
    unnamed = cs.client.copy_comp_share_custom_image({"CompShareImageId": source})
    assert cs.describe(unnamed["NewCompShareImageId"])["Name"] == "ai-env-copy2"


def test_only_an_available_image_can_be_copied(cs: CompShare) -> None:
    making = cs.make_image("making")
    error = refused(lambda: cs.client.copy_comp_share_custom_image({"CompShareImageId": making}))
    assert error.code == 8104


def test_update_changes_the_description(cs: CompShare, clock: ManualClock) -> None:
    image_id = available_image(cs, clock)

    cs.client.update_comp_share_image(
        {"Zone": ZONE, "CompShareImageId": image_id, "Description": "新描述", "Tags": ["a"]}
    )

    image = cs.describe(image_id)
    assert (image["Description"], image["Tags"]) == ("新描述", ["a"])


def test_terminate_removes_the_image_and_takes_its_version_offline(
    cs: CompShare, clock: ManualClock
) -> None:
    image_id = available_image(cs, clock)
    cs.client.invoke("PublishCompShareImage", {**SEED_REQUEST, "CompShareImageId": image_id})
    clock.advance(REVIEW)

    cs.client.terminate_comp_share_custom_image({"Zone": ZONE, "CompShareImageId": image_id})

    listing = cs.client.describe_comp_share_custom_images(
        {"Zone": ZONE, "CompShareImageId": image_id}
    )
    assert listing["ImageSet"] == []
    group = cs.groups()[0]
    assert (group["Status"], group["Data"][0]["Status"]) == ("UnAvailable", "Offline")
    again = refused(
        lambda: cs.client.terminate_comp_share_custom_image(
            {"Zone": ZONE, "CompShareImageId": image_id}
        )
    )
    assert again.code == 8101


# --- persistence, faults, logs, config -------------------------------------------------------


def test_images_and_reviews_survive_a_restart(start: StartCompShare, clock: ManualClock) -> None:
    first = start()
    image_id = available_image(first, clock)
    first.client.invoke("PublishCompShareImage", {**SEED_REQUEST, "CompShareImageId": image_id})
    making = first.make_image("half-made")
    clock.advance(MAKING / 2)
    first.close()

    second = start()
    assert second.describe(making)["Status"] == "Making"
    assert second.groups()[0]["Data"][0]["Status"] == "Reviewing"
    clock.advance(REVIEW)
    assert second.describe(making)["Status"] == "Available"
    assert second.groups()[0]["Data"][0]["Status"] == "Available"


def test_faults_answer_in_ucloud_format(cs: CompShare) -> None:
    cs.set_faults(error_rate=1.0)
    with pytest.raises(HTTPStatusException) as unavailable:
        cs.client.describe_comp_share_custom_images({"Zone": ZONE})
    assert unavailable.value.status_code == 503
    body = cs.raw({"Action": "DescribeCompShareCustomImages", "Zone": ZONE}).json()
    assert body["RetCode"] == 150 and "temporarily unavailable" in body["Message"]

    cs.set_faults(throttle_rate=1.0, retry_after_seconds=4)
    throttled = cs.raw({"Action": "DescribeCompShareCustomImages", "Zone": ZONE})
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "4")
    assert throttled.json()["RetCode"] != 0


def test_the_request_log_shows_no_key_and_no_signature(
    cs: CompShare, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="image_operator_dev.emulator"):
        cs.client.describe_comp_share_custom_images({"Zone": ZONE})
        cs.raw({"Action": "DescribeCompShareCustomImages", "Zone": ZONE}, method="GET")

    lines = [r.getMessage() for r in caplog.records if r.name.endswith(".compshare")]
    assert len(lines) == 2
    for line in lines:
        assert PUBLIC_KEY not in line and PRIVATE_KEY not in line and "Signature" not in line
    assert PUBLIC_KEY not in str(cs.state())


def test_settings_are_checked() -> None:
    assert CompShareSettings().enabled is False
    with pytest.raises(ValidationError, match="regular expression"):
        CompShareSettings(reject_listing_pattern="(")
    with pytest.raises(ValidationError):
        CompShareSettings(instances={"uhost-x": "bare-metal"})
    with pytest.raises(ValidationError):
        CompShareSettings(keys={})
