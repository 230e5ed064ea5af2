"""The `ImageProvider` kind: one cloud account/endpoint and how to talk to it."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from image_operator.api.base import ApiModel
from image_operator.api.common import ObjectStatus, cel
from image_operator.api.crdinfo import CrdInfo, PrinterColumn


class ProviderType(StrEnum):
    COMPSHARE = "compshare"
    UCLOUDSTACK = "ucloudstack"
    ARGON = "argon"
    OPENSTACK = "openstack"
    ALIYUN = "aliyun"
    REGISTRY = "registry"


class CredentialsSecretRef(ApiModel):
    """The Secret (same namespace) holding the provider's keys.

    Keys by type: argon `token`; compshare `publicKey`, `privateKey`; ucloudstack `publicKey`,
    `privateKey`, `companyID`; aliyun `accessKeyId`, `accessKeySecret`; openstack and registry:
    see docs/providers (optional for anonymous endpoints).
    """

    name: str = Field(min_length=1, max_length=253)


class RateLimit(ApiModel):
    """Client-side limit on calls to this provider, shared by every object using it."""

    requests_per_second: int = Field(default=10, ge=1, le=1000)
    burst: int = Field(default=20, ge=1, le=10000)


class DriftPolicy(StrEnum):
    """What the operator does when a Ready Image's cloud image changed behind its back."""

    CORRECT = "Correct"  # re-create a deleted image, push the spec to a modified one
    REPORT = "Report"  # only report it (Stalled/Drifted) until the Image's spec changes


class ImageProviderSpec(ApiModel):
    """Where the cloud is and how to authenticate."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "self.type == oldSelf.type",
                    "spec.type is immutable: create a new ImageProvider for another cloud",
                    field_path=".type",
                ),
                cel(
                    "self.type != 'argon' || (has(self.project) && has(self.endpoint))",
                    "type argon needs spec.endpoint (Argon's URL) and spec.project (the Argon "
                    "namespace)",
                ),
                cel(
                    "self.type != 'compshare' || (has(self.region) && has(self.zone))",
                    "type compshare needs spec.region and spec.zone (e.g. cn-wlcb, cn-wlcb-01)",
                ),
                cel(
                    "self.type != 'openstack' || has(self.endpoint)",
                    "type openstack needs spec.endpoint (Glance's URL, or Keystone's with "
                    "Keystone credentials)",
                ),
                cel(
                    "self.type != 'registry' || has(self.endpoint)",
                    "type registry needs spec.endpoint (the registry's URL)",
                ),
                cel(
                    "self.type != 'ucloudstack' || (has(self.endpoint) && has(self.region))",
                    "type ucloudstack needs spec.endpoint (the private cloud's API URL) and "
                    "spec.region",
                ),
            ]
        }
    }

    type: ProviderType = Field(
        description="compshare, ucloudstack, argon, openstack, aliyun or registry."
    )
    endpoint: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description="API base URL; the vendor's public endpoint when omitted.",
    )
    region: str | None = Field(default=None, max_length=64, description="Region ID.")
    zone: str | None = Field(default=None, max_length=64, description="Zone ID.")
    project: str | None = Field(
        default=None, max_length=253, description="Project / namespace / company scope."
    )
    credentials_secret_ref: CredentialsSecretRef | None = Field(
        default=None, description="Secret with the keys; omit for anonymous registries."
    )
    rate_limit: RateLimit | None = None
    poll_interval_seconds: int = Field(
        default=10, ge=1, le=3600, description="How often long operations are polled."
    )
    resync_interval_seconds: int = Field(
        default=600,
        ge=0,
        le=86400,
        description="How often the Ready Images of this provider are read again (one batched "
        "describe, under the rate limit) to notice images deleted or modified outside the "
        "operator; 0 turns it off.",
    )
    drift_policy: DriftPolicy = Field(
        default=DriftPolicy.CORRECT,
        description="Correct: re-create a deleted cloud image and push the spec to a modified "
        "one. Report: only report the drift (Stalled, reason Drifted) until the spec changes.",
    )


class ImageProviderStatus(ObjectStatus):
    endpoint_info: str | None = Field(default=None, description="What the probe call saw.")
    last_probe_time: str | None = None


class ImageProvider(ApiModel):
    crd: ClassVar[CrdInfo] = CrdInfo(
        kind="ImageProvider",
        plural="imageproviders",
        short_names=("iprov",),
        description="A cloud account/endpoint that images, pipelines and listings use.",
        columns=(
            PrinterColumn("Type", "string", ".spec.type"),
            PrinterColumn("Endpoint", "string", ".spec.endpoint", priority=1),
            PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
            PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
        ),
    )

    spec: ImageProviderSpec
    status: ImageProviderStatus | None = None
