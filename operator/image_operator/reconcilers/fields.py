"""Which spec field a cloud's message is about: a cloud refuses a value in its own words
(`Image [image-1] not exists`), which quote the value but cannot know the field it came from."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

# Shorter values ("0", "v1") turn up in messages by chance; longer ones (a readme, a cover) are
# never quoted whole.
_SHORTEST, _LONGEST = 3, 256


def with_field_names(message: str, spec: Any) -> str:
    """`message`, followed by the spec field that holds each value it quotes (unless it names
    the field already): `Image [image-1] not exists (image-1 is spec.source.externalID)`."""
    if not isinstance(spec, BaseModel):
        return message
    named = [
        f"{value} is {path}"
        for path, value in _string_fields(spec, "spec")
        if _SHORTEST <= len(value) <= _LONGEST
        and path not in message
        and re.search(rf"(?<!\w){re.escape(value)}(?!\w)", message)
    ]
    return f"{message} ({'; '.join(named)})" if named else message


def _string_fields(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(wire path, value) of every string in `value`, a spec model, by the names users write."""
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
