"""OCI references and media types: `[host/]repository[:tag][@digest]` parsed and checked by the
distribution reference grammar (github.com/distribution/reference), the manifest media types
the `registry` provider copies, and sha256 digests. Used by `providers.oci` and
`providers.oci_client`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from image_operator.providers.errors import InvalidInput

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST}) | INDEX_TYPES
# distribution 2.8 answers a manifest HEAD/GET only for media types the client names.
ACCEPT = ", ".join(sorted(MANIFEST_TYPES))

# The distribution reference grammar (github.com/distribution/reference), anchored pieces.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?$"
)
_MAX_REPOSITORY = 255  # distribution's limit on a repository name
DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


# -- references --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """`[host/]repository[:tag][@digest]`; `host` None means the provider's own registry."""

    host: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str, *, what: str = "image reference") -> Reference:
        rest, digest = text, None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            if not DIGEST.match(digest):
                raise InvalidInput(f"{what} {text!r}: the digest must be sha256:<64 hex digits>")
        first, slash, remainder = rest.partition("/")
        host = None
        # docker's rule: the first component is a registry host when it has a dot or a port,
        # is `localhost`, or has capitals (repository names cannot).
        if slash and (
            any(c in first for c in ".:") or first == "localhost" or first != first.lower()
        ):
            host, rest = first, remainder
            if not _HOST.match(host):
                raise InvalidInput(f"{what} {text!r}: {host!r} is not a registry host[:port]")
        tag = None
        last_colon = rest.rfind(":")
        if last_colon > rest.rfind("/"):
            rest, tag = rest[:last_colon], rest[last_colon + 1 :]
            if not _TAG.match(tag):
                raise InvalidInput(
                    f"{what} {text!r}: tag {tag!r} must be 1-128 of letters, digits, _ . - "
                    "and not start with . or -"
                )
        check_repository(rest, what=f"{what} {text!r}")
        if host in DOCKER_HUB and "/" not in rest:
            rest = f"library/{rest}"  # Docker Hub's official images live under library/
        return cls(host=host, repository=rest, tag=tag, digest=digest)

    def __str__(self) -> str:
        text = f"{self.host}/{self.repository}" if self.host else self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def check_repository(name: str, *, what: str) -> None:
    if len(name) > _MAX_REPOSITORY:
        raise InvalidInput(f"{what}: the repository name is longer than {_MAX_REPOSITORY} chars")
    if not _REPOSITORY.match(name):
        raise InvalidInput(
            f"{what}: repository {name!r} must be lowercase path components of letters and "
            "digits, separated by '/', joined inside by '.', '_', '__' or dashes"
        )


def sha256_digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"
