"""Build a provider client from an ImageProvider spec and the keys of its Secret.

Each provider type lives in its own module exposing `build(config: ProviderConfig) -> Provider`;
`_MODULES` maps the type to that module, imported only when a provider of that type is built
(so one vendor SDK's import cost or breakage never touches the others).

Before a module builds anything (some builds already talk to the cloud), the factory judges
`spec.endpoint` with the operator's `EndpointPolicy` (`providers/endpoints.py`): a refused
endpoint never receives a request. Every provider gets a rate limiter, the schema's defaults
when `spec.rateLimit` is absent.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from image_operator.api.provider import ImageProviderSpec, ProviderType
from image_operator.providers.base import Provider
from image_operator.providers.endpoints import EndpointPolicy, HostGuard
from image_operator.providers.errors import InvalidInput, Unsupported
from image_operator.providers.ratelimit import SYSTEM_CLOCK, Clock, TokenBucket

# The Secret keys each provider type reads (documented in ImageProvider's schema too).
CREDENTIAL_KEYS: dict[ProviderType, tuple[str, ...]] = {
    ProviderType.ARGON: ("token",),
    ProviderType.COMPSHARE: ("publicKey", "privateKey"),
    ProviderType.UCLOUDSTACK: ("publicKey", "privateKey"),
    ProviderType.ALIYUN: ("accessKeyId", "accessKeySecret"),
    ProviderType.OPENSTACK: (),
    ProviderType.REGISTRY: (),
}

_MODULES: dict[ProviderType, str] = {
    ProviderType.ARGON: "image_operator.providers.argon",
    ProviderType.ALIYUN: "image_operator.providers.aliyun",
    ProviderType.UCLOUDSTACK: "image_operator.providers.ucloudstack",
    ProviderType.COMPSHARE: "image_operator.providers.compshare",
    ProviderType.REGISTRY: "image_operator.providers.oci",
    ProviderType.OPENSTACK: "image_operator.providers.openstack",
}


@dataclass(frozen=True)
class ProviderConfig:
    """What every provider builder receives: the validated spec, the Secret's keys, a limiter,
    and the policy that says which hosts its clients may reach."""

    spec: ImageProviderSpec
    credentials: Mapping[str, str] = field(repr=False)
    limiter: TokenBucket | None = None
    endpoints: EndpointPolicy = field(default_factory=EndpointPolicy)

    def guard(self, endpoint: str, *, others: bool = False) -> HostGuard:
        """The guard for clients that talk to `endpoint`: only its host, or (`others`) also any
        other host the policy accepts (registry token realms, a Keystone catalog's)."""
        return HostGuard.for_endpoint(self.endpoints, endpoint, others=others)


def available_types() -> list[str]:
    return sorted(t.value for t in _MODULES)


def _require_keys(spec: ImageProviderSpec, credentials: Mapping[str, str]) -> None:
    missing = [key for key in CREDENTIAL_KEYS[spec.type] if not credentials.get(key)]
    if missing:
        secret = spec.credentials_secret_ref.name if spec.credentials_secret_ref else None
        where = (
            f"spec.credentialsSecretRef names Secret {secret!r}, which lacks"
            if secret
            else "spec.credentialsSecretRef is not set, so the provider lacks"
        )
        raise InvalidInput(
            f"{where} the key(s) {', '.join(missing)} that type {spec.type.value} needs"
        )


def _require_url(endpoint: str) -> None:
    """Refuse an endpoint that no HTTP client can use (a port that is not a number, a host
    with spaces), before a vendor's client fails on it in its own way, or only at the first
    request. The message names the field and quotes the parser, not the URL (it may carry
    user info)."""
    try:
        httpx.URL(endpoint)
        urlsplit(endpoint).port  # noqa: B018 -- parsing the port is the check
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidInput(
            f"spec.endpoint is not a usable URL ({exc}): give scheme://host[:port][/path], "
            "the port a number"
        ) from None


def build_provider(
    spec: ImageProviderSpec,
    credentials: Mapping[str, str],
    *,
    endpoints: EndpointPolicy,
    clock: Clock = SYSTEM_CLOCK,
) -> Provider:
    """A ready-to-use client; raises InvalidInput/Unsupported with a message naming the field
    (an endpoint that is not a usable URL too),
    `EndpointRefused` for an endpoint the policy refuses (before any request is sent) and
    `Transient` when the endpoint's name does not resolve now."""
    module_name = _MODULES.get(spec.type)
    if module_name is None:
        raise Unsupported(
            f"provider type {spec.type.value!r} is not available in this version of "
            f"image-operator; available: {', '.join(available_types())}"
        )
    _require_keys(spec, credentials)
    if spec.endpoint:
        _require_url(spec.endpoint)
        endpoints.check(spec.endpoint)
    limiter = TokenBucket.for_limit(spec.rate_limit, clock)
    module = importlib.import_module(module_name)
    provider: Provider = module.build(ProviderConfig(spec, credentials, limiter, endpoints))
    return provider
