"""`image-operator upload img/NAME FILE`: stream a local disk file into an `Image`'s provider.

Who receives the bytes: the CLI itself, straight to the cloud's multipart API, with the keys of
the Secret the `ImageProvider` names (see docs/uploads.md for why not an operator endpoint).
The file is read one part at a time, so memory is one part whatever the file's size; each part
is retried on retryable errors; the SHA-256 of the whole stream is checked against
`spec.source.upload.checksum` before the upload is completed; any failure or interruption
(Ctrl-C, SIGTERM) aborts the multipart upload so nothing is left behind in the cloud.

The cloud image carries the `Image`'s UID as its idempotency tag and its name, exactly as an
operator-made image does, so the operator finds it (`find_image`) and takes it from there.
Progress goes to the terminal and, every few seconds, to the annotation
`imageops.io/upload-progress` ("DONE/TOTAL/RATE" in bytes and bytes per second), which the
operator turns into status (the CLI never writes status: the operator owns it).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from kubernetes.client.exceptions import ApiException

from image_operator.api.common import ANNOTATION_UPLOAD_PROGRESS
from image_operator.api.image import ImageSpec, UploadSource
from image_operator.imageaccess import CommandError, ImageCluster, connect, parse_target
from image_operator.providers.base import Provider
from image_operator.providers.capabilities import (
    LocalImport,
    MultipartUploads,
    PlaceholderUploads,
    UploadSession,
)
from image_operator.providers.errors import ProviderError
from image_operator.providers.model import CloudImage, ImageRequest

DEFAULT_PART_BYTES = 16 * 1024 * 1024
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's rule, which the multipart APIs share
GIB = 1024**3
CHUNK_BYTES = 1024 * 1024  # reads for hashing and for streamed (non-multipart) uploads


class UploadError(CommandError):
    """The upload cannot go on; the message names what to fix."""


class Cancelled(BaseException):
    """SIGTERM during an upload: unwinds like Ctrl-C so the upload is aborted."""


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    elapsed: float

    @property
    def percent(self) -> int:
        return 100 if self.total == 0 else min(100, math.floor(100 * self.done / self.total))

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None


ProgressCallback = Callable[[Progress], None]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in read_parts(handle, CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def stream_into(
    target: PlaceholderUploads,
    external_id: str,
    path: Path,
    *,
    progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Send `path` as the data of `external_id`, 1 MiB at a time; returns its SHA-256."""
    total = path.stat().st_size
    digest = hashlib.sha256()
    started = clock()

    def chunks() -> Iterator[bytes]:
        done = 0
        with path.open("rb") as handle:
            for block in read_parts(handle, CHUNK_BYTES):
                digest.update(block)
                done += len(block)
                if progress is not None:
                    progress(Progress(done, total, clock() - started))
                yield block

    target.upload(external_id, chunks(), total)
    return digest.hexdigest()


def read_parts(handle: IO[bytes], part_bytes: int) -> Iterator[bytes]:
    """The file in parts of `part_bytes` (the last may be shorter); one part in memory."""
    while True:
        data = handle.read(part_bytes)
        if not data:
            return
        yield data


def stream_upload(
    target: MultipartUploads,
    upload: UploadSession,
    path: Path,
    *,
    part_bytes: int = DEFAULT_PART_BYTES,
    expected_sha256: str | None = None,
    attempts: int = 5,
    retry_delay: float = 1.0,
    progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Send `path` as the parts of `upload`, then complete it; returns the file's SHA-256.

    On any error or interruption the upload is aborted (best effort) and the error re-raised.
    """
    total = path.stat().st_size
    digest = hashlib.sha256()
    done = 0
    started = clock()
    try:
        with path.open("rb") as handle:
            for number, data in enumerate(read_parts(handle, part_bytes), start=1):
                _send_part(target, upload, number, data, attempts, retry_delay, sleep)
                digest.update(data)
                done += len(data)
                if progress is not None:
                    progress(Progress(done, total, clock() - started))
        actual = digest.hexdigest()
        if expected_sha256 is not None and actual != expected_sha256:
            raise UploadError(
                f"the file's sha256 is {actual}, but spec.source.upload.checksum expects "
                f"{expected_sha256}: upload the right file or correct the checksum"
            )
        target.complete_upload(upload)
        return actual
    except BaseException:
        # Whatever stopped us (an error, Ctrl-C, SIGTERM), leave no half upload in the cloud.
        with contextlib.suppress(ProviderError):
            target.abort_upload(upload)
        raise


def _send_part(
    target: MultipartUploads,
    upload: UploadSession,
    number: int,
    data: bytes,
    attempts: int,
    retry_delay: float,
    sleep: Callable[[float], None],
) -> None:
    for attempt in range(1, attempts + 1):
        try:
            target.upload_part(upload, number, data)
            return
        except ProviderError as exc:
            if not exc.retryable or attempt == attempts:
                raise
            sleep(retry_delay * 2 ** (attempt - 1))


def render_progress(progress: Progress) -> str:
    width = 30
    filled = width * progress.percent // 100
    eta = f"ETA {progress.eta:.0f}s" if progress.eta is not None else "ETA ?"
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {progress.percent:3d}% "
        f"{_mib(progress.done)}/{_mib(progress.total)} MiB {progress.rate / 2**20:.1f} MiB/s {eta}"
    )


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


def progress_annotation(progress: Progress) -> str:
    return f"{progress.done}/{progress.total}/{progress.rate:.0f}"


# -- the command ------------------------------------------------------------------------------


def _upload_source(name: str, namespace: str, spec: ImageSpec, size: int) -> UploadSource:
    source = spec.source.upload
    if source is None:
        raise UploadError(
            f"Image {namespace}/{name} has no spec.source.upload (its source is "
            f"{spec.source.kind()}): only upload images take a file"
        )
    if source.size_bytes is not None and source.size_bytes != size:
        raise UploadError(
            f"the file holds {size} bytes, but spec.source.upload.sizeBytes says "
            f"{source.size_bytes}: upload the right file or correct sizeBytes"
        )
    return source


def _provider(cluster: ImageCluster, spec: ImageSpec) -> Provider:
    provider, provider_spec = cluster.provider(spec)
    if provider.multipart_uploads is None and provider.placeholder_uploads is None:
        provider.close()
        raise UploadError(
            f"ImageProvider {spec.provider_ref.name!r} (type {provider_spec.type.value}) takes "
            "no uploads; upload into a ucloudstack or openstack provider"
        )
    return provider


def _clear_earlier(
    provider: Provider, target: MultipartUploads, request: ImageRequest, out: IO[str]
) -> None:
    existing: CloudImage | None = provider.find_image(request)
    if existing is None:
        return
    if not target.receiving_upload(existing):
        raise UploadError(
            f"Image {request.namespace}/{request.name} already has cloud image "
            f"{existing.external_id!r} ({existing.state.value}); delete the Image and create "
            "it again to upload another file"
        )
    # An earlier upload was killed before it could abort: its parts cannot be resumed without
    # its UploadID (the cloud never tells it again), so abort it and start over.
    print(f"aborting the unfinished earlier upload {existing.external_id}", file=out)
    provider.delete_image(existing.external_id)


def run(
    target_name: str,
    file: Path,
    *,
    namespace: str | None,
    part_bytes: int,
    out: IO[str] = sys.stderr,
) -> int:
    """The `upload` subcommand against the current kubeconfig."""
    if part_bytes < MIN_PART_BYTES:
        raise UploadError(f"--part-size must be at least {MIN_PART_BYTES} bytes (5 MiB)")
    if not file.is_file():
        raise UploadError(f"{file}: not a readable file")
    name = parse_target(target_name)
    cluster = connect(namespace)
    body = cluster.get("images", name)
    spec = ImageSpec.model_validate(body.get("spec") or {})
    source = _upload_source(name, cluster.namespace, spec, file.stat().st_size)
    provider = _provider(cluster, spec)
    uid = str(body["metadata"]["uid"])
    request = ImageRequest(idempotency_key=uid, name=name, namespace=cluster.namespace, spec=spec)
    last_note = 0.0

    def report(progress: Progress) -> None:
        nonlocal last_note
        print(f"\r{render_progress(progress)}", end="", file=out, flush=True)
        now = time.monotonic()
        if now - last_note >= 2.0 or progress.done == progress.total:
            last_note = now
            # Progress for `kubectl get img`: best effort, an upload never fails for it.
            with contextlib.suppress(ApiException):
                cluster.annotate(name, ANNOTATION_UPLOAD_PROGRESS, progress_annotation(progress))

    try:
        multipart = provider.multipart_uploads
        if multipart is not None:
            return _multipart(provider, multipart, request, source, file, part_bytes, report, out)
        placeholder = provider.placeholder_uploads
        assert placeholder is not None  # _provider refused providers with neither
        return _into_placeholder(provider, placeholder, request, source, file, report, out)
    finally:
        provider.close()


def _multipart(
    provider: Provider,
    target: MultipartUploads,
    request: ImageRequest,
    source: UploadSource,
    file: Path,
    part_bytes: int,
    report: ProgressCallback,
    out: IO[str],
) -> int:
    """ucloudstack: open a Local import, stream the parts, complete (or abort)."""
    if source.os is None:
        raise UploadError(
            "spec.source.upload.os is required for an upload into this provider (its import "
            "needs the OS type, distribution, version and arch)"
        )
    _clear_earlier(provider, target, request, out)
    size = file.stat().st_size
    upload = target.import_local(
        LocalImport(
            name=request.name,
            image_format=source.format.value,
            os=source.os,
            idempotency_key=request.idempotency_key,
            description=request.spec.description,
            size_gib=max(1, math.ceil(size / GIB)),
            tags=request.spec.tags,
            ucloudstack=request.spec.ucloudstack,
        )
    )
    print(f"uploading {file} ({_mib(size)} MiB) into cloud image {upload.image_id}", file=out)
    try:
        digest = stream_upload(
            target,
            upload,
            file,
            part_bytes=part_bytes,
            expected_sha256=source.checksum,
            progress=report,
        )
    except (KeyboardInterrupt, Cancelled):
        print(f"\ninterrupted: aborted the upload into {upload.image_id}", file=out)
        return 130
    print(f"\nuploaded; sha256 {digest}; the operator now watches the import", file=out)
    return 0


def _into_placeholder(
    provider: Provider,
    target: PlaceholderUploads,
    request: ImageRequest,
    source: UploadSource,
    file: Path,
    report: ProgressCallback,
    out: IO[str],
) -> int:
    """Glance: the operator made a queued image; send its data in one streamed PUT /file."""
    existing = provider.find_image(request)
    if existing is None:
        raise UploadError(
            f"the operator has not created the image for {request.namespace}/{request.name} "
            "in its provider yet: wait until `kubectl get img` shows it Creating, then run "
            "this again"
        )
    if source.checksum is not None:
        # A PUT cannot be taken back: check the file before the first byte leaves.
        actual = file_sha256(file)
        if actual != source.checksum:
            raise UploadError(
                f"the file's sha256 is {actual}, but spec.source.upload.checksum expects "
                f"{source.checksum}: upload the right file or correct the checksum"
            )
    size = file.stat().st_size
    print(f"uploading {file} ({_mib(size)} MiB) into image {existing.external_id}", file=out)
    try:
        digest = stream_into(target, existing.external_id, file, progress=report)
    except (KeyboardInterrupt, Cancelled):
        # Glance keeps the image queued when a PUT breaks off: running again resends.
        print(f"\ninterrupted: image {existing.external_id} still awaits its data", file=out)
        return 130
    print(f"\nuploaded; sha256 {digest}; the operator now watches the image", file=out)
    return 0
