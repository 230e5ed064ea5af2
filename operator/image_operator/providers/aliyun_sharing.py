"""`Shares` for the `aliyun` provider: ECS image share permissions.

ModifyImageSharePermission adds and removes accounts (`AddAccount.N` / `RemoveAccount.N`, at
most 10 each per call: `AliyunProvider.modify_image_share_permission` batches), and
DescribeImageSharePermission lists them (`Accounts.Account[].AliyunId`, paged, at most 100 per
page). A member is an Alibaba Cloud account ID, digits only (int64, as seed 004's `AddAccount`
is typed). ECS has no acceptance: a shared account can use the image at once (`Shared`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Final

from alibabacloud_ecs20140526 import models as ecs  # type: ignore[import-untyped]

from image_operator.api.sharing import MemberState
from image_operator.providers.errors import Unsupported
from image_operator.providers.sharing import Member, Shares

SHARE_BATCH: Final = 10  # AddAccount.N / RemoveAccount.N per ModifyImageSharePermission
SHARE_PAGE: Final = 100  # DescribeImageSharePermission's largest PageSize
_INT64_MAX: Final = 2**63 - 1


class EcsSharing(Shares):
    """ECS share permissions behind the `Shares` interface (mixed into `AliyunProvider`)."""

    region: str
    _client: Any

    @abstractmethod
    def _call(self, action: str, method: Callable[[Any, Any], Any], request: Any) -> Any: ...

    def modify_image_share_permission(
        self,
        image_id: str,
        *,
        add_accounts: Sequence[int | str] = (),
        remove_accounts: Sequence[int | str] = (),
        is_public: bool | None = None,
    ) -> None:
        """Share an image with accounts (or stop sharing), ten accounts per call."""
        adds = [str(a) for a in add_accounts]
        removes = [str(a) for a in remove_accounts]
        first = True
        while first or adds or removes:
            first = False
            self._call(
                "ModifyImageSharePermission",
                self._client.modify_image_share_permission_with_options,
                ecs.ModifyImageSharePermissionRequest(
                    region_id=self.region,
                    image_id=image_id,
                    add_account=adds[:SHARE_BATCH] or None,
                    remove_account=removes[:SHARE_BATCH] or None,
                    is_public=is_public,
                ),
            )
            adds, removes = adds[SHARE_BATCH:], removes[SHARE_BATCH:]

    def member_problem(self, member_ids: Sequence[str]) -> str | None:
        bad = [m for m in member_ids if not m.isdigit() or int(m) > _INT64_MAX]
        if not bad:
            return None
        return (
            f"{', '.join(repr(m) for m in bad)}: an aliyun member is an Alibaba Cloud account "
            "ID, digits only (e.g. 1234567890)"
        )

    def list_members(self, external_id: str) -> list[Member]:
        members: list[Member] = []
        page = 1
        while True:
            body = self._call(
                "DescribeImageSharePermission",
                self._client.describe_image_share_permission_with_options,
                ecs.DescribeImageSharePermissionRequest(
                    region_id=self.region,
                    image_id=external_id,
                    page_number=page,
                    page_size=SHARE_PAGE,
                ),
            )
            accounts = list((body.accounts.account if body.accounts else None) or [])
            members += [
                Member(member_id=str(a.aliyun_id), state=MemberState.SHARED) for a in accounts
            ]
            if len(accounts) < SHARE_PAGE or len(members) >= (body.total_count or 0):
                return members
            page += 1

    def change_members(self, external_id: str, add: Sequence[str], remove: Sequence[str]) -> None:
        self.modify_image_share_permission(external_id, add_accounts=add, remove_accounts=remove)

    def accept_shared(self, external_id: str) -> Member:
        raise Unsupported(
            "spec.sharing.accept: ECS has no acceptance, an image shared with this account is "
            "usable at once; adopt it without spec.sharing.accept"
        )
