"""Test tiers, and shared fixtures: a real local control plane (etcd + kube-apiserver) for
integration tests.

Tiers: every test gets exactly one tier marker, from the directory it lives in (TIERS below);
``pytest -m unit`` etc. select a tier, and a test outside those directories, or marked by hand
with another tier than its directory's, is a collection error.

The cluster is started lazily, once per session, only when a test asks for ``control_plane``:
``pytest tests/unit`` never builds or starts anything. Binaries are resolved (and built on a cold
cache, which takes minutes) right after collection when any selected test is marked
``integration``, outside of any test's timeout, with the build's progress shown live.

Safety: for the whole session KUBECONFIG points at an empty guard file and the in-cluster
variables are removed, so nothing can fall back to a developer's ~/.kube/config or to a real
cluster; the fixture checks that its kubeconfig points at the 127.0.0.1 port it started.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes.config
import pytest
import yaml

from image_operator_dev.localcluster import (
    LocalCluster,
    apply_manifests,
    find_kubectl,
    resolve_binaries,
)

# Fixtures that start the real peers (OpenStack Glance, an OCI registry) for the provider tests.
pytest_plugins = ["tests.peers.glance", "tests.peers.registry"]

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Manifests applied to the session cluster (IMAGE_OPERATOR_TEST_CRDS overrides; "" = none).
CRDS_DIR = Path(os.environ.get("IMAGE_OPERATOR_TEST_CRDS", REPO_ROOT / "crds"))

#: Directory under tests/ -> its tier marker (registered in pyproject.toml). What each promises:
#: unit: no network, no subprocess, hermetic and fast (tests/unit/conftest.py enforces the first
#:   two); contract: providers against the emulator, in-process (the emulator in a thread; a few
#:   tests run our own Python as a process: the emulator's command line, a wheel build);
#:   peers: providers against real Glance / OCI registry processes; integration: a real
#:   kube-apiserver + etcd (and the operator as a process).
TIERS = {"unit": "unit", "contract": "contract", "peers": "peers", "integration": "integration"}

#: Variables that could point a client at some other cluster.
_FOREIGN_ENV = (
    "KUBECONFIG",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
    "KUBERNETES_SERVICE_PORT_HTTPS",
    "KUBERNETES_PORT",
    "KUBECTL_CONTEXT",
)

#: An unprivileged second identity of the session cluster (no RBAC rights unless granted).
TEST_USER = "image-operator-test-user"
TEST_USER_GROUPS = ("image-operator:testers",)

_saved_env: dict[str, str | None] = {}
_guard_dirs: list[tempfile.TemporaryDirectory[str]] = []
_BIN_DIR_KEY = pytest.StashKey[Path]()
_BIN_ERROR_KEY = pytest.StashKey[str]()


def _guard_kubeconfig_default(path: str) -> None:
    """kubernetes.config reads KUBECONFIG at import time: make its default our guard file."""
    for name in ("kubernetes.config.kube_config", "kubernetes.config"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "KUBE_CONFIG_DEFAULT_LOCATION"):
            vars(module)["KUBE_CONFIG_DEFAULT_LOCATION"] = path


def pytest_configure(config: pytest.Config) -> None:
    for key in list(os.environ):
        if key in _FOREIGN_ENV or key.startswith("KUBERNETES_PORT_"):
            _saved_env[key] = os.environ.pop(key)
    guard_dir = tempfile.TemporaryDirectory(prefix="image-operator-kube-guard-")
    _guard_dirs.append(guard_dir)
    guard = Path(guard_dir.name) / "no-cluster-here.kubeconfig"
    guard.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    _saved_env.setdefault("KUBECONFIG", None)
    os.environ["KUBECONFIG"] = str(guard)
    _guard_kubeconfig_default(str(guard))


def pytest_unconfigure(config: pytest.Config) -> None:
    for key, value in _saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    _saved_env.clear()
    while _guard_dirs:
        _guard_dirs.pop().cleanup()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with the tier of its directory (tests/<tier>/...)."""
    tests_dir = Path(__file__).resolve().parent
    misplaced = []
    for item in items:
        try:
            folder = item.path.resolve().relative_to(tests_dir).parts[0]
        except ValueError:
            folder = ""
        tier = TIERS.get(folder)
        others = {
            m.name for m in item.iter_markers() if m.name in TIERS.values() and m.name != tier
        }
        if tier is None or others:
            misplaced.append(f"{item.nodeid} (directory {folder or '?'}, marked {sorted(others)})")
            continue
        item.add_marker(getattr(pytest.mark, tier))
    if misplaced:
        raise pytest.UsageError(
            "every test lives in tests/{"
            + ",".join(TIERS)
            + "}/ and carries only that tier: "
            + "; ".join(misplaced)
        )


def pytest_collection_finish(session: pytest.Session) -> None:
    """Resolve (maybe build) the binaries before any test runs, if integration tests will."""
    if not any(item.get_closest_marker("integration") for item in session.items):
        return
    capture = session.config.pluginmanager.getplugin("capturemanager")
    try:
        if capture is not None:
            with capture.global_and_fixture_disabled():
                session.config.stash[_BIN_DIR_KEY] = resolve_binaries(REPO_ROOT)
        else:
            session.config.stash[_BIN_DIR_KEY] = resolve_binaries(REPO_ROOT)
    except Exception as exc:  # reported by the fixture, on the tests that need it
        session.config.stash[_BIN_ERROR_KEY] = f"{type(exc).__name__}: {exc}"


@dataclass
class ControlPlane:
    """What the ``control_plane`` fixture yields."""

    cluster: LocalCluster
    kubeconfig_path: Path
    server_url: str
    users: dict[str, str] = field(default_factory=dict)  # user name -> token (not the admin)

    def api_client(self, user: str | None = None) -> Any:
        """A kubernetes.client.ApiClient from our kubeconfig (the admin, or ``user``'s token)."""
        path = self.kubeconfig_path if user is None else self.kubeconfig_for(user)
        client = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(path)
        )
        assert client.configuration.host == self.server_url, client.configuration.host
        return client

    def env(self, user: str | None = None) -> dict[str, str]:
        """os.environ for a subprocess, with KUBECONFIG set to our file and nothing foreign."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in _FOREIGN_ENV and not k.startswith("KUBERNETES_PORT_")
        }
        path = self.kubeconfig_path
        if user is not None:
            path = self.kubeconfig_for(user)
        env["KUBECONFIG"] = str(path)
        no_proxy = [h for h in env.get("NO_PROXY", "").split(",") if h]
        env["NO_PROXY"] = env["no_proxy"] = ",".join([*no_proxy, "127.0.0.1", "localhost"])
        return env

    def kubeconfig_for(self, user: str) -> Path:
        path = self.cluster.work_dir / f"kubeconfig-{user}"
        if not path.exists():
            self.cluster.write_kubeconfig(path, token=self.users[user])
        return path

    @property
    def kubectl(self) -> Path:
        return self.cluster.kubectl


def _assert_ours(kubeconfig: Path, cluster: LocalCluster) -> None:
    config = yaml.safe_load(kubeconfig.read_text())
    servers = {c["cluster"]["server"] for c in config["clusters"]}
    assert servers == {cluster.server_url}, f"{kubeconfig} points at {servers}"
    parts = urlsplit(cluster.server_url)
    assert parts.scheme == "https" and parts.hostname == "127.0.0.1" and parts.port, servers


@pytest.fixture(scope="session")
def control_plane(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    """A fresh etcd + kube-apiserver for the session, with every CRD of ``crds/`` applied."""
    error = request.config.stash.get(_BIN_ERROR_KEY, None)
    if error is not None:
        pytest.fail(f"cannot get the control-plane binaries: {error}", pytrace=False)
    bin_dir = request.config.stash.get(_BIN_DIR_KEY, None) or resolve_binaries(REPO_ROOT)
    user_token = secrets.token_urlsafe(24)
    cluster = LocalCluster(
        bin_dir,
        tmp_path_factory.mktemp("control-plane"),
        extra_users={user_token: (TEST_USER, TEST_USER_GROUPS)},
    )
    with cluster:
        _assert_ours(cluster.kubeconfig_path, cluster)
        manifests = (
            sorted(p for p in CRDS_DIR.glob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
            if str(CRDS_DIR) not in ("", ".")
            else []
        )
        if manifests:
            apply_manifests(cluster.kubeconfig_path, manifests, kubectl=find_kubectl(bin_dir))
        yield ControlPlane(
            cluster=cluster,
            kubeconfig_path=cluster.kubeconfig_path,
            server_url=cluster.server_url,
            users={TEST_USER: user_token},
        )
