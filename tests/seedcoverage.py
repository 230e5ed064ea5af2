"""docs/seed-coverage.md as data, and a recorder of the parameters the providers send.

The page's tables (one per seed) map each request parameter of each seed action to what sets
it. `Recorder` wraps the providers' outgoing call points (below the reconcilers, above the
vendor SDKs: the action and parameters exactly as the provider hands them to the SDK) and
`Recorder.unaccounted` lists every sent parameter the page has no row for.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "seed-coverage.md"
_SECTION = re.compile(r"^## Seed (\d{3})")
_ROW = re.compile(r"^\| (?P<action>[^|]+?) \| (?P<param>[^|]+?) \| (?P<by>.+) \|$")
CUSTOM = "<property>"


@dataclass(frozen=True)
class Row:
    seed: str
    action: str
    parameter: str
    set_by: str

    @property
    def kind(self) -> str:
        """settable, operator, not applicable or TODO-sharing."""
        if self.set_by.startswith("`spec."):
            return "settable"
        for kind in ("operator", "not applicable", "TODO-sharing"):
            if self.set_by.startswith(kind):
                return kind
        raise ValueError(f"seed {self.seed} {self.action} {self.parameter}: {self.set_by!r}")


def rows(page: Path = PAGE) -> list[Row]:
    found: list[Row] = []
    seed = None
    for line in page.read_text().splitlines():
        if match := _SECTION.match(line):
            seed = match.group(1)
            continue
        match = _ROW.match(line)
        if seed is None or match is None or match["action"] in ("action", "---"):
            continue
        found.append(Row(seed, match["action"], match["param"].replace("\\<", "<"), match["by"]))
    return found


def counts(table: Iterable[Row]) -> dict[str, Counter[str]]:
    """Per seed: how many parameters are settable, operator-set, not applicable, TODO."""
    result: dict[str, Counter[str]] = {}
    for row in table:
        result.setdefault(row.seed, Counter())[row.kind] += 1
    return result


def flatten(value: Any, prefix: str = "") -> Iterator[str]:
    """Dotted parameter names of a request body: dicts nest with '.', list elements are 'N'
    (a list of scalars is one parameter)."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if inner is not None:
                yield from flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and not value:
        return  # an empty list sends nothing
    elif isinstance(value, list) and isinstance(value[0], Mapping):
        for item in value:
            yield from flatten(item, f"{prefix}.N")
    elif prefix:
        yield prefix


@dataclass
class Recorder:
    """(seed, action, parameter) of every request the providers sent while installed."""

    sent: set[tuple[str, str, str]] = field(default_factory=set)
    custom: set[str] = field(default_factory=set)  # Glance keys that are spec.openstack's

    def record(self, seed: str, action: str, parameters: Iterable[str]) -> None:
        for parameter in parameters:
            self.sent.add((seed, action, parameter))

    def unaccounted(self, table: Iterable[Row] | None = None) -> list[tuple[str, str, str]]:
        known = {(row.seed, row.action, row.parameter) for row in table or rows()}

        def named(seed: str, action: str, parameter: str) -> tuple[str, str, str]:
            bare = parameter.lstrip("/")
            if bare in self.custom:
                parameter = parameter.replace(bare, CUSTOM)
            return seed, action, parameter

        return sorted(entry for entry in self.sent if named(*entry) not in known)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Wrap the emulator-backed providers' call points (seeds 000, 001, 003, 004)."""
        from image_operator.providers import aliyun, argon, compshare, ucloudstack

        recorder = self
        ucs_call = ucloudstack.UCloudStackProvider._call

        def ucs(self: Any, action: str, **params: Any) -> dict[str, Any]:
            sent = [k for k, v in params.items() if v is not None]
            if action not in ucloudstack.WITHOUT_COMPANY:
                sent.append("CompanyID")
            recorder.record("003", action, sent)
            return ucs_call(self, action, **params)

        argon_call = argon.ArgonProvider._call

        def argon_(self: Any, method: str, path: str, **kwargs: Any) -> Any:
            if method == "POST" and "json" in kwargs:
                action = "POST /api/v1/namespaces/{namespace}/images"
                recorder.record("001", action, flatten(kwargs["json"]))
            return argon_call(self, method, path, **kwargs)

        compshare_call = compshare.CompShareProvider._call

        def compshare_(self: Any, action: str, function: Any, *args: Any) -> dict[str, Any]:
            if action == "PublishCompShareImage":
                recorder.record("000", action, ["Action", *flatten(args[-1])])
            return compshare_call(self, action, function, *args)

        aliyun_call = aliyun.AliyunProvider._call

        def aliyun_(self: Any, action: str, function: Any, *args: Any, **kwargs: Any) -> Any:
            if action == "CreateImagePipeline":
                recorder.record("004", action, flatten(args[0].to_map()))
            return aliyun_call(self, action, function, *args, **kwargs)

        monkeypatch.setattr(ucloudstack.UCloudStackProvider, "_call", ucs)
        monkeypatch.setattr(argon.ArgonProvider, "_call", argon_)
        monkeypatch.setattr(compshare.CompShareProvider, "_call", compshare_)
        monkeypatch.setattr(aliyun.AliyunProvider, "_call", aliyun_)
