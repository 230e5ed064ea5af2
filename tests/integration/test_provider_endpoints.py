"""ImageProvider hardening on the real API server with the operator as a process: what
admission refuses (with messages that say what is accepted), an endpoint the operator refuses
(Stalled, naming spec.endpoint; an Image on it waits), and a failed probe of a Ready provider
probed again before the provider leaves Ready."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from image_operator_dev.emulator.config import ArgonSettings, EmulatorConfig
from image_operator_dev.emulator.server import EmulatorThread
from tests.integration.conftest import (
    ARGON_TOKEN,
    Emulator,
    Kube,
    OperatorProcess,
    free_port,
    image_manifest,
    wait_for,
)
from tests.loopback import LOOPBACK_ENV


def provider(name: str, **spec: Any) -> dict[str, Any]:
    return {"kind": "ImageProvider", "metadata": {"name": name}, "spec": spec}


REFUSED_AT_ADMISSION = [
    pytest.param(
        {"type": "ucloudstack", "endpoint": "https://10.0.0.8", "region": "cn\nevil"},
        ["spec.region", "region ID", "no spaces, control characters or '/'"],
        id="region-with-a-newline",
    ),
    pytest.param(
        {"type": "compshare", "region": "cn-wlcb", "zone": "cn-wlcb-01 ;rm"},
        ["spec.zone", "zone ID"],
        id="zone-with-a-space",
    ),
    pytest.param(
        {"type": "argon", "endpoint": "https://argon.example", "project": "../../admin"},
        ["spec.project", "the Argon namespace: lowercase letters", "at most 63"],
        id="argon-project-climbing-out",
    ),
    pytest.param(
        {"type": "openstack", "endpoint": "https://keystone.example:5000", "project": "a/b"},
        ["spec.project", "holds no '/'"],
        id="openstack-project-with-a-slash",
    ),
    pytest.param(
        {"type": "registry", "endpoint": "https://registry.example", "project": "Team A"},
        ["spec.project", "repository prefix", "team/images"],
        id="registry-prefix-with-a-space",
    ),
    pytest.param(
        {"type": "argon", "endpoint": "http://169.254.169.254/latest", "project": "default"},
        ["spec.endpoint", "link-local or cloud-metadata address", "169.254.0.0/16"],
        id="metadata-endpoint",
    ),
    pytest.param(
        {"type": "openstack", "endpoint": "http://user@[fe80::a9fe:a9fe]:5000/v3"},
        ["spec.endpoint", "link-local or cloud-metadata address"],
        id="link-local-ipv6-endpoint",
    ),
    pytest.param(
        {"type": "registry", "endpoint": "http://Metadata.Google.Internal/"},
        ["spec.endpoint", "metadata.google.internal"],
        id="metadata-name-endpoint",
    ),
]


@pytest.mark.parametrize(("spec", "words"), REFUSED_AT_ADMISSION)
def test_admission_refuses_and_says_what_is_accepted(
    kube: Kube, spec: dict[str, Any], words: list[str]
) -> None:
    name = f"bad-{uuid.uuid4().hex[:6]}"
    with pytest.raises(ApiException) as refused:
        kube.create("imageproviders", provider(name, **spec))

    assert refused.value.status == 422
    body = refused.value.body or ""
    for word in words:
        assert word in body, f"{word!r} not in {body}"
    assert kube.get("imageproviders", name) is None


def test_private_endpoints_and_vendor_ids_are_admitted(kube: Kube) -> None:
    for name, spec in {
        "private-cloud": {
            "type": "ucloudstack",
            "endpoint": "https://10.2.3.4:8443",
            "region": "cn",
        },
        "keystone": {
            "type": "openstack",
            "endpoint": "http://192.168.10.5:5000/v3",
            "region": "RegionOne",
            "project": "admin",
        },
        "mirror": {"type": "registry", "endpoint": "https://172.16.0.9", "project": "team/images"},
        "aliyun": {"type": "aliyun", "region": "cn-hangzhou", "zone": "cn-hangzhou-h"},
    }.items():
        kube.create("imageproviders", provider(name, **spec))


def test_an_endpoint_the_operator_refuses_is_stalled_and_its_images_wait(kube: Kube) -> None:
    # 2852039166 is 169.254.169.254 spelled as one number: admission's pattern does not see it,
    # every resolver (and so every HTTP client) does, and so does the operator.
    kube.create(
        "imageproviders",
        provider(
            "sneaky",
            type="argon",
            endpoint="http://2852039166/latest/meta-data",
            project="default",
            credentialsSecretRef={"name": "argon-credentials"},
        ),
    )

    def stalled() -> dict[str, Any] | None:
        return kube.condition("imageproviders", "sneaky", "Stalled")

    condition = wait_for(stalled, timeout=30, what="ImageProvider sneaky Stalled")
    assert condition["reason"] == "EndpointRefused"
    message = condition["message"]
    assert message.startswith("spec.endpoint 'http://2852039166'")
    assert "169.254.169.254, a link-local" in message
    assert "10.0.0.0/8" in message and "allowedEndpointCidrs" in message
    assert "endpointInfo" not in (kube.get("imageproviders", "sneaky") or {}).get("status", {})
    kube.wait_event("sneaky", "EndpointRefused")

    kube.create("images", image_manifest("on-sneaky", providerRef={"name": "sneaky"}))

    def waiting() -> dict[str, Any] | None:
        found = kube.condition("images", "on-sneaky", "Reconciling")
        return found if found and "is refused" in found.get("message", "") else None

    assert wait_for(waiting, timeout=30, what="Image waiting on the refused provider")


# -- a failed probe is probed again before the provider leaves Ready --------------------------


@pytest.fixture
def probing(control_plane: Any, tmp_path: Path) -> Iterator[tuple[Kube, Emulator]]:
    """An operator of its own that probes every 5 s and repeats a failed probe after 1 s, in
    a namespace of its own, against an emulator of its own (its faults touch nobody else)."""
    thread = EmulatorThread(
        EmulatorConfig(state_dir=tmp_path / "emulator", argon=ArgonSettings(tokens=[ARGON_TOKEN]))
    )
    thread.start()
    api = control_plane.api_client()
    namespace = f"probe-{uuid.uuid4().hex[:6]}"  # not it-*: the session's operator stays out
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
    )
    env = control_plane.env()
    env.update(
        {
            "IMAGE_OPERATOR_NAMESPACES": namespace,
            "IMAGE_OPERATOR_PROVIDER_PROBE_INTERVAL_SECONDS": "5",
            "IMAGE_OPERATOR_PROVIDER_PROBE_RETRIES": "2",
            "IMAGE_OPERATOR_PROVIDER_PROBE_RETRY_SECONDS": "1",
            "IMAGE_OPERATOR_RETRY_BACKOFF_BASE_SECONDS": "1",
            "IMAGE_OPERATOR_POLL_BACKOFF_MAX_SECONDS": "2",
            "IMAGE_OPERATOR_SECRET_CACHE_SECONDS": "0",
            "IMAGE_OPERATOR_METRICS_PORT": str(free_port()),
            "IMAGE_OPERATOR_HEALTH_PORT": "0",
            "PYTHONUNBUFFERED": "1",
            **LOOPBACK_ENV,
        }
    )
    operator = OperatorProcess(env, tmp_path / "operator.log")
    operator.start()
    try:
        yield Kube(api, namespace), Emulator(thread)
    finally:
        operator.stop()
        thread.stop()
        api.close()


def test_a_failed_probe_is_repeated_before_the_provider_leaves_ready(
    probing: tuple[Kube, Emulator],
) -> None:
    kube, emulator = probing
    kube.add_argon_provider(emulator)
    kube.wait_ready("imageproviders", "argon", timeout=60)
    info = (kube.get("imageproviders", "argon") or {})["status"]["endpointInfo"]
    assert info == "argon namespace 'default': 0 images"

    emulator.set_faults(error_rate=1.0)  # every call answers 503 until cleared

    def unavailable() -> dict[str, Any] | None:
        found = kube.condition("imageproviders", "argon", "Ready")
        return found if found and found["status"] == "False" else None

    ready = wait_for(unavailable, timeout=60, what="Ready=False after the repeated probes")
    assert ready["reason"] == "CloudUnavailable"
    reasons = [e.reason for e in sorted(kube.events("argon"), key=_created)]
    # Two quiet repeats (Ready still True), then the failure is reported.
    first_failure = reasons.index("CloudUnavailable")
    assert reasons[first_failure - 2 : first_failure] == ["ProbeRetrying", "ProbeRetrying"]
    status = (kube.get("imageproviders", "argon") or {})["status"]
    assert "endpointInfo" not in status  # no stale answer beside Ready=False

    emulator.set_faults(error_rate=0.0)
    # Unreachable providers are probed again with backoff (here 1-2 s), not once an interval.
    kube.wait_ready("imageproviders", "argon", timeout=30)


def _created(event: client.CoreV1Event) -> int:
    """Creation order: etcd's revision (timestamps have one-second resolution)."""
    return int(event.metadata.resource_version or 0)
