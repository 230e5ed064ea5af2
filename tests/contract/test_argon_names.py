"""spec.argon.name against the Argon emulator: a chosen name is created as given, owned through
the owner marker at the end of the description, found again by its owner only, and a name
another image holds stalls naming the field (issue 12 part 6)."""

from __future__ import annotations

from typing import Any

import pytest

from image_operator.providers.argon import ArgonProvider, cloud_name, owner_marker
from image_operator.providers.errors import Conflict, InvalidInput
from image_operator.providers.model import ImageRequest
from image_operator_dev.emulator.testing import ArgonHarness
from tests.contract.test_argon_provider import UID, _provider, _request

OTHER_UID = "99999999-1111-2222-3333-444455556666"


def _named(name: str, uid: str = UID, **overrides: Any) -> ImageRequest:
    return _request(uid=uid, argon={"name": name}, **overrides)


def test_a_chosen_name_is_the_argon_name_and_the_description_carries_the_owner(
    argon: ArgonHarness,
) -> None:
    provider = _provider(argon)
    request = _named("普通整片转码", description="整片转码")

    created = provider.create_image(request)

    assert created.external_id == cloud_name(request) == "普通整片转码"
    stored = argon.api.get(argon.image_path("普通整片转码")).json()
    assert stored["description"] == f"整片转码\n\n{owner_marker(UID)}"
    assert not provider.needs_update(request, provider.get_image(created.external_id))


def test_find_image_adopts_only_an_image_carrying_this_objects_marker(argon: ArgonHarness) -> None:
    provider = _provider(argon)
    provider.create_image(_named("shared-name"))

    mine = provider.find_image(_named("shared-name"))
    theirs = provider.find_image(_named("shared-name", uid=OTHER_UID))

    assert mine is not None and mine.external_id == "shared-name"
    assert theirs is None


def test_a_name_another_object_holds_is_refused_naming_the_field(argon: ArgonHarness) -> None:
    provider = _provider(argon)
    provider.create_image(_named("taken"))

    with pytest.raises(InvalidInput) as refused:
        provider.create_image(_named("taken", uid=OTHER_UID))

    assert "spec.argon.name 'taken'" in str(refused.value)
    stored = argon.api.get(argon.image_path("taken")).json()
    assert stored["description"].endswith(owner_marker(UID))  # the first owner keeps it


def test_a_name_taken_by_an_image_made_outside_the_operator_is_refused(
    argon: ArgonHarness,
) -> None:
    made = argon.create({"name": "by-hand", "displayName": "x", "repository": "team/app:1"})
    assert made.status_code == 201, made.text

    with pytest.raises(InvalidInput, match=r"spec\.argon\.name 'by-hand' is taken"):
        _provider(argon).create_image(_named("by-hand"))


def test_a_repeated_create_of_its_own_name_is_a_conflict_the_lookup_resolves(
    argon: ArgonHarness,
) -> None:
    provider = _provider(argon)
    provider.create_image(_named("again"))

    with pytest.raises(Conflict) as conflict:
        provider.create_image(_named("again"))

    assert not isinstance(conflict.value, InvalidInput)
    assert provider.find_image(_named("again")) is not None


def test_updates_keep_the_owner_marker(argon: ArgonHarness) -> None:
    provider: ArgonProvider = _provider(argon)
    created = provider.create_image(_named("kept", description="v1"))
    newer = _named("kept", description="v2")
    assert provider.needs_update(newer, provider.get_image(created.external_id))

    provider.update_image(created.external_id, newer)

    stored = argon.api.get(argon.image_path("kept")).json()
    assert stored["description"] == f"v2\n\n{owner_marker(UID)}"
    assert provider.find_image(newer) is not None
