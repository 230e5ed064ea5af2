"""The `ucloudstack` provider against the emulator: every SDK call it makes, every error mapping."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from image_operator.api.image import ImageSpec, OsInfo
from image_operator.api.provider import ImageProviderSpec
from image_operator.providers.capabilities import LocalImport
from image_operator.providers.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    Throttled,
    Transient,
    Unsupported,
)
from image_operator.providers.factory import build_provider
from image_operator.providers.model import CloudState, ImageRequest
from image_operator.providers.ucloudstack import UCloudStackProvider, cloud_name
from image_operator.providers.ucloudstack_wire import UID_TAG
from image_operator_dev.emulator.testing import poll_until
from tests.contract.test_ucloudstack_emulator import (
    COMPANY,
    MIN_PART,
    OTHER_COMPANY,
    PRIVATE_KEY,
    PUBLIC_KEY,
    FileServer,
    UCloudStackHarness,
    qcow2_file,
    tag,
    ucloudstack_config,
)
from tests.loopback import LOOPBACK_ENDPOINTS

UID = "4f3ede4c-1111-2222-3333-444455556666"
UBUNTU = {"type": "Linux", "distribution": "Ubuntu", "version": "22.04", "arch": "x86_64"}


@pytest.fixture
def harnesses() -> Iterator[list[UCloudStackHarness]]:
    started: list[UCloudStackHarness] = []
    yield started
    for harness in started:
        harness.close()


def start(
    harnesses: list[UCloudStackHarness], state_dir: Path, **section: Any
) -> UCloudStackHarness:
    harness = UCloudStackHarness(ucloudstack_config(state_dir, **section))
    harnesses.append(harness)
    return harness


@pytest.fixture
def ucs(harnesses: list[UCloudStackHarness], state_dir: Path) -> UCloudStackHarness:
    return start(harnesses, state_dir)


@pytest.fixture
def files() -> Iterator[FileServer]:
    server = FileServer()
    yield server
    server.close()


def provider(ucs: UCloudStackHarness, **overrides: Any) -> UCloudStackProvider:
    settings: dict[str, Any] = {
        "endpoint": ucs.url,
        "region": "cn",
        "company_id": COMPANY,
        "public_key": PUBLIC_KEY,
        "private_key": PRIVATE_KEY,
        **overrides,
    }
    return UCloudStackProvider(**settings)


def spec(source: dict[str, Any], **fields: Any) -> ImageSpec:
    return ImageSpec.model_validate(
        {"providerRef": {"name": "ucs"}, "displayName": "An image", "source": source, **fields}
    )


def vm_request(name: str = "web", uid: str = UID, **fields: Any) -> ImageRequest:
    source = {"vm": {"vmID": fields.pop("vm_id", "vm-abc123")}}
    return ImageRequest(idempotency_key=uid, name=name, namespace="ns", spec=spec(source, **fields))


def url_request(url: str, name: str = "imported", uid: str = UID, **source: Any) -> ImageRequest:
    body = {"url": url, "format": "qcow2", "os": UBUNTU, **source}
    return ImageRequest(idempotency_key=uid, name=name, namespace="ns", spec=spec({"url": body}))


def wait_state(p: UCloudStackProvider, image_id: str, state: CloudState) -> list[Any]:
    return poll_until(lambda: p.get_image(image_id), lambda image: image.state is state)


def wait_gone(p: UCloudStackProvider, image_id: str) -> None:
    poll_until(lambda: p.get_images([image_id])[image_id], lambda image: image is None)


# --- probe, create, find, describe ----------------------------------------------------------


def test_probe_names_region_and_counts_images_but_never_the_secret_company(
    ucs: UCloudStackHarness,
) -> None:
    p = provider(ucs)
    assert p.probe() == "ucloudstack region cn: 0 images"
    assert str(COMPANY) not in p.probe()  # a Secret key: the answer goes to status and events
    ucs.make_image()
    assert p.probe().endswith(": 1 images")


def test_vm_image_is_created_tagged_and_becomes_available(ucs: UCloudStackHarness) -> None:
    p = provider(ucs, project_id="project-b")
    request = vm_request(description="web tier", tags={"team": "platform", "环境": "测试"})

    created = p.create_image(request)

    assert created.state is CloudState.PENDING
    info = ucs.info(created.external_id)
    assert info is not None
    assert info["ImageName"] == "web" and info["ImageDescription"] == "web tier"
    assert info["ProjectID"] == "project-b"
    assert info["ImageFrom"] == "vm-abc123-boot"
    assert {(t["Key"], t["Value"]) for t in info["Tags"]} == {
        (UID_TAG, UID),
        ("team", "platform"),
        ("环境", "测试"),
    }
    seen = wait_state(p, created.external_id, CloudState.AVAILABLE)
    assert seen[-1].progress == 100
    assert {image.state for image in seen} <= {
        CloudState.PENDING,
        CloudState.CREATING,
        CloudState.AVAILABLE,
    }
    assert not p.needs_update(request, seen[-1])


def test_disk_and_storage_set_are_passed(ucs: UCloudStackHarness) -> None:
    source = {"vm": {"vmID": "vm-abc123", "diskID": "disk-9x", "storageSetType": "StorageSetSSD"}}
    request = ImageRequest(idempotency_key=UID, name="disk", namespace="ns", spec=spec(source))

    created = provider(ucs).create_image(request)

    assert ucs.info(created.external_id)["ImageFrom"] == "disk-9x"  # type: ignore[index]


def test_long_kubernetes_names_are_cut_to_the_50_characters_allowed(
    ucs: UCloudStackHarness,
) -> None:
    request = vm_request(name="a" * 60)
    created = provider(ucs).create_image(request)

    assert cloud_name(request) == "a" * 50
    assert ucs.info(created.external_id)["ImageName"] == "a" * 50  # type: ignore[index]


def test_find_image_recovers_a_create_by_its_uid_tag(ucs: UCloudStackHarness) -> None:
    p = provider(ucs)
    first, second = vm_request(uid="uid-1"), vm_request(uid="uid-2")  # same name
    assert p.find_image(first) is None

    made_first = p.create_image(first)
    assert p.find_image(second) is None
    made_second = p.create_image(second)

    found_first, found_second = p.find_image(first), p.find_image(second)
    assert found_first is not None and found_first.external_id == made_first.external_id
    assert found_second is not None and found_second.external_id == made_second.external_id


def test_find_image_pages_through_many_same_named_images(ucs: UCloudStackHarness) -> None:
    p = provider(ucs)
    target = p.create_image(vm_request(name="many", uid="the-one"))
    for i in range(104):  # newer, so listed first: the target is on the second page
        ucs.make_image("many", TagKeyValuePairs=[tag(UID_TAG, f"other-{i}")])
    found = p.find_image(vm_request(name="many", uid="the-one"))

    assert found is not None and found.external_id == target.external_id


def test_get_images_describes_a_batch_in_one_call(ucs: UCloudStackHarness) -> None:
    p = provider(ucs)
    ids = [p.create_image(vm_request(f"img{i}", uid=f"uid-{i}")).external_id for i in range(5)]
    ucs.http.delete("/_emulator/stats")

    described = p.get_images([*ids, "image-missing"])

    assert described["image-missing"] is None
    assert all((image := described[i]) is not None and image.external_id == i for i in ids)
    assert ucs.stats()["routes"] == {"POST /": {"count": 1, "statuses": {"200": 1}}}


def test_a_failed_making_reports_failed_with_the_reason(
    harnesses: list[UCloudStackHarness], state_dir: Path
) -> None:
    ucs = start(harnesses, state_dir, fail_vm_pattern="doomed")
    p = provider(ucs)

    created = p.create_image(vm_request(vm_id="vm-doomed1"))

    failed = wait_state(p, created.external_id, CloudState.FAILED)[-1]
    assert failed.message is not None and "vm-doomed1" in failed.message


# --- remote import ---------------------------------------------------------------------------


def test_url_import_downloads_the_file_and_checks_the_os_first(
    ucs: UCloudStackHarness, files: FileServer
) -> None:
    p = provider(ucs)
    content = qcow2_file(payload=64 * 1024)
    url = files.add("/images/web.qcow2", content)

    created = p.create_image(url_request(url))

    available = wait_state(p, created.external_id, CloudState.AVAILABLE)[-1]
    assert available.raw["ImportType"] == "Remote"
    assert available.raw["OSName"] == "Ubuntu 22.04 x86_64"
    assert files.requests == ["/images/web.qcow2"]
    assert p.download(p.get_download_url(created.external_id)) == content


def test_url_import_refuses_what_the_cloud_would_before_calling_it(
    ucs: UCloudStackHarness, files: FileServer
) -> None:
    p = provider(ucs)
    url = files.add("/x.qcow2", qcow2_file())

    with pytest.raises(InvalidInput) as unknown_os:
        p.create_image(url_request(url, os={**UBUNTU, "version": "99.04"}))
    with pytest.raises(InvalidInput) as no_os:
        p.create_image(url_request(url, os=None))
    with pytest.raises(InvalidInput) as raw_format:
        p.create_image(url_request(url, format="raw"))

    assert "spec.source.url.os" in unknown_os.value.message
    assert "Linux/x86_64/Ubuntu/22.04" in unknown_os.value.message  # what is offered
    assert "spec.source.url.os is required" in no_os.value.message
    assert "qcow2, iso" in raw_format.value.message
    assert ucs.state()["images"] == []  # no ImportImage reached the cloud
    assert files.requests == []


def test_failed_download_surfaces_as_failed(ucs: UCloudStackHarness, files: FileServer) -> None:
    p = provider(ucs)
    created = p.create_image(url_request(files.url("/missing.qcow2")))

    failed = wait_state(p, created.external_id, CloudState.FAILED)[-1]

    assert failed.message is not None and "HTTP 404" in failed.message


def test_os_drift_is_detected_and_updated_back(ucs: UCloudStackHarness, files: FileServer) -> None:
    p = provider(ucs)
    request = url_request(files.add("/d.qcow2", qcow2_file()))
    image_id = p.create_image(request).external_id
    wait_state(p, image_id, CloudState.AVAILABLE)
    centos = {"OSType": "Linux", "SetArch": "x86_64", "OSDistribution": "CentOS", "OSVersion": "7"}
    ucs.call("UpdateImage", CompanyID=COMPANY, ImageID=image_id, **centos)

    drifted = p.get_image(image_id)
    assert p.needs_update(request, drifted)
    updated = p.update_image(image_id, request)

    assert updated.raw["OSName"] == "Ubuntu 22.04 x86_64"
    assert updated.fingerprint != drifted.fingerprint
    assert not p.needs_update(request, updated)
    # A VM image's spec holds no OS: nothing to push.
    assert not p.needs_update(vm_request(), drifted)


# --- delete ------------------------------------------------------------------------------------


def test_delete_of_an_image_being_made_aborts_it(
    harnesses: list[UCloudStackHarness], state_dir: Path
) -> None:
    ucs = start(harnesses, state_dir, making_seconds=60, abort_seconds=0.2)
    p = provider(ucs)
    image_id = p.create_image(vm_request()).external_id

    p.delete_image(image_id)

    assert p.get_image(image_id).state is CloudState.DELETING  # Aborting
    p.delete_image(image_id)  # again while aborting: nothing to do, no error
    wait_gone(p, image_id)
    with pytest.raises(NotFound):
        p.get_image(image_id)
    with pytest.raises(NotFound):
        p.delete_image(image_id)


def test_delete_of_an_available_image(ucs: UCloudStackHarness) -> None:
    p = provider(ucs)
    image_id = p.create_image(vm_request()).external_id
    wait_state(p, image_id, CloudState.AVAILABLE)

    p.delete_image(image_id)

    assert p.get_image(image_id).state is CloudState.DELETING
    wait_gone(p, image_id)
    assert ucs.state()["files"] == []


def test_delete_of_a_local_import_still_uploading_aborts_the_upload(
    ucs: UCloudStackHarness,
) -> None:
    p = provider(ucs)
    upload = p.import_local(
        LocalImport(
            name="up", image_format="qcow2", os=OsInfo.model_validate(UBUNTU), idempotency_key=UID
        )
    )
    p.upload_part(upload, 1, os.urandom(MIN_PART))

    p.delete_image(upload.image_id)

    state = ucs.state()
    assert state["images"] == [] and state["uploads"] == [] and state["files"] == []


# --- typed methods beyond the interface --------------------------------------------------------


def test_clone_to_base_image_describe_and_delete(ucs: UCloudStackHarness) -> None:
    p = provider(ucs)
    source = p.create_image(vm_request()).external_id
    with pytest.raises(Transient) as busy:  # not Available yet: its state will move
        p.clone_to_base_image(source, "base-web")
    assert busy.value.vendor_code == "8020"
    wait_state(p, source, CloudState.AVAILABLE)

    base_id = p.clone_to_base_image(source, "base-web")

    bases = p.describe_base_images([base_id])
    assert [(b.image_id, b.name, b.permission) for b in bases] == [(base_id, "base-web", "all")]
    assert p.describe_base_images() == bases
    wait_state(p, base_id, CloudState.AVAILABLE)
    p.delete_image(base_id)  # a Base image goes through DeleteBaseImage
    wait_gone(p, base_id)
    assert p.describe_base_images() == []
    with pytest.raises(InvalidInput):  # a Custom image is not a base image
        p.delete_base_image(source)


def test_multipart_import_through_the_provider(ucs: UCloudStackHarness) -> None:
    p = provider(ucs)
    content = qcow2_file(payload=2 * MIN_PART + 100)
    parts = [content[i : i + MIN_PART] for i in range(0, len(content), MIN_PART)]
    upload = p.import_local(
        LocalImport(
            name="本地镜像",
            image_format="qcow2",
            os=OsInfo.model_validate(UBUNTU),
            idempotency_key=UID,
            tags={"source": "cli"},
        )
    )

    etags = [p.upload_part(upload, n, data) for n, data in enumerate(parts, start=1)]
    p.complete_upload(upload)

    assert len(parts) == 3
    assert etags == [hashlib.md5(data).hexdigest() for data in parts]
    wait_state(p, upload.image_id, CloudState.AVAILABLE)
    url = p.get_download_url(upload.image_id)
    assert url.url.startswith(f"{ucs.url}/s3/download?")
    assert p.download(url) == content
    found = p.find_image(
        ImageRequest(idempotency_key=UID, name="本地镜像", namespace="ns", spec=vm_request().spec)
    )
    assert found is not None and found.external_id == upload.image_id


def test_aborted_upload_leaves_nothing_behind(ucs: UCloudStackHarness) -> None:
    p = provider(ucs)
    upload = p.import_local(
        LocalImport(
            name="gone", image_format="iso", os=OsInfo.model_validate(UBUNTU), idempotency_key=UID
        )
    )
    p.upload_part(upload, 1, os.urandom(MIN_PART))
    p.upload_part(upload, 2, os.urandom(10))

    p.abort_upload(upload)

    state = ucs.state()
    assert state["images"] == [] and state["uploads"] == [] and state["files"] == []
    with pytest.raises(NotFound):
        p.upload_part(upload, 3, b"late")
    with pytest.raises(NotFound):
        p.complete_upload(upload)


def test_import_local_checks_format_and_os(ucs: UCloudStackHarness) -> None:
    p = provider(ucs)
    with pytest.raises(InvalidInput, match="qcow2, iso"):
        p.import_local(
            LocalImport(
                name="x", image_format="vhd", os=OsInfo.model_validate(UBUNTU), idempotency_key=UID
            )
        )
    with pytest.raises(InvalidInput, match="not in ucloudstack's OS catalogue"):
        p.import_local(
            LocalImport(
                name="x",
                image_format="qcow2",
                os=OsInfo.model_validate({**UBUNTU, "distribution": "Arch"}),
                idempotency_key=UID,
            )
        )
    assert ucs.state()["images"] == []


def test_describe_os_versions_and_abort_custom_image(
    harnesses: list[UCloudStackHarness], state_dir: Path
) -> None:
    ucs = start(harnesses, state_dir, making_seconds=60)
    p = provider(ucs)

    catalogue = p.describe_os_versions()
    chosen = p.describe_os_versions(["os-windows-2019-x86"])
    image_id = p.create_image(vm_request()).external_id
    p.abort_custom_image(image_id)

    assert len(catalogue) == 5
    assert [(o.os_distribution, o.os_version, o.network_mode) for o in chosen] == [
        ("Windows", "2019", "None")
    ]
    assert ucs.status(image_id) == "Aborting"


# --- errors -------------------------------------------------------------------------------------


def test_wrong_private_key_is_forbidden_and_never_echoed(ucs: UCloudStackHarness) -> None:
    with pytest.raises(Forbidden) as refused:
        provider(ucs, private_key="wrong-private-key-value").probe()

    assert refused.value.vendor_code == "171"
    assert "Signature VerifyAC Error" in refused.value.message
    assert "wrong-private-key-value" not in refused.value.message


def test_another_tenants_company_is_forbidden(ucs: UCloudStackHarness) -> None:
    with pytest.raises(Forbidden) as refused:
        provider(ucs, company_id=OTHER_COMPANY).probe()
    assert refused.value.vendor_code == "173"


def test_cloud_side_rules_become_invalid_input_naming_the_parameter(
    ucs: UCloudStackHarness,
) -> None:
    p = provider(ucs)

    with pytest.raises(InvalidInput) as too_long:
        p.create_image(vm_request(description="d" * 101))
    with pytest.raises(InvalidInput) as with_url:
        p.create_image(vm_request(description="docs at https://example.com"))
    with pytest.raises(InvalidInput) as bad_vm:
        p.create_image(vm_request(vm_id="i-123"))
    with pytest.raises(InvalidInput) as bad_region:
        provider(ucs, region="mars").probe()
    with pytest.raises(InvalidInput) as bad_project:
        provider(ucs, project_id="project-nope").create_image(vm_request())

    assert "Params [ImageDescription] not available" in too_long.value.message
    assert "http://" in with_url.value.message
    assert "VMID" in bad_vm.value.message
    assert "Region" in bad_region.value.message
    assert "ProjectID" in bad_project.value.message
    assert too_long.value.vendor_code == "230"


def test_missing_images_are_not_found(ucs: UCloudStackHarness) -> None:
    p = provider(ucs)
    with pytest.raises(NotFound):
        p.get_image("image-missing")
    with pytest.raises(NotFound):
        p.delete_image("image-missing")
    with pytest.raises(NotFound) as clone:
        p.clone_to_base_image("image-missing", "x")
    assert clone.value.vendor_code == "8010"


def test_unsupported_sources_name_the_operation(ucs: UCloudStackHarness) -> None:
    request = ImageRequest(
        idempotency_key=UID,
        name="repo",
        namespace="ns",
        spec=spec({"repository": {"image": "library/busybox:1.36"}}),
    )
    with pytest.raises(Unsupported, match="create from a container repository"):
        provider(ucs).create_image(request)


def test_throttling_and_outages_are_retryable(ucs: UCloudStackHarness) -> None:
    p = provider(ucs)
    upload = p.import_local(
        LocalImport(
            name="t", image_format="qcow2", os=OsInfo.model_validate(UBUNTU), idempotency_key=UID
        )
    )
    ucs.set_faults(throttle_rate=1.0, retry_after_seconds=7)
    try:
        with pytest.raises(Throttled) as rpc_throttled:
            p.probe()
        with pytest.raises(Throttled) as data_throttled:
            p.upload_part(upload, 1, b"x" * MIN_PART)
        ucs.set_faults(error_rate=1.0)
        with pytest.raises(Transient) as unavailable:
            p.probe()
    finally:
        ucs.set_faults()

    assert rpc_throttled.value.retryable
    assert data_throttled.value.retry_after == 7.0  # the data route keeps Retry-After
    assert "503" in unavailable.value.message
    assert p.probe()


def test_unreachable_or_wrong_endpoints(ucs: UCloudStackHarness) -> None:
    with pytest.raises(InvalidInput, match="does not serve the API"):
        provider(ucs, endpoint=f"{ucs.url}/not-the-api").probe()
    with socket.socket() as bound:  # bound but not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        with pytest.raises(Transient, match="unreachable"):
            provider(ucs, endpoint=f"http://127.0.0.1:{port}", timeout=5).probe()


def test_no_key_or_signature_reaches_the_logs(
    ucs: UCloudStackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    p = provider(ucs)
    p.create_image(vm_request())
    with pytest.raises(Forbidden):
        provider(ucs, private_key="another-secret-value").probe()

    for secret in (PRIVATE_KEY, "another-secret-value", "Signature"):
        assert secret not in caplog.text


# --- build ------------------------------------------------------------------------------------


def _spec(ucs: UCloudStackHarness, **fields: Any) -> ImageProviderSpec:
    return ImageProviderSpec.model_validate(
        {
            "type": "ucloudstack",
            "endpoint": ucs.url,
            "region": "cn",
            "credentialsSecretRef": {"name": "ucs-keys"},
            **fields,
        }
    )


KEYS = {"publicKey": PUBLIC_KEY, "privateKey": PRIVATE_KEY, "companyID": str(COMPANY)}


def test_build_from_an_image_provider_spec_and_its_secret(ucs: UCloudStackHarness) -> None:
    built = build_provider(
        _spec(ucs, project="project-b", rateLimit={"requestsPerSecond": 50}),
        KEYS,
        endpoints=LOOPBACK_ENDPOINTS,
    )

    assert isinstance(built, UCloudStackProvider)
    assert built.project_id == "project-b" and built.company_id == COMPANY
    assert built.probe() == "ucloudstack region cn: 0 images"


@pytest.mark.parametrize(
    ("fields", "keys", "fragment"),
    [
        ({"region": None}, KEYS, "spec.region"),
        ({"endpoint": None}, KEYS, "spec.endpoint"),
        ({}, {**KEYS, "companyID": ""}, "companyID"),
        ({}, {**KEYS, "companyID": "acme"}, "companyID"),
        ({}, {k: v for k, v in KEYS.items() if k != "privateKey"}, "privateKey"),
    ],
)
def test_build_names_what_is_missing(
    ucs: UCloudStackHarness, fields: dict[str, Any], keys: dict[str, str], fragment: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        build_provider(_spec(ucs, **fields), keys, endpoints=LOOPBACK_ENDPOINTS)
    assert fragment in refused.value.message
    assert PRIVATE_KEY not in refused.value.message
