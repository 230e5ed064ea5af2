"""`spec.sharing` and `status.sharing` of an `Image`: one model for sharing an image with other
accounts or projects, whatever the cloud calls it (Glance/IMS members, seed 002; ECS
ModifyImageSharePermission accounts, seed 004's `AddAccount`).

The owner lists the members; the spec is the whole truth once set (members it does not list are
removed, whoever added them). The receiving side is another `Image` that adopts the shared
image (the `imageops.io/external-id` annotation) with `accept: true`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from image_operator.api.base import ApiModel
from image_operator.api.common import JsonDict, cel, patterned

# A Glance/IMS project ID (Keystone's are 32 hex digits) or an Alibaba Cloud account ID (digits,
# int64): one grammar holds both, and the provider judges its own format (`Shares`).
MEMBER_ID_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$"
MemberId = Annotated[
    str,
    patterned(
        MEMBER_ID_PATTERN,
        "must be an account or project ID: letters, digits, '.', '_' and '-', starting and "
        "ending with a letter or digit",
        max_length=64,
    ),
]
#: Seed 004 lets an image be shared with at most 20 accounts (`AddAccount`, N 1-20); Glance's
#: default `image_member_quota` is 128. The smaller one holds everywhere.
MAX_MEMBERS = 20


class ShareMember(ApiModel):
    """One account (ECS) or project (Glance/IMS) the image is shared with."""

    id: MemberId = Field(
        description="The member: an Alibaba Cloud account ID (digits) for aliyun, a project "
        "ID for openstack."
    )


class ImageSharing(ApiModel):
    """Who the image is shared with (the owner's side), or that this Image accepts an image
    shared with it (the receiving side); see docs/sharing.md."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "!(has(self.members) && size(self.members) > 0 && self.accept)",
                    "spec.sharing: members (the owner shares) and accept: true (a member "
                    "accepts an image shared with it) exclude each other",
                    field_path=".accept",
                ),
            ]
        }
    }

    members: list[ShareMember] | None = Field(
        default=None,
        max_length=MAX_MEMBERS,
        description="The accounts or projects to share with (at most "
        f"{MAX_MEMBERS}, IDs unique). Once set this is the whole list: members it does not "
        "name are removed. [] unshares from everyone.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"]},
    )
    accept: bool = Field(
        default=False,
        description="The receiving side: accept the shared image this Image adopts (annotation "
        "imageops.io/external-id), where the cloud asks members to accept (Glance/IMS). "
        "Requires spec.deletionPolicy: Orphan; the image is never updated from this Image.",
    )


class MemberState(StrEnum):
    """Where a member stands: Glance/IMS members accept or reject; ECS shares at once."""

    PENDING = "Pending"
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    SHARED = "Shared"  # the cloud has no acceptance: the member can use it now


class MemberStatus(ApiModel):
    """Each member the image is shared with, as the cloud last reported it (spec.sharing)."""

    id: str = Field(description="The account or project ID.")
    state: MemberState = Field(
        description="Pending, Accepted or Rejected (Glance/IMS), Shared (no acceptance)."
    )
    last_transition_time: str | None = Field(
        default=None, description="When the operator first saw this state (RFC 3339)."
    )


def sharing_rules() -> list[JsonDict]:
    """The ImageSpec rules across spec.sharing and its sibling fields."""
    return [
        # The receiving side does not own the image, so it may not delete it.
        cel(
            "!has(self.sharing) || !has(self.sharing.accept) || !self.sharing.accept || "
            "self.deletionPolicy == 'Orphan'",
            "spec.sharing.accept: the shared image belongs to another account, which alone may "
            "delete it: set spec.deletionPolicy: Orphan",
            field_path=".sharing.accept",
        ),
        # Glance members see an image only while it is `shared`: another visibility set here
        # would be pushed back after every share, and the members would come and go.
        cel(
            "!has(self.sharing) || !has(self.sharing.members) || size(self.sharing.members) == 0 "
            "|| !has(self.openstack) || !has(self.openstack.visibility) || "
            "self.openstack.visibility == 'shared'",
            "spec.openstack.visibility: an image with spec.sharing.members must be shared: "
            "leave visibility unset (the operator makes it shared) or set it to shared",
            field_path=".openstack.visibility",
        ),
    ]
