"""`Shares` for the `openstack` provider: Glance/IMS image members (seed 002: add a member, list
members, a member updates its own status to accepted or rejected, remove a member).

A member is a project. It sees the image in its lists only after accepting, but may use it by ID
while pending. Members exist only for images whose visibility is `shared`; `share` makes a
private image shared first. The calls themselves live in `OpenStackProvider` (`share`,
`unshare`, `members`, `set_member_status`); this part maps them onto the interface.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from image_operator.api.provideroptions import OpenStackApi
from image_operator.api.sharing import MemberState
from image_operator.providers.errors import NotFound, Unsupported
from image_operator.providers.model import CloudImage
from image_operator.providers.openstack_ims import API_FIELD
from image_operator.providers.sharing import Member, Shares

if TYPE_CHECKING:  # openstack.py declares this class among its bases
    from image_operator.providers.openstack import ImageMember, MemberStatus

_STATES = {
    "pending": MemberState.PENDING,
    "accepted": MemberState.ACCEPTED,
    "rejected": MemberState.REJECTED,
}


def _member(member: ImageMember) -> Member:
    return Member(member_id=member.project_id, state=_STATES[member.status.value])


class GlanceSharing(Shares):
    """Glance members behind the `Shares` interface (mixed into `OpenStackProvider`)."""

    api: OpenStackApi  # Glance, or IMS mode (ImageProvider spec.openstack.api)

    @abstractmethod
    def get_image(self, external_id: str) -> CloudImage: ...

    @abstractmethod
    def share(self, external_id: str, project_id: str) -> ImageMember: ...

    @abstractmethod
    def unshare(self, external_id: str, project_id: str) -> None: ...

    @abstractmethod
    def members(self, external_id: str) -> list[ImageMember]: ...

    @abstractmethod
    def set_member_status(
        self,
        external_id: str,
        project_id: str,
        status: Literal["accepted", "rejected", "pending"] | MemberStatus,
    ) -> ImageMember: ...

    def member_problem(self, member_ids: Sequence[str]) -> str | None:
        # Glance takes any project ID up to 255 characters (Keystone's are 32 hex digits, an
        # LDAP-backed Keystone's are not): the spec's grammar is already narrower.
        return None

    def list_members(self, external_id: str) -> list[Member]:
        # Glance refuses to list the members of an image that is not `shared` (403, "Only
        # shared images have members"): such an image has none. IMS shares private images as
        # they are (`share` leaves their visibility alone there).
        glance = self.api is OpenStackApi.GLANCE
        if glance and self.get_image(external_id).raw.get("visibility") != "shared":
            return []
        return [_member(m) for m in self.members(external_id)]

    def change_members(self, external_id: str, add: Sequence[str], remove: Sequence[str]) -> None:
        if remove and self.api is OpenStackApi.IMS:
            # Seed 002's index lists, shows, adds and updates members: none removes one.
            raise Unsupported(
                f"spec.sharing.members: removing {', '.join(remove)} from image {external_id!r} "
                f"needs DELETE /v2/images/{{id}}/members/{{member}}, which the IMS index (seed "
                f"002) does not offer and {API_FIELD}: ims does not call: remove the member in "
                "the IMS console, or list it again"
            )
        for project_id in add:
            self.share(external_id, project_id)  # an existing member is answered, not refused
        for project_id in remove:
            with contextlib.suppress(NotFound):  # already not a member: what was asked
                self.unshare(external_id, project_id)

    def accept_shared(self, external_id: str) -> Member:
        # Glance answers a member's list with its own membership only: that tells this
        # provider's project ID without asking Keystone (a noauth or token-only setup has none).
        own = self.members(external_id)
        if not own:
            raise NotFound(f"image {external_id!r} is not shared with this project")
        member = own[0]
        if member.status.value != "accepted":
            member = self.set_member_status(external_id, member.project_id, "accepted")
        return _member(member)
