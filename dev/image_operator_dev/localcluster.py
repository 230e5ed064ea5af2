"""A real local Kubernetes control plane (etcd + kube-apiserver) for tests and the demo.

This is the envtest approach without Docker: the two binaries are built once from their Go
modules by ``hack/build-control-plane.sh`` (or taken from ``KUBEBUILDER_ASSETS``) and started
here on free loopback ports. There is no controller-manager and no scheduler: no garbage
collector, no namespace controller, no service-account token controller; whatever needs them
must not be tested against this cluster (or must start them itself). Note that the aggregated
ClusterRoles ``view``, ``edit`` and ``admin`` exist but stay empty (kube-controller-manager fills
them in): RBAC tests should bind Roles of their own.

Identities come from a static token file: one admin (group ``system:masters``) and any extra
users passed to :class:`LocalCluster` (token -> (user, groups)), so RBAC can be tested with a
second, unprivileged identity. Authorization is RBAC.

This module never imports kopf nor the kubernetes client: :func:`apply_manifests` runs
``kubectl apply --server-side`` with the ``kubectl`` built beside kube-apiserver.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import importlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Self

import yaml

__all__ = [
    "ADMIN_USER",
    "CONTEXT_NAME",
    "LocalCluster",
    "LocalClusterError",
    "apply_manifests",
    "find_kubectl",
    "main",
    "resolve_binaries",
]

#: Binaries a usable binary folder must hold (kubectl is optional).
REQUIRED_BINARIES = ("kube-apiserver", "etcd")
#: Name of the cluster, context and kubeconfig entries we write.
CONTEXT_NAME = "image-operator-local"
ADMIN_USER = "admin"
ADMIN_GROUPS = ("system:masters",)
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
BUILD_SCRIPT = Path("hack") / "build-control-plane.sh"

# Alpha features the operator uses where the release has them: {gate: first minor with it}.
# ShardedListAndWatch (KEP-5866, 1.36): `shardSelector` on list and watch, which sharded
# operators depend on (handlers/sharding.py); a release without the gate refuses the flag.
FEATURE_GATES = {"ShardedListAndWatch": (1, 36)}

_LOOPBACK = "127.0.0.1"
_PR_SET_PDEATHSIG = 1
_LOG_TAIL_LINES = 40
_BIND_ERRORS = ("address already in use", "bind: address")


class LocalClusterError(RuntimeError):
    """The local control plane could not be built, started or used."""


# --------------------------------------------------------------------------------------------
# Binaries


def _has_binaries(folder: Path) -> bool:
    return all(
        (folder / name).is_file() and os.access(folder / name, os.X_OK)
        for name in REQUIRED_BINARIES
    )


def _find_repo_root() -> Path | None:
    candidates = [*Path(__file__).resolve().parents, *Path.cwd().resolve().parents, Path.cwd()]
    for folder in candidates:
        if (folder / BUILD_SCRIPT).is_file():
            return folder
    return None


def resolve_binaries(repo_root: Path | None = None, version: str | None = None) -> Path:
    """Return a folder holding ``kube-apiserver`` and ``etcd`` (and usually ``kubectl``).

    ``KUBEBUILDER_ASSETS`` wins when it holds both binaries. Otherwise
    ``hack/build-control-plane.sh`` runs for Kubernetes ``version`` (e.g. ``"1.30.14"``; by
    default ``$K8S_VERSION``, else the newest release the project tests), returning its cache
    at once when warm; a cold build takes 5-15 minutes. Its progress on stderr is passed through
    to our stderr; the folder is the last line it prints on stdout.
    """
    assets = os.environ.get("KUBEBUILDER_ASSETS", "")
    if assets and _has_binaries(Path(assets)):
        return Path(assets)
    root = repo_root if repo_root is not None else _find_repo_root()
    if root is None or not (root / BUILD_SCRIPT).is_file():
        raise LocalClusterError(
            f"cannot find {BUILD_SCRIPT} (looked from {Path(__file__).parent} and the current "
            "directory); run it from a checkout of image-operator or set KUBEBUILDER_ASSETS to "
            "a folder holding kube-apiserver and etcd"
        )
    script = root / BUILD_SCRIPT
    proc = subprocess.run(
        ["bash", str(script), *([version] if version else [])],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=None,  # progress goes straight to the user
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise LocalClusterError(f"{script} failed with exit code {proc.returncode} (see above)")
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    if not lines:
        raise LocalClusterError(f"{script} printed no folder on stdout")
    folder = Path(lines[-1])
    if not _has_binaries(folder):
        raise LocalClusterError(f"{script} printed {folder}, which lacks {REQUIRED_BINARIES}")
    return folder


# --------------------------------------------------------------------------------------------
# Small helpers


def _free_ports(count: int) -> list[int]:
    """Free TCP ports on 127.0.0.1, all different (held open together while picked)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((_LOOPBACK, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    text = "\n".join(data.splitlines()[-lines:])
    return text or "(empty log)"


def _no_proxy_env(base: Mapping[str, str]) -> dict[str, str]:
    env = dict(base)
    for key in ("NO_PROXY", "no_proxy"):
        current = [item for item in env.get(key, "").split(",") if item]
        for host in (_LOOPBACK, "localhost"):
            if host not in current:
                current.append(host)
        env[key] = ",".join(current)
    return env


def _validate_token_field(value: str, what: str) -> None:
    if not value or any(ch in value for ch in ',"\n\r'):
        raise ValueError(f"invalid {what} for the token file: {value!r}")


def _make_preexec(die_with_parent: bool) -> Callable[[], None] | None:
    """Make children die with us (Linux PR_SET_PDEATHSIG), so a killed test run leaves no orphan.

    The signal fires when the *thread* that forked exits, so it is only armed from the main
    thread (a worker thread of an executor may end long before the cluster should).
    """
    if not die_with_parent or not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _generate_service_account_key(private_path: Path, public_path: Path) -> None:
    """An RSA key pair for service-account tokens: the openssl CLI, else ``cryptography``."""
    openssl = shutil.which("openssl")
    if openssl is not None:
        genpkey = [openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
        for argv in (
            [*genpkey, "-out", str(private_path)],
            [openssl, "pkey", "-in", str(private_path), "-pubout", "-out", str(public_path)],
        ):
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise LocalClusterError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
        private_path.chmod(0o600)
        return
    try:
        rsa: Any = importlib.import_module("cryptography.hazmat.primitives.asymmetric.rsa")
        ser: Any = importlib.import_module("cryptography.hazmat.primitives.serialization")
    except ImportError as exc:
        raise LocalClusterError(
            "a service-account key pair is needed: install the openssl CLI or the Python "
            "package 'cryptography'"
        ) from exc
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_path.write_bytes(
        key.private_bytes(
            ser.Encoding.PEM, ser.PrivateFormat.TraditionalOpenSSL, ser.NoEncryption()
        )
    )
    private_path.chmod(0o600)
    public_path.write_bytes(
        key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    )


class _Process:
    """One child process with its log file."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log: IO[bytes], path: Path):
        self.name = name
        self.popen = popen
        self.log = log
        self.log_path = path

    def exited(self) -> int | None:
        return self.popen.poll()

    def stop(self, timeout: float) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.popen.kill()
                self.popen.wait()
        self.log.close()

    def failure(self, what: str) -> LocalClusterError:
        return LocalClusterError(
            f"{what}\n--- last lines of {self.log_path} ---\n{_tail(self.log_path)}"
        )


# --------------------------------------------------------------------------------------------
# The cluster


def apiserver_version(binary: Path) -> tuple[int, int]:
    """(major, minor) of a kube-apiserver binary, from `--version` ("Kubernetes v1.36.3")."""
    answer = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    major, minor = answer.rsplit("v", 1)[1].split(".")[:2]
    return int(major), int(minor)


def feature_gate_args(version: tuple[int, int]) -> list[str]:
    """kube-apiserver flags enabling the `FEATURE_GATES` this release has."""
    gates = sorted(gate for gate, first in FEATURE_GATES.items() if version >= first)
    return [f"--feature-gates={','.join(f'{gate}=true' for gate in gates)}"] if gates else []


class LocalCluster:
    """etcd + kube-apiserver on free loopback ports, state and logs under ``work_dir``.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. ``extra_users`` maps a
    bearer token to ``(user name, groups)`` for identities besides the admin (RBAC applies to
    them; they get no rights unless a test grants some). ``extra_apiserver_args`` are appended
    to kube-apiserver's command line (later flags win).

    Reusing a ``work_dir`` keeps etcd's data, the serving certificates and the service-account
    key between runs; the admin token is new on every instance unless ``token`` is given.
    """

    def __init__(
        self,
        bin_dir: Path,
        work_dir: Path,
        *,
        token: str | None = None,
        extra_users: Mapping[str, tuple[str, Sequence[str]]] | None = None,
        extra_apiserver_args: Sequence[str] = (),
        start_timeout: float = 120.0,
        stop_timeout: float = 15.0,
        die_with_parent: bool = True,
    ) -> None:
        self.bin_dir = Path(bin_dir)
        # Absolute: the children resolve relative paths against their own working directory.
        self.work_dir = Path(work_dir).resolve()
        self._token = token or secrets.token_urlsafe(32)
        self._extra_users = dict(extra_users or {})
        _validate_token_field(self._token, "token")
        for extra_token, (user, groups) in self._extra_users.items():
            _validate_token_field(extra_token, "token")
            _validate_token_field(user, "user")
            for group in groups:
                _validate_token_field(group, "group")
            if extra_token == self._token:
                raise ValueError("an extra user cannot share the admin token")
        self._extra_apiserver_args = list(extra_apiserver_args)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._die_with_parent = die_with_parent
        self._procs: list[_Process] = []
        self._pids: dict[str, int] = {}
        self._etcd_port: int | None = None
        self._apiserver_port: int | None = None
        self._ca_data: bytes | None = None
        self._started = False

    # -- properties

    @property
    def kubeconfig_path(self) -> Path:
        """The admin kubeconfig (written by :meth:`start`)."""
        return self.work_dir / "kubeconfig"

    @property
    def server_url(self) -> str:
        if self._apiserver_port is None:
            raise LocalClusterError("the cluster has not been started")
        return f"https://{_LOOPBACK}:{self._apiserver_port}"

    @property
    def etcd_url(self) -> str:
        if self._etcd_port is None:
            raise LocalClusterError("the cluster has not been started")
        return f"http://{_LOOPBACK}:{self._etcd_port}"

    @property
    def token(self) -> str:
        """The admin's bearer token (group ``system:masters``)."""
        return self._token

    @property
    def ca_data(self) -> bytes | None:
        """PEM of the apiserver's self-signed CA, or None when TLS is not verified."""
        return self._ca_data

    @property
    def pids(self) -> dict[str, int]:
        """Process ids started by the last :meth:`start` (kept after :meth:`stop`)."""
        return dict(self._pids)

    @property
    def log_paths(self) -> dict[str, Path]:
        return {name: self.work_dir / f"{name}.log" for name in ("etcd", "kube-apiserver")}

    @property
    def kubectl(self) -> Path:
        return self.bin_dir / "kubectl"

    # -- lifecycle

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start etcd and kube-apiserver; return once ``default`` namespace exists.

        On any failure (or interruption) everything started so far is stopped before the
        exception propagates; a :class:`LocalClusterError` carries the tail of the failing
        process's log.
        """
        if self._started:
            raise LocalClusterError("the cluster is already started")
        if not _has_binaries(self.bin_dir):
            raise LocalClusterError(f"{self.bin_dir} lacks {REQUIRED_BINARIES}")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._started = True
        attempts = 3
        try:
            self._prepare_files()
            for attempt in range(1, attempts + 1):
                try:
                    self._start_once()
                    return
                except LocalClusterError as exc:
                    # Ports are picked free but can be taken before the child binds them.
                    if attempt == attempts or not any(e in str(exc) for e in _BIND_ERRORS):
                        raise
                    self._stop_processes()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd: SIGTERM, then SIGKILL after ``stop_timeout``."""
        self._stop_processes()
        self._started = False

    def _stop_processes(self) -> None:
        while self._procs:
            self._procs.pop().stop(self.stop_timeout)

    def is_running(self) -> bool:
        return bool(self._procs) and all(p.exited() is None for p in self._procs)

    def check(self) -> None:
        """Raise :class:`LocalClusterError` if a process of the cluster has exited."""
        for proc in self._procs:
            code = proc.exited()
            if code is not None:
                raise proc.failure(f"{proc.name} exited with code {code}")

    def rss_bytes(self) -> dict[str, int]:
        """Resident memory of each running process (Linux /proc), in bytes."""
        result: dict[str, int] = {}
        for proc in self._procs:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{proc.popen.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        result[proc.name] = int(line.split()[1]) * 1024
        return result

    # -- files

    @property
    def _cert_dir(self) -> Path:
        return self.work_dir / "certs"

    @property
    def _sa_key(self) -> Path:
        return self.work_dir / "service-account.key"

    @property
    def _sa_pub(self) -> Path:
        return self.work_dir / "service-account.pub"

    @property
    def _token_file(self) -> Path:
        return self.work_dir / "tokens.csv"

    def _prepare_files(self) -> None:
        self._cert_dir.mkdir(parents=True, exist_ok=True)
        if not (self._sa_key.is_file() and self._sa_pub.is_file()):
            _generate_service_account_key(self._sa_key, self._sa_pub)
        rows: list[tuple[str, str, tuple[str, ...]]] = [(self._token, ADMIN_USER, ADMIN_GROUPS)]
        rows += [(tok, user, tuple(groups)) for tok, (user, groups) in self._extra_users.items()]
        lines = []
        for tok, user, groups in rows:
            line = f"{tok},{user},{user}"
            if groups:
                line += ',"' + ",".join(groups) + '"'
            lines.append(line)
        self._token_file.write_text("\n".join(lines) + "\n")
        self._token_file.chmod(0o600)

    def write_kubeconfig(self, path: Path | None = None, *, token: str | None = None) -> Path:
        """Write a kubeconfig for this cluster: the admin, an extra user's token, or any other
        bearer token the API server accepts (e.g. a ServiceAccount's from TokenRequest)."""
        path = self.kubeconfig_path if path is None else Path(path)
        user = ADMIN_USER
        if token is not None and token != self._token:
            user = self._extra_users[token][0] if token in self._extra_users else "token-user"
        cluster: dict[str, Any] = {"server": self.server_url}
        if self._ca_data is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self._ca_data).decode()
        else:
            cluster["insecure-skip-tls-verify"] = True
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": CONTEXT_NAME, "cluster": cluster}],
            "users": [{"name": user, "user": {"token": token or self._token}}],
            "contexts": [
                {
                    "name": CONTEXT_NAME,
                    "context": {"cluster": CONTEXT_NAME, "user": user, "namespace": "default"},
                }
            ],
            "current-context": CONTEXT_NAME,
            "preferences": {},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            yaml.safe_dump(config, fh, sort_keys=False)
        tmp.replace(path)
        return path

    # -- processes

    def _spawn(self, name: str, argv: Sequence[str]) -> _Process:
        log_path = self.work_dir / f"{name}.log"
        log = log_path.open("wb")
        try:
            popen = subprocess.Popen(
                list(argv),
                cwd=self.work_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_no_proxy_env(os.environ),
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, not them
                preexec_fn=_make_preexec(self._die_with_parent),  # noqa: PLW1509
            )
        except BaseException:
            log.close()
            raise
        proc = _Process(name, popen, log, log_path)
        self._procs.append(proc)
        self._pids[name] = popen.pid
        return proc

    def _start_once(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        self._etcd_port, self._apiserver_port = _free_ports(2)
        self._ca_data = None
        self._pids = {}
        etcd = self._spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                f"--data-dir={self.work_dir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                "--listen-peer-urls=http://localhost:0",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        self._wait(
            etcd,
            deadline,
            "etcd /health",
            lambda: self._probe(f"{self.etcd_url}/health", None, '"health":"true"'),
        )
        apiserver = self._spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                f"--cert-dir={self._cert_dir}",
                f"--secure-port={self._apiserver_port}",
                f"--bind-address={_LOOPBACK}",
                f"--advertise-address={_LOOPBACK}",
                "--endpoint-reconciler-type=none",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--allow-privileged=true",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={self._sa_pub}",
                f"--service-account-signing-key-file={self._sa_key}",
                f"--token-auth-file={self._token_file}",
                # No controller-manager creates "default" service accounts: without this, pods
                # could not be created at all.
                "--disable-admission-plugins=ServiceAccount",
                *feature_gate_args(apiserver_version(self.bin_dir / "kube-apiserver")),
                *self._extra_apiserver_args,
            ],
        )
        insecure = self._insecure_context()
        self._wait(
            apiserver,
            deadline,
            "kube-apiserver /readyz",
            lambda: self._probe(f"{self.server_url}/readyz", insecure, "ok"),
        )
        self._ca_data = self._usable_ca()
        context = self._ca_context() or insecure
        self._wait(
            apiserver,
            deadline,
            "namespace default",
            lambda: self._probe(f"{self.server_url}/api/v1/namespaces/default", context, None),
        )
        self.write_kubeconfig()

    def _wait(
        self, proc: _Process, deadline: float, what: str, probe: Callable[[], str | None]
    ) -> None:
        """Poll ``probe`` (None when ready, else why not) until ready, ``proc`` dies or time."""
        last = "not probed yet"
        delay = 0.05
        while True:
            code = proc.exited()
            if code is not None:
                raise proc.failure(f"{proc.name} exited with code {code} while waiting for {what}")
            result = probe()
            if result is None:
                return
            last = result
            if time.monotonic() >= deadline:
                raise proc.failure(
                    f"timed out after {self.start_timeout:.0f}s waiting for {what} "
                    f"(last answer: {last})"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    # -- HTTP

    @staticmethod
    def _insecure_context() -> ssl.SSLContext:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context

    def _ca_context(self) -> ssl.SSLContext | None:
        if self._ca_data is None:
            return None
        return ssl.create_default_context(cadata=self._ca_data.decode("ascii"))

    def _usable_ca(self) -> bytes | None:
        """The apiserver's generated certificate bundle, if it verifies our server URL."""
        try:
            data = (self._cert_dir / "apiserver.crt").read_bytes()
            context = ssl.create_default_context(cadata=data.decode("ascii"))
        except (OSError, ssl.SSLError, ValueError):
            return None
        if self._probe(f"{self.server_url}/readyz", context, "ok") is None:
            return data
        return None

    def _probe(self, url: str, context: ssl.SSLContext | None, expect: str | None) -> str | None:
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        opener = urllib.request.build_opener(*handlers)
        request = urllib.request.Request(url)  # noqa: S310 - our own loopback URL
        if url.startswith("https://"):
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with opener.open(request, timeout=5) as response:
                body = response.read(4096).decode("utf-8", errors="replace")
                if expect is not None and expect not in body:
                    return f"HTTP {response.status}: {body[:200]}"
                return None
        except urllib.error.HTTPError as exc:
            body = exc.read(400).decode("utf-8", errors="replace")
            return f"HTTP {exc.code}: {body}"
        except (urllib.error.URLError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------------------------
# Manifests

_CRD_GROUP = "apiextensions.k8s.io"
_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def _manifest_files(paths: Sequence[Path]) -> Iterator[Path]:
    for item in paths:
        path = Path(item)
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix in _MANIFEST_SUFFIXES
            )
        elif path.is_file():
            yield path
        else:
            raise LocalClusterError(f"no such manifest file or folder: {path}")


def _load_documents(paths: Sequence[Path]) -> list[tuple[dict[str, Any], Path]]:
    """Every object in ``paths`` with the file it came from (Lists expanded)."""
    docs: list[tuple[dict[str, Any], Path]] = []

    def add(doc: Any, origin: Path) -> None:
        if doc is None:
            return
        if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
            raise LocalClusterError(f"{origin}: not a Kubernetes object: {str(doc)[:120]}")
        if doc["kind"] == "Kustomization":
            return
        if doc["kind"].endswith("List") and isinstance(doc.get("items"), list):
            for item in doc["items"]:
                add(item, origin)
            return
        if not doc.get("metadata", {}).get("name"):
            raise LocalClusterError(f"{origin}: {doc['kind']} without metadata.name")
        docs.append((doc, origin))

    for file in _manifest_files(paths):
        with file.open() as fh:
            for doc in yaml.safe_load_all(fh):
                add(doc, file)
    return docs


def _is_crd(doc: Mapping[str, Any]) -> bool:
    return bool(
        doc["kind"] == "CustomResourceDefinition"
        and str(doc["apiVersion"]).startswith(_CRD_GROUP + "/")
    )


def find_kubectl(bin_dir: Path | None = None) -> Path:
    """``kubectl``: beside the control-plane binaries (``bin_dir``, else ``KUBEBUILDER_ASSETS``,
    else what ``hack/build-control-plane.sh`` built), else the one on ``PATH``."""
    folders: list[Path] = []
    if bin_dir is not None:
        folders.append(Path(bin_dir))
    else:
        assets = os.environ.get("KUBEBUILDER_ASSETS", "")
        if assets:
            folders.append(Path(assets))
        with contextlib.suppress(LocalClusterError):
            folders.append(resolve_binaries())
    for folder in folders:
        candidate = folder / "kubectl"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which("kubectl")
    if on_path is not None:
        return Path(on_path)
    where = ", ".join(str(f) for f in folders) or "no control-plane folder"
    raise LocalClusterError(
        f"kubectl not found (looked in {where} and on PATH); hack/build-control-plane.sh builds it"
    )


class _Kubectl:
    """kubectl against one kubeconfig, with a private discovery cache and loopback unproxied."""

    def __init__(self, binary: Path, kubeconfig: Path, cache_dir: Path) -> None:
        self.binary = binary
        self.kubeconfig = Path(kubeconfig)
        self.cache_dir = cache_dir
        env = _no_proxy_env(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        self.env = env

    def run(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        argv = [
            str(self.binary),
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.cache_dir}",
            *args,
        ]
        try:
            return subprocess.run(
                argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise LocalClusterError(f"{' '.join(argv)} did not finish in {timeout}s") from exc


def _write_phase(folder: Path, docs: Sequence[tuple[dict[str, Any], Path]]) -> dict[str, str]:
    """Write ``docs`` into ``folder``, one file per run of documents from the same origin,
    named so that kubectl (which reads a folder in lexical order) keeps their order. Returns
    temporary file -> origin, to name the origins in kubectl's messages."""
    folder.mkdir()
    runs: list[tuple[Path, list[dict[str, Any]]]] = []
    for doc, origin in docs:
        if runs and runs[-1][0] == origin:
            runs[-1][1].append(doc)
        else:
            runs.append((origin, [doc]))
    origins: dict[str, str] = {}
    for index, (origin, run) in enumerate(runs):
        path = folder / f"{index:04d}-{origin.stem}.yaml"
        path.write_text(yaml.safe_dump_all(run, sort_keys=False), encoding="utf-8")
        origins[str(path)] = str(origin)
    return origins


def _explain(result: subprocess.CompletedProcess[str], origins: Mapping[str, str]) -> str:
    message = (result.stderr or result.stdout).strip() or f"exit code {result.returncode}"
    for temporary, origin in origins.items():
        message = message.replace(temporary, origin)
    return message


def _culprits(entries: Sequence[tuple[dict[str, Any], Path]], message: str) -> str:
    """The files of the objects kubectl's message names (server errors quote the object's
    name, not the file), else every file of the batch."""
    named = [o for d, o in entries if f'"{d["metadata"]["name"]}"' in message]
    return ", ".join(dict.fromkeys(str(o) for o in (named or [o for _, o in entries])))


def _crd_conditions(run: _Kubectl, names: Sequence[str]) -> str:
    result = run.run("get", *names, "--output=json", timeout=30)
    try:
        data = json.loads(result.stdout)
    except ValueError:
        return _explain(result, {})
    items = data.get("items", [data]) if isinstance(data, dict) else []
    return "; ".join(
        f"{item['metadata']['name']}: "
        + ", ".join(
            f"{c.get('type')}={c.get('status')} ({c.get('message', '')})"
            for c in (item.get("status") or {}).get("conditions") or []
        )
        for item in items
    )


#: kubectl's answer for a kind the server does not serve (yet: discovery may lag a new CRD).
_NO_KIND = ("no matches for kind", "ensure CRDs are installed first")


def apply_manifests(
    kubeconfig: Path,
    paths: Sequence[Path],
    *,
    timeout: float = 60.0,
    field_manager: str = "image-operator-local",
    kubectl: Path | None = None,
) -> None:
    """Server-side apply every object in the YAML files/folders ``paths`` (sorted, recursive)
    with ``kubectl apply --server-side``.

    Namespaces go first, then CustomResourceDefinitions, which are waited for until
    ``Established`` (``kubectl wait``), then everything else (so custom resources may follow
    their CRDs, even in the same file). Applying is create-or-update and forces ownership of
    conflicting fields. ``kubectl`` defaults to :func:`find_kubectl`'s answer.
    """
    docs = _load_documents(paths)
    if not docs:
        return
    namespaces = [e for e in docs if e[0]["kind"] == "Namespace" and e[0]["apiVersion"] == "v1"]
    crds = [e for e in docs if _is_crd(e[0])]
    rest = [e for e in docs if e not in namespaces and e not in crds]
    deadline = time.monotonic() + timeout

    def remaining() -> float:
        return max(1.0, deadline - time.monotonic())

    with tempfile.TemporaryDirectory(prefix="image-operator-apply-") as tmp:
        run = _Kubectl(kubectl or find_kubectl(), kubeconfig, Path(tmp) / "cache")
        apply_args = (
            "apply",
            "--server-side",
            "--force-conflicts",
            f"--field-manager={field_manager}",
            "--output=name",
        )

        def apply(phase: str, entries: Sequence[tuple[dict[str, Any], Path]]) -> None:
            origins = _write_phase(Path(tmp) / phase, entries)
            while True:
                result = run.run(*apply_args, "-f", str(Path(tmp) / phase), timeout=remaining())
                if result.returncode == 0:
                    return
                message = _explain(result, origins)
                # A just-established CRD may take a moment to show up in discovery.
                if not any(n in message for n in _NO_KIND) or time.monotonic() >= deadline:
                    raise LocalClusterError(
                        f"{_culprits(entries, message)}: kubectl apply --server-side failed: "
                        f"{message}"
                    )
                time.sleep(0.25)

        if namespaces or crds:
            apply("1-namespaces-and-crds", namespaces + crds)
        if crds:
            names = [f"customresourcedefinition/{d['metadata']['name']}" for d, _ in crds]
            wait_seconds = remaining()
            result = run.run(
                "wait",
                "--for=condition=Established",
                f"--timeout={wait_seconds:.0f}s",
                *names,
                timeout=wait_seconds + 10,
            )
            if result.returncode != 0:
                raise LocalClusterError(
                    f"CRDs not Established after {wait_seconds:.0f}s: {_explain(result, {})}; "
                    f"their conditions: {_crd_conditions(run, names)}"
                )
        if rest:
            apply("2-objects", rest)


# --------------------------------------------------------------------------------------------
# CLI


class _Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _emit(event: Mapping[str, Any]) -> None:
    print(json.dumps(event), flush=True)


def _guard_kubeconfig_out(path: Path) -> None:
    """Refuse to overwrite a kubeconfig that is not one of ours (e.g. ~/.kube/config)."""
    if not path.exists():
        return
    try:
        current = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        current = None
    if not (isinstance(current, dict) and current.get("current-context") == CONTEXT_NAME):
        raise LocalClusterError(
            f"refusing to overwrite {path}: it is not a kubeconfig written by this command"
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="image-operator local-cluster",
        description=(
            "Run etcd + kube-apiserver on loopback ports in the foreground. Prints one JSON "
            'line {"event": "ready", ...} once usable; stops cleanly on SIGTERM or SIGINT.'
        ),
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="state, logs and kubeconfig (default: a temporary folder, removed on exit)",
    )
    parser.add_argument(
        "--kubeconfig-out", type=Path, help="also write the admin kubeconfig to this path"
    )
    parser.add_argument(
        "--crds",
        type=Path,
        action="append",
        default=[],
        help="apply the manifests in this folder/file after start (repeatable)",
    )
    parser.add_argument(
        "--bin-dir",
        type=Path,
        help="folder with kube-apiserver and etcd (default: KUBEBUILDER_ASSETS or the build)",
    )
    parser.add_argument(
        "--kubernetes-version",
        help="build (once, cached) and run this Kubernetes release, e.g. 1.30.14 (default: "
        "$K8S_VERSION, else the newest the project tests); ignored with --bin-dir",
    )
    parser.add_argument("--start-timeout", type=float, default=120.0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``image-operator local-cluster``: run a local control plane until SIGTERM/SIGINT."""
    args = _parser().parse_args(argv)

    ready = False
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()
        if not ready:
            raise _Interrupted(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    temp_dir: str | None = None
    cluster: LocalCluster | None = None
    try:
        if args.kubeconfig_out is not None:
            _guard_kubeconfig_out(args.kubeconfig_out)
        bin_dir = args.bin_dir or resolve_binaries(version=args.kubernetes_version)
        if args.work_dir is None:
            temp_dir = tempfile.mkdtemp(prefix="image-operator-cluster-")
            work_dir = Path(temp_dir)
        else:
            work_dir = args.work_dir
        cluster = LocalCluster(bin_dir, work_dir, start_timeout=args.start_timeout)
        started = time.monotonic()
        cluster.start()
        if args.crds:
            apply_manifests(cluster.kubeconfig_path, args.crds, kubectl=find_kubectl(bin_dir))
        kubeconfig = cluster.kubeconfig_path
        if args.kubeconfig_out is not None:
            kubeconfig = cluster.write_kubeconfig(args.kubeconfig_out)
        ready = True
        _emit(
            {
                "event": "ready",
                "kubeconfig": str(kubeconfig.resolve()),
                "server": cluster.server_url,
                "seconds": round(time.monotonic() - started, 2),
            }
        )
        while not stop_requested.wait(0.5):
            cluster.check()
        return 0
    except _Interrupted as exc:
        return 128 + exc.signum
    except LocalClusterError as exc:
        _emit({"event": "error", "message": str(exc)})
        return 1
    finally:
        ready = True  # a second signal must not interrupt the cleanup
        if cluster is not None:
            cluster.stop()
            _emit({"event": "stopped"})
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
