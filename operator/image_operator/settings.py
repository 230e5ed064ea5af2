"""Operator configuration: one typed model, read from IMAGE_OPERATOR_* environment variables.

The CLI flags, the Helm chart's values and docs/configuration.md all describe these fields.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, IPvAnyNetwork, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from image_operator.providers.endpoints import EndpointPolicy


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Settings(BaseSettings):
    """Every setting of the operator process."""

    model_config = SettingsConfigDict(env_prefix="IMAGE_OPERATOR_", extra="ignore")

    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Namespaces to watch (comma-separated in the environment); empty = all.",
    )
    standalone: bool = Field(
        default=False,
        description="Run without kopf peering (only safe with a single replica).",
    )
    peering_name: str = Field(
        default="image-operator",
        description="KopfPeering object used to keep a single active replica.",
    )
    peering_priority: int | None = Field(
        default=None,
        ge=0,
        description="kopf peering priority: the live replica with the highest one works, the "
        "others stand by. Unset (the default): a random one per process start, so replicas "
        "never tie; kopf pauses every replica of equal priority, so never give several "
        "replicas one value (leave it unset in the chart).",
    )
    peering_lifetime_seconds: int = Field(
        default=10,
        ge=2,
        le=300,
        description="How long a replica's peering record lives without a keepalive: a standby "
        "takes over at most this long after the active replica dies.",
    )
    shards: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Shards splitting the Images, BaseImages, ImagePipelines and "
        "CommunityListings by a hash of their UID; each group of replicas runs one "
        "(shard_index). More than 1 needs Kubernetes 1.36+ with the ShardedListAndWatch "
        "feature gate: the operator refuses to start sharded on an API server that does not "
        "filter by shard.",
    )
    shard_index: int = Field(
        default=0,
        ge=0,
        le=63,
        description="This replica's shard, 0 to shards-1; shard 0 also handles every "
        "ImageProvider.",
    )
    poll_backoff_max_seconds: float = Field(
        default=10.0,
        ge=1,
        description="Upper bound of the retry backoff after transient cloud errors (each "
        "delay is jittered between half and all of it).",
    )
    retry_backoff_base_seconds: float = Field(
        default=1.0, ge=0.1, description="First retry delay after a transient cloud error."
    )
    provider_wait_seconds: float = Field(
        default=15.0, ge=1, description="Retry delay while an ImageProvider or Secret is missing."
    )
    provider_probe_interval_seconds: float = Field(
        default=300.0, ge=5, description="How often each ImageProvider is probed again."
    )
    provider_probe_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="How many times a failed probe of a Ready ImageProvider is repeated, "
        "providerProbeRetrySeconds apart, before it leaves Ready (a transient error only; "
        "refused credentials leave Ready at once).",
    )
    provider_probe_retry_seconds: float = Field(
        default=5.0,
        ge=0.1,
        le=300,
        description="Delay between those repeated probes.",
    )
    allowed_endpoint_cidrs: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="Addresses an ImageProvider endpoint may have although they are refused by "
        "default (loopback, link-local, metadata, unspecified, multicast, reserved), as CIDRs "
        "(comma-separated in the environment), e.g. 127.0.0.0/8 for a cloud on the node "
        "itself. Private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) are "
        "accepted without it.",
    )
    allowed_endpoint_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Endpoint host names accepted as they are, whatever they resolve to "
        "(comma-separated in the environment).",
    )
    denied_endpoint_cidrs: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="More addresses to refuse as ImageProvider endpoints (comma-separated in "
        "the environment), e.g. the cluster's pod and service ranges or the private ranges "
        "when no private cloud is used. allowedEndpointCidrs wins over it.",
    )
    secret_cache_seconds: float = Field(
        default=30.0, ge=0, description="How long provider credentials are cached in memory."
    )
    normal_events_per_second: float = Field(
        default=10.0,
        ge=0,
        le=10000,
        description="Normal events (Ready, Creating, ...) posted per second at most, after a "
        "burst of normal_events_burst; the ones over it are dropped and counted "
        "(imageops_events_dropped_total): every transition stays in the object's conditions "
        "and the log. Warning events are never dropped.",
    )
    normal_events_burst: int = Field(
        default=100,
        ge=0,
        le=100000,
        description="Normal events posted at once before normal_events_per_second applies; a "
        "burst or a rate of 0 posts none.",
    )
    memory_trim_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="Every this many seconds, memory freed after a burst of objects is given "
        "back to the system (glibc's malloc_trim), so the resident size follows the objects "
        "held, not the largest burst; 0 turns it off.",
    )
    log_format: LogFormat = Field(default=LogFormat.TEXT, description="text or json.")
    log_level: str = Field(default="INFO", description="Python logging level name.")
    metrics_port: int = Field(
        default=9090,
        ge=0,
        le=65535,
        description="Port of the Prometheus /metrics endpoint (0 = off).",
    )
    health_port: int = Field(
        default=8080, ge=0, le=65535, description="Port of kopf's liveness endpoint (0 = off)."
    )

    @field_validator(
        "namespaces",
        "allowed_endpoint_cidrs",
        "allowed_endpoint_hosts",
        "denied_endpoint_cidrs",
        mode="before",
    )
    @classmethod
    def _split_lists(cls, value: object) -> object:
        # The environment (and the Helm chart) give "a,b,c"; Python callers may pass a list.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _shard_in_range(self) -> Settings:
        if self.shard_index >= self.shards:
            raise ValueError(
                f"shard_index {self.shard_index} is not a shard of {self.shards}: "
                f"use 0 to {self.shards - 1}"
            )
        return self

    def endpoint_policy(self) -> EndpointPolicy:
        """Which ImageProvider endpoints this process sends requests to."""
        return EndpointPolicy.from_lists(
            allowed_cidrs=map(str, self.allowed_endpoint_cidrs),
            allowed_hosts=self.allowed_endpoint_hosts,
            denied_cidrs=map(str, self.denied_endpoint_cidrs),
        )
