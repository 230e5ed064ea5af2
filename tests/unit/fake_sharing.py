"""`FakeProvider` with the `Shares` ability: members in a dict per image, acceptance as a
Glance-like cloud has it (a new member is pending until it accepts) or none at all (shared at
once, as ECS). Every call is logged like FakeProvider's own."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from image_operator.api.sharing import MemberState
from image_operator.providers.errors import NotFound
from image_operator.providers.model import Operation
from image_operator.providers.sharing import Member, Shares
from tests.unit.fakes import ALL_OPERATIONS, FakeProvider


class SharingFakeProvider(FakeProvider, Shares):
    """`acceptance=True`: members start Pending (Glance/IMS); False: Shared at once (ECS).
    `me` is the member this provider's account is when it receives a shared image."""

    def __init__(
        self,
        operations: Iterable[Operation] = ALL_OPERATIONS,
        *,
        acceptance: bool = True,
        me: str = "project-me",
    ) -> None:
        super().__init__(operations)
        self.acceptance = acceptance
        self.me = me
        self.shared: dict[str, dict[str, MemberState]] = {}

    def member_problem(self, member_ids: Sequence[str]) -> str | None:
        bad = [m for m in member_ids if m.startswith("bad")]
        return f"{bad[0]!r} is not a member ID here" if bad else None

    def list_members(self, external_id: str) -> list[Member]:
        self._enter("list_members", external_id)
        self._get(external_id)
        members = self.shared.get(external_id, {})
        return [Member(member_id=m, state=s) for m, s in members.items()]

    def change_members(self, external_id: str, add: Sequence[str], remove: Sequence[str]) -> None:
        self._enter("change_members", external_id, list(add), list(remove))
        self._get(external_id)
        members = self.shared.setdefault(external_id, {})
        first = MemberState.PENDING if self.acceptance else MemberState.SHARED
        for member in add:
            members.setdefault(member, first)
        for member in remove:
            members.pop(member, None)

    def accept_shared(self, external_id: str) -> Member:
        self._enter("accept_shared", external_id)
        members = self.shared.get(external_id, {})
        if self.me not in members:
            raise NotFound(f"image {external_id!r} is not shared with {self.me}")
        if self.acceptance:
            members[self.me] = MemberState.ACCEPTED
        return Member(member_id=self.me, state=members[self.me])

    def respond(self, external_id: str, member: str, state: MemberState) -> None:
        """The member accepts or rejects, in its own account (outside this provider)."""
        self.shared[external_id][member] = state
