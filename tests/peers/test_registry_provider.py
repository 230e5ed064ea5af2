"""The `registry` provider against a real OCI registry (distribution 2.8): every call it makes.

What the registry holds afterwards is checked with plain distribution API calls and its access
log (tests/peers/registry.py), not with the provider's own client.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from image_operator.api.image import ImageSource, ImageSpec
from image_operator.api.provider import ImageProviderSpec
from image_operator.providers.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Throttled,
    Transient,
    Unsupported,
)
from image_operator.providers.factory import build_provider
from image_operator.providers.model import CloudState, ImageRequest
from image_operator.providers.oci import TRACK_SOURCE, RegistryProvider, key_tag
from image_operator.providers.oci_client import map_error
from image_operator.providers.oci_reference import DOCKER_MANIFEST, OCI_MANIFEST, Reference
from image_operator.providers.ratelimit import TokenBucket
from tests.loopback import LOOPBACK_ENDPOINTS
from tests.peers.registry import (
    ACCEPT_MANIFESTS,
    RegistryServer,
    blob_status,
    manifest_status,
    push_image,
    push_index,
    put_manifest,
    start_registry,
    tags,
)

UID = "4f3ede4c-1111-2222-3333-444455556666"


@pytest.fixture(scope="module")
def other_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A second registry: sources there are copied without mount (pull + push)."""
    server = start_registry(tmp_path_factory.mktemp("other-registry"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def locked_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry with an htpasswd user: anonymous calls and wrong passwords get 401."""
    server = start_registry(tmp_path_factory.mktemp("locked-registry"), users={"ci": "s3cret-pw"})
    yield server
    server.stop()


@pytest.fixture
def namespace() -> str:
    """A fresh namespace per test, so tests share the session registry without meeting."""
    return f"ct-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def provider(oci_registry: RegistryServer) -> Iterator[RegistryProvider]:
    provider = RegistryProvider(endpoint=oci_registry.url)
    yield provider
    provider.close()


def _request(
    image: str, namespace: str, name: str = "app", uid: str = UID, **spec: Any
) -> ImageRequest:
    body = {
        "providerRef": {"name": "registry"},
        "displayName": "copy",
        "source": {"repository": {"image": image}},
        **spec,
    }
    return ImageRequest(
        idempotency_key=uid, name=name, namespace=namespace, spec=ImageSpec.model_validate(body)
    )


def _manifest_bytes(server: RegistryServer, repository: str, reference: str) -> bytes:
    with server.client() as http:
        response = http.get(
            f"/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT_MANIFESTS}
        )
        assert response.status_code == 200, response.text
        return response.content


def test_probe_describes_the_registry(
    provider: RegistryProvider, oci_registry: RegistryServer
) -> None:
    assert provider.probe() == f"OCI registry {oci_registry.host} (registry/2.0)"


def test_create_pins_the_source_digest_and_keeps_the_manifest_bytes(
    provider: RegistryProvider, oci_registry: RegistryServer, namespace: str
) -> None:
    source = push_image(oci_registry, f"{namespace}-src/app", "v1", layers=2)

    created = provider.create_image(_request(source.reference, namespace))

    assert created.external_id == f"{oci_registry.host}/{namespace}/app@{source.digest}"
    assert created.state is CloudState.AVAILABLE
    assert created.fingerprint == source.digest
    assert created.raw["sourceDigest"] == source.digest
    assert created.raw["source"] == source.reference
    # The exact bytes, so the copy is the same content-addressed image as its source.
    assert _manifest_bytes(oci_registry, f"{namespace}/app", source.digest) == source.manifest
    assert tags(oci_registry, f"{namespace}/app") == sorted(["v1", key_tag(UID)])

    # The source tag moves on; the copy stays pinned to what it resolved to.
    moved = push_image(oci_registry, f"{namespace}-src/app", "v1", content=b"v1, rebuilt\n")
    assert moved.digest != source.digest
    again = provider.get_image(created.external_id)
    assert again.fingerprint == source.digest
    assert _manifest_bytes(oci_registry, f"{namespace}/app", "v1") == source.manifest


def test_copy_within_the_registry_mounts_every_blob(
    provider: RegistryProvider, oci_registry: RegistryServer, namespace: str
) -> None:
    source = push_image(oci_registry, f"{namespace}-src/app", "v1", layers=2)
    before = len(oci_registry.access_log())

    created = provider.create_image(_request(source.reference, namespace))

    assert created.raw["copy"] == {"mounted": 3, "uploaded": 0, "present": 0, "manifests": 0}
    calls = oci_registry.access_log()[before:]
    mounts = [c for c in calls if c.method == "POST" and "mount" in c.query]
    assert sorted(c.query["mount"] for c in mounts) == sorted(source.blobs)
    assert {(c.path, c.query["from"], c.status) for c in mounts} == {
        (f"/v2/{namespace}/app/blobs/uploads/", f"{namespace}-src/app", 201)
    }
    assert not [c for c in calls if c.method in ("PUT", "PATCH") and "/blobs/" in c.path]
    for blob in source.blobs:
        assert blob_status(oci_registry, f"{namespace}/app", blob) == 200


def test_source_without_a_host_is_in_the_providers_registry(
    provider: RegistryProvider, oci_registry: RegistryServer, namespace: str
) -> None:
    source = push_image(oci_registry, f"{namespace}-src/app", "v2")

    created = provider.create_image(_request(f"{namespace}-src/app:v2", namespace))

    assert created.fingerprint == source.digest
    assert created.raw["copy"]["mounted"] == 2


def test_copy_across_registries_streams_blobs_without_mount(
    provider: RegistryProvider,
    oci_registry: RegistryServer,
    other_registry: RegistryServer,
    namespace: str,
) -> None:
    source = push_image(other_registry, f"{namespace}/upstream", "1.0", layers=2)
    before = len(oci_registry.access_log())

    created = provider.create_image(_request(source.reference, namespace))

    assert created.fingerprint == source.digest
    assert created.raw["copy"] == {"mounted": 0, "uploaded": 3, "present": 0, "manifests": 0}
    calls = oci_registry.access_log()[before:]
    assert not [c for c in calls if "mount" in c.query]
    uploads = [c for c in calls if c.method == "PUT" and "/blobs/uploads/" in c.path]
    assert sorted(c.query["digest"] for c in uploads) == sorted(source.blobs)
    assert {c.status for c in uploads} == {201}
    assert _manifest_bytes(oci_registry, f"{namespace}/app", "1.0") == source.manifest

    # A copy that starts over (here: another object of the same name) skips what is there.
    again = provider.create_image(_request(source.reference, namespace, uid="another-uid"))
    assert again.raw["copy"] == {"mounted": 0, "uploaded": 0, "present": 3, "manifests": 0}


def test_copy_of_an_index_copies_every_platform(
    provider: RegistryProvider,
    oci_registry: RegistryServer,
    other_registry: RegistryServer,
    namespace: str,
) -> None:
    index = push_index(other_registry, f"{namespace}/multi", "2.0")

    created = provider.create_image(_request(index.reference, namespace, name="multi"))

    assert created.fingerprint == index.digest
    assert created.raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert created.raw["copy"]["manifests"] == 2
    assert _manifest_bytes(oci_registry, f"{namespace}/multi", "2.0") == index.manifest
    for child in index.children:
        assert manifest_status(oci_registry, f"{namespace}/multi", child) == 200
    for blob in index.blobs:
        assert blob_status(oci_registry, f"{namespace}/multi", blob) == 200


def test_docker_schema2_manifest_is_copied_with_its_media_type(
    provider: RegistryProvider, oci_registry: RegistryServer, namespace: str
) -> None:
    oci = push_image(oci_registry, f"{namespace}-src/app", "oci")
    docker = json.loads(oci.manifest)
    docker["mediaType"] = DOCKER_MANIFEST
    docker["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json"
    docker["layers"][0]["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    body = json.dumps(docker).encode()
    with oci_registry.client() as http:
        digest = put_manifest(http, f"{namespace}-src/app", "docker", body, DOCKER_MANIFEST)

    created = provider.create_image(_request(f"{namespace}-src/app:docker", namespace))

    assert created.fingerprint == digest
    assert created.raw["mediaType"] == DOCKER_MANIFEST
    with oci_registry.client() as http:
        stored = http.get(
            f"/v2/{namespace}/app/manifests/docker", headers={"Accept": DOCKER_MANIFEST}
        )
    assert stored.headers["Content-Type"] == DOCKER_MANIFEST
    assert stored.content == body


def test_find_image_recovers_a_create_by_its_key_tag(
    provider: RegistryProvider, oci_registry: RegistryServer, namespace: str
) -> None:
    source = push_image(oci_registry, f"{namespace}-src/app", "v1")
    request = _request(source.reference, namespace)
    assert provider.find_image(request) is None

    created = provider.create_image(request)

    found = provider.find_image(request)
    assert found is not None
    assert found.external_id == created.external_id
    with pytest.raises(Conflict):
        provider.create_image(request)
    # Same name, another object (another UID): not ours.
    assert provider.find_image(_request(source.reference, namespace, uid="other-uid")) is None


def test_get_images_answers_tag_ids_from_one_tag_list(
    provider: RegistryProvider, oci_registry: RegistryServer, namespace: str
) -> None:
    first = push_image(oci_registry, f"{namespace}/adopted", "a")
    push_image(oci_registry, f"{namespace}/adopted", "b", content=b"b")
    host = oci_registry.host
    by_tag = [f"{host}/{namespace}/adopted:a", f"{host}/{namespace}/adopted:b"]
    missing_tag = f"{host}/{namespace}/adopted:never"
    missing_digest = f"{host}/{namespace}/adopted@sha256:{'0' * 64}"
    before = len(oci_registry.access_log())

    described = provider.get_images([*by_tag, missing_tag, first.pinned, missing_digest])

    assert all(described[i] is not None for i in [*by_tag, first.pinned])
    assert described[missing_tag] is None
    assert described[missing_digest] is None
    pinned = described[first.pinned]
    assert pinned is not None and pinned.fingerprint == first.digest
    calls = oci_registry.access_log()[before:]
    assert [(c.method, c.path) for c in calls] == [
        ("HEAD", f"/v2/{namespace}/adopted/manifests/{first.digest}"),
        ("HEAD", f"/v2/{namespace}/adopted/manifests/sha256:{'0' * 64}"),
        ("GET", f"/v2/{namespace}/adopted/tags/list"),
    ]


def test_delete_by_digest_then_the_manifest_is_gone(
    provider: RegistryProvider, oci_registry: RegistryServer, namespace: str
) -> None:
    source = push_image(oci_registry, f"{namespace}-src/app", "v1")
    created = provider.create_image(_request(source.reference, namespace))

    provider.delete_image(created.external_id)

    assert manifest_status(oci_registry, f"{namespace}/app", source.digest) == 404
    assert tags(oci_registry, f"{namespace}/app") == []
    with pytest.raises(NotFound):
        provider.get_image(created.external_id)
    assert provider.get_images([created.external_id]) == {created.external_id: None}
    with pytest.raises(NotFound):
        provider.delete_image(created.external_id)
    # The source is another repository: untouched.
    assert manifest_status(oci_registry, f"{namespace}-src/app", source.digest) == 200


def test_delete_of_a_tag_id_resolves_the_digest_first(
    provider: RegistryProvider, oci_registry: RegistryServer, namespace: str
) -> None:
    image = push_image(oci_registry, f"{namespace}/adopted", "keep-me")
    before = len(oci_registry.access_log())

    provider.delete_image(f"{oci_registry.host}/{namespace}/adopted:keep-me")

    calls = oci_registry.access_log()[before:]
    assert [(c.method, c.path, c.status) for c in calls] == [
        ("HEAD", f"/v2/{namespace}/adopted/manifests/keep-me", 200),
        ("DELETE", f"/v2/{namespace}/adopted/manifests/{image.digest}", 202),
    ]
    assert manifest_status(oci_registry, f"{namespace}/adopted", image.digest) == 404


def test_tracking_copies_the_moved_source_and_retires_the_old_digest(
    provider: RegistryProvider, oci_registry: RegistryServer, namespace: str
) -> None:
    old = push_image(oci_registry, f"{namespace}-src/app", "stable")
    untracked = _request(old.reference, namespace)
    tracked = _request(old.reference, namespace, tags={TRACK_SOURCE: "true"})
    created = provider.create_image(tracked)
    assert not provider.needs_update(tracked, created)

    new = push_image(oci_registry, f"{namespace}-src/app", "stable", content=b"new build\n")

    current = provider.get_image(created.external_id)
    assert not provider.needs_update(untracked, current)  # pinned unless asked to track
    assert provider.needs_update(tracked, current)
    updated = provider.update_image(created.external_id, tracked)

    assert updated.external_id == f"{oci_registry.host}/{namespace}/app@{new.digest}"
    assert manifest_status(oci_registry, f"{namespace}/app", old.digest) == 404
    assert _manifest_bytes(oci_registry, f"{namespace}/app", "stable") == new.manifest
    found = provider.find_image(tracked)
    assert found is not None and found.external_id == updated.external_id
    assert not provider.needs_update(tracked, provider.get_image(updated.external_id))


def test_a_pinned_source_is_copied_and_never_tracked(
    provider: RegistryProvider, oci_registry: RegistryServer, namespace: str
) -> None:
    source = push_image(oci_registry, f"{namespace}-src/app", "v1")
    request = _request(source.pinned, namespace, tags={TRACK_SOURCE: "true"})

    created = provider.create_image(request)

    assert created.fingerprint == source.digest
    assert tags(oci_registry, f"{namespace}/app") == [key_tag(UID)]
    push_image(oci_registry, f"{namespace}-src/app", "v1", content=b"moved\n")
    assert not provider.needs_update(request, created)


# -- errors ----------------------------------------------------------------------------------


def test_anonymous_and_wrong_password_are_forbidden(locked_registry: RegistryServer) -> None:
    anonymous = RegistryProvider(endpoint=locked_registry.url)
    wrong = RegistryProvider(endpoint=locked_registry.url, username="ci", password="wrong-pw")

    for provider in (anonymous, wrong):
        with pytest.raises(Forbidden) as refused:
            provider.probe()
        assert "401 UNAUTHORIZED" in refused.value.message
        assert "wrong-pw" not in refused.value.message
        provider.close()


def test_basic_credentials_copy_and_delete(locked_registry: RegistryServer, namespace: str) -> None:
    source = push_image(locked_registry, f"{namespace}-src/app", "v1")
    provider = RegistryProvider(endpoint=locked_registry.url, username="ci", password="s3cret-pw")

    created = provider.create_image(_request(source.reference, namespace))
    provider.delete_image(created.external_id)

    assert created.raw["copy"]["mounted"] == 2
    assert manifest_status(locked_registry, f"{namespace}/app", source.digest) == 404
    provider.close()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry behind a token service (distribution's bearer-token auth), as hosted ones."""
    server = start_registry(
        tmp_path_factory.mktemp("token-registry"), users={"ci": "t0ken-pw"}, token_auth=True
    )
    yield server
    server.stop()


def test_bearer_tokens_are_fetched_per_scope(
    token_registry: RegistryServer, namespace: str
) -> None:
    source = push_image(token_registry, f"{namespace}-src/app", "v1")
    assert token_registry.tokens is not None
    token_registry.tokens.issued.clear()
    provider = RegistryProvider(endpoint=token_registry.url, username="ci", password="t0ken-pw")

    created = provider.create_image(_request(source.reference, namespace))
    provider.delete_image(created.external_id)

    # The registry names scopes and actions in no fixed order (Go map iteration): as sets.
    issued = [
        (user, {(s.rsplit(":", 1)[0], frozenset(s.rsplit(":", 1)[1].split(","))) for s in scopes})
        for user, scopes in token_registry.tokens.issued
    ]
    assert created.raw["copy"]["mounted"] == 2
    assert manifest_status(token_registry, f"{namespace}/app", source.digest) == 404
    # One token per scope, reused within it: the key-tag lookup, the source read, the
    # mount (push here + pull there, in one token) that also covers the manifest PUTs, the
    # delete.
    target, src = f"repository:{namespace}/app", f"repository:{namespace}-src/app"
    assert issued == [
        ("ci", {(target, frozenset({"pull"}))}),
        ("ci", {(src, frozenset({"pull"}))}),
        ("ci", {(target, frozenset({"pull", "push"})), (src, frozenset({"pull"}))}),
        ("ci", {(target, frozenset({"delete"}))}),
    ]
    provider.close()


def test_anonymous_bearer_tokens_read_but_cannot_write(
    token_registry: RegistryServer, namespace: str
) -> None:
    source = push_image(token_registry, f"{namespace}-src/app", "v1")
    provider = RegistryProvider(endpoint=token_registry.url)

    assert provider.get_image(source.pinned).fingerprint == source.digest
    with pytest.raises(Forbidden) as refused:
        provider.create_image(_request(source.reference, namespace))

    assert "401 UNAUTHORIZED to mount blob" in refused.value.message
    provider.close()


def test_missing_source_is_not_found(provider: RegistryProvider, namespace: str) -> None:
    with pytest.raises(NotFound) as missing:
        provider.create_image(_request(f"{namespace}/nothing:here", namespace))
    assert "MANIFEST_UNKNOWN" in missing.value.message


def test_invalid_manifests_are_invalid_input(
    provider: RegistryProvider, oci_registry: RegistryServer, namespace: str
) -> None:
    with pytest.raises(InvalidInput) as garbage:
        provider.registry.put_manifest(f"{namespace}/x", "v1", b"not json", OCI_MANIFEST)
    assert garbage.value.vendor_code == "MANIFEST_INVALID"

    dangling = (
        b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
        b'"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'
        + b"1" * 64
        + b'","size":2},"layers":[]}'
    )
    with pytest.raises(InvalidInput) as unknown_blob:
        provider.registry.put_manifest(f"{namespace}/x", "v1", dangling, OCI_MANIFEST)
    assert unknown_blob.value.vendor_code == "MANIFEST_BLOB_UNKNOWN"


def test_invalid_references_are_refused_before_any_call(
    provider: RegistryProvider, namespace: str
) -> None:
    with pytest.raises(InvalidInput, match="repository 'Bad_Name'"):
        provider.get_image(f"Bad_Name@sha256:{'a' * 64}")
    with pytest.raises(InvalidInput, match=r"names registry elsewhere\.example"):
        provider.get_image(f"elsewhere.example/app@sha256:{'a' * 64}")
    with pytest.raises(InvalidInput, match="longer than 255"):
        provider.repository_for(_request("src/app:v1", namespace, name="n" * 250))


def test_deletes_disabled_are_unsupported(tmp_path: Path, namespace: str) -> None:
    server = start_registry(tmp_path / "no-deletes", delete_enabled=False)
    try:
        source = push_image(server, f"{namespace}/app", "v1")
        provider = RegistryProvider(endpoint=server.url)
        with pytest.raises(Unsupported) as refused:
            provider.delete_image(source.pinned)
        assert refused.value.vendor_code == "UNSUPPORTED"
        provider.close()
    finally:
        server.stop()


def test_server_errors_and_unreachable_registries_are_transient(
    tmp_path: Path, namespace: str
) -> None:
    server = start_registry(tmp_path / "broken")
    source = push_image(server, f"{namespace}/app", "v1")
    # A file where the registry needs a directory: its storage driver fails, it answers 500.
    repositories = server.root / "docker" / "registry" / "v2" / "repositories"
    (repositories / "broken").write_text("not a directory")
    provider = RegistryProvider(endpoint=server.url)
    try:
        with pytest.raises(Transient) as failed:
            provider.create_image(_request(source.reference, "broken"))
        assert "500 UNKNOWN" in failed.value.message
        assert failed.value.retryable
    finally:
        server.stop()

    with pytest.raises(Transient) as unreachable:
        provider.probe()
    assert "unreachable" in unreachable.value.message
    provider.close()


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "code"),
    [
        (429, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow"}]}', {}, Throttled, None),
        (503, b"", {}, Transient, None),
        (502, b"<html>bad gateway</html>", {}, Transient, None),
        (403, b'{"errors":[{"code":"DENIED","message":"no"}]}', {}, Forbidden, "DENIED"),
        (400, b'{"errors":[{"code":"NAME_INVALID","message":"x"}]}', {}, InvalidInput, None),
    ],
)
def test_error_table_for_answers_distribution_28_never_gives(
    status: int, body: bytes, headers: dict[str, str], expected: type, code: str | None
) -> None:
    """distribution 2.8 has no rate limit and no proxy in front here, so these answers (which
    hosted registries and proxies do send) are built, not provoked: the mapping table only."""
    response = httpx.Response(
        status,
        content=body,
        headers={"Retry-After": "7", **headers},
        request=httpx.Request("GET", "http://registry.test/v2/"),
    )

    error = map_error(response, "registry.test", "GET /v2/")

    assert type(error) is expected
    assert f"registry registry.test answered {status}" in error.message
    if code:
        assert error.vendor_code == code
    if isinstance(error, Throttled):
        assert error.retry_after == 7.0


def test_other_source_kinds_are_unsupported(provider: RegistryProvider, namespace: str) -> None:
    request = _request("unused:v1", namespace)
    vm = request.spec.model_copy(
        update={"source": ImageSource.model_validate({"vm": {"vmID": "vm-1"}})}
    )

    with pytest.raises(Unsupported, match="capture a VM"):
        provider.create_image(request.model_copy(update={"spec": vm}))


def test_every_http_call_waits_for_the_rate_limiter(
    oci_registry: RegistryServer, namespace: str
) -> None:
    class CountingBucket(TokenBucket):
        calls = 0

        def acquire(self) -> float:
            CountingBucket.calls += 1
            return super().acquire()

    source = push_image(oci_registry, f"{namespace}-src/app", "v1")
    before = len(oci_registry.access_log())
    provider = RegistryProvider(endpoint=oci_registry.url, limiter=CountingBucket(1000, 1000))

    provider.create_image(_request(source.reference, namespace))

    made = len(oci_registry.access_log()[before:])
    # HEAD key tag, GET source manifest, 2 mounts (config, layer), PUT under 2 tags.
    assert made == CountingBucket.calls == 6
    provider.close()


# -- configuration -------------------------------------------------------------------------


def test_factory_builds_the_registry_type(oci_registry: RegistryServer) -> None:
    spec = ImageProviderSpec.model_validate(
        {"type": "registry", "endpoint": oci_registry.url, "project": "mirror"}
    )

    provider = build_provider(spec, {}, endpoints=LOOPBACK_ENDPOINTS)

    assert isinstance(provider, RegistryProvider)
    assert provider.probe().endswith("repositories under mirror/)")
    provider.close()


@pytest.mark.parametrize(
    ("spec", "credentials", "message"),
    [
        ({}, {}, "spec.endpoint is required"),
        ({"endpoint": "http://127.0.0.1:5000/v2"}, {}, "without a path"),
        ({"endpoint": "https://me:hunter2@registry.example"}, {}, "must not carry credentials"),
        ({"endpoint": "https://registry.example", "project": "Team_A"}, {}, "spec.project"),
        ({"endpoint": "https://registry.example"}, {"username": "me"}, "only one of"),
    ],
)
def test_build_names_the_field_that_is_wrong(
    spec: dict[str, str], credentials: dict[str, str], message: str
) -> None:
    # registry.example resolves to a public address here, without DNS.
    public = dataclasses.replace(LOOPBACK_ENDPOINTS, resolver=lambda _host: ["203.0.113.7"])
    with pytest.raises(InvalidInput) as refused:
        build_provider(
            ImageProviderSpec.model_validate({"type": "registry", **spec}),
            credentials,
            endpoints=public,
        )
    assert message in refused.value.message
    assert "hunter2" not in refused.value.message


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("busybox", Reference(None, "busybox")),
        ("team/app:1.2", Reference(None, "team/app", "1.2")),
        ("localhost/app", Reference("localhost", "app")),
        (
            "127.0.0.1:5000/a/b:v@sha256:" + "f" * 64,
            Reference("127.0.0.1:5000", "a/b", "v", "sha256:" + "f" * 64),
        ),
        ("docker.io/busybox:1.36", Reference("docker.io", "library/busybox", "1.36")),
        ("ghcr.io/org/app", Reference("ghcr.io", "org/app")),
    ],
)
def test_references_follow_the_docker_grammar(text: str, parsed: Reference) -> None:
    assert Reference.parse(text) == parsed
