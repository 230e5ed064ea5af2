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
    # Identifiers and display text that would reach a cloud as they are (issue 10).
    (
        image({"repository": {"image": "app"}}, displayName="abc\u202edcba"),
        'spec.displayName: Invalid value: "abc\\u202edcba": must not hold control characters',
        None,
    ),
    (
        image({"repository": {"image": "app"}}, tags={"../../admin": "x"}),
        "every key of spec.tags must be '/'-separated parts",
        None,
    ),
    (
        image({"repository": {"image": "app"}}, group="x; rm -rf /"),
        'spec.group: Invalid value: "x; rm -rf /": may hold only Chinese (Han) characters',
        None,
    ),
    (
        image({"url": {"url": "http://169.254.169.254/latest/meta-data/", "format": "qcow2"}}),
        'spec.source.url.url: Invalid value: "http://169.254.169.254/latest/meta-data/": names '
        "a link-local or cloud-metadata address",
        None,
    ),
    (
        image({"vm": {"vmID": "$(id)"}}),
        'spec.source.vm.vmID: Invalid value: "$(id)": must be an ID of letters, digits',
        None,
    ),
    (
        pipeline(imageOptions={"imageName": "a" * 65}),
        "spec.imageOptions.imageName: Too long: may not be more than 64",
        "should match",
    ),
    (
        pipeline(imageOptions={"imageName": "aliyun-golden"}),
        'spec.imageOptions.imageName: Invalid value: "aliyun-golden": must not start with aliyun',
        None,
    ),
    (
        pipeline(transit={"vSwitchID": "sw-1"}),
        "spec.transit.vSwitchID: Invalid value: \"sw-1\": must be a vSwitch ID: 'vsw-'",
        None,
    ),
    (
        pipeline(baseImage={"oss": {"bucket": "images", "object": "a/../../admin"}}),
        'spec.baseImage.oss.object: Invalid value: "a/../../admin": must be an object name',
        None,
    ),
    (
        listing(supportedGpuTypes=["4090", "$(id)"]),
        'spec.supportedGpuTypes[1]: Invalid value: "$(id)": must be a label',
        None,
    ),
    (
        _doc(
            "ImageProvider",
            {
                "type": "argon",
                "endpoint": "https://argon.example.com",
                "project": "default",
                "credentialsSecretRef": {"name": "../../admin"},
            },
        ),
        'spec.credentialsSecretRef.name: Invalid value: "../../admin": must be a Kubernetes '
        "object name",
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


# Valid values the seeds document (and the like) that the patterns and rules above must not
# refuse: Chinese text, the vendors' own ID formats, keys with '/', empty tag values.
ACCEPTED = {
    "chinese-display-text": image(
        {"repository": {"image": "app"}},
        displayName="普通整片转码 Transcode «v2» 🚀 مرحبا",
        group="媒体组",
        tags={"team": "媒体 平台", "example.com/owner": "ops@example.com", "gpu": ""},
    ),
    "seed-003-vm": image(
        {
            "vm": {
                "vmID": "vm-7rli7wr5jpk8h5",
                "diskID": "disk-2frgtg4354",
                "storageSetType": "StorageSetNPVK",
            }
        },
        tags={"imageops.io/track-source": "true"},
    ),
    "presigned-url": image(
        {
            "url": {
                "url": "https://my-images.oss-cn-hangzhou.aliyuncs.com/ubuntu/22.04.qcow2"
                "?Expires=1700000000&Signature=a%2Bb%3D",
                "format": "qcow2",
            }
        }
    ),
    "seed-004-pipeline": pipeline(
        baseImage={"id": "m-bp67acfmxazb4p"},
        toRegionIDs=["cn-hangzhou", "cn-beijing"],
        resourceGroupID="rg-bp67acfmxazb4p",
        transit={"instanceType": "ecs.gn6i-c4g1.xlarge", "vSwitchID": "vsw-bp67acfmxazb4p"},
        tags=[{"key": "team", "value": "platform"}, {"key": "成本中心", "value": ""}],
        imageOptions={"imageName": "镜像testImageName", "imageFamily": "family"},
    ),
    "pipeline-public-image-and-oss": pipeline(
        baseImage={"oss": {"bucket": "images", "object": "ubuntu/22.04/golden_v1.2+b3.qcow2"}}
    ),
    "seed-000-listing": listing(
        communityImageName="我的AI环境 «GPU»",
        tags=["深度学习", "PyTorch 2.1", "C++"],
        supportedGpuTypes=["4090", "A100", "RTX 4090", "H100-80G"],
    ),
}


@pytest.mark.parametrize("doc", list(ACCEPTED.values()), ids=list(ACCEPTED))
def test_a_valid_manifest_is_accepted(control_plane: Any, doc: dict[str, Any]) -> None:
    result = dry_run(control_plane, doc)

    assert result.returncode == 0, result.stderr
