"""ProviderRegistry reads ImageProviders from the watch's copies, not one GET per reconcile."""

from __future__ import annotations

from typing import Any, cast

from image_operator.handlers.kube import KubeAccess, SecretData
from image_operator.handlers.providers import ProviderRegistry
from image_operator.providers.endpoints import EndpointPolicy


class _CountingKube:
    def __init__(self) -> None:
        self.bodies: dict[str, dict[str, Any]] = {}
        self.gets = 0
        self.secrets = True

    def get_provider(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.gets += 1
        return self.bodies.get(name)

    def read_secret(self, namespace: str, name: str) -> SecretData | None:
        return SecretData(resource_version="1", data={"token": "t"}) if self.secrets else None


def _provider(name: str, generation: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name, "uid": f"u-{name}", "generation": generation},
        "spec": {
            "type": "argon",
            "endpoint": "https://argon.example",
            "project": "default",
            "credentialsSecretRef": {"name": "k"},
        },
    }


def _registry() -> tuple[ProviderRegistry, _CountingKube]:
    kube = _CountingKube()
    policy = EndpointPolicy(resolver=lambda host: ["203.0.113.7"])
    return ProviderRegistry(cast(KubeAccess, kube), policy), kube


def test_a_provider_the_watch_delivered_costs_no_read() -> None:
    registry, kube = _registry()
    registry.seen(_provider("argon"))

    for _ in range(5):
        assert registry.handle("ns", "argon").provider is not None

    assert kube.gets == 0


def test_a_miss_reads_through_once_and_a_delete_forgets() -> None:
    registry, kube = _registry()
    kube.bodies["argon"] = _provider("argon")

    registry.handle("ns", "argon")
    registry.handle("ns", "argon")
    assert kube.gets == 1

    del kube.bodies["argon"]
    registry.seen(_provider("argon"), deleted=True)
    assert registry.handle("ns", "argon").provider is None
    assert "does not exist" in (registry.handle("ns", "argon").problem or "")


def test_a_changed_provider_from_the_watch_rebuilds_the_client() -> None:
    registry, _ = _registry()
    registry.seen(_provider("argon"))
    first = registry.handle("ns", "argon")

    registry.seen(_provider("argon", generation=2))

    assert registry.handle("ns", "argon") is not first


def test_a_missing_secret_is_said_naming_the_field_and_marked_to_be_waited_for() -> None:
    registry, kube = _registry()
    kube.secrets = False
    registry.seen(_provider("argon"))

    resolved = registry.resolve("ns", "argon")

    assert resolved.handle.provider is None and resolved.error is None
    assert resolved.secret_missing
    assert resolved.handle.problem == (
        "ImageProvider 'argon': spec.credentialsSecretRef names Secret 'k', which does not "
        "exist in namespace 'ns'"
    )
