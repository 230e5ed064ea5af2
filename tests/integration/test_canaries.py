"""Canary secrets: no value of any Secret key reaches a log line, an event, a status or a metric.

Every key of every provider type's Secret holds a unique random canary: the keys the clouds
accept (argon, compshare, ucloudstack and aliyun on an emulator configured with those canaries,
openstack against the real Glance with a token, registry against a real registry with htpasswd
users) and the keys they refuse (a refused token, unknown key pairs, a CompanyID that is not the
key pair's, Keystone credentials a loopback Keystone refuses, a wrong registry password).
The operator runs verbose, first with text logs and then, restarted, with JSON logs; each run
drives an Image per provider to Ready and others to failures (a failed cloud image, a refused
probe), and the second run deletes the first run's Images. Then every canary, and its Base64
(at each of the three byte alignments, standard and URL-safe), URL-encoded and hex forms, is
looked for in both runs' stdout/stderr, in both runs' /metrics, in every Event of the
namespace and in every namespaced object but the Secrets (`kubectl get -o json`).

The search is shown to work on the Secrets themselves: read back, they hold every canary
(Base64-encoded, as `data` does).

The scenario runs once (a module fixture); each canary is its own test, so a leak names the
key, the place and the surrounding text.
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest

from image_operator_dev.emulator.config import (
    AliyunSettings,
    ArgonSettings,
    CompShareSettings,
    EmulatorConfig,
    UCloudStackAccount,
    UCloudStackSettings,
)
from image_operator_dev.emulator.server import EmulatorThread
from tests.integration.conftest import (
    Kube,
    OperatorProcess,
    add_provider,
    add_secret,
    image_manifest,
    namespace_kube,
    namespace_operator,
    provider_image,
    run_command,
    wait_for,
)
from tests.peers.glance import Blob, FileServer, GlanceServer, make_qcow2
from tests.peers.registry import RegistryServer, push_image, start_registry

pytestmark = pytest.mark.integration

PROVIDER_TYPES = ("argon", "compshare", "ucloudstack", "aliyun", "openstack", "registry")
PHASES = ("text", "json")  # the log format of each operator run, in order
REFUSED = "refused"  # repository word the emulator's Argon fails images on
COMPSHARE_REGION, COMPSHARE_ZONE = "cn-wlcb", "cn-wlcb-01"
ALIYUN_REGION = "cn-hangzhou"

#: Every Secret key the test fills, as `<Secret>.<key>`: the ones the clouds accept first.
CANARY_KEYS = (
    "argon-keys.token",
    "compshare-keys.publicKey",
    "compshare-keys.privateKey",
    "ucloudstack-keys.publicKey",
    "ucloudstack-keys.privateKey",
    "ucloudstack-keys.companyID",
    "aliyun-keys.accessKeyId",
    "aliyun-keys.accessKeySecret",
    "openstack-keys.token",
    "registry-keys.username",
    "registry-keys.password",
    # Refused: unknown to the cloud, or not this key pair's.
    "argon-refused-keys.token",
    "compshare-refused-keys.publicKey",
    "compshare-refused-keys.privateKey",
    "ucloudstack-refused-keys.companyID",
    "aliyun-refused-keys.accessKeyId",
    "aliyun-refused-keys.accessKeySecret",
    "openstack-refused-keys.applicationCredentialId",
    "openstack-refused-keys.applicationCredentialSecret",
    "openstack-password-keys.username",
    "openstack-password-keys.password",
    "openstack-password-keys.userDomainName",
    "openstack-password-keys.projectDomainName",
    "registry-refused-keys.password",
)


def _canaries() -> dict[str, str]:
    values = {}
    for label in CANARY_KEYS:
        if label.endswith(".companyID"):
            # A CompanyID is a number: 18 random digits, not starting with 0 (int() keeps it).
            values[label] = str(secrets.randbelow(9 * 10**17) + 10**17)
        else:
            values[label] = f"cnry{secrets.token_hex(10)}"
    return values


def encodings(value: str) -> dict[str, str]:
    """The forms `value` would take in a text: as is, URL-encoded, hex, and Base64 / URL-safe
    Base64 wherever it starts within a larger encoded string (the characters that depend on
    the value's bytes alone, for each of the three byte alignments)."""
    raw = value.encode()
    forms = {
        "plain": value,
        "url-encoded": quote(value, safe=""),
        "form-encoded": quote_plus(value),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
    }
    for shift in range(3):
        first, end = -(-8 * shift // 6), 8 * (shift + len(raw)) // 6
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            forms[f"{name}@{shift}"] = encode(b"\0" * shift + raw).decode()[first:end]
    return forms


def find(value: str, haystacks: dict[str, str]) -> list[str]:
    """Where any form of `value` occurs: `place: form: …context…`, one line per hit."""
    needles: dict[str, str] = {}
    for form, needle in encodings(value).items():
        needles.setdefault(needle, form)  # forms that look alike (plain = url-encoded) once
    hits = []
    for place, text in haystacks.items():
        for needle, form in needles.items():
            at = text.find(needle)
            if at >= 0:
                hits.append(f"{place}: {form}: …{text[max(0, at - 160) : at + 80]}…")
    return hits


class RefusingKeystone:
    """A loopback Keystone that shows its v3 API to version discovery and refuses every token
    request with 401, so Keystone credentials are sent and refused as a real one would."""

    def __init__(self) -> None:
        keystone = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self, status: int, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                for name, value in (
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                ):
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                link = {"rel": "self", "href": f"{keystone.url}/v3/"}
                self.answer(200, {"version": {"id": "v3.14", "status": "stable", "links": [link]}})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.answer(401, {"error": {"code": 401, "title": "Unauthorized"}})

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the operator's side is what the test reads."""

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Made:
    """The Images of one run, by how they end."""

    ready: list[str]
    failed: list[str]  # by the cloud
    refused: list[str]  # on refused keys

    def all(self) -> list[str]:
        return [*self.ready, *self.failed, *self.refused]


@dataclass
class Scenario:
    kube: Kube
    canaries: dict[str, str]
    haystacks: dict[str, str] = field(default_factory=dict)  # place -> text
    secrets_read_back: str = ""


def _emulator_config(c: dict[str, str], state_dir: Path) -> EmulatorConfig:
    return EmulatorConfig(
        state_dir=state_dir,
        argon=ArgonSettings(
            tokens=[c["argon-keys.token"]],
            creation_seconds=0.5,
            deletion_seconds=0.2,
            fail_repository_pattern=REFUSED,
        ),
        compshare=CompShareSettings(
            enabled=True,
            keys={c["compshare-keys.publicKey"]: c["compshare-keys.privateKey"]},
            regions={COMPSHARE_REGION: [COMPSHARE_ZONE]},
            making_seconds=0.5,
        ),
        ucloudstack=UCloudStackSettings(
            enabled=True,
            accounts=[
                UCloudStackAccount(
                    public_key=c["ucloudstack-keys.publicKey"],
                    private_key=c["ucloudstack-keys.privateKey"],
                    company_id=int(c["ucloudstack-keys.companyID"]),
                )
            ],
            making_seconds=0.5,
            deletion_seconds=0.2,
        ),
        aliyun=AliyunSettings(
            enabled=True,
            access_keys={c["aliyun-keys.accessKeyId"]: c["aliyun-keys.accessKeySecret"]},
            import_seconds=0.5,
        ),
    )


def _secrets_and_providers(
    kube: Kube,
    c: dict[str, str],
    urls: dict[str, str],
    glance: GlanceServer,
    registry: RegistryServer,
    keystone: RefusingKeystone,
) -> None:
    """Each provider type twice: with the keys its cloud accepts and with keys it refuses."""
    keys: dict[str, dict[str, str]] = {}
    for label, value in c.items():
        secret, key = label.split(".")
        keys.setdefault(secret, {})[key] = value
    # The refused ucloudstack Secret has the right key pair, but another tenant's CompanyID.
    for key in ("publicKey", "privateKey"):
        keys["ucloudstack-refused-keys"][key] = c[f"ucloudstack-keys.{key}"]
    keys["registry-refused-keys"]["username"] = c["registry-keys.username"]
    for secret, data in keys.items():
        add_secret(kube, secret, data)
    specs: dict[str, dict[str, Any]] = {
        "argon": {"type": "argon", "endpoint": urls["argon"], "project": "default"},
        "compshare": {
            "type": "compshare",
            "endpoint": urls["compshare"],
            "region": COMPSHARE_REGION,
            "zone": COMPSHARE_ZONE,
        },
        "ucloudstack": {"type": "ucloudstack", "endpoint": urls["ucloudstack"], "region": "cn"},
        "aliyun": {"type": "aliyun", "endpoint": urls["aliyun"], "region": ALIYUN_REGION},
        # The versioned URL: with a token, the SDK does no version discovery (see
        # test_a_token_works_with_the_unversioned_image_endpoint).
        "openstack": {"type": "openstack", "endpoint": f"{glance.url}/v2"},
        "registry": {"type": "registry", "endpoint": registry.url},
    }
    for name, spec in specs.items():
        add_provider(kube, name, {**spec, "credentialsSecretRef": {"name": f"{name}-keys"}})
        refused = {**spec, "credentialsSecretRef": {"name": f"{name}-refused-keys"}}
        if name == "openstack":  # Keystone credentials: a Keystone refuses them
            refused["endpoint"] = keystone.url
        add_provider(kube, f"{name}-refused", refused)
    add_provider(
        kube,
        "openstack-unversioned",
        {
            **specs["openstack"],
            "endpoint": glance.url,
            "credentialsSecretRef": {"name": "openstack-keys"},
        },
    )
    add_provider(
        kube,
        "openstack-password",
        {
            **specs["openstack"],
            "endpoint": keystone.url,
            "project": "p",
            "credentialsSecretRef": {"name": "openstack-password-keys"},
        },
    )


def _images(kube: Kube, phase: str, urls: dict[str, str], files: FileServer, source: str) -> Made:
    """Per provider, an Image that becomes Ready and one on the refused keys; and an Argon
    image that the cloud fails."""
    oss = f"{urls['aliyun']}/oss/canary-images/{phase}.qcow2"
    httpx.put(oss, content=b"QFI\xfb" + b"\0" * 4096, timeout=30).raise_for_status()
    disk = Blob(make_qcow2())
    glance_url = files.serve(f"/{phase}.qcow2", disk.data)
    os_info = {"type": "linux", "distribution": "Ubuntu", "version": "22.04"}
    ready = {
        f"argon-{phase}": image_manifest(f"argon-{phase}", providerRef={"name": "argon"}),
        f"compshare-{phase}": provider_image(
            f"compshare-{phase}", "compshare", {"vm": {"vmID": "uhost-container1"}}
        ),
        f"ucloudstack-{phase}": provider_image(
            f"ucloudstack-{phase}", "ucloudstack", {"vm": {"vmID": "vm-canary01"}}
        ),
        f"aliyun-{phase}": provider_image(
            f"aliyun-{phase}", "aliyun", {"url": {"url": oss, "format": "qcow2", "os": os_info}}
        ),
        f"openstack-{phase}": provider_image(
            f"openstack-{phase}",
            "openstack",
            {"url": {"url": glance_url, "format": "qcow2", "checksum": disk.sha256}},
        ),
        f"registry-{phase}": provider_image(
            f"registry-{phase}", "registry", {"repository": {"image": source}}
        ),
    }
    failed = image_manifest(
        f"argon-failed-{phase}",
        providerRef={"name": "argon"},
        source={"repository": {"image": f"library/{REFUSED}:1"}},
    )
    refused = {}
    for name in PROVIDER_TYPES:
        manifest = {**ready[f"{name}-{phase}"], "metadata": {"name": f"{name}-refused-{phase}"}}
        manifest["spec"] = {**manifest["spec"], "providerRef": {"name": f"{name}-refused"}}
        refused[f"{name}-refused-{phase}"] = manifest
    for manifest in [*ready.values(), failed, *refused.values()]:
        kube.create("images", manifest)
    return Made(list(ready), [failed["metadata"]["name"]], list(refused))


def _conditions(obj: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    status = (obj or {}).get("status") or {}
    return {c.get("type"): c for c in status.get("conditions") or []}


def _ready(obj: dict[str, Any] | None) -> bool:
    return (_conditions(obj).get("Ready") or {}).get("status") == "True"


def _settled_failure(kube: Kube, plural: str, name: str) -> bool:
    """Not Ready, with the operator's verdict for the current generation written."""
    obj = kube.get(plural, name)
    ready = _conditions(obj).get("Ready") or {}
    generation = ((obj or {}).get("metadata") or {}).get("generation")
    return ready.get("status") == "False" and ready.get("observedGeneration") == generation


def _wait_all(
    kube: Kube, plural: str, names: list[str], done: Callable[[str], bool], what: str
) -> None:
    """Wait until `done(name)` for every name; on a timeout, name the others and their status."""
    pending = list(names)

    def probe() -> bool:
        pending[:] = [name for name in pending if not done(name)]
        return not pending

    try:
        wait_for(probe, timeout=180, what=what)
    except AssertionError:
        statuses = {name: (kube.get(plural, name) or {}).get("status") for name in pending}
        raise AssertionError(f"{plural} still not {what}: {statuses}") from None


def _run_phase(
    scenario: Scenario,
    process: OperatorProcess,
    phase: str,
    urls: dict[str, str],
    files: FileServer,
    source: str,
    previous: Made,
) -> Made:
    """One operator run: the Images of `phase` made, those of the previous run deleted."""
    kube = scenario.kube
    process.start()
    try:
        made = _images(kube, phase, urls, files, source)
        ready, failing = made.ready, [*made.failed, *made.refused]
        for name in previous.all():
            kube.delete("images", name)
        _wait_all(kube, "images", ready, lambda n: _ready(kube.get("images", n)), "Ready")
        refused = [*(f"{t}-refused" for t in PROVIDER_TYPES), "openstack-password"]
        _wait_all(
            kube,
            "imageproviders",
            refused,
            lambda n: _settled_failure(kube, "imageproviders", n),
            "refused",
        )
        _wait_all(
            kube, "images", failing, lambda n: _settled_failure(kube, "images", n), "not Ready"
        )
        gone = [*previous.ready, *previous.failed]
        _wait_all(kube, "images", gone, lambda n: kube.get("images", n) is None, "deleted")
        # No cloud image was ever made with refused keys, but whether one was cannot be asked:
        # their finalizers stall (PermissionDenied, "set spec.deletionPolicy: Orphan").
        _wait_all(
            kube,
            "images",
            previous.refused,
            lambda n: _settled_failure(kube, "images", n),
            "stalled deleting",
        )
        scenario.haystacks[f"/metrics ({phase} run)"] = httpx.get(
            process.metrics_url, timeout=10
        ).text
    finally:
        process.stop()
    scenario.haystacks[f"operator stdout/stderr ({phase} logs)"] = process.log_path.read_text(
        errors="replace"
    )
    return made


def _kubectl(control_plane: Any, *args: str) -> str:
    return run_command(str(control_plane.kubectl), *args, env=control_plane.env())


@pytest.fixture(scope="module")
def scenario(
    control_plane: Any, glance: GlanceServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    canaries = _canaries()
    work = tmp_path_factory.mktemp("canaries")
    with ExitStack() as stack:
        emulator = stack.enter_context(
            EmulatorThread(_emulator_config(canaries, work / "emulator"))
        )
        registry = start_registry(
            work / "registry",
            users={canaries["registry-keys.username"]: canaries["registry-keys.password"]},
        )
        stack.callback(registry.stop)
        files = FileServer()
        stack.callback(files.close)
        keystone = RefusingKeystone()
        stack.callback(keystone.stop)
        api = control_plane.api_client()
        stack.callback(api.close)
        kube = namespace_kube(api, "canary-")
        urls = {v: emulator.url(v) for v in ("argon", "compshare", "ucloudstack", "aliyun")}
        source = push_image(registry, "upstream/app", "v1").reference
        _secrets_and_providers(kube, canaries, urls, glance, registry, keystone)
        scenario = Scenario(kube, canaries)
        previous = Made([], [], [])
        for phase in PHASES:
            process = namespace_operator(
                control_plane, kube.namespace, work / f"operator-{phase}.log", log_format=phase
            )
            previous = _run_phase(scenario, process, phase, urls, files, source, previous)
        listable = _kubectl(
            control_plane, "api-resources", "--namespaced", "--verbs=list", "-o", "name"
        )
        for kind in listable.split():
            dump = _kubectl(control_plane, "get", kind, "-n", kube.namespace, "-o", "json")
            if kind == "secrets":  # where the canaries are meant to be
                scenario.secrets_read_back = dump
            else:
                scenario.haystacks[f"kubectl get {kind}"] = dump
        yield scenario


def test_the_search_finds_every_canary_in_the_secrets_read_back(scenario: Scenario) -> None:
    missing = [
        label
        for label, value in scenario.canaries.items()
        if not find(value, {"Secrets": scenario.secrets_read_back})
    ]
    assert not missing, f"the search does not find these canaries in their own Secret: {missing}"


def test_the_places_searched_hold_what_the_runs_did(scenario: Scenario) -> None:
    """The haystacks are the real ones: verbose logs in each format, the Images' events and
    statuses, and cloud calls counted for every provider type."""
    hay = scenario.haystacks
    text_log, json_log = (
        hay["operator stdout/stderr (text logs)"],
        hay["operator stdout/stderr (json logs)"],
    )
    json_lines = [line for line in json_log.splitlines() if line.startswith("{")]
    assert len(json_lines) > 100 and all(json.loads(line) for line in json_lines)
    assert not any(line.startswith("{") for line in text_log.splitlines())
    assert "DEBUG" in text_log and '"DEBUG"' in json_log.upper(), "the runs are verbose"
    events = hay["kubectl get events"]
    for phase in PHASES:
        assert f"argon-{phase}" in events and f"argon-refused-{phase}" in events
    assert "PermissionDenied" in hay["kubectl get imageproviders.imageops.io"]
    for metrics in (hay["/metrics (text run)"], hay["/metrics (json run)"]):
        counted = set(
            re.findall(r'^imageops_cloud_requests_total\{.*provider="(\w+)"', metrics, re.M)
        )
        assert counted == set(PROVIDER_TYPES), counted


#: Leaks found and not fixed yet: label -> what leaks where.
# Secret values a provider is known to leak today, each with where (strict: fixed ones fail).
KNOWN_LEAKS: dict[str, str] = {}


@pytest.mark.parametrize(
    "label",
    [
        pytest.param(label, marks=pytest.mark.xfail(strict=True, reason=KNOWN_LEAKS[label]))
        if label in KNOWN_LEAKS
        else label
        for label in CANARY_KEYS
    ],
)
def test_no_canary_in_logs_events_statuses_or_metrics(scenario: Scenario, label: str) -> None:
    hits = find(scenario.canaries[label], scenario.haystacks)
    assert not hits, f"the value of Secret key {label} leaked:\n" + "\n".join(hits)


def test_a_token_works_with_the_unversioned_image_endpoint(scenario: Scenario) -> None:
    provider = scenario.kube.get("imageproviders", "openstack-unversioned")
    assert _ready(provider), (provider or {}).get("status")


def test_refused_keys_end_in_a_refusal(scenario: Scenario) -> None:
    """The refused keys were refused by the cloud (not some other failure that never sent
    them), so their canaries went through the failure paths."""
    reasons = {}
    for name in [*(f"{t}-refused" for t in PROVIDER_TYPES), "openstack-password"]:
        ready = _conditions(scenario.kube.get("imageproviders", name)).get("Ready") or {}
        reasons[name] = (ready.get("reason"), ready.get("message"))
    assert {reason for reason, _ in reasons.values()} == {"PermissionDenied"}, reasons
