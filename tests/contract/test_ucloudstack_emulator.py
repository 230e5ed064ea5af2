"""The ucloudstack emulator (seed 003) driven through ucloud-sdk-python3, as a real client would.

Every rule the seed states is exercised with at least one rejection; lifecycles run on a
ManualClock where exact phases matter; remote imports download from a real loopback HTTP
server; multipart uploads PUT real bytes and are read back through GetImageDownloadURL.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ucloud.client import Client  # type: ignore[import-untyped]
from ucloud.core.exc import (  # type: ignore[import-untyped]
    HTTPStatusException,
    RetCodeException,
)
from ucloud.core.utils.middleware import Middleware  # type: ignore[import-untyped]

from image_operator_dev.emulator.clock import Clock, ManualClock, system_clock
from image_operator_dev.emulator.config import EmulatorConfig
from image_operator_dev.emulator.server import EmulatorThread
from image_operator_dev.emulator.testing import poll_until
from image_operator_dev.emulator.ucloudstack import UCloudStackService, synthetic_qcow2

PUBLIC_KEY = "contract-ucloudstack-public"
PRIVATE_KEY = "contract-ucloudstack-private"
COMPANY = 200000236
OTHER_PUBLIC_KEY = "contract-ucloudstack-other-public"
OTHER_PRIVATE_KEY = "contract-ucloudstack-other-private"
OTHER_COMPANY = 200000999
REGION = "cn"
MIN_PART = 1024
OS = {"OSType": "Linux", "SetArch": "x86_64", "OSDistribution": "Ubuntu", "OSVersion": "22.04"}


def tag(key: str, value: str) -> str:
    return f"{base64.b64encode(key.encode()).decode()}:{base64.b64encode(value.encode()).decode()}"


def qcow2_file(payload: int = 4096, virtual_gib: int = 3) -> bytes:
    """A qcow2 header (virtual size `virtual_gib`) followed by `payload` random bytes."""
    return synthetic_qcow2(virtual_gib * 1024**3) + os.urandom(payload)


def iso_file() -> bytes:
    return b"\0" * 0x8001 + b"CD001" + os.urandom(2048)


def ucloudstack_config(state_dir: Path, **section: Any) -> EmulatorConfig:
    settings = {
        "enabled": True,
        "accounts": [
            {
                "public_key": PUBLIC_KEY,
                "private_key": PRIVATE_KEY,
                "company_id": COMPANY,
                "projects": {"project-default": "default", "project-b": "b"},
            },
            {
                "public_key": OTHER_PUBLIC_KEY,
                "private_key": OTHER_PRIVATE_KEY,
                "company_id": OTHER_COMPANY,
            },
        ],
        "making_seconds": 0.4,
        "clone_seconds": 0.3,
        "import_seconds": 0.3,
        "abort_seconds": 0.2,
        "deletion_seconds": 0.2,
        "min_part_bytes": MIN_PART,
        **section,
    }
    return EmulatorConfig.model_validate(
        {"state_dir": state_dir, "argon": {"enabled": False}, "ucloudstack": settings}
    )


class UCloudStackHarness:
    """The emulator in a thread, an SDK client for it, and an httpx client for admin/data."""

    def __init__(self, config: EmulatorConfig, *, clock: Clock = system_clock) -> None:
        self.emulator = EmulatorThread(config, clock=clock)
        self.url = self.emulator.start()["ucloudstack"]
        self.http = httpx.Client(base_url=self.url, timeout=30, trust_env=False)
        self.sdk = self.client()

    def client(
        self,
        public_key: str = PUBLIC_KEY,
        private_key: str = PRIVATE_KEY,
        region: str | None = REGION,  # None: a client that sends no Region at all
    ) -> Client:
        return Client(
            {
                "base_url": self.url,
                "region": region,
                "public_key": public_key,
                "private_key": private_key,
                "max_retries": 0,
            },
            middleware=Middleware(),
        )

    def call(self, action: str, **params: Any) -> dict[str, Any]:
        return dict(self.sdk.invoke(action, params))

    def refused(self, action: str, code: int, *fragments: str, **params: Any) -> str:
        """Assert the call fails with RetCode `code` and a message holding `fragments`."""
        with pytest.raises(RetCodeException) as refused:
            self.sdk.invoke(action, params)
        assert refused.value.code == code, refused.value
        for fragment in fragments:
            assert fragment in refused.value.message, refused.value.message
        return str(refused.value.message)

    def make_image(self, name: str = "img", **params: Any) -> str:
        body = {"ImageName": name, "VMID": "vm-abc123", "TagKeyValuePairs": [tag("k", "v")]}
        return str(self.call("CreateCustomImage", **{**body, **params})["ImageID"])

    def info(self, image_id: str) -> dict[str, Any] | None:
        infos = self.call("DescribeImage", ImageIDs=[image_id])["Infos"]
        return dict(infos[0]) if infos else None

    def described(self, image_id: str) -> dict[str, Any]:
        """DescribeImage's entry for an image that must exist."""
        info = self.info(image_id)
        assert info is not None, f"{image_id} is not described"
        return info

    def status(self, image_id: str) -> str | None:
        info = self.info(image_id)
        return None if info is None else str(info["ImageStatus"])

    def wait_status(self, image_id: str, status: str | None) -> list[str | None]:
        return poll_until(lambda: self.status(image_id), lambda s: s == status)

    def state(self) -> dict[str, Any]:
        return dict(self.http.get("/_emulator/state").raise_for_status().json())

    def stats(self) -> dict[str, Any]:
        return dict(self.http.get("/_emulator/stats").raise_for_status().json())

    def set_faults(self, **faults: Any) -> None:
        self.http.put("/_emulator/faults", json=faults).raise_for_status()

    def close(self) -> None:
        self.http.close()
        self.emulator.stop()


StartUCloudStack = Callable[..., UCloudStackHarness]


@pytest.fixture
def start_ucloudstack(state_dir: Path) -> Iterator[StartUCloudStack]:
    """Start an emulator on the test's state_dir; starting again after `close()` restarts it."""
    harnesses: list[UCloudStackHarness] = []

    def start(*, clock: Clock = system_clock, **section: Any) -> UCloudStackHarness:
        harness = UCloudStackHarness(ucloudstack_config(state_dir, **section), clock=clock)
        harnesses.append(harness)
        return harness

    yield start
    for harness in harnesses:
        harness.close()


@pytest.fixture
def ucs(start_ucloudstack: StartUCloudStack) -> UCloudStackHarness:
    return start_ucloudstack()


class FileServer:
    """Files served over HTTP on loopback, for remote imports (LoadURL) to download for real.

    A path registered with `hold=True` sends its first half, then waits for `release(path)`.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.holds: dict[str, threading.Event] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                hold = server.holds.get(self.path)
                if hold is None:
                    self.wfile.write(body)
                    return
                half = len(body) // 2
                self.wfile.write(body[:half])
                self.wfile.flush()
                hold.wait(30)
                self.wfile.write(body[half:])

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def add(self, path: str, body: bytes, *, hold: bool = False) -> str:
        self.files[path] = body
        if hold:
            self.holds[path] = threading.Event()
        return self.url(path)

    def release(self, path: str) -> None:
        self.holds[path].set()

    def close(self) -> None:
        for hold in self.holds.values():
            hold.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def files() -> Iterator[FileServer]:
    server = FileServer()
    yield server
    server.close()


def import_remote(ucs: UCloudStackHarness, url: str, **params: Any) -> str:
    body = {
        "CompanyID": COMPANY,
        "ImageName": "imported",
        "ImageFormat": "qcow2",
        "ImportType": "Remote",
        "LoadURL": url,
        "TagKeyValuePairs": [tag("k", "v")],
        **OS,
    }
    return str(ucs.call("ImportImage", **{**body, **params})["ImageID"])


def import_local(ucs: UCloudStackHarness, **params: Any) -> dict[str, Any]:
    body = {
        "CompanyID": COMPANY,
        "ImageName": "uploaded",
        "ImageFormat": "qcow2",
        "ImportType": "Local",
        "TagKeyValuePairs": [tag("k", "v")],
        **OS,
    }
    return ucs.call("ImportImage", **{**body, **params})


def put_part(
    ucs: UCloudStackHarness, upload: dict[str, Any], number: int, data: bytes, **headers: str
) -> httpx.Response:
    return ucs.http.put(
        f"/s3/{upload['Bucket']}/{upload['ImageID']}",
        params={"uploadId": upload["UploadID"], "partNumber": str(number)},
        content=data,
        headers={
            "Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode(),
            "x-amz-content-sha256": hashlib.sha256(data).hexdigest(),
            **headers,
        },
    )


def download(ucs: UCloudStackHarness, image_id: str) -> bytes:
    info = ucs.call("GetImageDownloadURL", ImageID=image_id)["Info"]
    response = ucs.http.get(f"/s3/download?{info['DownloadQuery']}")
    assert response.status_code == 200, response.text
    return response.content


# --- the envelope: signature, action, parameters --------------------------------------------


def test_a_signed_call_succeeds_and_answers_in_ucloud_format(ucs: UCloudStackHarness) -> None:
    response = ucs.call("DescribeImageOSVersions")

    assert response["RetCode"] == 0
    assert response["Action"] == "DescribeImageOSVersionsResponse"
    assert response["TotalCount"] == 5


def test_wrong_private_key_is_a_signature_error(ucs: UCloudStackHarness) -> None:
    client = ucs.client(private_key="not-the-private-key")

    with pytest.raises(RetCodeException) as refused:
        client.invoke("DescribeImage", {})

    assert refused.value.code == 171
    assert refused.value.message == "Signature VerifyAC Error"
    assert refused.value.action == "DescribeImage"


def test_unknown_public_key_is_user_not_exists(ucs: UCloudStackHarness) -> None:
    with pytest.raises(RetCodeException) as refused:
        ucs.client(public_key="nobody").invoke("DescribeImage", {})

    assert refused.value.code == 172


def test_a_parameter_changed_after_signing_is_refused(ucs: UCloudStackHarness) -> None:
    # What the SDK would send, then tampered with on the way.
    signed: dict[str, Any] = {}

    def capture(request: Any, **_: Any) -> Any:
        signed.update(request.data)
        raise RuntimeError("captured")

    sdk = ucs.client()
    sdk.transport.send = capture
    with pytest.raises(RuntimeError):
        sdk.invoke("DescribeImage", {"Limit": 5})
    assert signed["Limit"] == "5" and signed["PublicKey"] == PUBLIC_KEY

    honest = ucs.http.post("/", data=signed).json()
    tampered = ucs.http.post("/", data={**signed, "Limit": "6"}).json()
    unsigned = ucs.http.post("/", data={k: v for k, v in signed.items() if k != "Signature"})

    assert honest["RetCode"] == 0
    assert tampered == {
        "RetCode": 171,
        "Message": "Signature VerifyAC Error",
        "Action": "DescribeImageResponse",
    }
    assert unsigned.json()["RetCode"] == 170


def test_missing_and_unknown_action(ucs: UCloudStackHarness) -> None:
    assert ucs.http.post("/", data={"Region": REGION}).json()["RetCode"] == 160
    with pytest.raises(RetCodeException) as refused:
        ucs.sdk.invoke("DescribeImages", {})
    assert refused.value.code == 161
    assert "DescribeImages" in refused.value.message


VALID_CALLS: dict[str, dict[str, Any]] = {
    "CreateCustomImage": {"ImageName": "a", "VMID": "vm-a1", "TagKeyValuePairs": [tag("k", "v")]},
    "AbortCustomImage": {"ImageID": "image-x"},
    "CloneCustomImageToBaseImage": {"DestImageName": "b", "SourceImageID": "image-x"},
    "DeleteBaseImage": {"ImageID": "image-x"},
    "DeleteCustomImage": {"ImageID": "image-x"},
    "DescribeImage": {},
    "DescribeBaseImage": {},
    "ImportImage": {
        "CompanyID": COMPANY,
        "ImageName": "i",
        "ImageFormat": "qcow2",
        "ImportType": "Local",
        "TagKeyValuePairs": [tag("k", "v")],
        **OS,
    },
    "CompleteImageMultipartUpload": {"ImageID": "image-x", "UploadID": "u"},
    "AbortImageMultipartUpload": {"CompanyID": COMPANY, "ImageID": "image-x"},
    "GetImageDownloadURL": {"ImageID": "image-x"},
    "DescribeImageOSVersions": {},
    "UpdateImage": {"CompanyID": COMPANY, "ImageID": "image-x", **OS},
}
REQUIRED = [
    (action, name)
    for action, params in VALID_CALLS.items()
    for name in [*params, "Region"]
    if name != "CompanyID" or action in ("ImportImage", "UpdateImage", "AbortImageMultipartUpload")
]


def test_every_seed_action_is_served(ucs: UCloudStackHarness) -> None:
    service = ucs.emulator.emulator.service("ucloudstack")
    assert isinstance(service, UCloudStackService)
    served = service.rpc.actions
    assert sorted(VALID_CALLS) == served
    assert len(served) == 13


@pytest.mark.parametrize(("action", "name"), REQUIRED, ids=[f"{a}-{n}" for a, n in REQUIRED])
def test_each_required_parameter_is_required(
    ucs: UCloudStackHarness, action: str, name: str
) -> None:
    params = {k: v for k, v in VALID_CALLS[action].items() if k != name}
    client = ucs.client(region=None) if name == "Region" else ucs.sdk

    with pytest.raises(RetCodeException) as refused:
        client.invoke(action, params)

    assert refused.value.code == 220, refused.value
    assert refused.value.message == f"Missing params [{name}]"


def test_company_id_when_sent_must_be_the_key_pairs_own(ucs: UCloudStackHarness) -> None:
    ucs.refused("DescribeImage", 173, "CompanyID 200000999", CompanyID=OTHER_COMPANY)
    ucs.refused("DescribeImage", 230, "CompanyID", CompanyID="abc")


def test_unknown_region_project_and_parameter_are_refused(ucs: UCloudStackHarness) -> None:
    with pytest.raises(RetCodeException) as region:
        ucs.client(region="mars").invoke("DescribeImage", {})
    assert region.value.code == 230 and "Region" in region.value.message
    ucs.refused(
        "CreateCustomImage",
        230,
        "ProjectID",
        **VALID_CALLS["CreateCustomImage"],
        ProjectID="project-nope",
    )
    ucs.refused("DescribeImage", 230, "ImageId is not a parameter of DescribeImage", ImageId="x")


# --- field rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["", "x" * 51, "has space", "semi;colon", "名字!", "emoji😀", "slash/name"]
)
def test_bad_image_names_are_refused(ucs: UCloudStackHarness, name: str) -> None:
    code = 220 if name == "" else 230
    ucs.refused(
        "CreateCustomImage",
        code,
        "ImageName",
        **{**VALID_CALLS["CreateCustomImage"], "ImageName": name},
    )


def test_good_names_cover_cjk_letters_digits_and_punctuation(ucs: UCloudStackHarness) -> None:
    for name in ["测试镜像" * 12 + "ab", "A.b_c-9", "x"]:
        image_id = ucs.make_image(name)
        assert ucs.described(image_id)["ImageName"] == name
    ucs.refused(
        "CloneCustomImageToBaseImage",
        230,
        "DestImageName",
        DestImageName="bad name",
        SourceImageID=image_id,
    )


def test_descriptions_are_limited_and_refuse_urls(ucs: UCloudStackHarness) -> None:
    base = VALID_CALLS["CreateCustomImage"]
    ucs.refused(
        "CreateCustomImage",
        230,
        "ImageDescription",
        "at most 100",
        **base,
        ImageDescription="d" * 101,
    )
    for text in ("see https://example.com", "HTTP://x"):
        ucs.refused("CreateCustomImage", 230, "http://", **base, ImageDescription=text)
    image_id = ucs.make_image(ImageDescription="这是一个备注" * 16 + "ab12")
    assert len(ucs.described(image_id)["ImageDescription"]) == 100


@pytest.mark.parametrize(
    ("action", "field", "value"),
    [
        ("DescribeImage", "ImageType", "Public"),
        ("DescribeImage", "ImageFormat", "raw"),
        ("ImportImage", "ImageFormat", "vmdk"),
        ("ImportImage", "ImportType", "Ftp"),
        ("ImportImage", "BootloaderType", "efi"),
        ("UpdateImage", "BootloaderType", "UEFI"),
        ("ImportImage", "SupportQGA", "yes"),
    ],
)
def test_enums_are_enforced(ucs: UCloudStackHarness, action: str, field: str, value: str) -> None:
    params = {**VALID_CALLS[action], field: value}
    if action == "UpdateImage":
        params["ImageID"] = ucs.make_image()

    message = ucs.refused(action, 230, f"Params [{field}]", **params)

    assert repr(value) in message


@pytest.mark.parametrize(
    "pair",
    [
        "dGVzdA==",  # no colon
        "not base64!:dGVzdA==",
        "dGVzdA:dGVzdA==",  # missing padding
        "dGVzdB==:dGVzdA==",  # not the canonical encoding (stray bits)
        ":dGVzdA==",  # empty key
        "dGVzdA==:%%%",
        base64.b64encode(b"\xff\xfe").decode() + ":dGVzdA==",  # not UTF-8
    ],
)
def test_tag_pairs_must_be_base64_key_colon_base64_value(
    ucs: UCloudStackHarness, pair: str
) -> None:
    params = {**VALID_CALLS["CreateCustomImage"], "TagKeyValuePairs": [tag("ok", "1"), pair]}

    ucs.refused(
        "CreateCustomImage", 230, "TagKeyValuePairs.1", "base64(key):base64(value)", **params
    )


def test_tags_are_stored_decoded_and_empty_values_allowed(ucs: UCloudStackHarness) -> None:
    image_id = ucs.make_image(TagKeyValuePairs=[tag("imageops.io/uid", "u-1"), tag("空", "")])

    assert ucs.described(image_id)["Tags"] == [
        {"Key": "imageops.io/uid", "Value": "u-1"},
        {"Key": "空", "Value": ""},
    ]
    ucs.refused(
        "CreateCustomImage",
        230,
        "repeats the tag key",
        **{**VALID_CALLS["CreateCustomImage"], "TagKeyValuePairs": [tag("a", "1"), tag("a", "2")]},
    )


def test_os_fields_must_be_in_the_catalogue(ucs: UCloudStackHarness) -> None:
    params = {**VALID_CALLS["ImportImage"], "OSVersion": "99.04"}
    message = ucs.refused("ImportImage", 230, "Params [OSVersion]", **params)
    assert "Linux/x86_64/Ubuntu/99.04" in message
    image_id = ucs.make_image()
    ucs.wait_status(image_id, "Available")
    ucs.refused(
        "UpdateImage",
        230,
        "OSVersion",
        **{**VALID_CALLS["UpdateImage"], "ImageID": image_id, "SetArch": "riscv64"},
    )


def test_vm_and_disk_ids_and_storage_sets_are_checked(ucs: UCloudStackHarness) -> None:
    base = VALID_CALLS["CreateCustomImage"]
    ucs.refused("CreateCustomImage", 230, "VMID", **{**base, "VMID": "i-123"})
    ucs.refused("CreateCustomImage", 230, "DiskID", **base, DiskID="vol-1")
    ucs.refused("CreateCustomImage", 230, "StorageSetType", **base, StorageSetType="Nope")
    image_id = ucs.make_image(DiskID="disk-2frgtg4354", StorageSetType="StorageSetNPVK")
    assert ucs.described(image_id)["ImageFrom"] == "disk-2frgtg4354"


# --- describing: paging and filters -------------------------------------------------------------


def test_paging_limit_is_the_page_size_and_offset_the_rows_skipped(
    ucs: UCloudStackHarness,
) -> None:
    ids = {ucs.make_image(f"page-{i}") for i in range(12)}

    pages = [ucs.call("DescribeImage", Limit=5, Offset=offset) for offset in (0, 5, 10)]
    default = ucs.call("DescribeImage")

    assert [len(page["Infos"]) for page in pages] == [5, 5, 2]
    assert {page["TotalCount"] for page in pages} == {12}
    assert {info["ImageID"] for page in pages for info in page["Infos"]} == ids
    assert len(default["Infos"]) == 10
    ucs.refused("DescribeImage", 230, "Limit is the page size", Limit=0)
    ucs.refused("DescribeImage", 230, "Limit", Limit=101)
    ucs.refused("DescribeImage", 230, "Offset", Offset=-1)
    ucs.refused("DescribeImage", 230, "must be an integer", Limit="ten")


def test_filters_and_batched_ids(ucs: UCloudStackHarness) -> None:
    a = ucs.make_image("alpha-one")
    b = ucs.make_image("beta-two", ProjectID="project-b")
    c = ucs.make_image("alpha-three")
    other = ucs.client(OTHER_PUBLIC_KEY, OTHER_PRIVATE_KEY)
    foreign = other.invoke("CreateCustomImage", dict(VALID_CALLS["CreateCustomImage"]))["ImageID"]

    def ids(**params: Any) -> set[str]:
        return {i["ImageID"] for i in ucs.call("DescribeImage", Limit=100, **params)["Infos"]}

    assert ids() == {a, b, c}  # never another tenant's images
    assert ids(ImageIDs=[a, c, foreign, "image-missing"]) == {a, c}
    assert ids(ImageIDs=f"{a},{b}") == {a, b}  # the seed's comma-separated form
    assert ids(Keyword="ALPHA") == {a, c}
    assert ids(Keyword=b) == {b}
    assert ids(ProjectIDs=["project-b"]) == {b}
    assert ids(ImageType="Custom") == {a, b, c}
    assert ids(ImageType="Base") == set()
    assert ids(ImageFormat="iso") == set()
    assert ucs.call("DescribeImage", ImageIDs=[foreign])["TotalCount"] == 0
    ucs.refused("DeleteCustomImage", 8010, foreign, ImageID=foreign)


def test_image_info_carries_the_seed_fields(ucs: UCloudStackHarness) -> None:
    image_id = ucs.make_image("fields", ImageDescription="备注一")

    info = ucs.info(image_id)

    assert info is not None
    seed_fields = [
        "Name",
        "Remark",
        "Region",
        "RegionAlias",
        "CompanyID",
        "CompanyName",
        "Email",
        "ProjectID",
        "ProjectName",
        "Reason",
        "CreateTime",
        "UpdateTime",
        "Tags",
        "ImageName",
        "ImageDescription",
        "Remarkable",
        "ImageID",
        "ImageType",
        "ImageFormat",
        "ImageStatus",
        "ImageSize",
        "OSType",
        "OSName",
        "OSDistribution",
        "SetArch",
        "CanVGPU",
        "SupportHotplug",
        "PreparePrecent",
        "SupportQGA",
        "SupportCloudInit",
        "Encrypted",
        "ImportType",
        "BootloaderType",
        "BoundVMSetIDs",
        "BoundVMIDs",
        "ImageFrom",
    ]
    assert set(info) == set(seed_fields)
    assert info["CompanyID"] == COMPANY and info["Region"] == REGION
    assert info["ImageType"] == "Custom" and info["ImageFormat"] == "qcow2"
    assert info["OSName"] == "OpenEuler 22.03_SP4 x86_64"
    assert info["ImageFrom"] == "vm-abc123-boot"
    assert info["ProjectID"] == "project-default"


def test_os_catalogue_paging_and_ids(ucs: UCloudStackHarness) -> None:
    everything = ucs.call("DescribeImageOSVersions", Limit=100)["Infos"]
    page = ucs.call("DescribeImageOSVersions", Limit=2, Offset=1)
    chosen = ucs.call("DescribeImageOSVersions", ImageOSIDs=["os-centos-7-x86"])

    assert [i["ImageOSID"] for i in page["Infos"]] == [i["ImageOSID"] for i in everything[1:3]]
    assert chosen["TotalCount"] == 1
    assert chosen["Infos"][0] == {
        "ImageOSID": "os-centos-7-x86",
        "OSType": "Linux",
        "SetArch": "x86_64",
        "OSDistribution": "CentOS",
        "OSVersion": "7",
        "NetworkMode": "NetworkScripts",
        "Remark": "",
        "Status": "Ready",
    }


# --- lifecycles ----------------------------------------------------------------------------------


def test_making_goes_wait_making_making_available(start_ucloudstack: StartUCloudStack) -> None:
    clock = ManualClock()
    ucs = start_ucloudstack(clock=clock, making_seconds=10)
    image_id = ucs.make_image()

    seen = []
    for step in (0, 1, 3, 4, 2):  # t = 0, 1, 4, 8, 10
        clock.advance(step)
        info = ucs.info(image_id)
        assert info is not None
        seen.append((info["ImageStatus"], info["PreparePrecent"]))

    assert seen == [
        ("WaitMaking", 0),
        ("WaitMaking", 0),
        ("Making", 25),
        ("Making", 75),
        ("Available", 100),
    ]


def test_a_doomed_vm_ends_make_failed_with_a_reason(start_ucloudstack: StartUCloudStack) -> None:
    clock = ManualClock()
    ucs = start_ucloudstack(clock=clock, making_seconds=10, fail_vm_pattern="broken")
    image_id = ucs.make_image(VMID="vm-broken1")

    clock.advance(5)
    assert ucs.status(image_id) == "Making"
    clock.advance(1)
    info = ucs.info(image_id)

    assert info is not None
    assert info["ImageStatus"] == "MakeFailed"
    assert "vm-broken1" in info["Reason"]
    ucs.refused(
        "CloneCustomImageToBaseImage", 8021, "MakeFailed", DestImageName="x", SourceImageID=image_id
    )
    ucs.call("DeleteCustomImage", ImageID=image_id)
    assert ucs.status(image_id) == "Deleting"


def test_deleting_while_making_is_refused_and_abort_removes_it(
    start_ucloudstack: StartUCloudStack,
) -> None:
    clock = ManualClock()
    ucs = start_ucloudstack(clock=clock, making_seconds=10, abort_seconds=2)
    image_id = ucs.make_image()
    clock.advance(4)

    ucs.refused("DeleteCustomImage", 8020, "Making", "AbortCustomImage", ImageID=image_id)
    ucs.call("AbortCustomImage", ImageID=image_id)
    ucs.call("AbortCustomImage", ImageID=image_id)  # aborting again is fine
    info = ucs.info(image_id)
    assert info is not None and (info["ImageStatus"], info["PreparePrecent"]) == ("Aborting", 25)
    ucs.refused("DeleteCustomImage", 8020, "Aborting", ImageID=image_id)
    clock.advance(2)

    assert ucs.info(image_id) is None
    ucs.refused("AbortCustomImage", 8010, ImageID=image_id)
    assert not [f for f in ucs.state()["files"] if image_id in f]


def test_only_an_image_being_made_can_be_aborted(start_ucloudstack: StartUCloudStack) -> None:
    clock = ManualClock()
    ucs = start_ucloudstack(clock=clock, making_seconds=1)
    image_id = ucs.make_image()
    clock.advance(1)

    ucs.refused("AbortCustomImage", 8021, "Available", ImageID=image_id)


def test_delete_goes_through_deleting_then_the_image_is_gone(
    start_ucloudstack: StartUCloudStack,
) -> None:
    clock = ManualClock()
    ucs = start_ucloudstack(clock=clock, making_seconds=1, deletion_seconds=3)
    image_id = ucs.make_image()
    clock.advance(1)

    ucs.call("DeleteCustomImage", ImageID=image_id)
    ucs.call("DeleteCustomImage", ImageID=image_id)  # idempotent while Deleting
    assert ucs.status(image_id) == "Deleting"
    ucs.refused(
        "UpdateImage", 8021, "Deleting", **{**VALID_CALLS["UpdateImage"], "ImageID": image_id}
    )
    clock.advance(3)

    assert ucs.status(image_id) is None
    ucs.refused("DeleteCustomImage", 8010, ImageID=image_id)


def test_clone_to_base_image_describe_permission_and_delete(
    start_ucloudstack: StartUCloudStack,
) -> None:
    clock = ManualClock()
    ucs = start_ucloudstack(clock=clock, making_seconds=2, clone_seconds=2)
    source = ucs.make_image("source")
    ucs.refused(
        "CloneCustomImageToBaseImage",
        8020,
        "WaitMaking",
        DestImageName="base",
        SourceImageID=source,
    )
    clock.advance(2)

    base = ucs.call("CloneCustomImageToBaseImage", DestImageName="基础-base", SourceImageID=source)[
        "DestImageID"
    ]

    assert ucs.status(base) == "WaitMaking"
    bases = ucs.call("DescribeBaseImage", ImageIDs=[base])
    assert bases["TotalCount"] == 1
    assert bases["Infos"][0]["Permission"] == "all"
    assert bases["Infos"][0]["Name"] == "基础-base"
    info = ucs.info(base)
    assert info is not None and info["ImageType"] == "Base" and info["ImageFrom"] == source
    ucs.refused(
        "CloneCustomImageToBaseImage", 8021, "Base", DestImageName="again", SourceImageID=base
    )
    ucs.refused("DeleteBaseImage", 8020, "WaitMaking", ImageID=base)
    clock.advance(2)
    ucs.refused("DeleteCustomImage", 8021, "DeleteBaseImage", ImageID=base)
    ucs.refused("DeleteBaseImage", 8021, "DeleteCustomImage", ImageID=source)
    assert download(ucs, base) == download(ucs, source)
    ucs.call("DeleteBaseImage", ImageID=base)
    clock.advance(2)
    assert ucs.call("DescribeBaseImage")["TotalCount"] == 0


def test_update_image_changes_the_os_of_an_available_image(
    start_ucloudstack: StartUCloudStack,
) -> None:
    clock = ManualClock()
    ucs = start_ucloudstack(clock=clock, making_seconds=2)
    image_id = ucs.make_image()
    update = {**VALID_CALLS["UpdateImage"], "ImageID": image_id}
    ucs.refused("UpdateImage", 8020, "WaitMaking", **update)
    clock.advance(2)

    ucs.call("UpdateImage", **update, SupportQGA=False, BootloaderType="uefi")

    info = ucs.info(image_id)
    assert info is not None
    assert (info["OSType"], info["OSDistribution"], info["SetArch"]) == (
        "Linux",
        "Ubuntu",
        "x86_64",
    )
    assert info["OSName"] == "Ubuntu 22.04 x86_64"
    assert info["SupportQGA"] is False and info["BootloaderType"] == "uefi"
    ucs.refused("UpdateImage", 173, **{**update, "CompanyID": OTHER_COMPANY})


def test_state_survives_a_restart(start_ucloudstack: StartUCloudStack) -> None:
    clock = ManualClock()
    first = start_ucloudstack(clock=clock, making_seconds=10)
    image_id = first.make_image("survivor")
    upload = import_local(first)
    assert put_part(first, upload, 1, b"a" * MIN_PART).status_code == 200
    clock.advance(4)
    assert first.described(image_id)["PreparePrecent"] == 25
    first.close()

    second = start_ucloudstack(clock=clock, making_seconds=1)
    clock.advance(4)

    info = second.info(image_id)
    assert info is not None and info["ImageName"] == "survivor"
    assert (info["ImageStatus"], info["PreparePrecent"]) == ("Making", 75)  # timing kept
    assert [u["UploadID"] for u in second.state()["uploads"]] == [upload["UploadID"]]
    assert second.state()["uploads"][0]["Parts"][0]["Size"] == MIN_PART


# --- remote import -----------------------------------------------------------------------------


def test_remote_import_downloads_the_url_for_real_with_progress(
    ucs: UCloudStackHarness, files: FileServer
) -> None:
    content = qcow2_file(payload=512 * 1024, virtual_gib=3)
    url = files.add("/disk.qcow2", content, hold=True)

    image_id = import_remote(ucs, url, ImageDescription="from loopback")

    halfway = poll_until(
        lambda: ucs.info(image_id), lambda i: i is not None and i["PreparePrecent"] > 0
    )[-1]
    assert halfway is not None
    assert halfway["ImageStatus"] == "Uploading"
    assert 0 < halfway["PreparePrecent"] < 50
    files.release("/disk.qcow2")
    seen = poll_until(lambda: ucs.status(image_id), lambda s: s in ("Available", "UploadFailed"))
    info = ucs.info(image_id)

    assert seen[-1] == "Available", info
    assert info is not None
    assert info["ImportType"] == "Remote" and info["ImageFrom"] == url
    assert info["ImageSize"] == 3  # the qcow2 header's virtual size, in GiB
    assert files.requests == ["/disk.qcow2"]
    assert download(ucs, image_id) == content


def test_remote_import_of_a_file_that_is_not_the_format_fails(
    ucs: UCloudStackHarness, files: FileServer
) -> None:
    url = files.add("/fake.qcow2", b"this is not a disk image" * 100)

    image_id = import_remote(ucs, url)

    poll_until(lambda: ucs.status(image_id), lambda s: s == "UploadFailed")
    info = ucs.info(image_id)
    assert info is not None and "not a qcow2 image" in info["Reason"]
    assert ucs.status(image_id) == "UploadFailed"
    assert files.requests == ["/fake.qcow2"]  # reading a failed import does not fetch again
    ucs.refused("GetImageDownloadURL", 8021, "UploadFailed", ImageID=image_id)
    ucs.call("DeleteCustomImage", ImageID=image_id)


def test_remote_import_of_a_missing_url_fails_with_the_http_status(
    ucs: UCloudStackHarness, files: FileServer
) -> None:
    image_id = import_remote(ucs, files.url("/absent"))

    poll_until(lambda: ucs.status(image_id), lambda s: s == "UploadFailed")
    assert "HTTP 404" in ucs.described(image_id)["Reason"]


def test_iso_remote_import(ucs: UCloudStackHarness, files: FileServer) -> None:
    content = iso_file()
    image_id = import_remote(ucs, files.add("/cd.iso", content), ImageFormat="iso")

    poll_until(lambda: ucs.status(image_id), lambda s: s == "Available")

    assert ucs.described(image_id)["ImageFormat"] == "iso"
    assert download(ucs, image_id) == content


def test_load_url_rules(ucs: UCloudStackHarness) -> None:
    ucs.refused(
        "ImportImage", 220, "LoadURL", **{**VALID_CALLS["ImportImage"], "ImportType": "Remote"}
    )
    ucs.refused(
        "ImportImage",
        230,
        "only for ImportType Remote",
        **VALID_CALLS["ImportImage"],
        LoadURL="http://127.0.0.1/x",
    )
    remote = {**VALID_CALLS["ImportImage"], "ImportType": "Remote"}
    ucs.refused("ImportImage", 230, "http://", **remote, LoadURL="ftp://127.0.0.1/x")
    ucs.refused(
        "ImportImage", 230, "import_allowed_hosts", **remote, LoadURL="http://example.com/x.qcow2"
    )


# --- local (multipart) import ----------------------------------------------------------------


def test_multipart_upload_is_assembled_verified_and_served(ucs: UCloudStackHarness) -> None:
    content = qcow2_file(payload=3 * MIN_PART, virtual_gib=2)
    parts = [content[:MIN_PART], content[MIN_PART : 2 * MIN_PART], content[2 * MIN_PART :]]
    upload = import_local(ucs, ImageName="本地上传", Secret="image-key")
    assert upload["Bucket"] == "mirror" and upload["UploadID"]
    assert ucs.status(upload["ImageID"]) == "Uploading"

    etags = []
    for number, data in reversed(list(enumerate(parts, start=1))):  # order does not matter
        response = put_part(ucs, upload, number, data)
        assert response.status_code == 200, response.text
        etags.append(response.headers["ETag"].strip('"'))
    received = ucs.state()["uploads"][0]["Parts"]
    ucs.call("CompleteImageMultipartUpload", ImageID=upload["ImageID"], UploadID=upload["UploadID"])
    seen = poll_until(lambda: ucs.status(upload["ImageID"]), lambda s: s == "Available")

    assert "Importing" in seen
    assert [p["Size"] for p in received] == [len(p) for p in parts]
    assert [p["ETag"] for p in received] == [hashlib.md5(p).hexdigest() for p in parts]
    assert sorted(etags) == sorted(p["ETag"] for p in received)
    info = ucs.info(upload["ImageID"])
    assert info is not None
    assert info["ImportType"] == "Local" and info["ImageFrom"] == "Local Upload"
    assert info["Encrypted"] is True and info["ImageSize"] == 2
    assert "image-key" not in str(ucs.state())  # the image key is never stored
    assert download(ucs, upload["ImageID"]) == content
    assert ucs.state()["uploads"] == []
    assert not [f for f in ucs.state()["files"] if f.startswith("uploads/")]
    # The upload is over: neither more parts nor a second completion.
    assert put_part(ucs, upload, 4, b"late").status_code == 404
    ucs.refused(
        "CompleteImageMultipartUpload", 8011, ImageID=upload["ImageID"], UploadID=upload["UploadID"]
    )


def test_parts_are_checked_as_they_arrive(ucs: UCloudStackHarness) -> None:
    upload = import_local(ucs)
    data = b"x" * MIN_PART

    bad_md5 = put_part(
        ucs, upload, 1, data, **{"Content-MD5": base64.b64encode(b"0" * 16).decode()}
    )
    bad_sha = put_part(ucs, upload, 1, data, **{"x-amz-content-sha256": "0" * 64})
    bad_number = put_part(ucs, upload, 0, data)
    wrong_bucket = ucs.http.put(
        f"/s3/other/{upload['ImageID']}",
        params={"uploadId": upload["UploadID"], "partNumber": "1"},
        content=data,
    )
    wrong_upload = put_part(ucs, {**upload, "UploadID": "nope"}, 1, data)
    empty = put_part(ucs, upload, 1, b"")

    assert (bad_md5.status_code, "<Code>BadDigest</Code>" in bad_md5.text) == (400, True)
    assert "XAmzContentSHA256Mismatch" in bad_sha.text and bad_sha.status_code == 400
    assert bad_number.status_code == 400 and "InvalidArgument" in bad_number.text
    assert wrong_bucket.status_code == 404 and "NoSuchBucket" in wrong_bucket.text
    assert wrong_upload.status_code == 404 and "NoSuchUpload" in wrong_upload.text
    assert empty.status_code == 400
    assert ucs.state()["uploads"][0]["Parts"] == []  # nothing bad was kept


def test_completion_checks_the_parts_and_the_format(ucs: UCloudStackHarness) -> None:
    upload = import_local(ucs)
    ids = {"ImageID": upload["ImageID"], "UploadID": upload["UploadID"]}
    header = qcow2_file(payload=MIN_PART)

    ucs.refused("CompleteImageMultipartUpload", 8030, "no part", **ids)
    put_part(ucs, upload, 1, header)
    put_part(ucs, upload, 3, b"tail")
    ucs.refused("CompleteImageMultipartUpload", 8030, "missing part(s) 2", **ids)
    put_part(ucs, upload, 2, b"small")
    ucs.refused("CompleteImageMultipartUpload", 8030, "at least 1024 bytes", "2", **ids)
    put_part(ucs, upload, 1, b"n" * MIN_PART)  # replaces part 1: no qcow2 header any more
    put_part(ucs, upload, 2, b"m" * MIN_PART)
    ucs.refused("CompleteImageMultipartUpload", 8030, "not a qcow2 image", **ids)
    ucs.refused(
        "CompleteImageMultipartUpload",
        8011,
        "UploadID",
        ImageID=upload["ImageID"],
        UploadID="other",
    )
    ucs.refused("DeleteCustomImage", 8020, "AbortImageMultipartUpload", ImageID=upload["ImageID"])

    put_part(ucs, upload, 1, header)
    ucs.call("CompleteImageMultipartUpload", **ids)
    ucs.wait_status(upload["ImageID"], "Available")
    assert download(ucs, upload["ImageID"]) == header + b"m" * MIN_PART + b"tail"


def test_aborted_upload_leaves_nothing(ucs: UCloudStackHarness) -> None:
    upload = import_local(ucs)
    for number in (1, 2):
        assert put_part(ucs, upload, number, os.urandom(MIN_PART)).status_code == 200
    assert [f for f in ucs.state()["files"] if f.startswith("uploads/")]
    ucs.refused("AbortImageMultipartUpload", 220, "CompanyID", ImageID=upload["ImageID"])

    ucs.call(
        "AbortImageMultipartUpload",
        CompanyID=COMPANY,
        ImageID=upload["ImageID"],
        UploadID=upload["UploadID"],
    )

    state = ucs.state()
    assert state["uploads"] == [] and state["images"] == [] and state["files"] == []
    assert ucs.info(upload["ImageID"]) is None
    assert put_part(ucs, upload, 3, b"x" * MIN_PART).status_code == 404
    ucs.refused("AbortImageMultipartUpload", 8010, CompanyID=COMPANY, ImageID=upload["ImageID"])


# --- downloads -----------------------------------------------------------------------------------


def test_download_query_expires_and_cannot_be_tampered_with(
    start_ucloudstack: StartUCloudStack,
) -> None:
    clock = ManualClock()
    ucs = start_ucloudstack(clock=clock, making_seconds=1, download_url_seconds=60)
    image_id = ucs.make_image()
    ucs.refused("GetImageDownloadURL", 8020, "WaitMaking", ImageID=image_id)
    clock.advance(1)

    info = ucs.call("GetImageDownloadURL", ImageID=image_id)["Info"]
    query = info["DownloadQuery"]

    assert info["ExpiredTime"] == int(clock()) + 60
    assert ucs.http.get(f"/s3/download?{query}").content.startswith(b"QFI\xfb")
    other = ucs.make_image()
    forged = ucs.http.get(f"/s3/download?{query.replace(image_id, other)}")
    assert forged.status_code == 403 and "SignatureDoesNotMatch" in forged.text
    clock.advance(61)
    expired = ucs.http.get(f"/s3/download?{query}")
    assert expired.status_code == 403 and "Request has expired" in expired.text
    assert ucs.http.get("/s3/download?ImageID=x").status_code == 403


# --- faults --------------------------------------------------------------------------------------


def test_injected_faults_use_http_statuses_with_a_ret_code_body(ucs: UCloudStackHarness) -> None:
    ucs.set_faults(throttle_rate=1.0, retry_after_seconds=7)
    with pytest.raises(HTTPStatusException) as throttled:
        ucs.sdk.invoke("DescribeImage", {})
    raw = ucs.http.post("/", data={"Action": "DescribeImage"})
    ucs.set_faults(error_rate=1.0)
    with pytest.raises(HTTPStatusException) as unavailable:
        ucs.sdk.invoke("DescribeImage", {})
    ucs.set_faults()

    assert throttled.value.status_code == 429
    assert raw.headers["Retry-After"] == "7" and raw.json()["RetCode"] == 152
    assert unavailable.value.status_code == 503
    assert ucs.call("DescribeImage")["RetCode"] == 0
    assert ucs.stats()["faults"]["throttle"] == 2
