"""What an `openstack` update sends: the JSON patch of an image's name, tags, spec.openstack's
attributes and managed properties, and in IMS mode the tag calls instead of a /tags patch.
Used by `providers.openstack`."""

from __future__ import annotations

from typing import Any

from openstack.image.v2 import image as glance_image
from pydantic import BaseModel, ConfigDict, Field

from image_operator.providers.model import ImageRequest
from image_operator.providers.openstack_ims import not_updatable
from image_operator.providers.openstack_metadata import (
    MANAGED_PROPERTIES,
    attribute_differences,
    desired_attributes,
    desired_properties,
    desired_tags,
    managed_properties,
)


class UpdatePlan(BaseModel):
    """One update: a JSON patch (empty: none) and, in IMS mode, the tags to add and remove."""

    model_config = ConfigDict(frozen=True)

    patch: list[dict[str, Any]] = Field(default_factory=list)
    add_tags: list[str] = Field(default_factory=list)
    remove_tags: list[str] = Field(default_factory=list)


def update_plan(image: glance_image.Image, request: ImageRequest, *, ims: bool) -> UpdatePlan:
    """What brings `image` in line with the request. IMS (seed 002) updates only the name, the
    description and custom properties: its tags go through the tag calls, the OS properties
    are left as created, and a differing spec.openstack attribute raises `Unsupported`
    naming its field."""
    differing = attribute_differences(request.spec, image.to_dict(computed=False))
    if ims and differing:
        raise not_updatable(*differing[0])
    patch: list[dict[str, Any]] = []
    if image.name != request.spec.display_name:
        patch.append({"op": "replace", "path": "/name", "value": request.spec.display_name})
    tags = desired_tags(request)
    have = sorted(set(image.tags or []))
    if have != tags and not ims:
        patch.append({"op": "replace", "path": "/tags", "value": tags})
    wanted_attributes = desired_attributes(request.spec)
    for _, glance in differing:
        patch.append({"op": "replace", "path": f"/{glance}", "value": wanted_attributes[glance]})
    current = managed_properties(image, with_os=not ims)
    wanted = desired_properties(request.spec, with_os=not ims)
    for key in sorted({*MANAGED_PROPERTIES, *current, *wanted}):
        if key in wanted and current.get(key) != wanted[key]:
            patch.append({"op": "add", "path": f"/{key}", "value": wanted[key]})
        elif key not in wanted and key in current:
            patch.append({"op": "remove", "path": f"/{key}"})
    if not ims:
        return UpdatePlan(patch=patch)
    return UpdatePlan(
        patch=patch,
        add_tags=sorted(set(tags) - set(have)),
        remove_tags=sorted(set(have) - set(tags)),
    )
