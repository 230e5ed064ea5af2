"""ECS DescribeImageSharePermission: the accounts a custom image is shared with.

ModifyImageSharePermission (in `aliyun_images`) keeps the accounts on the image record; this
answers them as the SDK's `DescribeImageSharePermissionResponseBody` reads them: `RegionId`,
`ImageId`, `TotalCount`, `PageNumber`, `PageSize`, `ShareGroups.ShareGroup[].Group` (`all` for
a public image) and `Accounts.Account[].AliyunId`. Pages are 1..100 accounts (10 by default).
"""

from __future__ import annotations

from image_operator_dev.emulator.aliyun_images import Images
from image_operator_dev.emulator.aliyun_rules import region
from image_operator_dev.emulator.aliyun_wire import Params
from image_operator_dev.emulator.store import JSONObject


class Sharing:
    def __init__(self, images: Images) -> None:
        self.images = images

    def describe_share_permission(self, p: Params) -> JSONObject:
        region_id = region(p, self.images.ctx.settings.regions)
        image_id = p.required("ImageId")
        page_number = p.integer("PageNumber", low=1) or 1
        page_size = p.integer("PageSize", low=1, high=100) or 10
        record, _ = self.images.existing(region_id, image_id, self.images.ctx.clock())
        start = (page_number - 1) * page_size
        accounts = record.shared_accounts[start : start + page_size]
        groups = [{"Group": "all"}] if record.is_public else []
        return {
            "RegionId": region_id,
            "ImageId": image_id,
            "TotalCount": len(record.shared_accounts),
            "PageNumber": page_number,
            "PageSize": page_size,
            "ShareGroups": {"ShareGroup": groups},
            "Accounts": {"Account": [{"AliyunId": a} for a in accounts]},
        }
