"""The good manifests the bad-manifest corpus (`bad_manifests.py`) starts from, and the objects
they refer to.

Every base is valid and names only objects `test_bad_manifests.py` creates first in its
namespace (the FIXTURES below): a mutation of a base is then bad for the one reason the mutation
gives. The "rich" base of a kind sets every optional field, so that walking it with the CRD's
schema reaches every field; the other bases of a kind differ in a part that is one of several
(an Image's `source`, a pipeline's `baseImage`, a listing's `cover`).

`at_max` objects hold every field at its documented maximum at once: they must be accepted and
become Ready ("good at the limit").
"""

from __future__ import annotations

import base64
import re
from typing import Any

from image_operator.api.common import API_VERSION

Body = dict[str, Any]

PLURALS = {
    "Image": "images",
    "BaseImage": "baseimages",
    "ImagePipeline": "imagepipelines",
    "CommunityListing": "communitylistings",
    "ImageProvider": "imageproviders",
}
KINDS = tuple(PLURALS)

# The ImageProviders (and their Secrets) the test makes, one per emulated vendor.
ARGON, COMPSHARE, UCLOUDSTACK, ALIYUN = "argon", "compshare", "ucloudstack", "aliyun"
SECRETS = {
    ARGON: "argon-credentials",
    COMPSHARE: "compshare-keys",
    UCLOUDSTACK: "ucloudstack-keys",
    ALIYUN: "aliyun-keys",
}
# Objects the bases refer to, made Ready before any case is applied.
FX_ARGON = "fx-argon"  # an argon Image (repository)
FX_CONTAINER = "fx-container"  # a compshare Image made from a container instance
FX_VM = "fx-vm"  # a compshare Image made from a VM instance (cannot be published)
FX_UCS = "fx-ucs"  # a ucloudstack Image made from a VM
FX_BASE = "fx-base"  # a ucloudstack BaseImage cloned from FX_UCS
# An Image whose name is a Kubernetes name at its longest (253): what a reference may name.
FX_LONG = ("fx-" + "l" * 60 + ".") * 3 + "l" * 61
FX_COVERS = "fx-covers"  # ConfigMap with the cover picture under COVER_KEY (binaryData)
FX_COVER_SECRET = "fx-cover-secret"  # Secret with the cover (Base64) under COVER_KEY
COVER_KEY = "cover.png"
# Names in the emulator (its default ucloudstack company, compshare instances, ECS images).
CONTAINER_INSTANCE, VM_INSTANCE = "uhost-container1", "uhost-vm1"
UCS_VM = "vm-corpus"
ALIYUN_PUBLIC_IMAGE = "aliyun_3_x64_20G_alibase_20240819.vhd"
ALIYUN_REGION, ALIYUN_OTHER_REGION = "cn-hangzhou", "cn-beijing"
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

PNG_HEADER = b"\x89PNG\r\n\x1a\n"
COVER_B64 = base64.b64encode(PNG_HEADER + b" a cover of the corpus").decode()

# Immutable-field cases change these objects, made paused (no cloud call) and Orphan (deleted
# without one) before the cases run.
IMMUTABLE_BASES = {
    "Image": "imm-image",
    "BaseImage": "imm-baseimage",
    "ImagePipeline": "imm-pipeline",
    "CommunityListing": "imm-listing",
    "ImageProvider": "imm-provider",
}


def manifest(kind: str, name: str, spec: Body, **metadata: Any) -> Body:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, **metadata},
        "spec": spec,
    }


def _parameter(name: str, index: int, **extra: Any) -> Body:
    return {
        "name": name,
        "displayName": name.replace("_", " ").title(),
        "index": index,
        "controls": "input",
        **extra,
    }


def image_spec(source: Body, provider: str = ARGON) -> Body:
    """A rich Image: every optional field of the Argon model set."""
    return {
        "providerRef": {"name": provider},
        "source": source,
        "displayName": "Transcode 转码",
        "group": "media",
        "description": "Transcodes a video file.",
        "price": "1.5",
        "cover": "https://covers.example.com/transcode.png",
        "command": [
            "python3 main.py --task_id={{inputs.task_id}} --mode={{configs.mode}} "
            "--out={{outputs.output}}"
        ],
        "inputs": [
            _parameter("task_id", 0, kind="input", type="integer", default="42", required=True)
        ],
        "outputs": [_parameter("output", 1, kind="output", type="path", default="/data/out")],
        "configs": [
            _parameter(
                "mode", 2, kind="config", type="enum", options=["fast", "slow"], default="fast"
            )
        ],
        "tags": {"team": "media"},
        "deletionPolicy": "Delete",
        # Every policy listed (not "*"): the corpus mutates the list.
        "managementPolicies": ["Observe", "Create", "Update", "Delete"],
        # A selector that matches nothing, so the base still creates; compshare cannot look
        # images up (it would stall Unsupported), so its Images go without.
        **(
            {}
            if provider == COMPSHARE
            else {"adopt": {"selector": {"name": "no-such-cloud-image"}, "policy": "AdoptOrCreate"}}
        ),
    }


REPOSITORY_SOURCE = {"repository": {"image": "nvidia/cuda10.1:tensorflow_mgdc-test-v0.1"}}
OS = {"type": "Linux", "distribution": "Ubuntu", "version": "22.04", "arch": "x86_64"}
IMAGE_SOURCES: dict[str, tuple[Body, str]] = {
    # base name -> (source, provider)
    "vm": ({"vm": {"vmID": UCS_VM, "storageSetType": "StorageSetSSD"}}, UCLOUDSTACK),
    "url": (
        {
            "url": {
                "url": "https://images.example.com/ubuntu.qcow2",
                "format": "qcow2",
                "checksum": SHA256,
                "os": OS,
            }
        },
        UCLOUDSTACK,
    ),
    "upload": (
        {"upload": {"format": "qcow2", "sizeBytes": 4096, "checksum": SHA256, "os": OS}},
        UCLOUDSTACK,
    ),
    "copy": ({"image": {"imageRef": {"name": FX_ARGON}}}, ARGON),
    "pipeline": ({"pipeline": {"pipelineRef": {"name": "builder"}, "runID": "exec-1"}}, ALIYUN),
}


def baseimage_spec(source: Body) -> Body:
    return {
        "providerRef": {"name": UCLOUDSTACK},
        "source": source,
        "name": "golden-1",
        "deletionPolicy": "Delete",
    }


def pipeline_spec(base_image: Body) -> Body:
    """A rich ImagePipeline: every optional field set."""
    return {
        "providerRef": {"name": ALIYUN},
        "name": "golden-pipeline",
        "description": "Builds the golden image.",
        "baseImage": base_image,
        "buildContent": "RUN echo built",
        "testContent": "RUN echo tested",
        "toRegionIDs": [ALIYUN_OTHER_REGION],
        "addAccounts": [1122334455],
        "transit": {
            "instanceType": "ecs.g6.large",
            "systemDiskSize": 40,
            "internetMaxBandwidthOut": 10,
            "vSwitchID": "vsw-corpus",
            "deleteInstanceOnFailure": True,
        },
        "repairMode": "Customized",
        "repairItems": ["CloudInit"],
        "resourceGroupID": "rg-corpus",
        "tags": [{"key": "team", "value": "media"}],
        "imageOptions": {
            "imageName": "golden",
            "imageFamily": "golden-family",
            "description": "the golden image",
            "nvmeSupport": "auto",
            "tags": [{"key": "team", "value": "media"}],
        },
        "advancedOptions": {"imageNameSuffix": "disable", "retainCloudAssistant": True},
        "schedule": {"cron": "0 3 * * 1", "timeZone": "Asia/Shanghai"},
        "concurrencyPolicy": "Wait",
        "runsHistoryLimit": 5,
        "outputImages": {"enabled": True, "retention": 2, "deletionPolicy": "Delete"},
        "deletionPolicy": "Delete",
    }


PIPELINE_BASE_IMAGES: dict[str, Body] = {
    "family": {"family": "acs:alibaba_cloud_linux_3"},
    "oss": {
        "oss": {
            "bucket": "corpus-images",
            "object": "golden.qcow2",
            "format": "qcow2",
            "diskImageSizeGib": 40,
        }
    },
    "imageref": {"imageRef": {"name": FX_ARGON}},
    "baseimageref": {"baseImageRef": {"name": FX_BASE}},
}
# spec.importImageOptions of an OSS base image (its own base: it needs baseImage.oss).
IMPORT_IMAGE_OPTIONS: Body = {
    "dataDisks": [
        {"bucket": "corpus-images", "object": "data.raw", "format": "RAW", "diskImageSizeGib": 40}
    ],
    "osType": "linux",
    "platform": "Ubuntu",
    "architecture": "x86_64",
    "bootMode": "UEFI",
    "licenseType": "BYOL",
    "imageName": "imported-golden",
    "description": "the imported golden image",
    "retentionStrategy": "RetainNever",
    "retainImportedImage": False,
    "roleName": "AliyunECSImageImportDefaultRole",
    "features": {"nvmeSupport": "supported", "imdsSupport": "v2"},
    "tags": [{"key": "source", "value": "oss"}],
}
# The provider options of an Image, each a base of its own walked in that part (issue 12):
# (base name, source, provider, field, options).
IMAGE_OPTIONS: tuple[tuple[str, Body, str, str, Body], ...] = (
    ("argon-name", REPOSITORY_SOURCE, ARGON, "argon", {"name": "转码-corpus"}),
    (
        "ucloudstack-options",
        {"url": {"url": "https://images.example.com/ubuntu.qcow2", "format": "qcow2", "os": OS}},
        UCLOUDSTACK,
        "ucloudstack",
        {
            "imageSizeGiB": 40,
            "supportQGA": True,
            "supportCloudInit": True,
            "bootloaderType": "uefi",
        },
    ),
    (
        "openstack-options",
        {"upload": {"format": "qcow2", "sizeBytes": 4096, "os": OS}},
        UCLOUDSTACK,
        "openstack",
        {
            "visibility": "shared",
            "containerFormat": "bare",
            "minDiskGiB": 10,
            "minRamMiB": 512,
            "protected": False,
            "properties": {"hw_disk_bus": "virtio"},
        },
    ),
)


def listing_spec(cover: Body) -> Body:
    """A rich CommunityListing: every optional field set (groupID only where a case says)."""
    return {
        "imageRef": {"name": FX_CONTAINER},
        "communityImageName": "AI环境",
        "versionName": "v1.0",
        "versionDesc": "首次发布",
        "price": "0",
        "cover": cover,
        "tags": ["深度学习", "PyTorch"],
        "description": "预装PyTorch 2.1",
        "readme": "# AI environment",
        "supportedGpuTypes": ["4090", "A100"],
        "autoStart": True,
        "deletionPolicy": "Delete",
    }


LISTING_COVERS: dict[str, Body] = {
    "configmap": {"configMapKeyRef": {"name": FX_COVERS, "key": COVER_KEY}},
    "secret": {"secretKeyRef": {"name": FX_COVER_SECRET, "key": COVER_KEY}},
}


# The test replaces this prefix of an endpoint with the emulator's URL of the vendor that
# follows it (the corpus is fixed, the emulator's ports are not).
EMULATOR = "http://emulator.invalid/"


def provider_spec(kind: str) -> Body:
    """A rich ImageProvider of type `kind` (argon: every field set), on the emulator."""
    spec: Body = {"type": kind, "endpoint": EMULATOR + kind}
    if kind in SECRETS:
        spec["credentialsSecretRef"] = {"name": SECRETS[kind]}
    if kind == ARGON:
        spec |= {
            "project": "corpus",
            "rateLimit": {"requestsPerSecond": 10, "burst": 20},
            "pollIntervalSeconds": 1,
            "resyncIntervalSeconds": 600,
            "driftPolicy": "Correct",
        }
    elif kind == COMPSHARE:
        spec |= {"region": "cn-wlcb", "zone": "cn-wlcb-01", "pollIntervalSeconds": 1}
    elif kind == UCLOUDSTACK:
        spec |= {"region": "cn", "pollIntervalSeconds": 1}
    elif kind == ALIYUN:
        spec |= {"region": ALIYUN_REGION, "pollIntervalSeconds": 1}
    return spec


def bases() -> list[tuple[str, str, Body, str]]:
    """(base name, kind, manifest, the part of spec the schema walk mutates): the rich base of
    each kind is walked whole, the others only in the part that differs."""
    found: list[tuple[str, str, Body, str]] = [
        ("repository", "Image", manifest("Image", "b", image_spec(REPOSITORY_SOURCE)), "spec")
    ]
    for name, (source, provider) in IMAGE_SOURCES.items():
        found.append(
            (name, "Image", manifest("Image", "b", image_spec(source, provider)), "spec.source")
        )
    found.append(
        ("imageref", "BaseImage", manifest("BaseImage", "b", baseimage_spec(_ref(FX_UCS))), "spec")
    )
    found.append(
        (
            "externalid",
            "BaseImage",
            manifest("BaseImage", "b", baseimage_spec({"externalID": "image-1"})),
            "spec.source",
        )
    )
    for name, source, provider, field, options in IMAGE_OPTIONS:
        spec = image_spec(source, provider) | {field: options}
        found.append((name, "Image", manifest("Image", "b", spec), f"spec.{field}"))
    rich = pipeline_spec({"id": ALIYUN_PUBLIC_IMAGE})
    found.append(("id", "ImagePipeline", manifest("ImagePipeline", "b", rich), "spec"))
    for name, base_image in PIPELINE_BASE_IMAGES.items():
        body = manifest("ImagePipeline", "b", pipeline_spec(base_image))
        found.append((name, "ImagePipeline", body, "spec.baseImage"))
    oss = pipeline_spec(PIPELINE_BASE_IMAGES["oss"]) | {"importImageOptions": IMPORT_IMAGE_OPTIONS}
    found.append(
        (
            "oss-import",
            "ImagePipeline",
            manifest("ImagePipeline", "b", oss),
            "spec.importImageOptions",
        )
    )
    rich = listing_spec({"inline": COVER_B64})
    found.append(("inline", "CommunityListing", manifest("CommunityListing", "b", rich), "spec"))
    for name, cover in LISTING_COVERS.items():
        body = manifest("CommunityListing", "b", listing_spec(cover))
        found.append((name, "CommunityListing", body, "spec.cover"))
    found.append(
        ("argon", "ImageProvider", manifest("ImageProvider", "b", provider_spec(ARGON)), "spec")
    )
    for field in ("region", "zone"):
        body = manifest("ImageProvider", "b", provider_spec(COMPSHARE))
        found.append(("compshare", "ImageProvider", body, f"spec.{field}"))
    return found


def _ref(name: str) -> Body:
    return {"imageRef": {"name": name}}


# --- the largest valid objects ------------------------------------------------------------


def _fill(prefix: str, length: int, pad: str = "x") -> str:
    """`prefix` padded with `pad` to exactly `length` characters."""
    assert len(prefix) <= length
    return prefix + pad * (length - len(prefix))


def _names(prefix: str, count: int) -> list[str]:
    """`count` distinct parameter names of the longest allowed length (63)."""
    return [_fill(f"{prefix}{index:02d}_", 63, "p") for index in range(count)]


def longest_repository() -> str:
    """A 512-character image reference: host, path, a 128-character tag and a digest."""
    host, tag, digest = "registry.example.com:5000/", "t" * 128, "@sha256:" + "a" * 64
    path = "team/" + "a" * (512 - len(host) - 5 - 1 - len(tag) - len(digest))
    return f"{host}{path}:{tag}{digest}"


def _params(prefix: str, kind: str, index: int) -> list[Body]:
    """16 parameters of `kind`, every field at its longest; the configs are enums with 64
    options of 256 characters."""
    params = []
    for offset, name in enumerate(_names(prefix, 16)):
        param: Body = {
            "name": name,
            "displayName": _fill(f"{kind} {offset} 参数", 128),
            "kind": kind,
            "index": min(index + offset, 1000),
            "controls": _fill("input", 32),
            "required": False,
        }
        if kind == "config":
            options = [_fill(f"option-{n}-", 256) for n in range(64)]
            param |= {"type": "enum", "options": options, "default": options[-1]}
        else:
            param |= {"type": "string", "default": _fill(f"{name}=", 4096)}
        params.append(param)
    params[-1]["index"] = 1000
    return params


def _command(inputs: list[Body], outputs: list[Body], configs: list[Body]) -> list[str]:
    """8 lines of exactly 2048 characters, using every parameter."""
    placeholders = (
        [f"{{{{inputs.{p['name']}}}}}" for p in inputs]
        + [f"{{{{outputs.{p['name']}}}}}" for p in outputs]
        + [f"{{{{configs.{p['name']}}}}}" for p in configs]
    )
    lines = []
    for line in range(8):
        used = placeholders[line * 6 : line * 6 + 6]
        lines.append(_fill(f"run{line} " + " ".join(used) + " #", 2048))
    return lines


def image_at_max() -> Body:
    """Every field of an argon Image (repository source) at its maximum, at once."""
    inputs = _params("in", "input", 0)
    outputs = _params("out", "output", 100)
    configs = _params("cfg", "config", 200)
    cover = base64.b64encode(PNG_HEADER + b"\0" * (262144 // 4 * 3 - len(PNG_HEADER))).decode()
    assert len(cover) == 262144
    spec = {
        "providerRef": {"name": ARGON},
        "source": {"repository": {"image": longest_repository()}},
        "displayName": _fill("最大 Image at every limit ", 128),
        "group": _fill("group-", 63),
        "description": _fill("The largest Image the schema allows. ", 1024),
        "price": "999999999.9999",
        "cover": cover,
        "command": _command(inputs, outputs, configs),
        "inputs": inputs,
        "outputs": outputs,
        "configs": configs,
        "tags": {f"tag{n:02d}": _fill(f"value {n} ", 128) for n in range(20)},
        "deletionPolicy": "Delete",
    }
    return manifest("Image", "at-max-image", spec)


def baseimage_at_max() -> Body:
    """The name at 50 Han characters, the source Image's name at 253; externalID (64) must
    name an existing cloud image and is left out."""
    spec = {
        "providerRef": {"name": UCLOUDSTACK},
        "source": _ref(FX_LONG),
        "name": "镜" * 50,
        "deletionPolicy": "Delete",
    }
    return manifest("BaseImage", "at-max-baseimage", spec)


def longest_cron() -> str:
    """A 128-character cron expression that fires: minutes 0-42 of 3 o'clock on Mondays."""
    tail, minutes = " 3 * * 1", [str(minute) for minute in range(43)]
    for index in range(128 - len(",".join(minutes)) - len(tail)):
        minutes[index] = "0" + minutes[index]  # 00, 01: still minutes 0 and 1
    return ",".join(minutes) + tail


def pipeline_at_max() -> Body:
    """Every field at its maximum but those no valid value reaches: toRegionIDs (the cloud
    has 7 regions), timeZone (IANA names are shorter than 64), and IDs that must name
    existing cloud objects (vSwitchID, resourceGroupID)."""
    spec = {
        "providerRef": {"name": ALIYUN},
        "name": _fill("Golden管道", 128, "-"),
        "description": _fill("The largest ImagePipeline the schema allows. ", 256),
        "baseImage": {"id": ALIYUN_PUBLIC_IMAGE},
        "buildContent": _fill("RUN echo built\n# ", 16384),
        "testContent": _fill("RUN echo tested\n# ", 16384),
        "toRegionIDs": [ALIYUN_OTHER_REGION],
        "addAccounts": [1000000000 + n for n in range(20)],
        "transit": {
            "instanceType": "ecs.g6.large",
            "systemDiskSize": 500,
            "internetMaxBandwidthOut": 100,
            "deleteInstanceOnFailure": True,
        },
        "repairMode": "Standard",
        "tags": [{"key": _fill(f"key{n:02d}-", 128), "value": "v" * 128} for n in range(20)],
        "imageOptions": {
            "imageName": _fill("golden-", 64),
            "imageFamily": _fill("family-", 128),
            "description": _fill("at the limit ", 256),
            "nvmeSupport": "supported",
        },
        "schedule": {"cron": longest_cron(), "timeZone": "America/Argentina/ComodRivadavia"},
        "concurrencyPolicy": "Replace",
        "runsHistoryLimit": 100,
        "outputImages": {"enabled": False, "retention": 100, "deletionPolicy": "Orphan"},
        "deletionPolicy": "Delete",
    }
    return manifest("ImagePipeline", "at-max-pipeline", spec)


def listing_at_max() -> Body:
    """Every field at its maximum but groupID, which must name an existing group."""
    cover = base64.b64encode(PNG_HEADER + b"\0" * (1048576 // 4 * 3 - len(PNG_HEADER))).decode()
    assert len(cover) == 1048576
    spec = {
        "imageRef": {"name": FX_CONTAINER},
        "communityImageName": _fill("最大的社区镜像", 64),
        "versionName": "v" + "1" * 15 + "." + "2" * 15,
        "versionDesc": _fill("版本说明 ", 512),
        "price": "999999999.9999",
        "cover": {"inline": cover},
        "tags": ["深" * 32, "t" * 32, "u" * 32],
        "description": _fill("描述 ", 1024),
        "readme": _fill("# README\n", 65536),
        "supportedGpuTypes": [_fill(f"gpu{n:02d}-", 32) for n in range(32)],
        "autoStart": False,
        "deletionPolicy": "Delete",
    }
    return manifest("CommunityListing", "at-max-listing", spec)


def provider_at_max() -> Body:
    """An argon provider with its project (the Argon namespace, a DNS label) at 63 characters
    and the rate limit and poll interval at their maxima; the endpoint is the emulator's."""
    spec = provider_spec(ARGON) | {
        "project": _fill("corpus-", 63, "p"),
        "rateLimit": {"requestsPerSecond": 1000, "burst": 10000},
        "pollIntervalSeconds": 3600,
        "resyncIntervalSeconds": 86400,
    }
    return manifest("ImageProvider", "at-max-provider", spec)


def at_max() -> list[Body]:
    """The largest valid object of each kind."""
    return [
        image_at_max(),
        baseimage_at_max(),
        pipeline_at_max(),
        listing_at_max(),
        provider_at_max(),
    ]


HAN = re.compile(r"\\p\{Han\}")


def python_pattern(pattern: str) -> str:
    """A CRD pattern as Python's `re` reads it (`\\p{Han}` as the CJK block)."""
    return HAN.sub("\u4e00-\u9fff", pattern)
