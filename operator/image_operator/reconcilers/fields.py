"""Which spec field a cloud's message is about: a cloud refuses a value in its own words
(`Image [image-1] not exists`), which quote the value but cannot know the field it came from."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from enum import Enum
from typing import Any

from pydantic import BaseModel

# Shorter values ("0", "v1") turn up in messages by chance; longer ones (a readme, a cover) are
# never quoted whole.
_SHORTEST, _LONGEST = 3, 256


def with_field_names(message: str, spec: Any) -> str:
    """`message`, followed by the spec field that holds each value it quotes (unless it names
    the field already): `Image [image-1] not exists (image-1 is spec.source.externalID)`. A
    value is found as it is or escaped the way clouds quote it (`'cn\\nevil'` for a value with a
    newline), and named as the message spells it."""
    if not isinstance(spec, BaseModel):
        return message
    named = []
    for path, value in _string_fields(spec, "spec"):
        if not _SHORTEST <= len(value) <= _LONGEST or path in message:
            continue
        quoted = next(
            (
                form
                for form in _spellings(value)
                if re.search(rf"(?<!\w){re.escape(form)}(?!\w)", message)
            ),
            None,
        )
        if quoted is not None:
            named.append(f"{quoted} is {path}")
    return f"{message} ({'; '.join(named)})" if named else message


def _spellings(value: str) -> list[str]:
    """`value` as a cloud's message may quote it: as it is, or escaped as JSON (`\\n`,
    `\\u0000`, also with non-ASCII kept) or as Python's and Go's `%q` quote it (`\\n`,
    `\\x00`); each form once, the raw one first."""
    forms = [
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
    ]
    return list(dict.fromkeys(forms))


def _string_fields(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(wire path, value) of every string in `value`, a spec model, by the names users write.
    Enum values are left out: the schema admits only known ones, and a message that says one
    ("argon answered 404") names the provider type, not a value the cloud refused."""
    if isinstance(value, Enum):
        return
    if isinstance(value, str):
        yield path, str(value)
    elif isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            yield from _string_fields(getattr(value, name), f"{path}.{info.alias or name}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _string_fields(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _string_fields(item, f"{path}[{key}]")
