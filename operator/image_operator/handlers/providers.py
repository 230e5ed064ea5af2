"""Resolve an object's ImageProvider into a cached provider client (+ its batch observer)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from pydantic import ValidationError

from image_operator.api.provider import ImageProviderSpec
from image_operator.handlers.kube import KubeAccess
from image_operator.providers.errors import ProviderError
from image_operator.providers.factory import build_provider
from image_operator.providers.instrumented import InstrumentedProvider
from image_operator.providers.observer import ImageObserver
from image_operator.reconcilers.managed import ProviderHandle
from image_operator.validation import describe_validation_error


@dataclass(frozen=True)
class _Cached:
    key: tuple[str, int, str]
    handle: ProviderHandle


class ProviderRegistry:
    """One client per ImageProvider, rebuilt only when its spec or its Secret changes, so that
    rate limits and batched polling are shared by every object using the provider."""

    def __init__(self, kube: KubeAccess) -> None:
        self.kube = kube
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._lock = threading.Lock()

    def handle(self, namespace: str, name: str) -> ProviderHandle:
        body = self.kube.get_provider(namespace, name)
        if body is None:
            return ProviderHandle(
                name, problem=f"ImageProvider {name!r} does not exist in namespace {namespace!r}"
            )
        try:
            spec = ImageProviderSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            return ProviderHandle(
                name, problem=f"ImageProvider {name!r}: {describe_validation_error(exc, 'spec')}"
            )
        credentials: dict[str, str] = {}
        secret_version = ""
        if spec.credentials_secret_ref:
            secret = self.kube.read_secret(namespace, spec.credentials_secret_ref.name)
            if secret is None:
                return ProviderHandle(
                    name,
                    problem=f"Secret {spec.credentials_secret_ref.name!r} named by ImageProvider "
                    f"{name!r} does not exist in namespace {namespace!r}",
                )
            credentials = dict(secret.data)
            secret_version = secret.resource_version
        metadata = body.get("metadata") or {}
        key = (str(metadata.get("uid")), int(metadata.get("generation") or 0), secret_version)
        with self._lock:
            cached = self._cache.get((namespace, name))
            if cached and cached.key == key:
                return cached.handle
            try:
                provider = InstrumentedProvider(build_provider(spec, credentials))
            except ProviderError as exc:
                return ProviderHandle(name, problem=f"ImageProvider {name!r}: {exc.message}")
            if cached and cached.handle.provider:
                cached.handle.provider.close()
            poll = float(spec.poll_interval_seconds)
            handle = ProviderHandle(
                name,
                provider=provider,
                observer=ImageObserver(provider, max_age=poll * 0.8),
                poll_interval=poll,
                drift_policy=spec.drift_policy,
            )
            self._cache[(namespace, name)] = _Cached(key, handle)
            return handle
