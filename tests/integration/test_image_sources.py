"""Image sources beyond a repository, end to end: real kube-apiserver, the operator process, the
ucloudstack emulator, and `image-operator upload` run as the user runs it (a child process).

The cloud side is checked with the vendor SDK and the emulator's admin dump, never through the
provider under test.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from image_operator_dev.emulator.ucloudstack import synthetic_qcow2
from tests.contract.test_ucloudstack_emulator import FileServer, qcow2_file
from tests.integration.conftest import Emulator, Kube, OperatorProcess, image_manifest, wait_for
from tests.integration.test_provider_ucloudstack import _describe, _ucloudstack_provider
from tests.loopback import LOOPBACK_ENV
from tests.peers.glance import GlanceServer, make_qcow2

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
UBUNTU = {"type": "Linux", "distribution": "Ubuntu", "version": "22.04", "arch": "x86_64"}
# Prints the child's peak RSS on exit, so the test reads the CLI's memory, not its own.
CLI = (
    "import resource, sys\n"
    "from image_operator.cli import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "finally:\n"
    "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    print(f'peak-rss-kib {peak}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


@pytest.fixture
def files() -> Iterator[FileServer]:
    server = FileServer()
    yield server
    server.close()


def _state(emulator: Emulator) -> dict[str, Any]:
    url = emulator.thread.url("ucloudstack") + "/_emulator/state"
    return dict(httpx.get(url, timeout=30).raise_for_status().json())


def _uploads_of(emulator: Emulator, image_id: str) -> list[dict[str, Any]]:
    return [u for u in _state(emulator)["uploads"] if u["ImageID"] == image_id]


def _disk(path: Path, size: int) -> str:
    """A qcow2 file of `size` bytes (header + random payload), written in 8 MiB blocks; its
    sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        head = synthetic_qcow2(3 * 1024**3)
        out.write(head)
        digest.update(head)
        left = size - len(head)
        while left > 0:
            block = os.urandom(min(8 * MIB, left))
            out.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def _upload_manifest(name: str, **upload: Any) -> dict[str, Any]:
    return image_manifest(
        name,
        providerRef={"name": "ucloudstack"},
        source={"upload": {"format": "qcow2", "os": UBUNTU, **upload}},
    )


def _cli(
    env: dict[str, str], namespace: str, name: str, path: Path, *, part_mib: int = 16
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLI,
            "upload",
            f"img/{name}",
            str(path),
            "-n",
            namespace,
            "--part-size",
            str(part_mib * MIB),
        ],
        env={**env, **LOOPBACK_ENV},  # the emulator's and Glance's endpoints
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


class RssSampler:
    """The operator's RSS every 0.2 s while an upload runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(_rss_kib(self.pid))
            self._stop.wait(0.2)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_a_256_mib_upload_through_the_cli_becomes_ready_with_flat_memory(
    kube: Kube,
    emulator: Emulator,
    operator: OperatorProcess,
    control_plane: Any,
    tmp_path: Path,
) -> None:
    _ucloudstack_provider(kube, emulator)
    path = tmp_path / "disk.qcow2"
    size = 256 * MIB
    checksum = _disk(path, size)
    created = kube.create("images", _upload_manifest("uploaded", checksum=checksum, sizeBytes=size))
    waiting = wait_for(
        lambda: kube.condition("images", "uploaded", "Reconciling"),
        what="the Image to wait for its upload",
    )
    assert waiting["reason"] == "WaitingForUpload"
    assert f"image-operator upload img/uploaded FILE -n {kube.namespace}" in waiting["message"]

    # The CLI's own baseline (interpreter, SDKs, kube client) from a 16 MiB upload first.
    small = tmp_path / "small.qcow2"
    _disk(small, 16 * MIB)
    kube.create("images", _upload_manifest("baseline"))
    baseline = _cli(control_plane.env(), kube.namespace, "baseline", small)
    _, baseline_err = baseline.communicate(timeout=120)
    assert baseline.returncode == 0, baseline_err
    cli_baseline = int(baseline_err.rsplit("peak-rss-kib ", 1)[1].split()[0])

    assert operator.process is not None
    before = _rss_kib(operator.process.pid)
    started = time.monotonic()
    with RssSampler(operator.process.pid) as sampler:
        cli = _cli(control_plane.env(), kube.namespace, "uploaded", path)
        _, stderr = cli.communicate(timeout=300)
    elapsed = time.monotonic() - started
    assert cli.returncode == 0, stderr
    assert "100% 256.0/256.0 MiB" in stderr and f"sha256 {checksum}" in stderr

    obj = kube.wait_ready("images", "uploaded", timeout=60)
    status = obj["status"]
    assert status["phase"] == "Ready" and status["progress"] == 100
    info = _describe(emulator, status["externalID"])
    assert info is not None and info["ImageStatus"] == "Available"
    assert info["ImportType"] == "Local" and info["OSDistribution"] == "Ubuntu"
    tags = {tag["Key"]: tag["Value"] for tag in info["Tags"]}
    assert tags["imageops.io/uid"] == created["metadata"]["uid"]
    annotations = obj["metadata"]["annotations"]
    assert annotations["imageops.io/upload-progress"].startswith(f"{size}/{size}/")
    assert _uploads_of(emulator, status["externalID"]) == []  # completed, not left open

    cli_peak = int(stderr.rsplit("peak-rss-kib ", 1)[1].split()[0])
    operator_peak = max(sampler.samples)
    print(
        f"\nupload of {size // MIB} MiB in {elapsed:.1f}s: CLI peak RSS {cli_peak // 1024} MiB "
        f"(16 MiB upload: {cli_baseline // 1024} MiB); "
        f"operator RSS before {before // 1024} MiB, peak during {operator_peak // 1024} MiB "
        f"({len(sampler.samples)} samples)"
    )
    # The bytes never pass through the operator; the CLI holds about one 16 MiB part whatever
    # the file's size, so sixteen times the bytes costs less than two more parts.
    assert operator_peak - before < 32 * 1024
    assert cli_peak - cli_baseline < 32 * 1024


def test_an_interrupted_upload_is_aborted_and_leaves_nothing_in_the_cloud(
    kube: Kube, emulator: Emulator, control_plane: Any, tmp_path: Path
) -> None:
    _ucloudstack_provider(kube, emulator)
    path = tmp_path / "disk.qcow2"
    _disk(path, 160 * MIB)
    kube.create("images", _upload_manifest("interrupted"))
    cli = _cli(control_plane.env(), kube.namespace, "interrupted", path, part_mib=5)

    def partway() -> str | None:
        obj = kube.get("images", "interrupted") or {}
        external_id = (obj.get("status") or {}).get("externalID")
        if not external_id:
            return None
        uploads = _uploads_of(emulator, external_id)
        return external_id if uploads and len(uploads[0]["Parts"]) >= 3 else None

    external_id = wait_for(partway, timeout=120, what="the operator to see a half-done upload")
    cli.send_signal(signal.SIGTERM)
    _, stderr = cli.communicate(timeout=60)

    assert cli.returncode == 130, stderr
    assert f"interrupted: aborted the upload into {external_id}" in stderr
    assert _uploads_of(emulator, external_id) == []
    assert _describe(emulator, external_id) is None
    assert not [f for f in _state(emulator)["files"] if external_id in f]
    # The operator notices and goes back to waiting for a file.
    wait_for(
        lambda: (
            (kube.get("images", "interrupted") or {}).get("status", {}).get("phase")
            == "WaitingForUpload"
        ),
        timeout=60,
        what="the Image to wait for a new upload",
    )


def test_a_killed_upload_is_aborted_when_the_image_is_deleted(
    kube: Kube, emulator: Emulator, control_plane: Any, tmp_path: Path
) -> None:
    _ucloudstack_provider(kube, emulator)
    path = tmp_path / "disk.qcow2"
    _disk(path, 160 * MIB)
    kube.create("images", _upload_manifest("killed"))
    cli = _cli(control_plane.env(), kube.namespace, "killed", path, part_mib=5)

    def partway() -> str | None:
        obj = kube.get("images", "killed") or {}
        external_id = (obj.get("status") or {}).get("externalID")
        uploads = _uploads_of(emulator, external_id) if external_id else []
        return external_id if uploads and len(uploads[0]["Parts"]) >= 2 else None

    external_id = wait_for(partway, timeout=120, what="the operator to see a half-done upload")
    cli.kill()  # SIGKILL: the CLI cannot abort anything
    cli.communicate(timeout=30)
    assert _uploads_of(emulator, external_id), "the killed CLI left its upload open"

    kube.delete("images", "killed")

    wait_for(lambda: kube.get("images", "killed") is None, timeout=60, what="the Image gone")
    assert _uploads_of(emulator, external_id) == []
    assert _describe(emulator, external_id) is None


def test_deleting_a_vm_image_while_it_is_made_aborts_the_making(
    kube: Kube, emulator: Emulator
) -> None:
    _ucloudstack_provider(kube, emulator)
    kube.create(
        "images",
        image_manifest(
            "vm-abort", providerRef={"name": "ucloudstack"}, source={"vm": {"vmID": "vm-it0002"}}
        ),
    )
    external_id = wait_for(
        lambda: (kube.get("images", "vm-abort") or {}).get("status", {}).get("externalID"),
        what="the capture to start",
    )
    info = _describe(emulator, external_id)
    assert info is not None and info["ImageStatus"] in ("WaitMaking", "Making")

    kube.delete("images", "vm-abort")

    # DeleteCustomImage refuses an image being made; only AbortCustomImage moves it to
    # Aborting, so seeing that state proves the operator aborted.
    seen = wait_for(
        lambda: (
            (_describe(emulator, external_id) or {"ImageStatus": "gone"})["ImageStatus"]
            in ("Aborting", "gone")
            and (_describe(emulator, external_id) or {"ImageStatus": "gone"})["ImageStatus"]
        ),
        interval=0.05,
        what="the making to be aborted",
    )
    assert seen == "Aborting"
    wait_for(lambda: kube.get("images", "vm-abort") is None, timeout=60, what="the Image gone")
    assert _describe(emulator, external_id) is None


def test_url_import_checks_the_os_against_the_catalogue_then_imports(
    kube: Kube, emulator: Emulator, files: FileServer
) -> None:
    _ucloudstack_provider(kube, emulator)
    url = files.add("/images/disk.qcow2", qcow2_file(payload=64 * 1024))
    wrong = {**UBUNTU, "version": "9.99"}
    kube.create(
        "images",
        image_manifest(
            "from-url",
            providerRef={"name": "ucloudstack"},
            source={"url": {"url": url, "format": "qcow2", "os": wrong}},
        ),
    )

    stalled = wait_for(
        lambda: (
            (c := kube.condition("images", "from-url", "Stalled")) and c["status"] == "True" and c
        ),
        what="the Image to stall on the OS check",
    )
    assert stalled["reason"] == "InvalidSpec"
    assert "spec.source.url.os (Linux/x86_64/Ubuntu/9.99" in stalled["message"]
    assert "Linux/x86_64/Ubuntu/22.04" in stalled["message"]  # what would be accepted
    assert files.requests == []  # nothing imported: the check ran before ImportImage

    # source is immutable: a corrected OS is a new Image.
    kube.delete("images", "from-url")
    wait_for(lambda: kube.get("images", "from-url") is None, what="the stalled Image gone")
    kube.create(
        "images",
        image_manifest(
            "from-url2",
            providerRef={"name": "ucloudstack"},
            source={"url": {"url": url, "format": "qcow2", "os": UBUNTU}},
        ),
    )
    obj = kube.wait_ready("images", "from-url2", timeout=90)
    info = _describe(emulator, obj["status"]["externalID"])
    assert info is not None and info["ImportType"] == "Remote" and info["ImageFrom"] == url
    assert files.requests == ["/images/disk.qcow2"]


def test_url_import_checksum_is_verified_by_reading_the_image_back(
    kube: Kube, emulator: Emulator, files: FileServer
) -> None:
    _ucloudstack_provider(kube, emulator)
    body = qcow2_file(payload=256 * 1024)
    url = files.add("/images/checked.qcow2", body)
    right = hashlib.sha256(body).hexdigest()
    wrong = hashlib.sha256(body + b"tampered").hexdigest()
    for name, checksum in (("sum-right", right), ("sum-wrong", wrong)):
        kube.create(
            "images",
            image_manifest(
                name,
                providerRef={"name": "ucloudstack"},
                source={"url": {"url": url, "format": "qcow2", "os": UBUNTU, "checksum": checksum}},
            ),
        )

    kube.wait_ready("images", "sum-right", timeout=90)
    kube.wait_event("sum-right", "ChecksumVerified")

    stalled = wait_for(
        lambda: (
            (c := kube.condition("images", "sum-wrong", "Stalled")) and c["status"] == "True" and c
        ),
        timeout=90,
        what="the tampered import to stall",
    )
    assert stalled["reason"] == "ChecksumMismatch"
    assert (
        f"sha256 is {right}, but spec.source.url.checksum expects {wrong}" in (stalled["message"])
    )
    obj = kube.get("images", "sum-wrong") or {}
    assert obj["status"]["phase"] == "Failed"
    ready = kube.condition("images", "sum-wrong", "Ready") or {}
    assert (ready.get("status"), ready.get("reason")) == ("False", "ChecksumMismatch")


def test_a_copy_from_ucloudstack_into_real_glance_exports_and_imports_the_file(
    kube: Kube, emulator: Emulator, glance: GlanceServer, files: FileServer
) -> None:
    _ucloudstack_provider(kube, emulator)
    kube.create(
        "imageproviders",
        {
            "kind": "ImageProvider",
            "metadata": {"name": "glance"},
            # No Secret: this Glance trusts its identity headers (see tests/peers/glance.py).
            "spec": {"type": "openstack", "endpoint": glance.url, "pollIntervalSeconds": 1},
        },
    )
    kube.wait_ready("imageproviders", "glance", timeout=60)
    # The copy is created first: it must wait for its source, not fail.
    kube.create(
        "images",
        image_manifest(
            "copy", providerRef={"name": "glance"}, source={"image": {"imageRef": {"name": "src"}}}
        ),
    )
    waiting = wait_for(
        lambda: kube.condition("images", "copy", "Reconciling"),
        what="the copy to wait for its source",
    )
    assert waiting["reason"] == "WaitingForSource" and "'src'" in waiting["message"]

    body = make_qcow2()  # a well-formed qcow2: Glance's import inspects the format
    url = files.add("/images/src.qcow2", body)
    kube.create(
        "images",
        image_manifest(
            "src",
            providerRef={"name": "ucloudstack"},
            source={"url": {"url": url, "format": "qcow2", "os": UBUNTU}},
        ),
    )
    source_id = kube.wait_ready("images", "src", timeout=90)["status"]["externalID"]

    copy = kube.wait_ready("images", "copy", timeout=120)
    assert copy["status"]["providerType"] == "openstack"
    assert copy["status"]["copiedFrom"] == {
        "image": "src",
        "provider": "ucloudstack",
        "externalID": source_id,
    }
    copying = [e.message for e in kube.events("copy") if e.reason == "Copying"]
    assert copying == [
        f"exporting image {source_id!r} of ucloudstack provider 'ucloudstack' (Image 'src') "
        "into openstack provider 'glance'"
    ]
    conn = glance.connection()
    try:
        image = conn.image.get_image(copy["status"]["externalID"])
        assert image.status == "active" and image.disk_format == "qcow2"
        assert (image.size, image.hash_algo, image.hash_value) == (
            len(body),
            "sha256",
            hashlib.sha256(body).hexdigest(),
        )
    finally:
        conn.close()
    # The source is untouched by the copy.
    info = _describe(emulator, source_id)
    assert info is not None and info["ImageStatus"] == "Available"


def test_an_upload_into_real_glance_fills_the_image_the_operator_made(
    kube: Kube, glance: GlanceServer, control_plane: Any, tmp_path: Path
) -> None:
    kube.create(
        "imageproviders",
        {
            "kind": "ImageProvider",
            "metadata": {"name": "glance"},
            "spec": {"type": "openstack", "endpoint": glance.url, "pollIntervalSeconds": 1},
        },
    )
    kube.wait_ready("imageproviders", "glance", timeout=60)
    body = make_qcow2()
    path = tmp_path / "disk.qcow2"
    path.write_bytes(body)
    checksum = hashlib.sha256(body).hexdigest()
    kube.create(
        "images",
        image_manifest(
            "to-glance",
            providerRef={"name": "glance"},
            source={"upload": {"format": "qcow2", "checksum": checksum}},
        ),
    )
    external_id = wait_for(
        lambda: (kube.get("images", "to-glance") or {}).get("status", {}).get("externalID"),
        what="the operator to create the queued Glance image",
    )

    cli = _cli(control_plane.env(), kube.namespace, "to-glance", path)
    _, stderr = cli.communicate(timeout=120)
    assert cli.returncode == 0, stderr
    assert f"into image {external_id}" in stderr and f"sha256 {checksum}" in stderr

    kube.wait_ready("images", "to-glance", timeout=90)
    conn = glance.connection()
    try:
        image = conn.image.get_image(external_id)
        assert image.status == "active"
        assert (image.size, image.hash_algo, image.hash_value) == (len(body), "sha256", checksum)
    finally:
        conn.close()
