"""with_field_names: a cloud's message about a value gets the spec field that held it."""

from __future__ import annotations

from image_operator.api.listing import CommunityListingSpec
from image_operator.reconcilers.fields import with_field_names

SPEC = CommunityListingSpec.model_validate(
    {
        "imageRef": {"name": "notebook"},
        "groupID": "group-7x",
        "versionName": "v1.0",
        "price": "0",
        "tags": ["PyTorch", "深度学习"],
    }
)


def test_each_quoted_value_is_followed_by_its_field() -> None:
    message = "GroupId [group-7x] not found; tag PyTorch unknown"

    assert with_field_names(message, SPEC) == (
        f"{message} (group-7x is spec.groupID; PyTorch is spec.tags[0])"
    )


def test_values_found_by_chance_are_not_named() -> None:
    # "0" and "v1.0"-like short values, a value inside a longer word, a field already named
    assert with_field_names("price 0 refused", SPEC) == "price 0 refused"
    assert with_field_names("no group group-7xyz", SPEC) == "no group group-7xyz"
    assert with_field_names("spec.groupID group-7x", SPEC) == "spec.groupID group-7x"
    assert with_field_names("no image notebooks", SPEC) == "no image notebooks"


def test_no_spec_leaves_the_message_alone() -> None:
    assert with_field_names("Image [x] not exists", None) == "Image [x] not exists"
