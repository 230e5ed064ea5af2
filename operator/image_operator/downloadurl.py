"""`image-operator download-url img/NAME`: a link to an Image's file, from its cloud.

UCloudStack hands out a time-limited URL to an image's file (seed 003, GetImageDownloadURL); the
operator uses it internally to copy an image to another provider. Users want the same link to
fetch an image themselves. It is not kept in status on purpose: whoever holds the link can
download the image until it expires, and status is readable by far more people than the
provider's Secret. So the CLI asks the cloud with the keys of that Secret, under the user's own
RBAC, and prints the link to stdout alone (`curl -o disk "$(image-operator download-url …)"`);
its format and expiry go to stderr.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import IO

from image_operator.api.image import ImageSpec
from image_operator.imageaccess import CommandError, connect, parse_target
from image_operator.providers.capabilities import ExportedImage


def _expiry(exported: ExportedImage, now: float) -> str:
    if exported.expires_at is None:
        return "no expiry given by the cloud"
    at = datetime.fromtimestamp(exported.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    left = int(exported.expires_at - now)
    if left <= 0:
        return f"expired at {at}"
    return f"expires at {at} (in {left // 60}m{left % 60:02d}s)"


def run(
    target: str,
    *,
    namespace: str | None,
    output: str = "url",
    out: IO[str] = sys.stdout,
    err: IO[str] = sys.stderr,
) -> int:
    """The `download-url` subcommand against the current kubeconfig."""
    name = parse_target(target)
    cluster = connect(namespace)
    body = cluster.get("images", name)
    spec = ImageSpec.model_validate(body.get("spec") or {})
    external_id = (body.get("status") or {}).get("externalID")
    if not external_id:
        raise CommandError(
            f"Image {cluster.namespace}/{name} has no cloud image yet (status.externalID is "
            "empty): wait until it is Ready (`image-operator status img/" + name + "`)"
        )
    provider, provider_spec = cluster.provider(spec)
    try:
        exporter = provider.exporter
        if exporter is None:
            raise CommandError(
                f"ImageProvider {spec.provider_ref.name!r} is of type "
                f"{provider_spec.type.value}, whose cloud hands out no download links; "
                "only ucloudstack providers do (GetImageDownloadURL)"
            )
        exported = exporter.export_image(str(external_id))
    finally:
        provider.close()
    if output == "json":
        document = {
            "url": exported.url,
            "format": exported.format.value,
            "expiresAt": exported.expires_at,
        }
        print(json.dumps(document), file=out)
    else:
        print(exported.url, file=out)
        print(
            f"{exported.format.value} file of cloud image {external_id}; "
            f"{_expiry(exported, time.time())}",
            file=err,
        )
    return 0
