"""A real OCI distribution registry (Debian `docker-registry`, distribution 2.8) for the tests.

`oci_registry` is one anonymous registry for the session; `start_registry` starts more (a
second registry to copy across, one with htpasswd users to be refused by). `push_image` and
`push_index` put small but real OCI images into a registry with plain HTTP calls of the
distribution spec, independent of the provider's own client, so tests check the provider
against what the registry really holds.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import io
import json
import os
import re
import socket
import subprocess
import tarfile
import threading
import time
import uuid
import warnings
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "hack" / "install-registry.sh"
BINARY = Path(os.environ.get("DOCKER_REGISTRY_BIN", "/usr/bin/docker-registry"))

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
# distribution 2.8 answers a manifest HEAD/GET only for the media types the client accepts.
ACCEPT_MANIFESTS = ", ".join(
    (
        OCI_MANIFEST,
        OCI_INDEX,
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)


def registry_binary() -> Path:
    """The registry binary, installed by hack/install-registry.sh when it is missing."""
    if not BINARY.exists():
        result = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=600, check=False
        )
        if result.returncode != 0 or not BINARY.exists():
            pytest.fail(
                f"{INSTALL_SCRIPT.name} could not install docker-registry "
                f"(exit {result.returncode}):\n{result.stderr[-3000:]}",
                pytrace=False,
            )
    return BINARY


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash for htpasswd (the only scheme distribution accepts), from libcrypt."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # `crypt` leaves in Python 3.13
        import crypt

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    """A token service of distribution's token spec on loopback: the bearer-token auth that
    hosted registries use. Known users (Basic auth) get every action they ask for, anonymous
    callers only `pull`; tokens are ES256 JWTs whose `x5c` certificate the registry trusts."""

    service = "image-operator-tests"
    issuer = "image-operator-test-tokens"

    def __init__(self, work_dir: Path, users: Mapping[str, str]) -> None:
        self.users = dict(users)
        self.issued: list[tuple[str | None, tuple[str, ...]]] = []  # (user, scopes) per token
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "image-operator test tokens")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self._key, hashes.SHA256())
        )
        self._cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.root_cert = work_dir / "token-root.pem"
        self.root_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = httpx.URL(self.path)
                user = service.authenticate(self.headers.get("Authorization"))
                if user is False:
                    self.send_response(401)
                    self.end_headers()
                    return
                scopes = [s for v in url.params.get_list("scope") for s in v.split(" ") if s]
                token = service.mint(scopes, user)
                body = json.dumps({"token": token, "expires_in": 600}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self._server.server_address[1]}/token"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def authenticate(self, header: str | None) -> str | Literal[False] | None:
        """The user name, None for anonymous, False for wrong credentials."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        user, _, password = base64.b64decode(value).decode().partition(":")
        ok = scheme.lower() == "basic" and self.users.get(user) == password
        return user if ok else False

    def mint(self, scopes: list[str], user: str | None) -> str:
        access = []
        for scope in scopes:
            kind, rest = scope.split(":", 1)
            name, _, actions = rest.rpartition(":")
            allowed = [a for a in actions.split(",") if user or a == "pull"]
            access.append({"type": kind, "name": name, "actions": allowed})
        self.issued.append((user, tuple(scopes)))
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self._cert_der).decode()]}
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "exp": now + 600,
            "nbf": now - 30,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        r, s = decode_dss_signature(
            self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        )
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _MintedTokens(httpx.Auth):
    """The tests' own client on a token registry: tokens straight from the service."""

    def __init__(self, service: TokenService) -> None:
        self.service = service

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield request
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code == 401 and challenge.startswith("Bearer "):
            scopes = re.findall(r'scope="([^"]*)"', challenge)
            token = self.service.mint(" ".join(scopes).split(), "tests")
            request.headers["Authorization"] = f"Bearer {token}"
            yield request


# The access log line (gorilla combined format): "METHOD /target HTTP/1.1" STATUS
_ACCESS_LINE = re.compile(
    r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[0-9.]+" (?P<status>[0-9]{3}) '
)


@dataclass(frozen=True)
class Access:
    """One request the registry logged."""

    method: str
    path: str
    query: dict[str, str]
    status: int


@dataclass
class RegistryServer:
    """One running registry: its URL, its `host:port` (what image references name) and files."""

    url: str
    host: str
    root: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    users: Mapping[str, str] = field(default_factory=dict)
    tokens: TokenService | None = None

    def client(self, **kwargs: Any) -> httpx.Client:
        """A plain HTTP client for the registry (authenticated when the registry has users)."""
        auth: Any = next(iter(self.users.items())) if self.users else None
        if self.tokens is not None:
            auth = _MintedTokens(self.tokens)
        return httpx.Client(base_url=self.url, timeout=30, auth=auth, **kwargs)

    def access_log(self) -> list[Access]:
        """Every request the registry served so far, in order. A marker request is sent and
        waited for first: the registry writes a line after answering, so without the marker a
        line could still be on its way."""
        marker = uuid.uuid4().hex
        with self.client() as http:
            http.get("/v2/", params={"marker": marker})
        deadline = time.monotonic() + 10
        while True:
            lines = self.log_path.read_text(errors="replace").splitlines()
            if any(marker in line for line in lines):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"marker request not logged:\n{self.log_tail()}")
            time.sleep(0.02)
        entries = []
        for line in lines:
            match = _ACCESS_LINE.search(line)
            if match and "marker=" not in match["target"]:  # this and earlier markers
                url = httpx.URL(match["target"])
                entries.append(
                    Access(
                        match["method"],
                        url.path,
                        dict(url.params.multi_items()),
                        int(match["status"]),
                    )
                )
        return entries

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.tokens is not None:
            self.tokens.stop()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_registry(
    work_dir: Path,
    *,
    users: Mapping[str, str] | None = None,
    token_auth: bool = False,
    delete_enabled: bool = True,
    timeout: float = 20.0,
) -> RegistryServer:
    """Start `docker-registry serve` on a free loopback port and wait until `/v2/` answers.

    `users` are htpasswd users (Basic auth), or with `token_auth` the users of a token service
    the registry sends clients to (bearer tokens)."""
    binary = registry_binary()
    work_dir.mkdir(parents=True, exist_ok=True)
    root = work_dir / "storage"
    root.mkdir(exist_ok=True)
    port = _free_port()
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(root)},
            "delete": {"enabled": delete_enabled},
            # Purging runs on a timer and would touch uploads a test is still making.
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": os.urandom(16).hex()},
    }
    tokens = None
    if token_auth:
        tokens = TokenService(work_dir, users or {})
        config["auth"] = {
            "token": {
                "realm": tokens.realm,
                "service": tokens.service,
                "issuer": tokens.issuer,
                "rootcertbundle": str(tokens.root_cert),
            }
        }
    elif users:
        htpasswd = work_dir / "htpasswd"
        htpasswd.write_text("".join(f"{u}:{bcrypt_hash(p)}\n" for u, p in users.items()))
        config["auth"] = {"htpasswd": {"realm": "image-operator-tests", "path": str(htpasswd)}}
    config_path = work_dir / "config.yml"
    config_path.write_text(yaml.safe_dump(config))
    log_path = work_dir / "registry.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(binary), "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT
        )
    server = RegistryServer(
        url=f"http://127.0.0.1:{port}",
        host=f"127.0.0.1:{port}",
        root=root,
        process=process,
        log_path=log_path,
        users={} if token_auth else dict(users or {}),
        tokens=tokens,
    )
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"docker-registry exited with {process.returncode}:\n{server.log_tail()}"
            )
        try:
            # 200 when anonymous, 401 with a challenge when it has users: both mean "serving".
            status = httpx.get(f"{server.url}/v2/", timeout=2).status_code
            if status in (200, 401):
                return server
            last = f"HTTP {status}"
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}"
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(
        f"docker-registry not serving after {timeout}s ({last}):\n{server.log_tail()}"
    )


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """One anonymous registry (filesystem storage, deletes enabled) for the whole session."""
    server = start_registry(tmp_path_factory.mktemp("oci-registry"))
    try:
        yield server
    finally:
        server.stop()


# -- pushing real images ---------------------------------------------------------------------


def sha256_digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def layer_tar_gz(files: Mapping[str, bytes]) -> bytes:
    """A gzip'd tar layer holding `files` (path -> content), reproducible byte for byte."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


@dataclass(frozen=True)
class PushedImage:
    """What `push_image`/`push_index` put into a registry."""

    host: str
    repository: str
    tag: str | None
    digest: str
    media_type: str
    manifest: bytes
    blobs: tuple[str, ...]  # every blob digest the image needs (configs and layers)
    children: tuple[str, ...] = ()  # manifest digests an index points at

    @property
    def reference(self) -> str:
        """`host/repository:tag` (or `@digest` when pushed without a tag)."""
        suffix = f":{self.tag}" if self.tag else f"@{self.digest}"
        return f"{self.host}/{self.repository}{suffix}"

    @property
    def pinned(self) -> str:
        return f"{self.host}/{self.repository}@{self.digest}"


def _check(response: httpx.Response, *expected: int) -> httpx.Response:
    if response.status_code not in expected:
        raise AssertionError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code} (wanted {expected}): {response.text[:500]}"
        )
    return response


def put_blob(http: httpx.Client, repository: str, data: bytes) -> str:
    """Monolithic upload (POST then PUT ?digest=); returns the digest."""
    digest = sha256_digest(data)
    started = _check(http.post(f"/v2/{repository}/blobs/uploads/"), 202)
    location = started.headers["Location"]
    separator = "&" if "?" in location else "?"
    _check(
        http.put(
            f"{location}{separator}digest={digest}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        ),
        201,
    )
    return digest


def put_manifest(
    http: httpx.Client, repository: str, reference: str, body: bytes, media_type: str
) -> str:
    response = _check(
        http.put(
            f"/v2/{repository}/manifests/{reference}",
            content=body,
            headers={"Content-Type": media_type},
        ),
        201,
    )
    digest = response.headers["Docker-Content-Digest"]
    assert digest == sha256_digest(body), (digest, sha256_digest(body))
    return digest


def push_image(
    registry: RegistryServer,
    repository: str,
    tag: str | None = "v1",
    *,
    content: bytes = b"hello from image-operator\n",
    layers: int = 1,
    platform: tuple[str, str] = ("linux", "amd64"),
) -> PushedImage:
    """Push one OCI image (config + `layers` gzip'd tar layers + manifest) and tag it."""
    with registry.client() as http:
        layer_blobs = [
            layer_tar_gz({f"data/file-{i}.txt": content + str(i).encode()}) for i in range(layers)
        ]
        diff_ids = [sha256_digest(gzip.decompress(blob)) for blob in layer_blobs]
        config = json.dumps(
            {
                "architecture": platform[1],
                "os": platform[0],
                "config": {"Cmd": ["/bin/sh"]},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            },
            sort_keys=True,
        ).encode()
        config_digest = put_blob(http, repository, config)
        layer_digests = [put_blob(http, repository, blob) for blob in layer_blobs]
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
                "layers": [
                    {"mediaType": OCI_LAYER, "digest": d, "size": len(b)}
                    for d, b in zip(layer_digests, layer_blobs, strict=True)
                ],
            },
            indent=2,  # not the canonical form: a copy must keep these exact bytes
        ).encode()
        digest = sha256_digest(manifest)
        put_manifest(http, repository, tag or digest, manifest, OCI_MANIFEST)
    return PushedImage(
        host=registry.host,
        repository=repository,
        tag=tag,
        digest=digest,
        media_type=OCI_MANIFEST,
        manifest=manifest,
        blobs=(config_digest, *layer_digests),
    )


def push_index(
    registry: RegistryServer, repository: str, tag: str = "multi", *, content: bytes = b"multi"
) -> PushedImage:
    """Push a two-platform OCI image index (each child a real image) and tag the index."""
    children = [
        push_image(
            registry, repository, None, content=content + arch.encode(), platform=("linux", arch)
        )
        for arch in ("amd64", "arm64")
    ]
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": child.media_type,
                    "digest": child.digest,
                    "size": len(child.manifest),
                    "platform": {"os": "linux", "architecture": arch},
                }
                for child, arch in zip(children, ("amd64", "arm64"), strict=True)
            ],
        }
    ).encode()
    with registry.client() as http:
        digest = put_manifest(http, repository, tag, index, OCI_INDEX)
    return PushedImage(
        host=registry.host,
        repository=repository,
        tag=tag,
        digest=digest,
        media_type=OCI_INDEX,
        manifest=index,
        blobs=tuple(blob for child in children for blob in child.blobs),
        children=tuple(child.digest for child in children),
    )


def manifest_status(registry: RegistryServer, repository: str, reference: str) -> int:
    """HTTP status of a manifest HEAD (200 present, 404 gone), with the Accept 2.8 needs."""
    with registry.client() as http:
        return http.head(
            f"/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT_MANIFESTS}
        ).status_code


def blob_status(registry: RegistryServer, repository: str, digest: str) -> int:
    with registry.client() as http:
        return http.head(f"/v2/{repository}/blobs/{digest}").status_code


def tags(registry: RegistryServer, repository: str) -> list[str]:
    with registry.client() as http:
        response = http.get(f"/v2/{repository}/tags/list")
        if response.status_code == 404:
            return []
        return sorted(_check(response, 200).json().get("tags") or [])
