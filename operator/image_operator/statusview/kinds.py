"""The imageops kinds as the status command names them: on the command line (kind, plural,
singular, short name, `plural.group`), in the tree's grouping order, and what each kind's tree
reads (the kinds `--watch` watches)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from image_operator.api import ALL_KINDS
from image_operator.api.common import GROUP


class UsageError(Exception):
    """The command line names no kind we know, or too much."""


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    names: frozenset[str]


KINDS: dict[str, Kind] = {
    model.crd.plural: Kind(
        model.crd.kind,
        model.crd.plural,
        frozenset(
            {
                model.crd.kind.lower(),
                model.crd.singular,
                model.crd.plural,
                f"{model.crd.plural}.{GROUP}",
                f"{model.crd.singular}.{GROUP}",
                *model.crd.short_names,
            }
        ),
    )
    for model in ALL_KINDS
}

PROVIDERS, IMAGES, BASEIMAGES = "imageproviders", "images", "baseimages"
PIPELINES, LISTINGS = "imagepipelines", "communitylistings"
#: The order kinds are listed in under a namespace: what others use first.
ORDER = (PROVIDERS, PIPELINES, LISTINGS, IMAGES, BASEIMAGES)
#: An Image's tree shows its copies, and what builds on or publishes it.
_IMAGE_TREE = frozenset({IMAGES, BASEIMAGES, LISTINGS, PIPELINES})
#: The kinds whose objects a kind's tree shows (its own included).
READS: dict[str, frozenset[str]] = {
    PROVIDERS: frozenset(ORDER),  # its users
    IMAGES: _IMAGE_TREE,
    PIPELINES: _IMAGE_TREE,  # a run's output Image, with that Image's tree
    LISTINGS: frozenset({LISTINGS, IMAGES}),
    BASEIMAGES: frozenset({BASEIMAGES, IMAGES}),
}


@dataclass(frozen=True)
class Target:
    """What to show: everything (no kind), every object of a kind, or one object."""

    kind: Kind | None = None
    name: str | None = None

    @property
    def reads(self) -> frozenset[str]:
        return frozenset(ORDER) if self.kind is None else READS[self.kind.plural]


def find_kind(text: str) -> Kind:
    wanted = text.lower()
    for kind in KINDS.values():
        if wanted in kind.names:
            return kind
    known = ", ".join(sorted(n for k in KINDS.values() for n in k.names if "." not in n))
    raise UsageError(f"unknown kind {text!r}: expected one of {known}")


def parse_target(words: Sequence[str]) -> Target:
    """`[]`, `[KIND]`, `[KIND/NAME]` or `[KIND, NAME]`, as kubectl takes them."""
    if not words:
        return Target()
    if len(words) > 2:
        raise UsageError(f"expected KIND/NAME or KIND NAME, got {' '.join(words)!r}")
    head, slash, name = words[0].partition("/")
    if slash and len(words) == 2:
        raise UsageError(f"expected KIND/NAME or KIND NAME, got {' '.join(words)!r}")
    if len(words) == 2:
        name = words[1]
    if (slash or len(words) == 2) and not name:
        raise UsageError(f"{words[0]!r}: the name after {head!r} is empty")
    return Target(find_kind(head), name or None)
