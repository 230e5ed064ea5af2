"""The endpoint guard: which hosts an ImageProvider's requests (and credentials) may go to.

Names are resolved through the policy's resolver seam, never real DNS (the unit tier refuses
lookups and connections: a request sent by mistake would fail as NotHermetic, not pass).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from ipaddress import ip_address
from typing import Any, cast

import pytest
import requests

from image_operator.api.provider import ImageProviderSpec
from image_operator.handlers.kube import KubeAccess, SecretData
from image_operator.handlers.providers import ProviderRegistry
from image_operator.providers.endpoints import (
    EndpointPolicy,
    EndpointRefused,
    GuardedAdapter,
    HostGuard,
)
from image_operator.providers.errors import InvalidInput, Transient
from image_operator.providers.factory import build_provider
from image_operator.settings import Settings


def resolving(answers: dict[str, list[str]]) -> Callable[[str], list[str]]:
    """A resolver that knows only `answers` (any other name does not resolve)."""

    def resolve(host: str) -> list[str]:
        if host not in answers:
            raise OSError(f"{host} does not resolve")
        return answers[host]

    return resolve


STRICT = EndpointPolicy(resolver=resolving({}))


@pytest.mark.parametrize(
    ("url", "address", "category"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "link-local"),
        ("http://169.254.170.2/v2/credentials", "169.254.170.2", "link-local"),  # ECS task role
        ("http://[fe80::1]:8080/", "fe80::1", "link-local"),
        # Python 3.13 spells an IPv4-mapped address with its IPv4 part, 3.11/3.12 in hex.
        ("http://[::ffff:169.254.169.254]/", str(ip_address("::ffff:a9fe:a9fe")), "link-local"),
        ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe", "link-local"),
        # Spellings a resolver (and so every HTTP client) reads as 169.254.169.254.
        ("http://2852039166/", "169.254.169.254", "link-local"),
        ("http://0xa9.0xfe.0xa9.0xfe/", "169.254.169.254", "link-local"),
        ("http://0251.0376.0251.0376/", "169.254.169.254", "link-local"),
        ("http://169.254.43518/", "169.254.169.254", "link-local"),
        ("http://100.100.100.200/latest/meta-data/", "100.100.100.200", "cloud metadata"),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254", "cloud metadata"),
        ("http://168.63.129.16/machine", "168.63.129.16", "cloud metadata"),
        ("http://0.0.0.0:9000/", "0.0.0.0", "unspecified"),
        ("http://[::]/", "::", "unspecified"),
        ("http://127.0.0.1:18701/", "127.0.0.1", "loopback"),
        ("http://[::1]/", "::1", "loopback"),
        ("http://224.0.0.251/", "224.0.0.251", "multicast"),
        ("http://255.255.255.255/", "255.255.255.255", "reserved"),
    ],
)
def test_refused_addresses_name_the_field_the_address_and_what_is_accepted(
    url: str, address: str, category: str
) -> None:
    with pytest.raises(EndpointRefused) as refused:
        STRICT.check(url)

    message = refused.value.message
    assert refused.value.reason == "EndpointRefused"
    assert message.startswith("spec.endpoint ")
    assert f"is {address}, a {category}" in message
    assert "10.0.0.0/8" in message  # what would be accepted
    assert "allowedEndpointCidrs" in message  # and how an administrator allows it


@pytest.mark.parametrize(
    "url",
    [
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.Google.Internal./computeMetadata/v1/",
        "http://metadata/",
        "http://instance-data.ec2.internal/",
        "http://metadata.tencentyun.com/",
    ],
)
def test_metadata_names_are_refused_whatever_they_resolve_to(url: str) -> None:
    policy = dataclasses.replace(STRICT, resolver=lambda _host: ["203.0.113.9"])
    with pytest.raises(EndpointRefused, match="a cloud metadata service"):
        policy.check(url)


def test_a_name_that_resolves_to_the_metadata_address_is_refused() -> None:
    policy = EndpointPolicy(resolver=resolving({"argon.evil.example": ["169.254.169.254"]}))

    with pytest.raises(EndpointRefused) as refused:
        policy.check("https://argon.evil.example/api")

    assert "resolves to 169.254.169.254, a link-local" in refused.value.message


def test_one_refused_address_among_several_is_enough() -> None:
    policy = EndpointPolicy(
        resolver=resolving({"glance.example": ["203.0.113.10", "fe80::a9fe:a9fe"]})
    )
    with pytest.raises(EndpointRefused, match="fe80::a9fe:a9fe"):
        policy.check("https://glance.example:9292")


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5:8443/api",  # RFC 1918: private clouds (ucloudstack, openstack)
        "https://172.16.3.4/",
        "http://192.168.1.10:9292/",
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://[fd12:3456::1]:5000/",  # IPv6 ULA
        "https://203.0.113.7/",
        "https://ucloudstack.internal/",  # resolves to 10.1.2.3 below
    ],
)
def test_public_and_private_addresses_are_accepted_by_default(url: str) -> None:
    EndpointPolicy(resolver=resolving({"ucloudstack.internal": ["10.1.2.3"]})).check(url)


def test_the_administrator_can_allow_loopback_but_metadata_stays_refused() -> None:
    policy = EndpointPolicy.from_lists(allowed_cidrs=["127.0.0.0/8"], resolver=resolving({}))

    policy.check("http://127.0.0.1:18701")
    with pytest.raises(EndpointRefused):
        policy.check("http://169.254.169.254")
    with pytest.raises(EndpointRefused):
        policy.check("http://[::1]:18701")  # ::1 is not in 127.0.0.0/8


def test_allowed_hosts_are_taken_as_they_are() -> None:
    policy = EndpointPolicy.from_lists(
        allowed_hosts=["Cloud-API.corp."],
        resolver=resolving({"cloud-api.corp": ["169.254.10.10"]}),
    )
    policy.check("https://cloud-api.corp/v1")


def test_denied_ranges_add_to_the_refused_ones_and_allowed_ranges_win() -> None:
    policy = EndpointPolicy.from_lists(
        denied_cidrs=["10.0.0.0/8"], allowed_cidrs=["10.9.0.0/16"], resolver=resolving({})
    )

    with pytest.raises(EndpointRefused, match="deniedEndpointCidrs"):
        policy.check("https://10.96.0.1/")  # e.g. the cluster's service range
    policy.check("https://10.9.8.7/")


def test_a_name_that_does_not_resolve_now_is_transient() -> None:
    with pytest.raises(Transient, match="does not resolve now"):
        STRICT.check("https://glance.example")


def test_user_info_never_reaches_the_message() -> None:
    with pytest.raises(EndpointRefused) as refused:
        STRICT.check("http://me:hunter2@169.254.169.254/")
    assert "hunter2" not in refused.value.message
    assert "'http://169.254.169.254'" in refused.value.message


def test_settings_make_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_OPERATOR_ALLOWED_ENDPOINT_CIDRS", "127.0.0.0/8, ::1/128")
    monkeypatch.setenv("IMAGE_OPERATOR_ALLOWED_ENDPOINT_HOSTS", "glance.lab")
    monkeypatch.setenv("IMAGE_OPERATOR_DENIED_ENDPOINT_CIDRS", "10.96.0.0/12")

    policy = dataclasses.replace(Settings().endpoint_policy(), resolver=resolving({}))

    policy.check("http://127.0.0.1:1")
    policy.check("http://[::1]:1")
    policy.check("http://glance.lab:9292")
    with pytest.raises(EndpointRefused):
        policy.check("http://10.96.0.10")
    with pytest.raises(EndpointRefused):
        policy.check("http://169.254.169.254")


# -- the factory: refused before anything is built or sent ----------------------------------


def _spec(endpoint: str, **fields: Any) -> ImageProviderSpec:
    return ImageProviderSpec.model_validate(
        {"type": "argon", "endpoint": endpoint, "project": "default", **fields}
    )


def test_the_factory_refuses_a_metadata_endpoint_before_building_the_client() -> None:
    with pytest.raises(EndpointRefused, match=r"169\.254\.169\.254"):
        build_provider(_spec("http://169.254.169.254/"), {"token": "t"}, endpoints=STRICT)


def test_the_factory_refuses_a_name_that_resolves_to_the_metadata_address() -> None:
    policy = EndpointPolicy(resolver=resolving({"argon.example": ["169.254.169.254"]}))
    with pytest.raises(EndpointRefused, match=r"resolves to 169\.254\.169\.254"):
        build_provider(_spec("https://argon.example"), {"token": "t"}, endpoints=policy)


@pytest.mark.parametrize(
    ("endpoint", "said"),
    [
        ("http://127.0.0.1:notaport/", "Invalid port: 'notaport'"),
        ("https://argon.example:99999/", "Port out of range"),
    ],
)
def test_the_factory_refuses_an_endpoint_no_client_can_use_naming_the_field(
    endpoint: str, said: str
) -> None:
    # Before, httpx's InvalidURL escaped the factory: no status, a traceback every probe.
    public = EndpointPolicy(resolver=resolving({"argon.example": ["203.0.113.7"]}))
    with pytest.raises(InvalidInput) as refused:
        build_provider(_spec(endpoint), {"token": "t"}, endpoints=public)
    assert refused.value.message.startswith("spec.endpoint is not a usable URL")
    assert said in refused.value.message


def test_the_factory_names_the_field_of_a_secret_without_the_keys() -> None:
    spec = _spec("https://argon.example", credentialsSecretRef={"name": "compshare-keys"})
    public = EndpointPolicy(resolver=resolving({"argon.example": ["203.0.113.7"]}))
    with pytest.raises(InvalidInput) as refused:
        build_provider(spec, {"publicKey": "p"}, endpoints=public)
    assert refused.value.message == (
        "spec.credentialsSecretRef names Secret 'compshare-keys', which lacks the key(s) token "
        "that type argon needs"
    )


def test_every_provider_gets_the_default_rate_limit() -> None:
    public = EndpointPolicy(resolver=resolving({"argon.example": ["203.0.113.7"]}))

    provider = build_provider(_spec("https://argon.example"), {"token": "t"}, endpoints=public)

    limiter = provider._limiter  # type: ignore[attr-defined]
    assert (limiter.rate, limiter.burst) == (10, 20)
    provider.close()


# -- per-request guards ---------------------------------------------------------------------


def test_a_pinned_guard_refuses_any_other_host_and_names_its_own() -> None:
    guard = HostGuard.for_endpoint(STRICT, "https://api.compshare.cn")

    guard.check("https://api.compshare.cn/?Action=DescribeCompShareImages")
    with pytest.raises(EndpointRefused) as refused:
        guard.check("https://evil.example/steal")
    assert "only to the host of spec.endpoint (api.compshare.cn)" in refused.value.message


def test_a_guard_for_other_hosts_still_applies_the_policy() -> None:
    lookups: list[str] = []

    def resolve(host: str) -> list[str]:
        lookups.append(host)
        return {"auth.docker.io": ["203.0.113.5"], "evil.example": ["169.254.169.254"]}[host]

    guard = HostGuard.for_endpoint(
        EndpointPolicy(resolver=resolve), "https://registry-1.docker.io", others=True
    )

    guard.check("https://auth.docker.io/token?service=registry.docker.io")
    guard.check("https://auth.docker.io/token?scope=repository:library/ubuntu:pull")
    assert lookups == ["auth.docker.io"]  # accepted hosts are not resolved for every request
    for _ in range(2):  # refusals are never remembered as acceptances
        with pytest.raises(EndpointRefused, match="link-local"):
            guard.check("http://evil.example/latest/meta-data/")
    assert lookups == ["auth.docker.io", "evil.example", "evil.example"]


def test_the_requests_adapter_refuses_before_sending() -> None:
    adapter = GuardedAdapter(HostGuard.for_endpoint(STRICT, "https://ecs.example"))
    request = requests.Request("GET", "http://169.254.169.254/").prepare()

    with pytest.raises(EndpointRefused):
        adapter.send(request)


# -- the registry of clients: a probe judges the endpoint again -----------------------------


class _Kube:
    """The two reads ProviderRegistry makes, answered from memory."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.body = {"metadata": {"uid": "u-1", "generation": 1}, "spec": spec}

    def get_provider(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.body

    def read_secret(self, namespace: str, name: str) -> SecretData | None:
        return SecretData(resource_version="7", data={"token": "t0ken"})


def test_a_probe_rechecks_the_cached_client_and_drops_it_when_refused() -> None:
    answers = {"argon.example": ["203.0.113.7"]}
    registry = ProviderRegistry(
        cast(
            KubeAccess,
            _Kube(
                {**_spec("https://argon.example").to_wire(), "credentialsSecretRef": {"name": "k"}}
            ),
        ),
        EndpointPolicy(resolver=lambda host: answers[host]),
    )
    first = registry.resolve("ns", "argon")
    assert first.handle.provider is not None and first.error is None
    assert registry.resolve("ns", "argon").handle is first.handle  # cached

    answers["argon.example"] = ["169.254.169.254"]  # the name now points at the metadata service
    assert registry.resolve("ns", "argon").handle is first.handle  # objects: no lookup per call
    probed = registry.resolve("ns", "argon", recheck=True)

    assert isinstance(probed.error, EndpointRefused)
    assert probed.handle.provider is None
    assert "resolves to 169.254.169.254" in (probed.handle.problem or "")
    again = registry.resolve("ns", "argon")  # the old client is gone: rebuilt means re-judged
    assert again.handle.provider is None and isinstance(again.error, EndpointRefused)
