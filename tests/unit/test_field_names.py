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


def test_a_value_the_cloud_quotes_escaped_is_found_and_named_as_quoted() -> None:
    # Clouds quote a bad value escaped: JSON (ECS, CompShare), Python's repr or Go's %q
    # (`\n`, `\x00`, `\u0000`); the raw value, with its control character, is not in the text.
    # Values admission may refuse today; a spec stored before a rule existed still has them.
    spec = SPEC.model_copy(update={"group_id": "cn\nevil", "tags": ["a\x00b", 'say "hi"']})
    for message, named in (
        ("GroupId 'cn\\nevil' does not exist", "cn\\nevil is spec.groupID"),
        ('"GroupId": "cn\\nevil" not found', "cn\\nevil is spec.groupID"),
        ("tag 'a\\x00b' refused", "a\\x00b is spec.tags[0]"),
        ('tag "a\\u0000b" refused', "a\\u0000b is spec.tags[0]"),
        ('tag "say \\"hi\\"" refused', 'say \\"hi\\" is spec.tags[1]'),
    ):
        assert with_field_names(message, spec) == f"{message} ({named})"
