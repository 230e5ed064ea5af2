"""spec.ucloudstack against the emulator (issue 12): ImportImage sends ImageSize, SupportQGA,
SupportCloudInit, BootloaderType and the Secret from the provider's Secret; UpdateImage pushes
changed flags, with the image's own OS when the spec names none (a VM capture)."""

from __future__ import annotations

from typing import Any

from image_operator.api.image import ImageSpec, OsInfo
from image_operator.api.provideroptions import BootloaderType, UCloudStackImageOptions
from image_operator.providers.capabilities import LocalImport
from image_operator.providers.model import CloudState, ImageRequest
from tests.contract import test_ucloudstack_provider as base
from tests.contract.test_ucloudstack_emulator import FileServer, UCloudStackHarness, qcow2_file
from tests.contract.test_ucloudstack_provider import UBUNTU, UID, provider, vm_request, wait_state

# The provider tests' fixtures (pytest registers them under their own names).
harnesses, ucs, files = base.harnesses, base.ucs, base.files

OPTIONS = {
    "imageSizeGiB": 40,
    "supportQGA": True,
    "supportCloudInit": True,
    "bootloaderType": "uefi",
}


def _url_request(url: str, options: dict[str, Any]) -> ImageRequest:
    spec = ImageSpec.model_validate(
        {
            "providerRef": {"name": "ucs"},
            "displayName": "An image",
            "source": {"url": {"url": url, "format": "qcow2", "os": UBUNTU}},
            "ucloudstack": options,
        }
    )
    return ImageRequest(idempotency_key=UID, name="opts", namespace="ns", spec=spec)


def test_import_sends_every_option_and_the_secret_from_the_providers_secret(
    ucs: UCloudStackHarness, files: FileServer
) -> None:
    p = provider(ucs, image_secret="dregf9u9g23")
    url = files.add("/opts.qcow2", qcow2_file())

    created = p.create_image(_url_request(url, OPTIONS))

    raw = wait_state(p, created.external_id, CloudState.AVAILABLE)[-1].raw
    assert (raw["ImageSize"], raw["SupportQGA"], raw["SupportCloudInit"]) == (40, True, True)
    assert raw["BootloaderType"] == "uefi"
    assert "dregf9u9g23" not in repr(raw)  # the emulator keeps the secret, never shows it
    assert not p.needs_update(_url_request(url, OPTIONS), p.get_image(created.external_id))


def test_changed_flags_are_pushed_with_update_image(
    ucs: UCloudStackHarness, files: FileServer
) -> None:
    p = provider(ucs)
    url = files.add("/flags.qcow2", qcow2_file())
    created = p.create_image(_url_request(url, {"supportQGA": False}))
    current = wait_state(p, created.external_id, CloudState.AVAILABLE)[-1]
    wanted = _url_request(url, {"supportQGA": True, "bootloaderType": "uefi"})
    assert p.needs_update(wanted, current)

    updated = p.update_image(created.external_id, wanted)

    assert (updated.raw["SupportQGA"], updated.raw["BootloaderType"]) == (True, "uefi")
    assert not p.needs_update(wanted, updated)


def test_a_vm_capture_is_updated_with_the_os_it_has(ucs: UCloudStackHarness) -> None:
    p = provider(ucs)
    plain = vm_request()
    created = p.create_image(plain)
    current = wait_state(p, created.external_id, CloudState.AVAILABLE)[-1]
    flagged = vm_request(ucloudstack={"supportCloudInit": False, "bootloaderType": "uefi"})
    assert p.needs_update(flagged, current)

    updated = p.update_image(created.external_id, flagged)

    assert (updated.raw["SupportCloudInit"], updated.raw["BootloaderType"]) == (False, "uefi")
    assert updated.raw["OSName"] == current.raw["OSName"]


def test_a_local_import_sends_the_flags_and_the_secret(ucs: UCloudStackHarness) -> None:
    p = provider(ucs, image_secret="dregf9u9g23")
    flags = UCloudStackImageOptions(support_qga=True, bootloader_type=BootloaderType.UEFI)

    upload = p.import_local(
        LocalImport(
            name="up",
            image_format="qcow2",
            os=OsInfo.model_validate(UBUNTU),
            idempotency_key=UID,
            size_gib=2,
            ucloudstack=flags,
        )
    )

    raw = p.get_image(upload.image_id).raw
    assert (raw["SupportQGA"], raw["BootloaderType"], raw["ImageSize"]) == (True, "uefi", 2)
    p.abort_upload(upload)
