"""User values placed in a URL path: one segment each, percent-encoded, never a dot segment.

A value from a spec or an annotation (an Argon namespace, an adopted external ID, a tag) that
went into a path as it is could climb out of it: `project: ../../admin` made the Argon probe go
to `/api/admin/images`, because HTTP clients resolve `..` segments before sending. Encoding `/`
keeps the value inside its segment; `.` and `..` alone are refused, since nothing can encode them
away (RFC 3986 treats `%2E` as `.`).
"""

from __future__ import annotations

from urllib.parse import quote

from image_operator.providers.errors import InvalidInput


def path_segment(value: str, *, what: str) -> str:
    """`value` as exactly one URL path segment; `InvalidInput` naming `what` if it cannot be."""
    if value in ("", ".", ".."):
        raise InvalidInput(f"{what} {value!r} cannot be used in a URL path")
    return quote(value, safe="")
