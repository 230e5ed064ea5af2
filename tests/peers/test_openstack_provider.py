"""The `openstack` provider against a real Glance (PyPI `glance`, started by the `glance`
fixture): every openstacksdk call the provider makes, and every error mapping Glance can show.

Glance is shared by the session, so each test works on images tagged with its own UID.
"""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from image_operator.api.image import ImageSpec
from image_operator.api.provider import ImageProviderSpec
from image_operator.providers.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Transient,
    Unsupported,
)
from image_operator.providers.factory import ProviderConfig, build_provider
from image_operator.providers.model import CloudImage, CloudState, ImageRequest
from image_operator.providers.openstack import MemberStatus, OpenStackProvider, UploadMethod, build
from image_operator.providers.openstack_connect import connect
from image_operator.providers.openstack_metadata import SHA256_PROPERTY, idempotency_tag
from image_operator.providers.ratelimit import TokenBucket
from image_operator_dev.emulator.testing import poll_until
from tests.loopback import LOOPBACK_ENDPOINTS
from tests.peers.glance import Blob, FileServer, GlanceServer, make_qcow2

OTHER_PROJECT = "contract-other-project"
QCOW2 = Blob(make_qcow2())


def _spec(source: dict[str, Any], **overrides: Any) -> ImageSpec:
    return ImageSpec.model_validate(
        {
            "providerRef": {"name": "glance"},
            "source": source,
            "displayName": "Ubuntu 22.04 base",
            **overrides,
        }
    )


def _request(source: dict[str, Any], uid: str | None = None, **overrides: Any) -> ImageRequest:
    return ImageRequest(
        idempotency_key=uid or str(uuid.uuid4()),
        name="ubuntu",
        namespace="team-a",
        spec=_spec(source, **overrides),
    )


def _upload_request(checksum: str | None = QCOW2.sha256, **overrides: Any) -> ImageRequest:
    upload: dict[str, Any] = {"format": "qcow2", "sizeBytes": len(QCOW2.data)}
    if checksum:
        upload["checksum"] = checksum
    return _request({"upload": upload}, **overrides)


def _url_request(url: str, checksum: str | None = None, **overrides: Any) -> ImageRequest:
    source: dict[str, Any] = {"url": url, "format": "qcow2"}
    if checksum:
        source["checksum"] = checksum
    return _request({"url": source}, **overrides)


def _until(
    provider: OpenStackProvider, external_id: str, *states: CloudState, deadline: float = 30
) -> CloudImage:
    """Poll until the image is in one of `states` and Glance's import task has let go of it.

    The task writes to Glance's sqlite database until it drops its lock (the property
    `os_glance_import_task`), a little after the image turns active; a request writing at that
    moment can be answered 500 "database is locked" (the provider would report Transient). The
    next test must not start during those writes.
    """

    def settled(image: CloudImage) -> bool:
        properties = image.raw.get("properties") or {}
        return image.state in states and "os_glance_import_task" not in properties

    seen = poll_until(
        lambda: provider.get_image(external_id), settled, deadline=deadline, interval=0.1
    )
    return seen[-1]


@pytest.fixture
def provider(glance: GlanceServer) -> Iterator[OpenStackProvider]:
    """Built as the operator builds it: the factory, an ImageProvider spec, no Secret keys."""
    spec = ImageProviderSpec.model_validate({"type": "openstack", "endpoint": glance.url})
    built = build_provider(spec, {}, endpoints=LOOPBACK_ENDPOINTS)
    assert isinstance(built, OpenStackProvider)
    yield built
    built.close()


@pytest.fixture
def other(glance: GlanceServer) -> Iterator[OpenStackProvider]:
    """The same Glance as another project (the identity headers Keystone would set)."""
    provider = OpenStackProvider(glance.connection(project=OTHER_PROJECT), endpoint=glance.url)
    yield provider
    provider.close()


def _uploaded(provider: OpenStackProvider, **overrides: Any) -> tuple[ImageRequest, str]:
    request = _upload_request(**overrides)
    created = provider.create_image(request)
    provider.upload(created.external_id, iter([QCOW2.data]), len(QCOW2.data))
    return request, created.external_id


def provider_properties(raw: dict[str, Any] | Any) -> dict[str, str]:
    """The managed properties in a CloudImage.raw (the SDK's dict: modelled keys at the top)."""
    merged = {**raw, **(raw.get("properties") or {})}
    keys = ("description", "os_type", "os_distro", "os_version", "architecture")
    return {key: merged[key] for key in keys if merged.get(key) is not None}


# -- create + upload ---------------------------------------------------------------------------


def test_probe_describes_the_endpoint(provider: OpenStackProvider, glance: GlanceServer) -> None:
    assert provider.probe().startswith(f"glance image API v2 at {glance.url}")


def test_create_then_upload_a_file_glance_reports_its_checksum_and_size(
    provider: OpenStackProvider, tmp_path: Path
) -> None:
    request = _upload_request(tags={"team": "ml", "gpu": ""}, description="CUDA base")

    created = provider.create_image(request)

    assert created.state is CloudState.PENDING
    assert "waiting for an upload" in (created.message or "")
    raw = created.raw
    assert raw["disk_format"] == "qcow2"
    assert raw["container_format"] == "bare"
    assert raw["visibility"] == "private"
    assert raw["name"] == "Ubuntu 22.04 base"
    assert set(raw["tags"]) == {idempotency_tag(request), "team.ml", "gpu"}
    assert raw["properties"]["description"] == "CUDA base"
    assert raw["properties"][SHA256_PROPERTY] == QCOW2.sha256
    assert raw["properties"]["imageops.io-object"] == "team-a/ubuntu"

    path = tmp_path / "disk.qcow2"
    path.write_bytes(QCOW2.data)
    with path.open("rb") as data:
        uploaded = provider.upload(created.external_id, data, len(QCOW2.data))

    assert uploaded.state is CloudState.AVAILABLE
    stored = uploaded.raw
    assert stored["status"] == "active"
    assert stored["size"] == len(QCOW2.data)
    assert stored["checksum"] == QCOW2.md5
    assert (stored["hash_algo"], stored["hash_value"]) == ("sha256", QCOW2.sha256)
    assert stored["virtual_size"] == 1 << 30  # Glance read our qcow2 header
    assert not provider.needs_update(request, uploaded)


def test_upload_streams_an_iterator_of_chunks(provider: OpenStackProvider) -> None:
    created = provider.create_image(_upload_request())
    pulled: list[int] = []

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(QCOW2.data), 16384):
            pulled.append(start)
            yield QCOW2.data[start : start + 16384]

    uploaded = provider.upload(created.external_id, chunks(), len(QCOW2.data))

    assert len(pulled) == len(QCOW2.data) // 16384  # consumed chunk by chunk, all of it
    assert uploaded.state is CloudState.AVAILABLE
    assert uploaded.raw["hash_value"] == QCOW2.sha256


def test_upload_by_stage_and_glance_direct_import(provider: OpenStackProvider) -> None:
    assert "glance-direct" in provider.import_methods()
    created = provider.create_image(_upload_request())

    started = provider.upload(
        created.external_id, iter([QCOW2.data]), len(QCOW2.data), method=UploadMethod.IMPORT
    )

    assert started.state in (CloudState.CREATING, CloudState.AVAILABLE)
    done = _until(provider, created.external_id, CloudState.AVAILABLE, CloudState.FAILED)
    assert done.state is CloudState.AVAILABLE, done.message
    assert done.raw["hash_value"] == QCOW2.sha256


def test_data_that_is_not_the_declared_format_is_invalid_input(
    provider: OpenStackProvider,
) -> None:
    created = provider.create_image(_upload_request(checksum=None))
    not_qcow2 = b"\x00" * 65536

    with pytest.raises(InvalidInput) as refused:
        provider.upload(created.external_id, iter([not_qcow2]), len(not_qcow2))

    assert refused.value.vendor_code == "415"
    assert "does not match" in refused.value.message
    assert provider.get_image(created.external_id).state is CloudState.PENDING  # still queued


def test_a_second_upload_is_a_conflict(provider: OpenStackProvider) -> None:
    _, external_id = _uploaded(provider)

    with pytest.raises(Conflict) as refused:
        provider.upload(external_id, iter([QCOW2.data]), len(QCOW2.data))

    assert "active" in refused.value.message
    # Glance's own 409 (no check of ours in front of it): importing into an active image.
    with pytest.raises(Conflict) as glance_refused:
        provider.import_from_url(external_id, "http://127.0.0.1:1/disk.qcow2")
    assert glance_refused.value.vendor_code == "409"


def test_expected_checksum_mismatch_is_failed(provider: OpenStackProvider) -> None:
    _, external_id = _uploaded(provider, checksum="0" * 64)

    image = provider.get_image(external_id)

    assert image.state is CloudState.FAILED
    assert QCOW2.sha256 in (image.message or "")
    assert "0" * 64 in (image.message or "")


# -- web-download import -----------------------------------------------------------------------


def test_web_download_import_from_a_loopback_server(
    provider: OpenStackProvider, file_server: FileServer
) -> None:
    url = file_server.serve("/images/ubuntu.qcow2", QCOW2.data)
    request = _url_request(url, checksum=QCOW2.sha256)

    created = provider.create_image(request)

    assert created.state in (CloudState.CREATING, CloudState.AVAILABLE)
    done = _until(provider, created.external_id, CloudState.AVAILABLE, CloudState.FAILED)
    assert done.state is CloudState.AVAILABLE, done.message
    assert done.raw["size"] == len(QCOW2.data)
    assert done.raw["hash_value"] == QCOW2.sha256
    assert file_server.requests == {"/images/ubuntu.qcow2": 1}
    assert not provider.needs_update(request, done)


def test_web_download_of_a_missing_file_is_failed(
    provider: OpenStackProvider, file_server: FileServer
) -> None:
    created = provider.create_image(_url_request(f"{file_server.url}/nothing-here.qcow2"))

    done = _until(provider, created.external_id, CloudState.AVAILABLE, CloudState.FAILED)

    assert done.state is CloudState.FAILED
    assert "could not import" in (done.message or "")
    assert file_server.requests == {"/nothing-here.qcow2": 1}


def test_a_url_the_import_filter_refuses_is_invalid_input_and_leaves_no_image(
    provider: OpenStackProvider,
) -> None:
    # Only loopback hosts pass this Glance's web-download filter.
    request = _url_request("http://192.0.2.10/disk.qcow2")

    with pytest.raises(InvalidInput) as refused:
        provider.create_image(request)

    assert refused.value.vendor_code == "400"
    assert "does not pass filtering" in refused.value.message
    assert provider.find_image(request) is None  # the metadata-only image was removed


# -- lookup ------------------------------------------------------------------------------------


def test_find_image_recovers_a_create_by_its_idempotency_tag(
    provider: OpenStackProvider,
) -> None:
    request = _upload_request()
    assert provider.find_image(request) is None
    created = provider.create_image(request)

    found = provider.find_image(request)

    assert found is not None and found.external_id == created.external_id
    other_uid = _upload_request()
    assert provider.find_image(other_uid) is None


def test_find_image_finishes_a_url_create_interrupted_before_its_import(
    provider: OpenStackProvider, glance: GlanceServer, file_server: FileServer
) -> None:
    url = file_server.serve("/interrupted.qcow2", QCOW2.data)
    request = _url_request(url)
    # What a crash between the two calls of create_image leaves: tagged metadata, no import.
    conn = glance.connection()
    leftover = conn.image.create_image(
        "leftover",
        allow_duplicates=True,
        disk_format="qcow2",
        container_format="bare",
        tags=[idempotency_tag(request)],
    )
    conn.close()

    found = provider.find_image(request)

    assert found is not None and found.external_id == leftover.id
    done = _until(provider, leftover.id, CloudState.AVAILABLE, CloudState.FAILED)
    assert done.state is CloudState.AVAILABLE, done.message
    assert file_server.requests == {"/interrupted.qcow2": 1}
    again = provider.find_image(request)  # an image with data is only reported, not re-imported
    assert again is not None and again.state is CloudState.AVAILABLE
    assert file_server.requests == {"/interrupted.qcow2": 1}


def test_get_images_describes_many_in_one_call(provider: OpenStackProvider) -> None:
    ids = [provider.create_image(_upload_request()).external_id for _ in range(3)]
    missing = str(uuid.uuid4())
    calls: list[str] = []

    def record(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        calls.append(f"{response.request.method} {response.request.path_url}")

    provider._conn.session.session.hooks["response"].append(record)
    try:
        described = provider.get_images([*ids, missing])
    finally:
        provider._conn.session.session.hooks["response"].remove(record)

    assert set(described) == {*ids, missing}
    assert described[missing] is None
    assert all(described[i] is not None for i in ids)
    assert len(calls) == 1 and calls[0].startswith("GET /v2/images?"), calls


# -- update, tags ------------------------------------------------------------------------------


def test_update_pushes_name_tags_and_properties_as_one_patch(
    provider: OpenStackProvider, glance: GlanceServer
) -> None:
    os = {"type": "Linux", "distribution": "Ubuntu", "version": "22.04"}
    source = {"upload": {"format": "qcow2", "os": os}}
    uid = str(uuid.uuid4())
    request = _request(source, uid=uid, tags={"team": "ml"}, description="first")
    created = provider.create_image(request)
    # Someone else's property: not the operator's to manage.
    conn = glance.connection()
    conn.image.update_image(created.external_id, hw_disk_bus="scsi")
    conn.close()
    current = provider.get_image(created.external_id)
    assert provider_properties(current.raw) == {
        "description": "first",
        "os_type": "linux",
        "os_distro": "ubuntu",
        "os_version": "22.04",
        "architecture": "x86_64",
    }
    assert not provider.needs_update(request, current)

    changed = _request(
        {"upload": {"format": "qcow2"}}, uid=uid, displayName="Renamed", tags={"env": "prod"}
    )
    assert provider.needs_update(changed, current)
    updated = provider.update_image(created.external_id, changed)

    raw = provider.get_image(created.external_id).raw
    assert raw["name"] == "Renamed"
    assert set(raw["tags"]) == {idempotency_tag(changed), "env.prod"}
    assert provider_properties(raw) == {}
    assert raw["hw_disk_bus"] == "scsi"
    assert not provider.needs_update(changed, updated)
    assert provider.update_image(created.external_id, changed).external_id == created.external_id


def test_tags_are_added_and_removed(provider: OpenStackProvider) -> None:
    request = _upload_request()
    external_id = provider.create_image(request).external_id

    provider.add_tags(external_id, ["extra-1", "extra-2"])
    provider.remove_tags(external_id, ["extra-1"])

    assert set(provider.get_image(external_id).raw["tags"]) == {
        idempotency_tag(request),
        "extra-2",
    }
    assert [i.external_id for i in provider.images(tag="extra-2")] == [external_id]
    with pytest.raises(NotFound):
        provider.remove_tags(external_id, ["never-there"])


# -- sharing -----------------------------------------------------------------------------------


def test_a_member_sees_the_image_only_after_accepting(
    provider: OpenStackProvider, other: OpenStackProvider
) -> None:
    request, external_id = _uploaded(provider)
    tag = idempotency_tag(request)

    shared = provider.share(external_id, OTHER_PROJECT)

    assert shared.status is MemberStatus.PENDING
    assert shared.project_id == OTHER_PROJECT
    assert provider.get_image(external_id).raw["visibility"] == "shared"
    assert list(other.images(tag=tag)) == []
    assert provider.share(external_id, OTHER_PROJECT).status is MemberStatus.PENDING  # again

    accepted = other.accept(external_id, OTHER_PROJECT)

    assert accepted.status is MemberStatus.ACCEPTED
    assert [i.external_id for i in other.images(tag=tag)] == [external_id]
    assert provider.members(external_id) == [accepted]
    with pytest.raises(Forbidden):  # a member may use the image, not change it
        other.delete_image(external_id)

    provider.unshare(external_id, OTHER_PROJECT)
    assert list(other.images(tag=tag)) == []
    assert provider.members(external_id) == []


# -- delete, errors ----------------------------------------------------------------------------


def test_delete_then_gone(provider: OpenStackProvider) -> None:
    _, external_id = _uploaded(provider)

    provider.delete_image(external_id)

    with pytest.raises(NotFound) as gone:
        provider.get_image(external_id)
    assert gone.value.vendor_code == "404"
    assert provider.get_images([external_id]) == {external_id: None}
    with pytest.raises(NotFound):
        provider.delete_image(external_id)


def test_a_tag_glance_refuses_is_invalid_input(provider: OpenStackProvider) -> None:
    # The CRD now refuses such a key at admission; the provider must still map Glance's own
    # refusal (e.g. an object stored before that rule), so the spec is built past validation.
    request = _upload_request()
    spec = request.spec.model_copy(update={"tags": {"k" * 300: "v"}})
    with pytest.raises(InvalidInput) as refused:
        provider.create_image(request.model_copy(update={"spec": spec}))  # Glance: tags <= 255

    assert refused.value.vendor_code == "400"
    assert "too long" in refused.value.message
    assert "&#x27;" not in refused.value.message  # Glance's HTML escapes are undone


def test_other_sources_are_unsupported(provider: OpenStackProvider) -> None:
    request = _request({"repository": {"image": "library/busybox:1.36"}})

    with pytest.raises(Unsupported) as refused:
        provider.create_image(request)

    assert "openstack" in refused.value.message


def test_unreachable_glance_is_transient_and_never_shows_the_token() -> None:
    provider = OpenStackProvider(
        connect("http://127.0.0.1:9", {"token": "tok-s3cret"}, region=None, project=None),
        endpoint="http://user:pw@127.0.0.1:9/?k=v",
    )

    with pytest.raises(Transient) as down:
        provider.probe()

    assert "unreachable" in down.value.message
    assert "tok-s3cret" not in down.value.message
    assert provider.endpoint == "http://127.0.0.1:9/"  # user info and query never shown


class _RefusingKeystone:
    """A loopback identity endpoint that refuses every token request (and records it)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                outer.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
                body = json.dumps({"error": {"code": 401, "title": "Unauthorized"}}).encode()
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


def test_refused_application_credential_is_forbidden_without_the_secret() -> None:
    keystone = _RefusingKeystone()
    spec = ImageProviderSpec.model_validate({"type": "openstack", "endpoint": keystone.url})
    credentials = {"applicationCredentialId": "app-1", "applicationCredentialSecret": "s3cret"}
    try:
        provider = build(ProviderConfig(spec, credentials))
        with pytest.raises(Forbidden) as refused:
            provider.probe()
    finally:
        keystone.httpd.shutdown()
        keystone.httpd.server_close()

    assert "s3cret" not in refused.value.message
    identity = keystone.bodies[0]["auth"]["identity"]
    assert identity["methods"] == ["application_credential"]
    assert identity["application_credential"]["id"] == "app-1"


@pytest.mark.parametrize(
    ("spec", "credentials", "expected"),
    [
        ({"type": "openstack"}, {}, "spec.endpoint is required"),
        (
            {"type": "openstack", "endpoint": "http://127.0.0.1:9"},
            {"applicationCredentialId": "x"},
            "lacks applicationCredentialSecret",
        ),
        (
            {"type": "openstack", "endpoint": "http://127.0.0.1:9"},
            {"username": "u", "password": "pw-s3cret"},
            "spec.project",
        ),
    ],
)
def test_incomplete_configuration_is_invalid_input(
    spec: dict[str, Any], credentials: dict[str, str], expected: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        build_provider(
            ImageProviderSpec.model_validate(spec), credentials, endpoints=LOOPBACK_ENDPOINTS
        )

    assert expected in refused.value.message
    assert "s3cret" not in refused.value.message


def test_every_request_waits_for_the_rate_limit(glance: GlanceServer) -> None:
    waits: list[float] = []
    # A clock that stands still: no token comes back by itself, whatever the calls take.
    limiter = TokenBucket(1, 1, clock=lambda: 0.0, sleep=waits.append)
    connection = glance.connection()
    sent: list[str] = []
    connection.session.session.hooks["response"].append(
        lambda response, *_args, **_kwargs: sent.append(response.request.url)
    )
    provider = OpenStackProvider(connection, endpoint=glance.url, limiter=limiter)
    try:
        provider.probe()
        provider.get_images([str(uuid.uuid4())])
    finally:
        provider.close()

    # Every HTTP request the SDK sent, its version discovery included, took a token: the first
    # the only one, each later one waited a second longer than the one before.
    assert len(sent) >= 3
    assert waits == [float(n) for n in range(1, len(sent))]
