"""The field rules ECS applies to more than one action (seed 004, then the SDK's field docs).

Each check raises `AliyunError` with ECS's code for that field and a message that says what is
accepted, so a test (or a user) can tell which rule refused the request.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Final

from pydantic import BaseModel, ConfigDict

from image_operator_dev.emulator.aliyun_wire import AliyunError, Params, invalid

# CJK unified ideographs (and extension A, compatibility): the "中文" of the seed's rules.
_CJK: Final = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_LEADS_WITH_LETTER = re.compile(rf"[A-Za-z{_CJK}]")
_NAME_CHARS = re.compile(rf"[A-Za-z0-9{_CJK}:_.\-]*")
_FAMILY_CHARS = re.compile(rf"[A-Za-z0-9{_CJK}:_\-]*")
_URL_PREFIXES: Final = ("http://", "https://")

MAX_CONTENT_BYTES: Final = 16 * 1024
MAX_CLIENT_TOKEN: Final = 64
MAX_TAGS: Final = 20
TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"


def _name_rules(
    name: str, value: str, *, low: int, high: int, code: str, image_rules: bool
) -> None:
    problems = []
    if not low <= len(value) <= high:
        problems.append(f"it must be {low} to {high} characters long (got {len(value)})")
    if not _LEADS_WITH_LETTER.match(value):
        problems.append("it must start with a letter or a Chinese character")
    if value.startswith(_URL_PREFIXES):
        problems.append("it must not start with http:// or https://")
    if image_rules and value.startswith(("aliyun", "acs:")):
        problems.append("it must not start with aliyun or acs:")
    if image_rules and any(prefix in value for prefix in _URL_PREFIXES):
        problems.append("it must not contain http:// or https://")
    if not _NAME_CHARS.fullmatch(value):
        problems.append(
            "it may contain only Chinese characters, letters, digits, colons (:), "
            "underscores (_), periods (.) and hyphens (-)"
        )
    if problems:
        raise invalid(name, "; ".join(problems), code)


def check_pipeline_name(name: str, value: str) -> None:
    """Seed 004 `Name`: 2-128, leads with a letter or CJK, not http(s)://, [CJK A-Za-z0-9:_.-]."""
    _name_rules(name, value, low=2, high=128, code="InvalidName.Malformed", image_rules=False)


def check_image_name(name: str, value: str) -> None:
    """Image names (ImportImage, CopyImage): the template rule plus no aliyun/acs: prefix."""
    _name_rules(name, value, low=2, high=128, code="InvalidImageName.Malformed", image_rules=True)


def check_image_name_prefix(name: str, value: str) -> None:
    """ImageOptions.ImageName: a name prefix, 2-64 characters."""
    _name_rules(name, value, low=2, high=64, code="InvalidImageName.Malformed", image_rules=True)


def check_image_family(name: str, value: str) -> None:
    problems = []
    if not 2 <= len(value) <= 128:
        problems.append(f"it must be 2 to 128 characters long (got {len(value)})")
    if not _LEADS_WITH_LETTER.match(value):
        problems.append("it must start with a letter or a Chinese character")
    if value.startswith(("aliyun", "acs:")):
        problems.append("it must not start with aliyun or acs:")
    if any(prefix in value for prefix in _URL_PREFIXES):
        problems.append("it must not contain http:// or https://")
    if not _FAMILY_CHARS.fullmatch(value):
        problems.append("it may contain only letters, digits, colons, underscores and hyphens")
    if problems:
        raise invalid(name, "; ".join(problems), "InvalidImageFamily.Malformed")


def check_description(name: str, value: str) -> None:
    """Seed 004 `Description`: 2-256 characters, not starting with http:// or https://."""
    if not 2 <= len(value) <= 256:
        raise invalid(
            name,
            f"it must be 2 to 256 characters long (got {len(value)})",
            "InvalidDescription.Malformed",
        )
    if value.startswith(_URL_PREFIXES):
        raise invalid(
            name, "it must not start with http:// or https://", "InvalidDescription.Malformed"
        )


def check_client_token(name: str, value: str) -> None:
    """Seed 004 `ClientToken`: ASCII only, at most 64 characters."""
    if not value.isascii():
        raise invalid(
            name, "it may contain only ASCII characters", "InvalidClientToken.ValueNotSupported"
        )
    if len(value) > MAX_CLIENT_TOKEN:
        raise invalid(
            name,
            f"it must be at most {MAX_CLIENT_TOKEN} characters long (got {len(value)})",
            "InvalidClientToken.ValueNotSupported",
        )


def check_content(name: str, value: str) -> None:
    """Seed 004 `BuildContent` / `TestContent`: at most 16 KB (UTF-8 bytes)."""
    size = len(value.encode("utf-8"))
    if size > MAX_CONTENT_BYTES:
        field = name.rsplit(".", maxsplit=1)[-1]
        raise invalid(
            name,
            f"its size must not exceed 16 KB ({MAX_CONTENT_BYTES} bytes of UTF-8; got {size})",
            f"Invalid{field}.LengthExceeded",
        )


class Tag(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    value: str = ""


def tags(params: Params, key: str = "Tag", *, key_field: str = "Key") -> list[Tag]:
    """`Tag.N.Key` / `Tag.N.Value`, N 1..20; keys must not start with aliyun or acs:."""
    result = []
    for item in params.items(key, MAX_TAGS, code="InvalidTagCount"):
        tag_key = item.raw(key_field)
        if not tag_key:
            raise invalid(
                item.name(key_field), "a tag key must not be empty", "InvalidTagKey.Malformed"
            )
        if (
            len(tag_key) > 128
            or tag_key.startswith(("aliyun", "acs:"))
            or any(p in tag_key for p in _URL_PREFIXES)
        ):
            raise invalid(
                item.name(key_field),
                "a tag key is at most 128 characters, must not start with aliyun or acs: and "
                "must not contain http:// or https://",
                "InvalidTagKey.Malformed",
            )
        tag_value = item.raw("Value") or ""
        if (
            len(tag_value) > 128
            or tag_value.startswith("acs:")
            or any(p in tag_value for p in _URL_PREFIXES)
        ):
            raise invalid(
                item.name("Value"),
                "a tag value is at most 128 characters, must not start with acs: and must not "
                "contain http:// or https://",
                "InvalidTagValue.Malformed",
            )
        result.append(Tag(key=tag_key, value=tag_value))
    keys = [t.key for t in result]
    if len(set(keys)) != len(keys):
        raise invalid(params.name(key), "tag keys must be unique", "InvalidTagKey.Duplicated")
    return result


def region(params: Params, regions: Collection[str], key: str = "RegionId") -> str:
    value = params.required(key)
    if value not in regions:
        raise AliyunError(
            404,
            "InvalidRegionId.NotFound",
            f"The specified {key} {value!r} does not exist; valid regions: {', '.join(regions)}.",
        )
    return value


def client_token(params: Params) -> str | None:
    return params.text("ClientToken", check=check_client_token)


_ID_ALPHABET: Final = string.ascii_lowercase + string.digits


def new_id(prefix: str) -> str:
    """An ECS-looking resource ID: `m-`, `ip-`, `exec-`, `t-` + 20 lowercase alphanumerics."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))


def timestamp(moment: float) -> str:
    """ECS's time format: UTC, whole seconds, e.g. 2024-08-20T10:00:00Z."""
    return datetime.fromtimestamp(moment, tz=UTC).strftime(TIME_FORMAT)
