"""The few Kubernetes calls handlers need beyond what kopf hands them: reading providers,
Secrets and ConfigMaps, and making or deleting the objects a reconciler says it owns."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from image_operator.api.common import GROUP, VERSION
from image_operator.reconcilers.outcome import Child


@dataclass(frozen=True)
class SecretData:
    resource_version: str
    data: Mapping[str, str]

    def __repr__(self) -> str:  # never print the values
        return f"SecretData(resource_version={self.resource_version!r}, keys={sorted(self.data)})"


class KubeAccess:
    """Thin, cached access to ImageProviders and their Secrets."""

    def __init__(self, secret_cache_seconds: float = 30.0) -> None:
        self._api_client: client.ApiClient | None = None
        self._lock = threading.Lock()
        self._secret_ttl = secret_cache_seconds
        self._secrets: dict[tuple[str, str], tuple[float, SecretData | None]] = {}

    @property
    def api(self) -> client.ApiClient:
        with self._lock:
            if self._api_client is None:
                try:
                    config.load_incluster_config()  # type: ignore[no-untyped-call]
                except config.ConfigException:
                    config.load_kube_config()  # type: ignore[no-untyped-call]
                self._api_client = client.ApiClient()
            return self._api_client

    def get_provider(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get_object("imageproviders", namespace, name)

    def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One imageops.io object (e.g. the Image a BaseImage or listing refers to), or None."""
        try:
            body = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return cast(dict[str, Any], body)

    def list_objects(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        """Every imageops.io object of a kind in a namespace."""
        answer = client.CustomObjectsApi(self.api).list_namespaced_custom_object(
            GROUP, VERSION, namespace, plural
        )
        return list(cast(dict[str, Any], answer).get("items") or [])

    def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge `status` into an object's status (a 404 is ignored: the object is gone)."""
        try:
            client.CustomObjectsApi(self.api).patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, plural, name, {"status": status}
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def apply_children(self, namespace: str, children: Iterable[Child]) -> None:
        """Make or delete owned objects (see `Child`); each call is safe to repeat."""
        api = client.CustomObjectsApi(self.api)
        for child in children:
            try:
                if child.body is None:
                    api.delete_namespaced_custom_object(
                        GROUP, VERSION, namespace, child.plural, child.name
                    )
                else:
                    api.create_namespaced_custom_object(
                        GROUP, VERSION, namespace, child.plural, child.body
                    )
            except ApiException as exc:
                # Already made / already gone: what a repeated step expects.
                if exc.status != (404 if child.body is None else 409):
                    raise

    def read_configmap_key(self, namespace: str, name: str, key: str) -> str | None:
        """A ConfigMap value (text or binary data, binary returned Base64 as stored), or None."""
        try:
            configmap = client.CoreV1Api(self.api).read_namespaced_config_map(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        data: dict[str, str] = dict(configmap.data or {})
        if key in data:
            return data[key]
        value = (configmap.binary_data or {}).get(key)
        return value.decode() if isinstance(value, bytes) else value

    def read_secret(self, namespace: str, name: str) -> SecretData | None:
        key = (namespace, name)
        now = time.monotonic()
        cached = self._secrets.get(key)
        if cached and now - cached[0] < self._secret_ttl:
            return cached[1]
        try:
            secret = client.CoreV1Api(self.api).read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            result = None
        else:
            data = {
                k: base64.b64decode(v).decode("utf-8", errors="replace")
                for k, v in (secret.data or {}).items()
            }
            data.update(secret.string_data or {})
            version = secret.metadata.resource_version if secret.metadata else None
            result = SecretData(version or "", data)
        self._secrets[key] = (now, result)
        return result
