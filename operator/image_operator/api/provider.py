"""The `ImageProvider` kind: one cloud account/endpoint and how to talk to it."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field

from image_operator.api.base import ApiModel
from image_operator.api.common import (
    CLOUD_ID_PATTERN,
    CLOUD_ID_WORDS,
    METADATA_HOSTS_WORDS,
    URL_PATTERN,
    URL_WORDS,
    JsonDict,
    ObjectName,
    ObjectStatus,
    cel,
    cel_regex,
    not_a_metadata_url,
)
from image_operator.api.crdinfo import CrdInfo, PrinterColumn
from image_operator.api.provideroptions import OpenStackProviderOptions

# A project, namespace or repository prefix: words of letters, digits and '_' joined by '.',
# '_', '-', '@', ':' or '/'. Every '/'-separated part starts with a letter, digit or '_', so the
# value can never be or hold a '.' or '..' path segment. Each type narrows it (spec rules).
PROJECT_PATTERN = r"^[A-Za-z0-9_]+([._@:-]+[A-Za-z0-9_]+|/[A-Za-z0-9_]+)*$"
_PROJECT_WORDS = (
    "words of letters, digits and '_' joined by '.', '_', '-', '@' or ':' (and '/' for type "
    "registry), starting and ending with a letter, digit or '_' (no spaces, control characters "
    "or '..')"
)
# An Argon namespace is a Kubernetes-style name (seed 001: `default`), a DNS label.
_ARGON_NAMESPACE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A repository prefix in the distribution spec's grammar (providers.oci_reference checks it too).
_OCI_PREFIX = r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$"


def _worded(field: str, pattern: str, what: str) -> Callable[[JsonDict], None]:
    """Schema extras for a string field whose `pattern` the API server should explain in words:
    the pattern moves into a CEL rule whose message says what is accepted (the server's own
    message for `pattern` shows only the regex). Python still validates with `pattern`."""

    def extra(schema: JsonDict) -> None:
        for node in [schema, *schema.get("anyOf", [])]:
            node.pop("pattern", None)
        rule = cel(f"self.matches({cel_regex(pattern)})", f"{field} is {what}")
        schema.setdefault("x-kubernetes-validations", []).append(rule)

    return extra


def _cloud_id(what: str, examples: str) -> Any:
    """An optional region or zone ID field."""
    return Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=CLOUD_ID_PATTERN,
        description=f"{what.capitalize()} ID (e.g. {examples}).",
        json_schema_extra=_worded(
            f"spec.{what}", CLOUD_ID_PATTERN, f"a {what} ID of at most 64 {CLOUD_ID_WORDS}"
        ),
    )


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
    `privateKey`, `companyID` (and optionally `imageSecret`, ImportImage's Secret); aliyun
    `accessKeyId`, `accessKeySecret`; openstack and registry: see docs/providers (optional for
    anonymous endpoints).
    """

    name: ObjectName


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
                not_a_metadata_url(
                    f"spec.endpoint names {METADATA_HOSTS_WORDS}: the operator never sends a "
                    "provider's requests and credentials there; give the cloud API's own address",
                    field="endpoint",
                ),
                cel(
                    "self.type != 'argon' || !has(self.project) || (size(self.project) <= 63 "
                    f"&& self.project.matches({cel_regex(_ARGON_NAMESPACE)}))",
                    "spec.project of type argon is the Argon namespace: lowercase letters, "
                    "digits and '-', starting and ending with a letter or digit, at most 63 "
                    "characters (e.g. default)",
                    field_path=".project",
                ),
                cel(
                    "self.type != 'registry' || !has(self.project) "
                    f"|| self.project.matches({cel_regex(_OCI_PREFIX)})",
                    "spec.project of type registry is a repository prefix: path components of "
                    "lowercase letters and digits, separated by '.', '_', '__' or '-', joined "
                    "by '/' (e.g. mirror or team/images)",
                    field_path=".project",
                ),
                cel(
                    "self.type == 'openstack' || !has(self.openstack)",
                    "spec.openstack holds options for type openstack only: remove it",
                    field_path=".openstack",
                ),
                cel(
                    "self.type == 'registry' || !has(self.project) || !self.project.contains('/')",
                    "spec.project holds no '/' for this type: a project or tenant ID is one "
                    "word (e.g. project-5kyt09jzwcqh6j)",
                    field_path=".project",
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
        pattern=URL_PATTERN,
        description="API base URL; the vendor's public endpoint when omitted. Link-local, "
        "metadata, loopback and other non-routable addresses are refused unless the operator "
        "allows them (docs/providers/README.md).",
        json_schema_extra=_worded("spec.endpoint", URL_PATTERN, URL_WORDS),
    )
    region: str | None = _cloud_id("region", "cn-wlcb, cn-hangzhou, RegionOne")
    zone: str | None = _cloud_id("zone", "cn-wlcb-01")
    project: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=PROJECT_PATTERN,
        description="Project / namespace / company scope: the Argon namespace for argon, a "
        "repository prefix for registry, the project (ID) for the others.",
        json_schema_extra=_worded(
            "spec.project",
            PROJECT_PATTERN,
            "a project, namespace or repository prefix of at most 253 characters: "
            + _PROJECT_WORDS,
        ),
    )
    credentials_secret_ref: CredentialsSecretRef | None = Field(
        default=None, description="Secret with the keys; omit for anonymous registries."
    )
    rate_limit: RateLimit | None = Field(
        default=None,
        description="Client-side rate limit; without it, the defaults (10 requests per second, "
        "bursts of 20) apply.",
    )
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
    openstack: OpenStackProviderOptions | None = Field(
        default=None, description="Options of type openstack: which API dialect to speak."
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
