"""Build a provider client from an ImageProvider spec and the keys of its Secret."""

from __future__ import annotations

from collections.abc import Mapping

from image_operator.api.provider import ImageProviderSpec, ProviderType
from image_operator.providers.argon import ArgonProvider
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
    _require_keys(spec, credentials)
    limiter = (
        TokenBucket(spec.rate_limit.requests_per_second, spec.rate_limit.burst)
        if spec.rate_limit
        else None
    )
    if spec.type is ProviderType.ARGON:
        if not spec.endpoint:
            raise InvalidInput("spec.endpoint is required for type argon (Argon has no public URL)")
        if not spec.project:
            raise InvalidInput("spec.project (the Argon namespace) is required for type argon")
        return ArgonProvider(
            endpoint=spec.endpoint,
            namespace=spec.project,
            token=credentials["token"],
            limiter=limiter,
        )
    raise Unsupported(
        f"provider type {spec.type.value!r} is not available in this version of image-operator; "
        f"available: {ProviderType.ARGON.value}"
    )
