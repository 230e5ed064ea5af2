"""The emulator's configuration: one pydantic model, loadable from a YAML file.

Every vendor has its own section (and its own port) so that a vendor's quirks stay in its
section; what all vendors share (fault injection, port, enablement) lives in
`VendorSettings`, which each vendor's section extends.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Rate = Annotated[float, Field(ge=0.0, le=1.0)]
Seconds = Annotated[float, Field(ge=0.0, le=86_400.0)]


class _Settings(BaseModel):
    # Typos in a config file must fail loudly instead of silently meaning "default".
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class FaultSettings(_Settings):
    """Faults injected into one vendor's API routes (never into the /_emulator/ admin routes)."""

    error_rate: Rate = Field(
        default=0.0,
        description="Share of vendor calls answered with 503 ServiceUnavailable in the "
        "vendor's error format.",
    )
    throttle_rate: Rate = Field(
        default=0.0,
        description="Share of vendor calls answered with 429 TooManyRequests and Retry-After.",
    )
    retry_after_seconds: int = Field(
        default=1, ge=0, le=3600, description="Value of the Retry-After header on a 429."
    )
    latency_seconds: Seconds = Field(
        default=0.0, description="Delay added before a vendor call is handled."
    )
    latency_after_commit_seconds: Seconds = Field(
        default=0.0,
        description="Delay added to the response of a successful mutating call (POST, PUT, "
        "PATCH, DELETE) after its state change is committed, so a test can lose the client "
        "between the change and its response.",
    )
    seed: int | None = Field(
        default=None,
        description="Seed of the random generator that decides which calls fail; set it for "
        "a reproducible sequence of faults.",
    )


class VendorSettings(_Settings):
    """What every vendor section has."""

    enabled: bool = Field(default=True, description="Serve this vendor at all.")
    port: int = Field(
        default=0, ge=0, le=65535, description="Port to listen on; 0 picks a free one."
    )
    faults: FaultSettings = Field(default_factory=FaultSettings)


class ArgonSettings(VendorSettings):
    """The Argon image API (Kubernetes-style REST with bearer tokens)."""

    tokens: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: ["argon-emulator-token"],
        description="Bearer tokens accepted in `Authorization: Bearer <token>`.",
    )
    cluster_name: str = Field(
        default="default", min_length=1, description="Reported as metadata.clusterName."
    )
    creation_seconds: Seconds = Field(
        default=3.0, description="Time from create (or a repository change) to Ready."
    )
    deletion_seconds: Seconds = Field(
        default=1.0, description="Time an image stays in phase Deleting before it is gone."
    )
    fail_repository_pattern: str | None = Field(
        default=None,
        description="Regular expression; images whose repository matches it (re.search) end "
        "in phase Failed instead of Ready.",
    )

    @field_validator("fail_repository_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                msg = f"fail_repository_pattern is not a valid regular expression: {exc}"
                raise ValueError(msg) from exc
        return value


def is_loopback(host: str) -> bool:
    """Whether `host` can only be reached from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        # A name other than localhost could resolve anywhere; treat it as non-loopback.
        return False


class CompShareSettings(VendorSettings):
    """UCloud CompShare (signed UCloud RPC, seed 000): custom images made from instances,
    and their publication to the community image market with a review."""

    enabled: bool = Field(default=False, description="Serve this vendor at all.")
    keys: dict[Annotated[str, Field(min_length=1)], Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: {"compshare-emulator-public-key": "compshare-emulator-private-key"},
        min_length=1,
        description="API key pairs, public key → private key; each pair is its own account.",
    )
    regions: dict[str, list[Annotated[str, Field(min_length=1)]]] = Field(
        default_factory=lambda: {"cn-wlcb": ["cn-wlcb-01"]},
        min_length=1,
        description="Accepted Region values and the Zone values of each.",
    )
    instances: dict[str, Annotated[str, Field(pattern=r"^(container|vm)$")]] = Field(
        default_factory=lambda: {"uhost-container1": "container", "uhost-vm1": "vm"},
        description="Instances (UHostId) every account owns in every zone, each `container` "
        "or `vm`: an image made from a container instance is a container image.",
    )
    making_seconds: Seconds = Field(
        default=3.0, description="Time from CreateCompShareCustomImage (or a copy) to Available."
    )
    review_seconds: Seconds = Field(
        default=2.0, description="Time a publication stays in review before its outcome."
    )
    fail_image_pattern: str | None = Field(
        default=None,
        description="Regular expression; images whose Name matches it (re.search) end "
        "UnAvailable with a FailedReason instead of Available.",
    )
    reject_listing_pattern: str | None = Field(
        default=None,
        description="Regular expression; publications whose community image name matches it "
        "(re.search) are rejected by the review with `reject_reason`.",
    )
    reject_reason: str = Field(
        default="the listing does not meet the community guidelines (emulated review)",
        min_length=1,
        description="The reason a rejected publication reports.",
    )

    @field_validator("fail_image_pattern", "reject_listing_pattern")
    @classmethod
    def _patterns_compile(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                msg = f"not a valid regular expression: {exc}"
                raise ValueError(msg) from exc
        return value


class UCloudStackAccount(_Settings):
    """One tenant (CompanyID) of the ucloudstack emulator and the API key pair that acts for it."""

    public_key: str = Field(min_length=1, description="PublicKey the SDK sends.")
    private_key: str = Field(min_length=1, description="Private key the signature is made with.")
    company_id: int = Field(default=200000236, ge=1, description="The tenant's CompanyID.")
    company_name: str = Field(default="emulator", description="Reported as CompanyName.")
    email: str = Field(default="emulator@example.com", description="Reported as Email.")
    projects: dict[Annotated[str, Field(min_length=1)], str] = Field(
        default_factory=lambda: {"project-default": "default"},
        min_length=1,
        description="ProjectID → ProjectName; the first is where images without a ProjectID go.",
    )


class UCloudStackOSVersion(_Settings):
    """One entry of the OS catalogue DescribeImageOSVersions returns (seed `ImageOSInfo`)."""

    image_os_id: str = Field(min_length=1)
    os_type: str = Field(min_length=1, description="e.g. Linux, Windows.")
    set_arch: str = Field(min_length=1, description="e.g. x86_64, aarch64.")
    os_distribution: str = Field(min_length=1, description="e.g. Ubuntu, CentOS.")
    os_version: str = Field(min_length=1, description="e.g. 22.04.")
    network_mode: Literal["NetworkScripts", "Interfaces", "Netplan", "None"] = "NetworkScripts"
    remark: str = Field(default="", max_length=100)
    status: str = Field(default="Ready", description="Only Ready entries may be used.")


def _default_os_catalogue() -> list[UCloudStackOSVersion]:
    rows = [
        ("os-centos-7-x86", "Linux", "x86_64", "CentOS", "7", "NetworkScripts"),
        ("os-ubuntu-2204-x86", "Linux", "x86_64", "Ubuntu", "22.04", "Netplan"),
        ("os-ubuntu-2204-arm", "Linux", "aarch64", "Ubuntu", "22.04", "Netplan"),
        ("os-openeuler-2203-x86", "Linux", "x86_64", "OpenEuler", "22.03_SP4", "NetworkScripts"),
        ("os-windows-2019-x86", "Windows", "x86_64", "Windows", "2019", "None"),
    ]
    return [
        UCloudStackOSVersion(
            image_os_id=os_id,
            os_type=os_type,
            set_arch=arch,
            os_distribution=distribution,
            os_version=version,
            network_mode=mode,
        )
        for os_id, os_type, arch, distribution, version, mode in rows
    ]


class UCloudStackSettings(VendorSettings):
    """The private-cloud IMAGE API (UCloud-style signed RPC, seed 003) and its S3 data routes."""

    enabled: bool = Field(default=False, description="Serve this vendor at all.")
    accounts: list[UCloudStackAccount] = Field(
        default_factory=lambda: [
            UCloudStackAccount(
                public_key="ucloudstack-emulator-public-key",
                private_key="ucloudstack-emulator-private-key",
            )
        ],
        min_length=1,
        description="Tenants and their key pairs; a request signed with one key acts for its "
        "company only.",
    )
    regions: dict[Annotated[str, Field(min_length=1)], str] = Field(
        default_factory=lambda: {"cn": "cn", "develop": "develop"},
        min_length=1,
        description="Accepted Region values → RegionAlias.",
    )
    storage_sets: list[str] = Field(
        default_factory=lambda: ["StorageSetNPVK", "StorageSetSSD"],
        description="Accepted StorageSetType values of CreateCustomImage.",
    )
    os_versions: list[UCloudStackOSVersion] = Field(
        default_factory=_default_os_catalogue,
        min_length=1,
        description="The OS catalogue; ImportImage/UpdateImage OS fields must match an entry.",
    )
    vm_os_id: str = Field(
        default="os-openeuler-2203-x86",
        description="ImageOSID of the OS every VM runs (images made from a VM report it).",
    )
    vm_disk_gib: int = Field(default=40, ge=1, description="ImageSize of images made from a VM.")
    making_seconds: Seconds = Field(
        default=3.0, description="CreateCustomImage → Available (WaitMaking, then Making)."
    )
    clone_seconds: Seconds = Field(
        default=2.0, description="CloneCustomImageToBaseImage → the base image is Available."
    )
    import_seconds: Seconds = Field(
        default=2.0,
        description="Importing time after a remote download or a completed upload → Available.",
    )
    abort_seconds: Seconds = Field(
        default=1.0, description="Time an aborted image stays Aborting before it is gone."
    )
    deletion_seconds: Seconds = Field(
        default=1.0, description="Time a deleted image stays Deleting before it is gone."
    )
    fail_vm_pattern: str | None = Field(
        default=None,
        description="Regular expression; images made from a VMID matching it (re.search) end "
        "MakeFailed with a Reason instead of Available.",
    )
    base_image_permission: str = Field(
        default="all", min_length=1, description="Permission of cloned base images."
    )
    bucket: str = Field(
        default="mirror", min_length=1, description="Bucket that local uploads go to."
    )
    min_part_bytes: int = Field(
        default=5 * 1024 * 1024,
        ge=1,
        description="Smallest size of every part but the last of a multipart upload.",
    )
    max_part_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1, description="Largest size of one uploaded part."
    )
    max_image_bytes: int = Field(
        default=4 * 1024 * 1024 * 1024,
        ge=1,
        description="Largest image file a remote import or a completed upload may hold.",
    )
    download_url_seconds: int = Field(
        default=3600, ge=1, le=7 * 86_400, description="Validity of GetImageDownloadURL queries."
    )
    import_allowed_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost", "::1"],
        description="Hosts a remote import (LoadURL) may download from; the emulator fetches "
        "the URL for real, so by default only from this machine.",
    )

    @field_validator("fail_vm_pattern")
    @classmethod
    def _fail_pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                msg = f"fail_vm_pattern is not a valid regular expression: {exc}"
                raise ValueError(msg) from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        keys = [account.public_key for account in self.accounts]
        if len(keys) != len(set(keys)):
            msg = "every ucloudstack account needs its own public_key"
            raise ValueError(msg)
        os_ids = [entry.image_os_id for entry in self.os_versions]
        if len(os_ids) != len(set(os_ids)):
            msg = "every os_versions entry needs its own image_os_id"
            raise ValueError(msg)
        if self.vm_os_id not in os_ids:
            msg = f"vm_os_id {self.vm_os_id!r} is not an image_os_id of os_versions"
            raise ValueError(msg)
        if self.min_part_bytes > self.max_part_bytes:
            msg = "min_part_bytes must not exceed max_part_bytes"
            raise ValueError(msg)
        return self


class AliyunSettings(VendorSettings):
    """Alibaba Cloud ECS (RPC API 2014-05-26, seed 004): image templates (pipelines) and
    their executions, and custom images (import from OSS, copy, share, delete)."""

    enabled: bool = Field(default=False, description="Serve this vendor at all.")
    access_keys: dict[Annotated[str, Field(min_length=1)], Annotated[str, Field(min_length=1)]] = (
        Field(
            default_factory=lambda: {"aliyun-emulator-key-id": "aliyun-emulator-key-secret"},
            min_length=1,
            description="AccessKey pairs, AccessKeyId → AccessKeySecret; all act for one account.",
        )
    )
    account_id: int = Field(
        default=1234567890123456, ge=1, description="The account ID that owns every object."
    )
    regions: list[Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z0-9]+)+$")]] = Field(
        default_factory=lambda: [
            "cn-hangzhou",
            "cn-shanghai",
            "cn-beijing",
            "cn-shenzhen",
            "cn-qingdao",
            "cn-hongkong",
            "ap-southeast-1",
        ],
        min_length=1,
        description="RegionId values the API accepts (DescribeRegions lists them).",
    )
    public_images: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: ["aliyun_3_x64_20G_alibase_20240819.vhd"],
        description="Public image IDs present in every region (BaseImage of type IMAGE).",
    )
    public_image_families: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: ["acs:alibaba_cloud_linux_3_2104_lts_x64"],
        description="Public image families (BaseImage of type IMAGE_FAMILY).",
    )
    import_seconds: Seconds = Field(
        default=3.0, description="ImportImage → Available (Waiting, then Creating with Progress)."
    )
    copy_seconds: Seconds = Field(default=2.0, description="CopyImage → Available.")
    preparing_seconds: Seconds = Field(default=1.0, description="Execution phase PREPARING.")
    building_seconds: Seconds = Field(default=2.0, description="Execution phase BUILDING.")
    testing_seconds: Seconds = Field(
        default=1.0, description="Execution phase TESTING (skipped without TestContent)."
    )
    distributing_seconds: Seconds = Field(
        default=2.0,
        description="Execution phase DISTRIBUTING (skipped without ToRegionId and AddAccount).",
    )
    cancelling_seconds: Seconds = Field(
        default=0.5, description="CANCELLING → CANCELLED after CancelImagePipelineExecution."
    )
    fail_distribution_regions: list[str] = Field(
        default_factory=list,
        description="Regions distribution to which fails: an execution that distributes to one "
        "of them ends PARTITION_SUCCESS, naming the region.",
    )
    fail_share_accounts: list[int] = Field(
        default_factory=list,
        description="Accounts sharing with which fails (PARTITION_SUCCESS, naming the account).",
    )
    fail_build_pattern: str | None = Field(
        default=None,
        description="Regular expression; executions whose BuildContent matches it (re.search) "
        "end FAILED at the end of BUILDING.",
    )
    fail_test_pattern: str | None = Field(
        default=None,
        description="Regular expression; executions whose TestContent matches it end "
        "TEST_FAILED (the image exists, nothing is distributed).",
    )
    fail_import_object_pattern: str | None = Field(
        default=None,
        description="Regular expression; ImportImage of an OSS object whose key matches it ends "
        "in status CreateFailed.",
    )
    oss_bucket_regions: dict[str, str] = Field(
        default_factory=dict,
        description="Region of each emulated OSS bucket; unlisted buckets are in the first region.",
    )
    signature_max_skew_seconds: Seconds = Field(
        default=900.0,
        description="How far x-acs-date / Timestamp may be from the machine's clock, and how "
        "long a SignatureNonce is remembered.",
    )

    @field_validator("fail_build_pattern", "fail_test_pattern", "fail_import_object_pattern")
    @classmethod
    def _aliyun_patterns_compile(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                msg = f"not a valid regular expression: {exc}"
                raise ValueError(msg) from exc
        return value

    @model_validator(mode="after")
    def _aliyun_regions_known(self) -> Self:
        known = set(self.regions)
        unknown = [
            region
            for region in [*self.fail_distribution_regions, *self.oss_bucket_regions.values()]
            if region not in known
        ]
        if unknown:
            msg = f"regions {sorted(set(unknown))} are not in aliyun.regions"
            raise ValueError(msg)
        return self


class EmulatorConfig(_Settings):
    """The whole emulator: where state lives, where to listen, and one section per vendor."""

    state_dir: Path | None = Field(
        default=None,
        description="Directory of the SQLite database; state persists across restarts. "
        "Unset keeps state in memory only.",
    )
    host: str = Field(default="127.0.0.1", min_length=1, description="Address to bind.")
    allow_non_loopback: bool = Field(
        default=False,
        description="Allow binding a non-loopback address. The emulator has no real security "
        "and must not be reachable from other machines unless you mean it.",
    )
    argon: ArgonSettings = Field(default_factory=ArgonSettings)
    compshare: CompShareSettings = Field(default_factory=CompShareSettings)
    ucloudstack: UCloudStackSettings = Field(default_factory=UCloudStackSettings)
    aliyun: AliyunSettings = Field(default_factory=AliyunSettings)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.allow_non_loopback and not is_loopback(self.host):
            msg = (
                f"host {self.host!r} is not a loopback address; use 127.0.0.1, ::1 or "
                "localhost, or set allow_non_loopback: true"
            )
            raise ValueError(msg)
        fixed = [v.port for v in self.vendors().values() if v.port]
        if len(fixed) != len(set(fixed)):
            msg = "every enabled vendor needs its own port (0 picks a free one)"
            raise ValueError(msg)
        return self

    def vendors(self) -> dict[str, VendorSettings]:
        """The enabled vendor sections by vendor name (the name is the section's key)."""
        sections: dict[str, VendorSettings] = {
            "argon": self.argon,
            "compshare": self.compshare,
            "ucloudstack": self.ucloudstack,
            "aliyun": self.aliyun,
        }
        return {name: section for name, section in sections.items() if section.enabled}


class ConfigError(Exception):
    """The configuration file cannot be read or does not validate."""


def load_config(path: Path | str) -> EmulatorConfig:
    """Read a YAML file into an `EmulatorConfig`; an empty file means all defaults."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        msg = f"cannot read emulator config {path}: {exc}"
        raise ConfigError(msg) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        msg = f"emulator config {path} must be a mapping at the top level"
        raise ConfigError(msg)
    try:
        return EmulatorConfig.model_validate(data)
    except ValidationError as exc:
        msg = f"invalid emulator config {path}: {exc}"
        raise ConfigError(msg) from exc
