"""The `argon` provider against the emulator: every call it makes, and every error mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from image_operator.api.image import ImageSpec
from image_operator.providers.argon import ArgonProvider, cloud_name
from image_operator.providers.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Throttled,
    Transient,
)
from image_operator.providers.model import CloudState, ImageRequest
from image_operator_dev.emulator.config import FaultSettings
from image_operator_dev.emulator.testing import ArgonHarness, poll_until
from tests.contract.conftest import StartArgon

FIXTURE = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "transcode-image.yaml"
UID = "4f3ede4c-1111-2222-3333-444455556666"


def _spec(**overrides: Any) -> ImageSpec:
    manifest = yaml.safe_load(FIXTURE.read_text())
    spec = {**manifest["spec"], **overrides}
    return ImageSpec.model_validate(spec)


def _request(name: str = "transcode", uid: str = UID, **overrides: Any) -> ImageRequest:
    return ImageRequest(idempotency_key=uid, name=name, namespace="ns", spec=_spec(**overrides))


def _provider(argon: ArgonHarness, token: str | None = None) -> ArgonProvider:
    return ArgonProvider(endpoint=argon.url, namespace="default", token=token or argon.token)


def test_seed_transcode_image_is_created_and_becomes_available(argon: ArgonHarness) -> None:
    provider = _provider(argon)
    request = _request()

    created = provider.create_image(request)

    assert created.external_id == cloud_name(request) == "transcode-4f3ede4c"
    assert created.state in (CloudState.PENDING, CloudState.CREATING)
    stored = argon.api.get(argon.image_path(created.external_id)).json()
    assert stored["displayName"] == "普通整片转码"
    assert stored["command"] == request.spec.command
    assert [p["kind"] for p in stored["configs"]] == ["config"] * len(stored["configs"])
    seen = poll_until(
        lambda: provider.get_image(created.external_id),
        lambda image: image.state is CloudState.AVAILABLE,
    )
    assert seen[-1].progress == 100
    assert not provider.needs_update(request, seen[-1])


def test_find_image_recovers_a_create_by_its_key(argon: ArgonHarness) -> None:
    provider = _provider(argon)
    assert provider.find_image(_request()) is None
    created = provider.create_image(_request())

    found = provider.find_image(_request())

    assert found is not None and found.external_id == created.external_id
    with pytest.raises(Conflict):
        provider.create_image(_request())


def test_get_images_describes_many_in_one_call(argon: ArgonHarness) -> None:
    provider = _provider(argon)
    requests = [_request(f"img{i}", uid=f"{i:08d}-x") for i in range(5)]
    ids = [provider.create_image(request).external_id for request in requests]
    argon.admin.delete("/_emulator/stats")

    described = provider.get_images([*ids, "missing-image"])

    assert set(described) == {*ids, "missing-image"}
    assert described["missing-image"] is None
    assert all(described[i] is not None for i in ids)
    routes = argon.admin.get("/_emulator/stats").json()["routes"]
    assert routes == {
        "GET /api/v1/namespaces/{namespace}/images": {"count": 1, "statuses": {"200": 1}}
    }


def test_update_pushes_changed_fields(argon: ArgonHarness) -> None:
    provider = _provider(argon)
    created = provider.create_image(_request())
    current = provider.get_image(created.external_id)
    changed = _request(displayName="新名字", price="2.5")
    assert provider.needs_update(changed, current)

    provider.update_image(created.external_id, changed)

    after = provider.get_image(created.external_id)
    assert after.raw["displayName"] == "新名字"
    assert str(after.raw["price"]) == "2.5"
    assert not provider.needs_update(changed, after)


def test_delete_then_gone(argon: ArgonHarness) -> None:
    provider = _provider(argon)
    created = provider.create_image(_request())

    provider.delete_image(created.external_id)

    poll_until(
        lambda: provider.get_images([created.external_id])[created.external_id],
        lambda image: image is None,
    )
    with pytest.raises(NotFound):
        provider.get_image(created.external_id)
    with pytest.raises(NotFound):
        provider.delete_image(created.external_id)


def test_wrong_token_is_forbidden(argon: ArgonHarness) -> None:
    with pytest.raises(Forbidden) as refused:
        _provider(argon, token="not-the-token").probe()
    assert "401" in refused.value.message


def test_invalid_input_names_the_field(argon: ArgonHarness) -> None:
    provider = _provider(argon)
    # The CRD would refuse this too; here the emulator's own check answers, as Argon would.
    spec = _spec().model_copy(update={"display_name": "x" * 200})

    with pytest.raises(InvalidInput) as refused:
        provider.create_image(ImageRequest(idempotency_key=UID, name="t", namespace="n", spec=spec))

    assert "image.displayName" in refused.value.message


def test_throttling_carries_retry_after(start_argon: StartArgon) -> None:
    argon = start_argon(faults={"throttle_rate": 1.0, "retry_after_seconds": 7})

    with pytest.raises(Throttled) as throttled:
        _provider(argon).probe()

    assert throttled.value.retry_after == 7.0
    assert throttled.value.retryable


def test_server_errors_and_unreachable_endpoints_are_transient(argon: ArgonHarness) -> None:
    argon.emulator.set_faults("argon", FaultSettings(error_rate=1.0))
    with pytest.raises(Transient):
        _provider(argon).probe()

    unreachable = ArgonProvider(endpoint="http://127.0.0.1:9", namespace="default", token="t")
    with pytest.raises(Transient) as down:
        unreachable.probe()
    assert "unreachable" in down.value.message
