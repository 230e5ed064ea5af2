"""The emulator's configuration: one pydantic model, loadable from a YAML file.

Every vendor has its own section (and its own port) so that a vendor's quirks stay in its
section; what all vendors share (fault injection, port, enablement) lives in
`VendorSettings`, which each vendor's section extends.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Self

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
    """UCloud CompShare (signed RPC, seed 000). Off until its vendor module registers."""

    enabled: bool = Field(default=False, description="Serve this vendor at all.")


class UCloudStackSettings(VendorSettings):
    """The private-cloud IMAGE API (signed RPC, seed 003). Off until its module registers."""

    enabled: bool = Field(default=False, description="Serve this vendor at all.")


class AliyunSettings(VendorSettings):
    """Alibaba Cloud ECS (RPC, seed 004). Off until its vendor module registers."""

    enabled: bool = Field(default=False, description="Serve this vendor at all.")


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
