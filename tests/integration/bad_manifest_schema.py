"""Bad manifests read off the CRDs: for every field a base manifest sets, the values its schema
refuses — a wrong type, the field left out when it is required, an unknown field beside it, a
length or count over its maximum or under its minimum, a value outside its enum or its pattern,
a number outside its range.

The schema is the generated CRD in `crds/` (what the API server holds), so a field added to a
model is in the corpus as soon as a base sets it. Lists are walked through their first item and
maps through their first key: the others have the same schema.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.integration.bad_manifest_bases import PLURALS, Body, python_pattern

CRDS = Path(__file__).resolve().parents[2] / "crds"
UNKNOWN = "unexpectedField"

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class Mutation:
    category: str
    location: Location  # the field the answer must name
    variant: str  # what was done to it
    body: Body


@functools.cache
def crd_schema(kind: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / f"imageops.io_{PLURALS[kind]}.yaml").read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def field_path(location: Location) -> str:
    """The path as the API server writes it: `spec.inputs[0].name`, `spec.tags.team` (a map's
    key like a field's name)."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def value_at(body: Body, location: Location) -> Any:
    node: Any = body
    for part in location:
        node = node[part]
    return node


def replaced(body: Body, location: Location, value: Any) -> Body:
    changed = copy.deepcopy(body)
    value_at(changed, location[:-1])[location[-1]] = value
    return changed


def removed(body: Body, location: Location) -> Body:
    changed = copy.deepcopy(body)
    del value_at(changed, location[:-1])[location[-1]]
    return changed


def schema_at(kind: str, location: Location) -> dict[str, Any]:
    node = crd_schema(kind)
    for part in location:
        if isinstance(part, int):
            node = node["items"]
        elif "properties" in node:
            node = node["properties"][part]
        else:
            node = node["additionalProperties"]
    return node


def mutations(body: Body, root: Location) -> Iterator[Mutation]:
    """Every schema mutation of `body` at `root` and below."""
    yield from _walk(body, root, schema_at(body["kind"], root), at_max=False)


def over_the_max(body: Body) -> Iterator[Mutation]:
    """For each field of `body` (an object at its limits) that is at its maximum, the same
    object with that one field one over (category max-size)."""
    yield from _walk(body, ("spec",), schema_at(body["kind"], ("spec",)), at_max=True)


_WRONG_TYPE: dict[str, Any] = {
    "string": 12345,
    "integer": "12345",
    "boolean": "true",
    "array": "a-string",
    "object": "a-string",
}


def _walk(
    body: Body, location: Location, schema: dict[str, Any], at_max: bool
) -> Iterator[Mutation]:
    value = value_at(body, location)
    kind = schema.get("type", "object")
    if not at_max:
        wrong = ["a-list"] if "additionalProperties" in schema else _WRONG_TYPE[kind]
        variant = f"{kind}-given-{type(wrong).__name__}"
        yield Mutation("types", location, variant, replaced(body, location, wrong))
    if kind == "object":
        yield from _object(body, location, schema, value, at_max)
    elif kind == "array":
        yield from _array(body, location, schema, value, at_max)
    elif kind == "string":
        yield from _string(body, location, schema, value, at_max)
    elif kind == "integer":
        yield from _integer(body, location, schema, value, at_max)


def _object(
    body: Body, location: Location, schema: dict[str, Any], value: dict[str, Any], at_max: bool
) -> Iterator[Mutation]:
    properties = schema.get("properties")
    if properties is None:  # a map: its values share one schema
        most = schema.get("maxProperties")
        if most is not None and (len(value) == most or not at_max):
            extra = {f"extra{n:02d}": "x" for n in range(most + 1 - len(value))}
            yield _limit(
                at_max, "lengths", location, "too-many-keys", replaced_map(body, location, extra)
            )
        for key in list(value)[:1]:
            yield from _walk(body, (*location, key), schema["additionalProperties"], at_max)
        return
    if not at_max:
        for name in schema.get("required", []):
            if name in value:
                yield Mutation(
                    "required", (*location, name), "missing", removed(body, (*location, name))
                )
        unknown = copy.deepcopy(body)
        value_at(unknown, location)[UNKNOWN] = "x"
        yield Mutation("unknown", (*location, UNKNOWN), "unknown-field", unknown)
    for name in value:
        yield from _walk(body, (*location, name), properties[name], at_max)


def replaced_map(body: Body, location: Location, extra: dict[str, Any]) -> Body:
    changed = copy.deepcopy(body)
    value_at(changed, location).update(extra)
    return changed


def _array(
    body: Body, location: Location, schema: dict[str, Any], value: list[Any], at_max: bool
) -> Iterator[Mutation]:
    most = schema.get("maxItems")
    if most is not None and (len(value) == most or not at_max):
        items = list(value)
        keys = schema.get("x-kubernetes-list-map-keys") or []
        while len(items) <= most:
            item = copy.deepcopy(value[-1])
            for key in keys:
                item[key] = f"{item[key]}_{len(items)}"[-63:]
            items.append(item)
        yield _limit(at_max, "lengths", location, "too-many-items", replaced(body, location, items))
    if value:
        yield from _walk(body, (*location, 0), schema["items"], at_max)


def _string(
    body: Body, location: Location, schema: dict[str, Any], value: str, at_max: bool
) -> Iterator[Mutation]:
    most, least = schema.get("maxLength"), schema.get("minLength", 0)
    pattern = schema.get("pattern") or _cel_pattern(schema)
    if most is not None and (len(value) == most or not at_max):
        longer = _padded(value, most + 1, pattern)
        yield _limit(
            at_max, "lengths", location, "over-max-length", replaced(body, location, longer)
        )
    if at_max:
        return
    if least > 0:
        shorter = value[: least - 1]
        yield Mutation("lengths", location, "under-min-length", replaced(body, location, shorter))
    if "enum" in schema:
        yield Mutation("enums", location, "not-in-enum", replaced(body, location, "NotAnOption"))
    if pattern is not None:
        bad = _not_matching(value, pattern, least, most)
        yield Mutation("patterns", location, "not-matching", replaced(body, location, bad))


_MATCHES = re.compile(r"^self\.matches\((r?)'(.*)'\)$")


def _cel_pattern(schema: dict[str, Any]) -> str | None:
    """The regex of a `self.matches('...')` CEL rule: a pattern said in words (the schema then
    has no `pattern` of its own)."""
    for rule in schema.get("x-kubernetes-validations") or []:
        found = _MATCHES.match(rule["rule"])
        if found:
            raw, literal = found.groups()
            return literal if raw else literal.replace("\\\\", "\\").replace("\\'", "'")
    return None


def _integer(
    body: Body, location: Location, schema: dict[str, Any], value: int, at_max: bool
) -> Iterator[Mutation]:
    most, least = schema.get("maximum"), schema.get("minimum")
    if most is not None and (value == most or not at_max):
        yield _limit(at_max, "ranges", location, "over-maximum", replaced(body, location, most + 1))
    if least is not None and not at_max:
        yield Mutation("ranges", location, "under-minimum", replaced(body, location, least - 1))


def _limit(at_max: bool, category: str, location: Location, variant: str, body: Body) -> Mutation:
    return Mutation("max-size" if at_max else category, location, variant, body)


def _matches(value: str, pattern: str | None) -> bool:
    return pattern is None or re.search(python_pattern(pattern), value) is not None


def _padded(value: str, length: int, pattern: str | None) -> str:
    """`value` grown to `length` characters that still match `pattern` where a padding can
    (so that only the length is wrong)."""
    for pad in ("a", "0", "x", "-", "1"):
        grown = (value or pad) + pad * (length - len(value or pad))
        if _matches(grown, pattern):
            return grown
    return (value or "a") + "a" * (length - len(value or "a"))


def _not_matching(value: str, pattern: str, least: int, most: int | None) -> str:
    """A value of an allowed length that `pattern` refuses."""
    rest = value[1:]
    candidates = [
        value[:1] + " " + rest,
        "!" + rest,
        "A" + rest,
        "g" + rest,
        "-" + rest,
        "ftp://" + value.rsplit("://", maxsplit=1)[-1],
        "v" + value,
    ]
    for candidate in candidates:
        if least <= len(candidate) <= (most or len(candidate)) and not _matches(candidate, pattern):
            return candidate
    raise AssertionError(f"no value of {value!r}'s length refused by {pattern!r}")
