"""What the `openstack` provider keeps on a Glance image and how it reads one back: the
idempotency tag, the spec's tags and managed properties, the fingerprint of an image's managed
metadata, the expected sha256, and Glance's status as a CloudState. Used by `providers.openstack`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from openstack.image.v2 import image as glance_image

from image_operator.api.image import ImageSpec, OsInfo
from image_operator.providers.model import CloudState, ImageRequest

#: The tag that carries the idempotency key (the Kubernetes UID).
IDEMPOTENCY_TAG_PREFIX = "imageops.io-uid-"
#: Properties the operator sets from the spec and keeps in line with it (drift is pushed back).
#: OpenStack's common image properties for the OS, so that Nova and Horizon understand them.
MANAGED_PROPERTIES = ("description", "os_type", "os_distro", "os_version", "architecture")
#: The OS properties: set at create; Huawei IMS's OpenStack-native update cannot change them.
OS_PROPERTIES = ("os_type", "os_distro", "os_version", "architecture")
#: Which custom properties (spec.openstack.properties) the operator set, comma-separated, so
#: that a key removed from the spec is removed from the image and nobody else's is touched.
CUSTOM_KEYS_PROPERTY = "imageops.io-properties"
#: Where the expected sha256 of the data is recorded: openstacksdk's own convention (what
#: `openstack image create --sha256` writes), compared with Glance's hash once the image is active.
SHA256_PROPERTY = "owner_specified.openstack.sha256"

# Glance's image statuses that mean "data is on its way".
_IN_FLIGHT = {
    "saving": "Glance is receiving the image data",
    "uploading": "the image data is staged, waiting for its import",
    "importing": "Glance is importing the image data",
}


def idempotency_tag(request: ImageRequest) -> str:
    return f"{IDEMPOTENCY_TAG_PREFIX}{request.idempotency_key}"


def spec_tags(spec: ImageSpec) -> list[str]:
    """spec.tags as Glance tags: `key.value` (Huawei IMS reads a native tag of that form as a
    key/value pair), or `key` alone for an empty value."""
    return [f"{key}.{value}" if value else key for key, value in sorted((spec.tags or {}).items())]


def desired_tags(request: ImageRequest) -> list[str]:
    return sorted({idempotency_tag(request), *spec_tags(request.spec)})


def _os_properties(os: OsInfo | None) -> dict[str, str]:
    if os is None:
        return {}
    return {
        "os_type": os.type.lower(),
        "os_distro": os.distribution.lower(),
        "os_version": os.version,
        "architecture": os.arch,
    }


def desired_properties(spec: ImageSpec, *, with_os: bool = True) -> dict[str, str]:
    """The managed properties this spec asks for (a key absent here is removed on update):
    the OS (unless `with_os` is False: an API that cannot update them), the description and
    spec.openstack.properties with the list of their keys."""
    source = spec.source.url or spec.source.upload
    properties = _os_properties(source.os if source else None) if with_os else {}
    if spec.description:
        properties["description"] = spec.description
    custom = (spec.openstack.properties if spec.openstack else None) or {}
    if custom:
        properties.update(custom)
        properties[CUSTOM_KEYS_PROPERTY] = ",".join(sorted(custom))
    return properties


def managed_properties(image: glance_image.Image, *, with_os: bool = True) -> dict[str, str]:
    """The managed properties an image has (the keys `desired_properties` may name).
    openstacksdk keeps the ones it models (os_distro, architecture, ...) as attributes and
    only the others in `properties`."""
    extra = image.properties or {}
    listed = str(extra.get(CUSTOM_KEYS_PROPERTY) or "")
    keys = [*MANAGED_PROPERTIES, CUSTOM_KEYS_PROPERTY, *filter(None, listed.split(","))]
    found = {}
    for key in keys:
        if not with_os and key in OS_PROPERTIES:
            continue
        value = extra.get(key, getattr(image, key, None))
        if value is not None:
            found[key] = str(value)
    return found


#: spec.openstack's image attributes: (spec field, Glance attribute, openstacksdk attribute).
ATTRIBUTES = (
    ("visibility", "visibility", "visibility"),
    ("minDiskGiB", "min_disk", "min_disk"),
    ("minRamMiB", "min_ram", "min_ram"),
    ("protected", "protected", "is_protected"),
)


def desired_attributes(spec: ImageSpec) -> dict[str, Any]:
    """The Glance attributes spec.openstack sets (an unset one is left as the image has it)."""
    options = spec.openstack
    if options is None:
        return {}
    values = {
        "visibility": options.visibility.value if options.visibility else None,
        "min_disk": options.min_disk_gib,
        "min_ram": options.min_ram_mib,
        "protected": options.protected,
    }
    return {key: value for key, value in values.items() if value is not None}


def attribute_differences(spec: ImageSpec, raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(spec field, Glance attribute) of each spec.openstack attribute the image (its SDK
    dict, `CloudImage.raw`) lacks."""
    wanted = desired_attributes(spec)
    return [
        (field, glance)
        for field, glance, sdk in ATTRIBUTES
        if glance in wanted and raw.get(sdk) != wanted[glance]
    ]


def fingerprint(name: str | None, tags: Iterable[str], properties: Mapping[str, Any]) -> str:
    managed = {key: value for key, value in properties.items() if value}
    canonical = json.dumps(
        {"name": name, "tags": sorted(set(tags)), "properties": managed},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def desired_fingerprint(request: ImageRequest, *, with_os: bool = True) -> str:
    return fingerprint(
        request.spec.display_name,
        desired_tags(request),
        desired_properties(request.spec, with_os=with_os),
    )


def expected_sha256(spec: ImageSpec) -> str | None:
    source = spec.source.url or spec.source.upload
    return source.checksum if source else None


def untouched(image: glance_image.Image) -> bool:
    """Queued without any import record: nobody has sent data or started an import yet."""
    properties = image.properties or {}
    return image.status == "queued" and not any(
        properties.get(key)
        for key in (
            "os_glance_import_task",
            "os_glance_importing_to_stores",
            "os_glance_failed_import",
        )
    )


def glance_state(image: glance_image.Image) -> tuple[CloudState, str | None]:
    """Glance's status (and its import bookkeeping properties) as a CloudState + a sentence."""
    status = str(image.status or "")
    properties = image.properties or {}
    if status == "active":
        expected = properties.get(SHA256_PROPERTY)
        if expected and image.hash_algo == "sha256" and image.hash_value != expected:
            return CloudState.FAILED, (
                f"the image data's sha256 is {image.hash_value}, not the expected {expected}"
            )
        return CloudState.AVAILABLE, None
    if status == "queued":
        failed = properties.get("os_glance_failed_import")
        importing = properties.get("os_glance_importing_to_stores")
        if failed and not importing:
            return CloudState.FAILED, (
                f"Glance could not import the image data into store(s) {failed} (the source "
                "URL may be unreachable, refused by the import filter, or not of the declared "
                "disk format); the image's import task says more"
            )
        if importing or properties.get("os_glance_import_task"):
            return CloudState.CREATING, "Glance is importing the image data"
        return CloudState.PENDING, "the image has no data yet: waiting for an upload or import"
    if status in _IN_FLIGHT:
        return CloudState.CREATING, _IN_FLIGHT[status]
    if status == "killed":
        return CloudState.FAILED, "Glance killed the image: storing its data failed"
    if status == "pending_delete":
        return CloudState.DELETING, None
    if status == "deactivated":
        # An administrator's decision, not ours to undo: report it and keep waiting.
        return CloudState.PENDING, "the image is deactivated: an administrator must reactivate it"
    return CloudState.PENDING, f"Glance reports the unknown status {status!r}"
