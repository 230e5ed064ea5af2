"""Build a provider client from an ImageProvider spec and the keys of its Secret.

Each provider type lives in its own module exposing `build(config: ProviderConfig) -> Provider`;
`_MODULES` maps the type to that module, imported only when a provider of that type is built
(so one vendor SDK's import cost or breakage never touches the others).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from image_operator.api.provider import ImageProviderSpec, ProviderType
from image_operator.providers.base import Provider
from image_operator.providers.errors import InvalidInput, Unsupported
from image_operator.providers.ratelimit import TokenBucket

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
    """What every provider builder receives: the validated spec, the Secret's keys, a limiter."""

    spec: ImageProviderSpec
    credentials: Mapping[str, str] = field(repr=False)
    limiter: TokenBucket | None = None


def available_types() -> list[str]:
    return sorted(t.value for t in _MODULES)


def _require_keys(spec: ImageProviderSpec, credentials: Mapping[str, str]) -> None:
    missing = [key for key in CREDENTIAL_KEYS[spec.type] if not credentials.get(key)]
    if missing:
        secret = spec.credentials_secret_ref.name if spec.credentials_secret_ref else None
        where = f"Secret {secret!r}" if secret else "spec.credentialsSecretRef (not set)"
        raise InvalidInput(
            f"{where} lacks the key(s) {', '.join(missing)} that type {spec.type.value} needs"
        )


def build_provider(spec: ImageProviderSpec, credentials: Mapping[str, str]) -> Provider:
    """A ready-to-use client; raises InvalidInput/Unsupported with a message naming the field."""
    module_name = _MODULES.get(spec.type)
    if module_name is None:
        raise Unsupported(
            f"provider type {spec.type.value!r} is not available in this version of "
            f"image-operator; available: {', '.join(available_types())}"
        )
    _require_keys(spec, credentials)
    limiter = (
        TokenBucket(spec.rate_limit.requests_per_second, spec.rate_limit.burst)
        if spec.rate_limit
        else None
    )
    module = importlib.import_module(module_name)
    provider: Provider = module.build(ProviderConfig(spec, credentials, limiter))
    return provider
