"""Sharing an image with other accounts or projects (`spec.sharing`): the interface the Image
reconciler programs against, its value, and its measured forwarder.

Declared by `OpenStackProvider` (Glance/IMS members, seed 002: a member is a project and accepts
or rejects) and `AliyunProvider` (ECS ModifyImageSharePermission, seed 004's accounts: shared at
once, no acceptance).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from image_operator.api.sharing import MemberState
from image_operator.providers.capabilities import Meter


class Member(BaseModel):
    """One account or project an image is shared with, as the cloud reports it."""

    model_config = ConfigDict(frozen=True)

    member_id: str
    state: MemberState


class Shares(ABC):
    """Shares its images with other accounts/projects and lists who they are shared with."""

    @abstractmethod
    def member_problem(self, member_ids: Sequence[str]) -> str | None:
        """Why these member IDs cannot be members here (the cloud's own ID format), in a
        sentence, or None. Local: no cloud call."""

    @abstractmethod
    def list_members(self, external_id: str) -> list[Member]:
        """Everyone the image is shared with. As a member (the receiving side), Glance answers
        only the caller's own membership."""

    @abstractmethod
    def change_members(self, external_id: str, add: Sequence[str], remove: Sequence[str]) -> None:
        """Share with `add` and stop sharing with `remove` (as few calls as the cloud allows).
        Adding a member that is already one, or removing one that is not, is not an error."""

    @abstractmethod
    def accept_shared(self, external_id: str) -> Member:
        """As the receiving side, accept an image shared with this account or project; a cloud
        without acceptance answers the membership as it is (`Shared`)."""


class MeasuredSharing(Shares):
    def __init__(self, inner: Shares, meter: Meter) -> None:
        self._inner, self._meter = inner, meter

    def member_problem(self, member_ids: Sequence[str]) -> str | None:
        return self._inner.member_problem(member_ids)  # local: not metered

    def list_members(self, external_id: str) -> list[Member]:
        return self._meter("list_members", self._inner.list_members, external_id)

    def change_members(self, external_id: str, add: Sequence[str], remove: Sequence[str]) -> None:
        self._meter("change_members", self._inner.change_members, external_id, add, remove)

    def accept_shared(self, external_id: str) -> Member:
        return self._meter("accept_shared", self._inner.accept_shared, external_id)
