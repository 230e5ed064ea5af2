"""Provider options on an Image (issue 12): options of another provider type stall naming the
field before any cloud call; spec.argon.name's limits; a provider's refusal of a taken name
stalls naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from image_operator.api.image import ImageSpec
from image_operator.providers.errors import InvalidInput
from tests.unit.fakes import FakeProvider
from tests.unit.test_image_reconciler import Harness, cond, make_obj, make_spec


class ArgonTypedFake(FakeProvider):
    type_name = "argon"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("openstack", {"visibility": "shared", "minDiskGiB": 10}),
        ("ucloudstack", {"supportQGA": True}),
        ("argon", {"name": "chosen"}),
    ],
)
def test_options_of_another_provider_type_stall_naming_the_field_before_any_call(
    field: str, value: dict[str, Any]
) -> None:
    h = Harness()
    outcome = h.reconcile(make_obj(spec=make_spec(**{field: value})))

    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "Unsupported"
    assert f"spec.{field} holds options for an ImageProvider of type {field}" in stalled["message"]
    assert "'fake'" in stalled["message"]
    assert h.provider.calls == []


def test_options_of_the_providers_own_type_are_accepted() -> None:
    h = Harness(provider=ArgonTypedFake())
    outcome = h.reconcile(make_obj(spec=make_spec(argon={"name": "chosen"})))

    assert "externalID" in outcome.status
    assert [name for name, _ in h.provider.calls] == ["find_image", "create_image"]


def test_a_taken_argon_name_stalls_naming_the_field() -> None:
    h = Harness(provider=ArgonTypedFake())
    h.provider.fail_next(
        "create_image", InvalidInput("spec.argon.name 'x' is taken in Argon namespace 'default'")
    )

    outcome = h.reconcile(make_obj(spec=make_spec(argon={"name": "x"})))

    stalled = cond(outcome, "Stalled")
    assert "spec.argon.name 'x' is taken" in stalled["message"]
    assert "externalID" not in outcome.status


@pytest.mark.parametrize("name", ["a/b", ".", "..", "", "x" * 254])
def test_argon_names_outside_the_seeds_limits_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match=r"argon\.name"):
        make_spec(argon={"name": name})


def test_argon_names_may_be_chinese_as_in_seed_001() -> None:
    spec = make_spec(argon={"name": "普通整片转码"})
    assert spec.argon is not None and spec.argon.name == "普通整片转码"


@pytest.mark.parametrize("key", ["min_disk", "description", "os_glance_x", "imageops.io-uid-x"])
def test_openstack_properties_may_not_shadow_attributes_or_managed_properties(key: str) -> None:
    with pytest.raises(ValidationError, match="its own spec field"):
        make_spec(openstack={"properties": {key: "v"}})


def test_provider_options_round_trip_in_camel_case() -> None:
    raw = {
        "openstack": {
            "visibility": "community",
            "containerFormat": "ovf",
            "minDiskGiB": 20,
            "minRamMiB": 1024,
            "protected": True,
            "properties": {"hw_disk_bus": "virtio"},
        },
    }
    spec = make_spec(**raw)
    assert ImageSpec.model_validate(spec.to_wire()).to_wire()["openstack"] == raw["openstack"]
