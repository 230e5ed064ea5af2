"""Fixtures for integration tests: the emulator, the real operator process, a namespace each.

The operator runs as a separate process (`python -m image_operator run`), exactly as users run
it, against the session's real kube-apiserver and the bundled emulator.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pluggy
import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from image_operator_dev.emulator.config import ArgonSettings, CompShareSettings, EmulatorConfig
from image_operator_dev.emulator.server import EmulatorThread
from tests.loopback import LOOPBACK_ENV

GROUP, VERSION = "imageops.io", "v1alpha1"
ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "image-operator"
RELEASE, RELEASE_NS = "rel", "imageops-system"
# The Kubernetes release of the session (`make integration-oldest` sets K8S_VERSION to the oldest).
KUBE_VERSION = os.environ.get("K8S_VERSION", "1.36.3")
ARGON_TOKEN = "integration-test-token"
TEST_NAMESPACE_PREFIX = "it-"
T = TypeVar("T")


def wait_for(
    probe: Callable[[], T | None], *, timeout: float = 60.0, interval: float = 0.25, what: str
) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")


class Emulator:
    """The emulator in a thread plus small helpers to look at / steer its Argon state."""

    def __init__(self, thread: EmulatorThread) -> None:
        self.thread = thread
        self.argon_url = thread.url("argon")
        self.http = httpx.Client(base_url=self.argon_url, timeout=30)

    def argon_images(self, namespace: str = "default") -> dict[str, dict[str, Any]]:
        """name -> stored image, straight from the emulator's admin dump (no faults apply)."""
        state = self.http.get("/_emulator/state").raise_for_status().json()
        images = {}
        for item in _walk_images(state):
            meta = item.get("metadata") or {}
            if meta.get("namespace", namespace) == namespace:
                images[item["name"]] = item
        return images

    def set_faults(self, **faults: Any) -> None:
        self.http.put("/_emulator/faults", json=faults).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return dict(self.http.get("/_emulator/stats").raise_for_status().json())

    def create_directly(self, name: str, namespace: str = "default") -> dict[str, Any]:
        body = {
            "namespace": namespace,
            "image": {"name": name, "displayName": name, "repository": "library/busybox:1.36"},
        }
        response = self.http.post(
            f"/api/v1/namespaces/{namespace}/images",
            json=body,
            headers={"Authorization": f"Bearer {ARGON_TOKEN}"},
        )
        response.raise_for_status()
        return dict(response.json())


def _walk_images(node: Any) -> Iterator[dict[str, Any]]:
    """The admin dump's layout is the emulator's business: find image objects anywhere in it."""
    if isinstance(node, dict):
        if "name" in node and "repository" in node and "displayName" in node:
            yield node
            return
        for value in node.values():
            yield from _walk_images(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_images(value)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    config = EmulatorConfig(
        state_dir=tmp_path_factory.mktemp("emulator"),
        argon=ArgonSettings(tokens=[ARGON_TOKEN], creation_seconds=2.0, deletion_seconds=1.0),
        compshare=CompShareSettings(enabled=True, keys={"it-compshare-pk": "it-compshare-sk"}),
        ucloudstack={
            "enabled": True,
            "accounts": [{"public_key": "it-ucloudstack-pk", "private_key": "it-ucloudstack-sk"}],
        },
        aliyun={"enabled": True, "access_keys": {"it-aliyun-key": "it-aliyun-secret"}},
    )
    thread = EmulatorThread(config)
    thread.start()
    try:
        yield Emulator(thread)
    finally:
        thread.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorProcess:
    """`python -m image_operator run` as a child process, with its log kept for failures."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_url = ""
        self.args = ["run", "--standalone", "--verbose"]

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "image_operator", *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def kill(self) -> None:
        """SIGKILL: no cleanup, no status write; what a crash or an OOM kill looks like."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@pytest.fixture(scope="session")
def operator(
    control_plane: Any, emulator: Emulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    env = control_plane.env()
    metrics_port = free_port()
    env.update(
        {
            "IMAGE_OPERATOR_RETRY_BACKOFF_BASE_SECONDS": "0.5",
            "IMAGE_OPERATOR_POLL_BACKOFF_MAX_SECONDS": "2",
            "IMAGE_OPERATOR_PROVIDER_WAIT_SECONDS": "1",
            "IMAGE_OPERATOR_SECRET_CACHE_SECONDS": "0",
            "IMAGE_OPERATOR_HEALTH_PORT": "0",
            # Only the test namespaces: tests that run their own operator (RBAC) use others.
            "IMAGE_OPERATOR_NAMESPACES": f"{TEST_NAMESPACE_PREFIX}*",
            "IMAGE_OPERATOR_METRICS_PORT": str(metrics_port),
            "PYTHONUNBUFFERED": "1",
            **LOOPBACK_ENV,  # the emulator's endpoints
        }
    )
    process = OperatorProcess(env, tmp_path_factory.mktemp("operator") / "operator.log")
    process.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    process.start()
    try:
        yield process
    finally:
        process.stop()
        if os.environ.get("IMAGE_OPERATOR_SHOW_LOG"):
            print(process.log_tail(400))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    """On failure, attach the operator's log tail: the first thing anyone needs."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        process = item.funcargs.get("operator") if hasattr(item, "funcargs") else None
        if isinstance(process, OperatorProcess):
            report.sections.append(("operator log (tail)", process.log_tail()))


def _object(answer: object) -> dict[str, Any]:
    """A custom object as the CustomObjectsApi returns it (typed `object` there): a dict."""
    assert isinstance(answer, dict), f"not an object: {answer!r}"
    return dict(answer)


@dataclass
class Kube:
    """Typed shortcuts to the APIs the tests use, bound to one namespace."""

    api: client.ApiClient
    namespace: str

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def create(self, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        body.setdefault("apiVersion", f"{GROUP}/{VERSION}")
        body.setdefault("metadata", {})["namespace"] = self.namespace
        return _object(
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, body
            )
        )

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        try:
            return _object(
                self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, plural, name
                )
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch(self, plural: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return _object(
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name, body
            )
        )

    def delete(self, plural: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)

    def condition(self, plural: str, name: str, type_: str) -> dict[str, Any] | None:
        obj = self.get(plural, name) or {}
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if cond.get("type") == type_:
                return dict(cond)
        return None

    def wait_ready(self, plural: str, name: str, timeout: float = 60) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            obj = self.get(plural, name)
            conds = ((obj or {}).get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
                return obj
            return None

        return wait_for(ready, timeout=timeout, what=f"{plural}/{name} Ready (status: see log)")

    def add_argon_provider(self, emulator: Emulator) -> None:
        """An argon ImageProvider named `argon` (and its Secret) on the emulator."""
        self.core.create_namespaced_secret(
            self.namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="argon-credentials"),
                string_data={"token": ARGON_TOKEN},
            ),
        )
        self.create(
            "imageproviders",
            {
                "kind": "ImageProvider",
                "metadata": {"name": "argon"},
                "spec": {
                    "type": "argon",
                    "endpoint": emulator.argon_url,
                    "project": "default",
                    "credentialsSecretRef": {"name": "argon-credentials"},
                    "pollIntervalSeconds": 1,
                },
            },
        )

    def wait_event(self, name: str, *reasons: str, timeout: float = 15) -> set[str]:
        """Wait until `name` has events with every one of `reasons`, and return all its event
        reasons: kopf posts events from a queue after the status patch, so reading them right
        after a condition changed races that queue."""

        def seen() -> set[str] | None:
            found = {str(e.reason) for e in self.events(name)}
            return found if set(reasons) <= found else None

        return wait_for(seen, timeout=timeout, what=f"events {reasons} on {name}")

    def events(self, name: str) -> list[client.CoreV1Event]:
        items = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}"
        ).items
        return list(items)


@pytest.fixture
def kube(control_plane: Any, emulator: Emulator, operator: OperatorProcess) -> Iterator[Kube]:
    """A fresh namespace with a Ready argon ImageProvider named `argon` (and its Secret)."""
    if not operator.alive():
        # A test that killed the operator and did not restart it: say so at once rather than
        # let every later test wait 60 s for a Ready it cannot get.
        pytest.fail(f"the session's operator is not running; its log ends:\n{operator.log_tail()}")
    api = control_plane.api_client()
    namespace = f"{TEST_NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
    )
    kube = Kube(api, namespace)
    kube.add_argon_provider(emulator)
    kube.wait_ready("imageproviders", "argon", timeout=60)
    yield kube
    api.close()


def provider_image(name: str, provider: str, source: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """A minimal Image of `provider` from `source`: display name and description from `name`."""
    return {
        "kind": "Image",
        "metadata": {"name": name},
        "spec": {
            "providerRef": {"name": provider},
            "source": source,
            "displayName": name,
            "description": f"{name} description",
            **spec,
        },
    }


def image_manifest(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Image",
        "metadata": {"name": name},
        "spec": {
            "providerRef": {"name": "argon"},
            "source": {"repository": {"image": "nvidia/cuda10.1:tensorflow_mgdc-test-v0.1"}},
            "displayName": f"Image {name}",
            "price": "0",
            "command": ["python3 main.py --task_id={{inputs.task_id}} --out={{outputs.output}}"],
            "inputs": [{"name": "task_id", "displayName": "Task ID", "default": "-", "index": 0}],
            "outputs": [{"name": "output", "type": "path", "default": "/data/out", "index": 1}],
        },
    }
    body["spec"].update(spec)
    return body


def _built(script: str) -> str:
    """The binary a `hack/build-*.sh` script builds (once, cached): its last line of stdout."""
    result = subprocess.run(
        [str(ROOT / "hack" / script)], check=True, capture_output=True, text=True
    )
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def helm() -> str:
    return _built("build-helm.sh")


@pytest.fixture(scope="session")
def helm4() -> str:
    """Helm 4 (helm.sh/helm/v4), whose `--wait` reads custom resources with kstatus."""
    return _built("build-helm4.sh")


@pytest.fixture(scope="session")
def kstatus_cli() -> str:
    """The kstatus CLI (hack/kstatus): sigs.k8s.io/cli-utils' kstatus library, JSON in and out."""
    return _built("build-kstatus.sh")


def run_command(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command to completion; fail the test with its stderr if it fails."""
    result = subprocess.run(
        list(args), check=False, capture_output=True, text=True, input=stdin, env=env, timeout=120
    )
    assert result.returncode == 0, f"{' '.join(args[:3])}...: {result.stderr}"
    return result.stdout


def render_chart(helm: str, *sets: str) -> list[dict[str, Any]]:
    """`helm template` of the chart (release `rel` in `imageops-system`), as objects."""
    args = [helm, "template", RELEASE, str(CHART), "-n", RELEASE_NS, "--kube-version", KUBE_VERSION]
    for item in sets:
        args += ["--set", item]
    return [doc for doc in yaml.safe_load_all(run_command(*args)) if doc]


def kubectl_apply(control_plane: Any, docs: list[dict[str, Any]], *flags: str) -> str:
    """`kubectl apply --server-side` of `docs` on the session cluster (`flags` e.g.
    `--dry-run=server`); its output."""
    return run_command(
        str(control_plane.kubectl),
        "apply",
        *flags,
        "--server-side",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(docs),
        env=control_plane.env(),
    )


# -- for tests that run their own operator on their own namespace (canaries, kill campaigns) --


def namespace_kube(api: Any, prefix: str) -> Kube:
    """A fresh namespace named `<prefix><random>` (pick a prefix other than `it-` to keep the
    session's operator out of it), used through `api` (the caller closes it)."""
    namespace = f"{prefix}{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
    )
    return Kube(api, namespace)


def add_secret(kube: Kube, name: str, data: dict[str, str]) -> None:
    kube.core.create_namespaced_secret(
        kube.namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data),
    )


def add_provider(kube: Kube, name: str, spec: dict[str, Any]) -> None:
    """An ImageProvider `name` with `spec` (polled every second unless `spec` says otherwise)."""
    body: dict[str, Any] = {"kind": "ImageProvider", "metadata": {"name": name}}
    body["spec"] = {"pollIntervalSeconds": 1, **spec}
    kube.create("imageproviders", body)


def namespace_operator(
    control_plane: Any, namespace: str, log_path: Path, **settings: str
) -> OperatorProcess:
    """An operator process (not started yet) for `namespace` alone, with quick retries and a
    metrics port of its own; `settings` are further Settings fields (`log_format="json"`)."""
    metrics_port = free_port()
    fields = {
        "namespaces": namespace,
        "retry_backoff_base_seconds": "0.5",
        "poll_backoff_max_seconds": "2",
        "provider_wait_seconds": "1",
        "health_port": "0",
        "metrics_port": str(metrics_port),
        **settings,
    }
    env = control_plane.env()
    env.update({f"IMAGE_OPERATOR_{key.upper()}": value for key, value in fields.items()})
    env["PYTHONUNBUFFERED"] = "1"
    env.update(LOOPBACK_ENV)  # the tests' clouds listen on loopback
    process = OperatorProcess(env, log_path)
    process.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    return process
