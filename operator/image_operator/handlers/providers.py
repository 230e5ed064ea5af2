"""Resolve an object's ImageProvider into a cached provider client (+ its batch observer)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from image_operator.api.provider import ImageProviderSpec
from image_operator.handlers.kube import KubeAccess
from image_operator.providers.endpoints import EndpointPolicy
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


@dataclass(frozen=True)
class Resolved:
    """A provider handle and, when no client could be built, the error that said why (its
    reason and retryability decide the ImageProvider's own status)."""

    handle: ProviderHandle
    error: ProviderError | None = None
    # The Secret spec.credentialsSecretRef names does not exist (yet: GitOps applies in any
    # order), which is waited for, not a configuration error.
    secret_missing: bool = False


class ProviderRegistry:
    """One client per ImageProvider, rebuilt only when its spec or its Secret changes, so that
    rate limits and batched polling are shared by every object using the provider. Every
    endpoint is judged by `endpoints` before its client is built."""

    def __init__(self, kube: KubeAccess, endpoints: EndpointPolicy | None = None) -> None:
        self.kube = kube
        self.endpoints = endpoints or EndpointPolicy()
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._lock = threading.Lock()
        # ImageProvider bodies as kopf's watch delivered them (an informer's cache): every
        # reconcile resolves its provider, and a GET each time was a fifth of the operator's
        # work at scale. A miss (a reconcile before the watch's first listing) reads through.
        self._bodies: dict[tuple[str, str], dict[str, Any]] = {}

    def seen(self, body: Mapping[str, Any], *, deleted: bool = False) -> None:
        """Record what the ImageProvider watch delivered (`deleted`: a DELETED event)."""
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        with self._lock:
            if deleted:
                self._bodies.pop(key, None)
            else:
                self._bodies[key] = dict(body)

    def _body(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            body = self._bodies.get((namespace, name))
        if body is None:
            body = self.kube.get_provider(namespace, name)
            if body is not None:
                self.seen(body)
        return body

    def handle(self, namespace: str, name: str) -> ProviderHandle:
        return self.resolve(namespace, name).handle

    def resolve(self, namespace: str, name: str, *, recheck: bool = False) -> Resolved:
        """The provider's handle. `recheck` (each probe) judges the endpoint again even when
        the client is cached, so a name that now resolves somewhere refused stops its use."""
        body = self._body(namespace, name)
        if body is None:
            return Resolved(
                ProviderHandle(
                    name,
                    problem=f"ImageProvider {name!r} does not exist in namespace {namespace!r}",
                )
            )
        try:
            spec = ImageProviderSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            return Resolved(
                ProviderHandle(
                    name,
                    problem=f"ImageProvider {name!r}: {describe_validation_error(exc, 'spec')}",
                )
            )
        credentials: dict[str, str] = {}
        secret_version = ""
        if spec.credentials_secret_ref:
            secret = self.kube.read_secret(namespace, spec.credentials_secret_ref.name)
            if secret is None:
                return Resolved(
                    ProviderHandle(
                        name,
                        problem=f"ImageProvider {name!r}: spec.credentialsSecretRef names Secret "
                        f"{spec.credentials_secret_ref.name!r}, which does not exist in "
                        f"namespace {namespace!r}",
                    ),
                    secret_missing=True,
                )
            credentials = dict(secret.data)
            secret_version = secret.resource_version
        metadata = body.get("metadata") or {}
        key = (str(metadata.get("uid")), int(metadata.get("generation") or 0), secret_version)
        with self._lock:
            cached = self._cache.get((namespace, name))
            try:
                if cached and cached.key == key:
                    if recheck and spec.endpoint:
                        self.endpoints.check(spec.endpoint)
                    return Resolved(cached.handle)
                provider = InstrumentedProvider(
                    build_provider(spec, credentials, endpoints=self.endpoints)
                )
            except ProviderError as exc:
                if cached and cached.handle.provider:  # a refused endpoint: no more calls
                    cached.handle.provider.close()
                    del self._cache[(namespace, name)]
                problem = f"ImageProvider {name!r}: {exc.message}"
                return Resolved(ProviderHandle(name, problem=problem), exc)
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
            return Resolved(handle)
