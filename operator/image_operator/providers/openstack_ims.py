"""The Huawei IMS dialect of the `openstack` provider (`ImageProvider` spec.openstack.api: ims):
the operations seed 002's OpenStack-native index lists, and the refusals of what it lacks.

Seed 002 is an index of Huawei IMS's OpenStack-native (Glance v2) API. It lists: create image
metadata (POST /v2/images), upload the file (PUT /v2/images/{id}/file, below 2 GB), show
(GET /v2/images/{id}), update (PATCH /v2/images/{id}: "only user-defined properties, the name
and the description; other attributes may not be updated"), delete, tags (PUT and DELETE
/v2/images/{id}/tags/{tag}), members (list, get, add, update status) and the schemas. Its show
entry points to the image list (GET /v2/images) as the replacement, which the provider needs
to find an image by its idempotency tag. Interoperable import (web-download, stage +
glance-direct, GET /v2/info/import) is not in it.
"""

from __future__ import annotations

import re
from typing import Final

from image_operator.providers.errors import Unsupported

#: (method, path pattern) of every request IMS mode may send; version discovery (GET / and
#: GET /v2/) is openstacksdk's, before any image call.
IMS_ROUTES: Final = (
    ("GET", r"/"),
    ("GET", r"/v2/?"),
    ("POST", r"/v2/images"),
    ("GET", r"/v2/images"),
    ("GET", r"/v2/images/[^/]+"),
    ("PATCH", r"/v2/images/[^/]+"),
    ("DELETE", r"/v2/images/[^/]+"),
    ("PUT", r"/v2/images/[^/]+/file"),
    ("PUT", r"/v2/images/[^/]+/tags/[^/]+"),
    ("DELETE", r"/v2/images/[^/]+/tags/[^/]+"),
    ("GET", r"/v2/images/[^/]+/members"),
    ("POST", r"/v2/images/[^/]+/members"),
    ("GET", r"/v2/images/[^/]+/members/[^/]+"),
    ("PUT", r"/v2/images/[^/]+/members/[^/]+"),
    ("GET", r"/v2/schemas/image"),
    ("GET", r"/v2/schemas/member"),
)
_COMPILED: Final = tuple((method, re.compile(pattern)) for method, pattern in IMS_ROUTES)

API_FIELD: Final = "spec.openstack.api"


def in_ims_index(method: str, path: str) -> bool:
    """Whether a request is one of the operations IMS mode may use."""
    return any(m == method and p.fullmatch(path) for m, p in _COMPILED)


def no_url_import() -> Unsupported:
    return Unsupported(
        f"spec.source.url cannot be imported: the ImageProvider's {API_FIELD} is ims, and "
        "Huawei IMS's OpenStack-native API has no URL import (Glance's web-download is not in "
        "its index); upload the file (spec.source.upload) or use api: glance"
    )


def no_staged_upload(size: int, limit: int) -> Unsupported:
    return Unsupported(
        f"the image file ({size} bytes) is over the {limit} byte limit of IMS's upload "
        f"(PUT /v2/images/{{id}}/file), and the ImageProvider's {API_FIELD} is ims, which has "
        "no staged (glance-direct) import"
    )


def not_updatable(field: str, attribute: str) -> Unsupported:
    return Unsupported(
        f"spec.openstack.{field} differs from the image's {attribute}, and the ImageProvider's "
        f"{API_FIELD} is ims: Huawei IMS updates only the name, the description and custom "
        "properties. Set it back, or delete and recreate the Image to change it"
    )
