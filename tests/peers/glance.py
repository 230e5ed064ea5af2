"""pytest fixtures for the real OpenStack Glance peer (PyPI `glance`, on loopback).

`glance` (session): installs Glance into its own cached venv if needed
(`hack/install-glance.sh`), writes its config and the identity paste filter
(`glance_config/`) into a temporary folder, syncs its sqlite database, serves
`glance.wsgi.api:application` under gunicorn on a free 127.0.0.1 port and waits until it
answers. It yields a `GlanceServer`: the URL, openstacksdk connections as the default project
or as another one (identity headers), and the server's log for failure reports.

`file_server` (per test): a loopback HTTP server for web-download imports.

The install runs right after collection when a selected test uses `glance`, outside any
test's timeout and with its progress visible, as the control plane's build does.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openstack
import openstack.connection
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "hack" / "install-glance.sh"
CONFIG_TEMPLATES = Path(__file__).resolve().parent / "glance_config"

#: The project (tenant) a request without identity headers acts as.
DEFAULT_PROJECT = "imageops-test-project"
DEFAULT_USER = "imageops-test-user"

_VENV_KEY = pytest.StashKey[Path]()
_INSTALL_ERROR_KEY = pytest.StashKey[str]()
_TIMINGS_KEY = pytest.StashKey[dict[str, float]]()


def install_glance() -> tuple[Path, float]:
    """Run the install script (a no-op when cached); the venv folder and seconds taken."""
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)],
        check=False,
        stdout=subprocess.PIPE,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{INSTALL_SCRIPT.name} failed with exit code {result.returncode}")
    lines = result.stdout.strip().splitlines()
    return Path(lines[-1]), time.monotonic() - started


def pytest_collection_finish(session: pytest.Session) -> None:
    """Install Glance before any test runs, if a selected test needs it."""
    if not any("glance" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    capture = session.config.pluginmanager.getplugin("capturemanager")
    try:
        if capture is not None:
            with capture.global_and_fixture_disabled():
                venv, seconds = install_glance()
        else:
            venv, seconds = install_glance()
        session.config.stash[_VENV_KEY] = venv
        session.config.stash[_TIMINGS_KEY] = {"install_seconds": seconds}
    except Exception as exc:  # reported by the fixture, on the tests that need it
        session.config.stash[_INSTALL_ERROR_KEY] = f"{type(exc).__name__}: {exc}"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """How long Glance took to install (0 s when cached), to db_sync and to start answering."""
    timings = config.stash.get(_TIMINGS_KEY, None)
    if timings and "start_seconds" in timings:
        parts = [f"{key.removesuffix('_seconds')} {value:.1f}s" for key, value in timings.items()]
        terminalreporter.write_line(f"glance: {', '.join(parts)}")


def identity_headers(project: str, user: str | None = None) -> dict[str, str]:
    """What Keystone's authtoken would set for a user of `project` (the tests' Glance trusts
    these headers; see glance_config/glance_identity.py)."""
    return {
        "X-Identity-Status": "Confirmed",
        "X-Project-Id": project,
        "X-User-Id": user or f"{project}-user",
        "X-Roles": "member,reader",
    }


@dataclass
class GlanceServer:
    """A running Glance, as the `glance` fixture yields it."""

    url: str
    work_dir: Path
    process: subprocess.Popen[bytes]
    timings: dict[str, float] = field(default_factory=dict)
    default_project: str = DEFAULT_PROJECT

    @property
    def log_path(self) -> Path:
        return self.work_dir / "glance-api.log"

    def connection(self, project: str | None = None) -> openstack.connection.Connection:
        """An openstacksdk connection without auth (Glance trusts its identity headers): the
        default project, or `project` when given."""
        conn = openstack.connect(
            auth_type="none", auth={"endpoint": self.url}, load_yaml_config=False
        )
        if project is not None:
            conn.session.additional_headers.update(identity_headers(project))
        return conn

    def http(self, project: str | None = None) -> httpx.Client:
        """A plain HTTP client to Glance (for looking at what the SDK sent, without it)."""
        headers = identity_headers(project) if project else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in (self.log_path, self.work_dir / "gunicorn.log"):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)


def _render(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    if "@" in "".join(line for line in template.splitlines() if not line.startswith("#")):
        unfilled = [line for line in template.splitlines() if "@" in line and line[:1] != "#"]
        raise ValueError(f"unfilled template markers: {unfilled}")
    return template


def write_config(work_dir: Path, url: str) -> None:
    """glance-api.conf, the paste pipeline and the identity filter, filled in for `work_dir`."""
    values = {
        "WORK_DIR": str(work_dir),
        "URL": url,
        "PROJECT_ID": DEFAULT_PROJECT,
        "USER_ID": DEFAULT_USER,
    }
    for name in ("images", "staging", "tasks", "locks"):
        (work_dir / name).mkdir(parents=True, exist_ok=True)
    conf = (CONFIG_TEMPLATES / "glance-api.conf.in").read_text()
    (work_dir / "glance-api.conf").write_text(_render(conf, values))
    paste = (CONFIG_TEMPLATES / "glance-api-paste.ini").read_text()
    (work_dir / "glance-api-paste.ini").write_text(_render(paste, values))
    filter_source = (CONFIG_TEMPLATES / "glance_identity.py").read_text()
    (work_dir / "glance_identity.py").write_text(filter_source)


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"glance exited with code {process.returncode} while starting")
        try:
            response = httpx.get(f"{url}/v2/schemas/image", timeout=2)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}"
        time.sleep(0.1)
    raise RuntimeError(f"glance did not answer within {timeout}s ({last})")


def start_glance(venv: Path, work_dir: Path) -> GlanceServer:
    """db_sync, then gunicorn on a socket we bind ourselves (no free-port race) and hand over."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    write_config(work_dir, url)
    timings: dict[str, float] = {}

    started = time.monotonic()
    sync = subprocess.run(
        [str(venv / "bin" / "glance-manage"), "--config-file", "glance-api.conf", "db_sync"],
        cwd=work_dir,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if sync.returncode != 0:
        listener.close()
        raise RuntimeError(f"glance-manage db_sync failed:\n{sync.stderr[-4000:]}")
    timings["db_sync_seconds"] = time.monotonic() - started

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OS_", "PYTHON"))},
        "OS_GLANCE_CONFIG_DIR": str(work_dir),
        "PYTHONPATH": str(work_dir),  # the identity filter module
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    started = time.monotonic()
    with (work_dir / "gunicorn.log").open("ab") as log:
        process = subprocess.Popen(
            [
                str(venv / "bin" / "gunicorn"),
                f"--bind=fd://{listener.fileno()}",
                "--workers=1",  # import tasks live in the worker's thread pool: keep one
                "--threads=8",
                "--timeout=300",
                "--graceful-timeout=5",
                "glance.wsgi.api:application",
            ],
            cwd=work_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(listener.fileno(),),
            start_new_session=True,
        )
    listener.close()  # gunicorn holds its own copy
    server = GlanceServer(url=url, work_dir=work_dir, process=process, timings=timings)
    try:
        _wait_until_serving(url, process, timeout=60)
    except Exception as exc:
        stop_glance(server)
        raise RuntimeError(f"{exc}\n{server.log_tail()}") from exc
    timings["start_seconds"] = time.monotonic() - started
    return server


def stop_glance(server: GlanceServer) -> None:
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="session")
def glance(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GlanceServer]:
    """A fresh Glance for the session (its database and store live in a temporary folder)."""
    error = request.config.stash.get(_INSTALL_ERROR_KEY, None)
    if error is not None:
        pytest.fail(f"cannot install glance: {error}", pytrace=False)
    venv = request.config.stash.get(_VENV_KEY, None)
    stashed: dict[str, float] | None = request.config.stash.get(_TIMINGS_KEY, None)
    timings = dict(stashed or {})
    if venv is None:
        venv, timings["install_seconds"] = install_glance()
    server = start_glance(venv, tmp_path_factory.mktemp("glance"))
    server.timings = {**timings, **server.timings}
    request.config.stash[_TIMINGS_KEY] = server.timings
    try:
        yield server
    finally:
        stop_glance(server)


# -- test data ---------------------------------------------------------------------------------


def make_qcow2(virtual_size: int = 1 << 30, cluster_bits: int = 16) -> bytes:
    """A valid, empty qcow2 v3 image (what `qemu-img create -f qcow2` writes): header,
    refcount table, one refcount block and the L1 table, one cluster each. Glance inspects
    uploads and refuses data that does not match the declared disk_format."""
    cluster = 1 << cluster_bits
    l2_entries = cluster // 8
    l1_size = -(-virtual_size // (l2_entries * cluster))
    refcount_table, refcount_block, l1_table = cluster, 2 * cluster, 3 * cluster
    header = struct.pack(
        ">4sIQIIQIIQQIIQQQQII",
        b"QFI\xfb",
        3,  # version
        0,  # backing file offset (none)
        0,  # backing file name size
        cluster_bits,
        virtual_size,
        0,  # no encryption
        l1_size,
        l1_table,
        refcount_table,
        1,  # refcount table clusters
        0,  # snapshots
        0,  # snapshots offset
        0,  # incompatible features
        0,  # compatible features
        0,  # autoclear features
        4,  # refcount order: 16-bit refcounts
        104,  # header length
    )
    image = bytearray(4 * cluster)
    image[: len(header)] = header
    image[refcount_table : refcount_table + 8] = struct.pack(">Q", refcount_block)
    for index in range(4):  # the four clusters in use, each referenced once
        image[refcount_block + 2 * index : refcount_block + 2 * index + 2] = struct.pack(">H", 1)
    return bytes(image)


@dataclass(frozen=True)
class Blob:
    data: bytes

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data, usedforsecurity=False).hexdigest()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class FileServer:
    """Serves registered blobs over HTTP on 127.0.0.1 and counts the requests for each path."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.requests: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests[self.path] = server.requests.get(self.path, 0) + 1
                data = server.blobs.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # the request counts are the record

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve(self, path: str, data: bytes) -> str:
        """Make `data` available at `path`; returns its full URL."""
        self.blobs[path] = data
        return f"{self.url}{path}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    try:
        yield server
    finally:
        server.close()
