"""What `kubectl apply` of a bad manifest tells the user, as the real API server says it: a length
limit in words ("may not be more than 50"), never only a regex; a pattern in words beside it.

Server-side dry runs in the default namespace: no operator, nothing stored.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from image_operator.api.common import API_VERSION

PROVIDER = {"name": "p"}


def _doc(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": "admission", "namespace": "default"},
        "spec": spec,
    }


def base_image(name: str) -> dict[str, Any]:
    return _doc(
        "BaseImage", {"providerRef": PROVIDER, "source": {"externalID": "image-1"}, "name": name}
    )


def pipeline(**spec: Any) -> dict[str, Any]:
    return _doc("ImagePipeline", {"providerRef": PROVIDER, "baseImage": {"id": "m-1"}, **spec})


def listing(**spec: Any) -> dict[str, Any]:
    return _doc("CommunityListing", {"imageRef": {"name": "img"}, "versionName": "v1.0", **spec})


def image(source: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return _doc("Image", {"providerRef": PROVIDER, "displayName": "x", "source": source, **spec})


def dry_run(control_plane: Any, doc: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(control_plane.kubectl), "apply", "--dry-run=server", "-f", "-"],
        check=False,
        input=yaml.safe_dump(doc, allow_unicode=True),
        capture_output=True,
        text=True,
        env=control_plane.env(),
        timeout=60,
    )


REFUSED = [
    # (manifest, what the message says, what it must not say)
    (base_image("a" * 51), "spec.name: Too long: may not be more than 50", "should match"),
    (base_image("a b"), "may hold only Chinese (Han) characters, letters, digits", None),
    (pipeline(name="a" * 129), "spec.name: Too long: may not be more than 128", "should match"),
    (pipeline(name="1abc"), "must start with a letter or Chinese (Han) character", None),
    (pipeline(repairMode="Deep"), 'supported values: "Standard"', "should match"),
    (listing(price="1.23456"), "at most 9 digits before the point", None),
    (listing(price="1" * 15), "spec.price: Too long: may not be more than 14", None),
    (listing(versionName="1.0"), "must be a version like v1.0 or v1.0.1", None),
    (
        image({"url": {"url": "https://h/x", "format": "qcow2", "checksum": "a" * 63}}),
        "spec.source.url.checksum in body should be at least 64 chars long",
        "should match",
    ),
    (
        image({"repository": {"image": "Team/App:1"}}),
        "must be a container image reference like team/app:1.0",
        None,
    ),
    (
        image({"repository": {"image": "app"}}, inputs=[{"name": "1st"}]),
        "spec.inputs[0].name: Invalid value: \"1st\": must start with a letter or '_'",
        None,
    ),
    (
        _doc(
            "Image",
            {
                "providerRef": {"name": "Argon_1"},
                "displayName": "x",
                "source": {"repository": {"image": "app"}},
            },
        ),
        'spec.providerRef.name: Invalid value: "Argon_1": must be a Kubernetes object name',
        None,
    ),
]


@pytest.mark.parametrize(
    ("doc", "says", "not_only"),
    REFUSED,
    ids=[f"{doc['kind']}-{index}" for index, (doc, _, _) in enumerate(REFUSED)],
)
def test_a_refused_manifest_says_the_limit_in_words(
    control_plane: Any, doc: dict[str, Any], says: str, not_only: str | None
) -> None:
    result = dry_run(control_plane, doc)

    assert result.returncode != 0, result.stdout
    assert says in result.stderr
    if not_only is not None:
        assert not_only not in result.stderr


def test_a_name_at_its_limit_in_chinese_characters_is_accepted(control_plane: Any) -> None:
    # maxLength counts characters, although the server's message says "bytes"
    result = dry_run(control_plane, base_image("镜" * 50))

    assert result.returncode == 0, result.stderr
