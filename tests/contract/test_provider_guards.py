"""What every provider client promises about where its requests go and how fast, proven
against the emulator and small HTTP servers on loopback:

- a request goes only to the provider's endpoint: a redirect to another host is not
  followed (the token, the signed body or the keys would go with it);
- a user value in a URL path stays one segment (`project: ../../admin` does not climb out);
- without `spec.rateLimit` every provider still has one (10/s, bursts of 20), every request
  to the cloud pays it, and no window of fake time holds more than it allows.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from image_operator.api.provider import ImageProviderSpec
from image_operator.providers.argon import ArgonProvider
from image_operator.providers.endpoints import EndpointPolicy, EndpointRefused
from image_operator.providers.errors import NotFound, ProviderError
from image_operator.providers.factory import build_provider
from image_operator.providers.ratelimit import Clock
from image_operator_dev.emulator.config import EmulatorConfig
from image_operator_dev.emulator.server import EmulatorThread
from tests.loopback import LOOPBACK_ENDPOINTS
from tests.unit.fakes import FakeClock

ARGON_TOKEN = "guards-argon-token"
KEYS: dict[str, dict[str, str]] = {
    "argon": {"token": ARGON_TOKEN},
    "compshare": {"publicKey": "guards-cs-pk", "privateKey": "guards-cs-sk"},
    "ucloudstack": {
        "publicKey": "guards-ucs-pk",
        "privateKey": "guards-ucs-sk",
        "companyID": "200000236",
    },
    "aliyun": {"accessKeyId": "guards-ali-id", "accessKeySecret": "guards-ali-secret"},
}
PLACE: dict[str, dict[str, str]] = {  # where each type's spec points, besides its endpoint
    "argon": {"project": "default"},
    "compshare": {"region": "cn-wlcb", "zone": "cn-wlcb-01"},
    "ucloudstack": {"region": "cn"},
    "aliyun": {"region": "cn-hangzhou"},
}
TYPES = sorted(KEYS)  # the types the emulator serves
# OpenStack with a token: keystoneauth would send X-Auth-Token to any redirect target.
KEYS["openstack"] = {"token": "guards-os-token"}
PLACE["openstack"] = {}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorThread]:
    config = EmulatorConfig.model_validate(
        {
            "state_dir": tmp_path_factory.mktemp("emulator"),
            "argon": {"tokens": [ARGON_TOKEN]},
            "compshare": {"enabled": True, "keys": {"guards-cs-pk": "guards-cs-sk"}},
            "ucloudstack": {
                "enabled": True,
                "accounts": [{"public_key": "guards-ucs-pk", "private_key": "guards-ucs-sk"}],
            },
            "aliyun": {"enabled": True, "access_keys": {"guards-ali-id": "guards-ali-secret"}},
        }
    )
    thread = EmulatorThread(config)
    thread.start()
    yield thread
    thread.stop()


def spec(kind: str, endpoint: str) -> ImageProviderSpec:
    return ImageProviderSpec.model_validate({"type": kind, "endpoint": endpoint, **PLACE[kind]})


# -- redirects --------------------------------------------------------------------------------


class Server:
    """A loopback HTTP server that answers every request with `status` and `location`, and
    counts the requests it saw."""

    def __init__(self, status: int = 404, location: str = "") -> None:
        self.seen: list[str] = []
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                seen.append(f"{self.command} {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_HEAD = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def trap() -> Iterator[Server]:
    """Where a redirect points: another host name ("localhost") for the same loopback."""
    server = Server(status=200)
    yield server
    server.close()


@pytest.fixture
def redirector(trap: Server) -> Iterator[Server]:
    server = Server(status=307, location=f"http://localhost:{trap.port}/stolen")
    yield server
    server.close()


@pytest.mark.parametrize("kind", [*TYPES, "openstack"])
def test_no_provider_follows_a_redirect_to_another_host(
    kind: str, redirector: Server, trap: Server
) -> None:
    endpoint = f"http://127.0.0.1:{redirector.port}"
    provider = build_provider(spec(kind, endpoint), KEYS[kind], endpoints=LOOPBACK_ENDPOINTS)
    try:
        with pytest.raises(ProviderError) as refused:
            provider.probe()
    finally:
        provider.close()

    assert redirector.seen, "the probe never reached the endpoint"
    assert trap.seen == []  # nothing (no token, no signed body) went to the other host
    if kind != "openstack":  # keystoneauth reports the unfollowed 307 as a failed discovery
        assert isinstance(refused.value, EndpointRefused)
        assert "redirect" in refused.value.message
    for secret in KEYS[kind].values():
        assert secret not in refused.value.message


def test_a_registry_follows_no_redirect_to_a_refused_address(trap: Server) -> None:
    # Registries may redirect blob reads to storage, so the registry client follows redirects,
    # but each hop is judged: here "localhost" resolves to the metadata address.
    redirector = Server(status=307, location=f"http://localhost:{trap.port}/v2/")
    policy = EndpointPolicy.from_lists(
        allowed_cidrs=["127.0.0.1/32"],
        resolver=lambda host: ["169.254.169.254"] if host == "localhost" else ["127.0.0.1"],
    )
    registry = ImageProviderSpec.model_validate(
        {"type": "registry", "endpoint": f"http://127.0.0.1:{redirector.port}"}
    )
    provider = build_provider(registry, {"username": "u", "password": "pw"}, endpoints=policy)
    try:
        with pytest.raises(EndpointRefused, match="link-local"):
            provider.probe()
    finally:
        provider.close()
        redirector.close()

    assert redirector.seen and trap.seen == []


# -- path values ------------------------------------------------------------------------------


def test_an_argon_project_stays_one_path_segment(emulator: EmulatorThread) -> None:
    url = emulator.url("argon")
    admin = httpx.Client(base_url=url, timeout=10)
    admin.delete("/_emulator/stats").raise_for_status()
    provider = ArgonProvider(endpoint=url, namespace="../../admin", token=ARGON_TOKEN)
    try:
        info = provider.probe()
    finally:
        provider.close()

    routes = admin.get("/_emulator/stats").raise_for_status().json()["routes"]
    # The probe listed the namespace named "../../admin", not /api/admin/images.
    assert routes == {
        "GET /api/v1/namespaces/{namespace}/images": {"count": 1, "statuses": {"200": 1}}
    }
    assert info == "argon namespace '../../admin': 0 images"


def test_an_adopted_argon_id_stays_one_path_segment(emulator: EmulatorThread) -> None:
    provider = ArgonProvider(endpoint=emulator.url("argon"), namespace="default", token=ARGON_TOKEN)
    try:
        with pytest.raises(ProviderError) as refused:
            provider.get_image("..")
        assert "cannot be used in a URL path" in refused.value.message
        with pytest.raises(NotFound):
            provider.get_image("../../../namespaces/other/images/x")
    finally:
        provider.close()


# -- the default rate limit -------------------------------------------------------------------


@pytest.mark.parametrize("kind", TYPES)
def test_without_a_rate_limit_every_request_pays_the_default_one(
    kind: str, emulator: EmulatorThread, tmp_path: Path
) -> None:
    url = emulator.url(kind)
    admin = httpx.Client(base_url=url, timeout=10)
    clock = FakeClock(start=0.0)  # time moves only when the limiter waits
    provider = build_provider(
        spec(kind, url), KEYS[kind], endpoints=LOOPBACK_ENDPOINTS, clock=Clock(clock, clock.sleep)
    )
    admin.delete("/_emulator/stats").raise_for_status()
    probes = 45
    done_at: list[float] = []
    try:
        for _ in range(probes):
            provider.probe()
            done_at.append(clock.now)
    finally:
        provider.close()

    sent = int(admin.get("/_emulator/stats").raise_for_status().json()["total"])
    assert sent >= probes
    # The default bucket (10/s, burst 20) starts full: `sent` requests that each took a token
    # leave the fake clock at exactly (sent - 20) / 10 s. A request that bypassed the limiter
    # would leave it earlier, one that paid twice later.
    assert clock.now == pytest.approx((sent - 20) / 10)
    # And no second of (fake) time saw more probes than the burst plus one second's rate.
    most = max(sum(1 for t in done_at if start <= t < start + 1) for start in done_at)
    assert most <= 30, f"{most} probes within one second"


# -- nothing from a Secret in what a probe reports ---------------------------------------------


@pytest.mark.parametrize("kind", TYPES)
def test_no_secret_value_in_a_probe_answer_or_its_refusal(
    kind: str, emulator: EmulatorThread
) -> None:
    url = emulator.url(kind)
    good = build_provider(spec(kind, url), KEYS[kind], endpoints=LOOPBACK_ENDPOINTS)
    canaries = {key: f"canary-{key}-{kind}" for key in KEYS[kind]}
    if kind == "ucloudstack":
        canaries["companyID"] = "987654321"  # a number, but the tenant's, from the Secret
    bad = build_provider(spec(kind, url), canaries, endpoints=LOOPBACK_ENDPOINTS)
    try:
        info = good.probe()
        with pytest.raises(ProviderError) as refused:
            bad.probe()
    finally:
        good.close()
        bad.close()

    for secret in KEYS[kind].values():
        assert secret not in info  # companyID 200000236 included
    for canary in canaries.values():
        assert canary not in refused.value.message
