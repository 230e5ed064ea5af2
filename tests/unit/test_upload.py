"""`image-operator upload`: streaming parts, retries, checksum, abort; and how the reconciler
waits for an upload and reports its progress."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from image_operator.api.common import ANNOTATION_EXTERNAL_ID, ANNOTATION_UPLOAD_PROGRESS
from image_operator.api.image import ImageFormat, OsInfo
from image_operator.imageaccess import CommandError, parse_target
from image_operator.providers.capabilities import (
    ExportedImage,
    ExportsImages,
    LocalImport,
    MultipartUploads,
    PlaceholderUploads,
    UploadSession,
)
from image_operator.providers.errors import Forbidden, ProviderError, Transient
from image_operator.providers.model import CloudImage, CloudState, Operation
from image_operator.reconcilers import outcome as outcome_module
from image_operator.reconcilers.copy import CopySource
from image_operator.upload import (
    Progress,
    UploadError,
    file_sha256,
    progress_annotation,
    render_progress,
    stream_into,
    stream_upload,
)
from tests.unit.fakes import FakeProvider
from tests.unit.test_image_reconciler import (
    UID,
    Harness,
    after,
    cond,
    make_obj,
    make_spec,
    reasons,
)

PART = 1024
UPLOAD = UploadSession(image_id="image-1", upload_id="up-1", bucket="mirror")


class FakeTarget(MultipartUploads):
    """A multipart endpoint in memory: records parts, completes or aborts, fails on demand."""

    def __init__(self) -> None:
        self.parts: dict[int, bytes] = {}
        self.attempts: list[int] = []
        self.failures: dict[int, list[ProviderError]] = {}
        self.completed = False
        self.aborted = False

    def import_local(self, request: LocalImport) -> UploadSession:
        return UPLOAD

    def upload_part(self, upload: UploadSession, part_number: int, data: bytes) -> str:
        assert upload == UPLOAD and not self.completed and not self.aborted
        self.attempts.append(part_number)
        pending = self.failures.get(part_number)
        if pending:
            raise pending.pop(0)
        self.parts[part_number] = bytes(data)
        return hashlib.md5(data).hexdigest()  # an ETag, as S3 makes it

    def complete_upload(self, upload: UploadSession) -> None:
        self.completed = True

    def abort_upload(self, upload: UploadSession) -> None:
        self.aborted = True

    def delete_image(self, external_id: str) -> None:
        raise AssertionError("not expected")

    def receiving_upload(self, image: CloudImage) -> bool:
        raise AssertionError("not expected")

    def assembled(self) -> bytes:
        return b"".join(self.parts[n] for n in sorted(self.parts))


def file_of(tmp_path: Path, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / "disk.qcow2"
    path.write_bytes(data)
    return path, data


def test_file_goes_in_numbered_parts_no_larger_than_the_part_size(tmp_path: Path) -> None:
    path, data = file_of(tmp_path, 3 * PART + 17)
    target = FakeTarget()
    seen: list[Progress] = []

    digest = stream_upload(target, UPLOAD, path, part_bytes=PART, progress=seen.append)

    assert sorted(target.parts) == [1, 2, 3, 4]
    assert [len(target.parts[n]) for n in (1, 2, 3, 4)] == [PART, PART, PART, 17]
    assert target.assembled() == data
    assert digest == hashlib.sha256(data).hexdigest()
    assert target.completed and not target.aborted
    assert [p.done for p in seen] == [PART, 2 * PART, 3 * PART, 3 * PART + 17]
    assert seen[-1].percent == 100 and {p.total for p in seen} == {len(data)}


def test_a_retryable_part_failure_is_retried_then_succeeds(tmp_path: Path) -> None:
    path, data = file_of(tmp_path, 2 * PART)
    target = FakeTarget()
    target.failures[2] = [Transient("connection reset"), Transient("503")]
    delays: list[float] = []

    stream_upload(target, UPLOAD, path, part_bytes=PART, retry_delay=0.5, sleep=delays.append)

    assert target.attempts == [1, 2, 2, 2]
    assert delays == [0.5, 1.0]  # backoff doubles
    assert target.assembled() == data and target.completed


def test_retries_run_out_and_the_upload_is_aborted(tmp_path: Path) -> None:
    path, _ = file_of(tmp_path, 2 * PART)
    target = FakeTarget()
    target.failures[1] = [Transient("down")] * 3

    with pytest.raises(Transient):
        stream_upload(target, UPLOAD, path, part_bytes=PART, attempts=3, sleep=lambda _: None)

    assert target.attempts == [1, 1, 1]
    assert target.aborted and not target.completed


def test_a_permanent_error_is_not_retried_and_aborts(tmp_path: Path) -> None:
    path, _ = file_of(tmp_path, 2 * PART)
    target = FakeTarget()
    target.failures[2] = [Forbidden("access denied")]

    with pytest.raises(Forbidden):
        stream_upload(target, UPLOAD, path, part_bytes=PART, sleep=lambda _: None)

    assert target.attempts == [1, 2]
    assert target.aborted and not target.completed


def test_a_checksum_mismatch_aborts_instead_of_completing(tmp_path: Path) -> None:
    path, data = file_of(tmp_path, PART + 1)
    target = FakeTarget()
    wrong = hashlib.sha256(data + b"x").hexdigest()

    with pytest.raises(UploadError, match=r"spec\.source\.upload\.checksum expects " + wrong):
        stream_upload(target, UPLOAD, path, part_bytes=PART, expected_sha256=wrong)

    assert target.aborted and not target.completed


def test_the_right_checksum_completes(tmp_path: Path) -> None:
    path, data = file_of(tmp_path, PART + 1)
    target = FakeTarget()
    stream_upload(
        target, UPLOAD, path, part_bytes=PART, expected_sha256=hashlib.sha256(data).hexdigest()
    )
    assert target.completed and not target.aborted


def test_an_interruption_mid_stream_aborts_the_upload(tmp_path: Path) -> None:
    path, _ = file_of(tmp_path, 4 * PART)
    target = FakeTarget()

    def interrupt(progress: Progress) -> None:
        if progress.done >= 2 * PART:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stream_upload(target, UPLOAD, path, part_bytes=PART, progress=interrupt)

    assert sorted(target.parts) == [1, 2]
    assert target.aborted and not target.completed


class FakePlaceholder(PlaceholderUploads):
    """Glance-like: takes an image's data as one streamed body."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def upload(self, external_id: str, data: Iterable[bytes], size: int) -> CloudImage:
        assert external_id == "glance-1"
        for block in data:
            self.received.append(bytes(block))
        assert sum(map(len, self.received)) == size
        return CloudImage(external_id=external_id, state=CloudState.CREATING)


def test_a_placeholder_upload_streams_megabyte_chunks_and_reports_progress(
    tmp_path: Path,
) -> None:
    path, data = file_of(tmp_path, 2 * 1024 * 1024 + 5)
    target = FakePlaceholder()
    seen: list[Progress] = []

    digest = stream_into(target, "glance-1", path, progress=seen.append)

    assert [len(b) for b in target.received] == [1024 * 1024, 1024 * 1024, 5]
    assert b"".join(target.received) == data
    assert digest == hashlib.sha256(data).hexdigest() == file_sha256(path)
    assert [p.percent for p in seen] == [49, 99, 100]


def test_progress_rate_eta_and_rendering() -> None:
    progress = Progress(done=64 * 2**20, total=256 * 2**20, elapsed=4.0)
    assert progress.percent == 25
    assert progress.rate == 16 * 2**20
    assert progress.eta == pytest.approx(12.0)
    text = render_progress(progress)
    assert " 25% 64.0/256.0 MiB 16.0 MiB/s ETA 12s" in text
    assert progress_annotation(progress) == f"{64 * 2**20}/{256 * 2**20}/{16 * 2**20}"
    assert Progress(0, 10, 0.0).eta is None


def test_parse_target_accepts_img_slash_name_and_rejects_other_kinds() -> None:
    assert parse_target("img/disk") == "disk"
    assert parse_target("images/disk") == "disk"
    assert parse_target("disk") == "disk"
    with pytest.raises(CommandError, match="expected img/NAME"):
        parse_target("bimg/disk")


# -- the reconciler side ----------------------------------------------------------------------

UPLOAD_SOURCE = {
    "upload": {
        "format": "qcow2",
        "os": OsInfo(type="Linux", distribution="Ubuntu", version="22.04").model_dump(
            by_alias=True
        ),
    }
}


class MultipartCloud(FakeProvider, MultipartUploads):
    """A fake cloud whose uploads the uploader opens (as ucloudstack's ImportImage Local)."""

    def import_local(self, request: LocalImport) -> UploadSession:
        raise AssertionError("only the CLI opens uploads")

    def upload_part(self, upload: UploadSession, part_number: int, data: bytes) -> str:
        raise AssertionError("only the CLI uploads parts")

    def complete_upload(self, upload: UploadSession) -> None:
        raise AssertionError("only the CLI completes uploads")

    def abort_upload(self, upload: UploadSession) -> None:
        raise AssertionError("only the CLI aborts uploads")

    def receiving_upload(self, image: CloudImage) -> bool:
        return image.state is CloudState.CREATING


def upload_harness() -> Harness:
    return Harness(provider=MultipartCloud())


def upload_obj(**changes: Any) -> Any:
    return make_obj(spec=make_spec(source=UPLOAD_SOURCE), **changes)


def test_an_upload_image_waits_for_the_cli_and_never_creates() -> None:
    h = upload_harness()
    outcome = h.reconcile(upload_obj())

    assert h.provider.names() == ["find_image"]
    assert outcome.status["phase"] == "WaitingForUpload"
    reconciling = cond(outcome, "Reconciling")
    assert (reconciling["status"], reconciling["reason"]) == ("True", "WaitingForUpload")
    assert "image-operator upload img/transcode FILE -n default" in reconciling["message"]
    assert "externalID" not in outcome.status
    assert outcome.requeue_after is not None


def test_the_uploaded_image_is_found_by_its_tag_and_progress_comes_from_the_annotation() -> None:
    h = upload_harness()
    obj = upload_obj()
    external_id = h.provider.seed(
        UID, spec=obj.spec, state=CloudState.CREATING, progress=0, external_id="image-up"
    )
    total = 200 * 2**20
    obj = replace(
        obj, annotations={ANNOTATION_UPLOAD_PROGRESS: f"{total // 2}/{total}/{10 * 2**20}"}
    )

    outcome = h.reconcile(obj)

    assert outcome.status["externalID"] == external_id
    assert "create_image" not in h.provider.names()
    assert reasons(outcome) == ["UploadStarted"]
    assert outcome.status["progress"] == 25  # half the bytes: half the transfer's 50%
    reconciling = cond(outcome, "Reconciling")
    assert reconciling["reason"] == "Uploading"
    assert "100.0 of 200.0 MiB uploaded, ETA 10s (25%)" in reconciling["message"]

    # Sent: the cloud imports; its own percentage wins once it is ahead.
    h.provider.advance(external_id, CloudState.CREATING, progress=70)
    done = replace(
        after(obj, outcome),
        annotations={ANNOTATION_UPLOAD_PROGRESS: f"{total}/{total}/{10 * 2**20}"},
    )
    outcome = h.reconcile(done)
    assert outcome.status["progress"] == 70
    importing = cond(outcome, "Reconciling")
    assert importing["reason"] == "Importing"
    assert "all 200.0 MiB uploaded (70%)" in importing["message"]

    h.provider.advance(external_id, CloudState.AVAILABLE, progress=100)
    outcome = h.reconcile(after(done, outcome))
    assert outcome.status["phase"] == "Ready" and outcome.status["progress"] == 100


def test_a_malformed_progress_annotation_is_ignored() -> None:
    h = upload_harness()
    obj = upload_obj(annotations={ANNOTATION_UPLOAD_PROGRESS: "lots/of/bytes"})
    h.provider.seed(UID, spec=obj.spec, state=CloudState.CREATING, progress=3)

    outcome = h.reconcile(obj)

    assert outcome.status["progress"] == 3
    assert cond(outcome, "Reconciling")["reason"] == "Creating"


def test_an_aborted_upload_sends_the_image_back_to_waiting() -> None:
    h = upload_harness()
    obj = upload_obj()
    external_id = h.provider.seed(UID, spec=obj.spec, state=CloudState.CREATING, progress=0)
    obj = after(obj, h.reconcile(obj))
    h.provider.vanish(external_id)  # the CLI was interrupted and aborted the upload

    outcome = h.reconcile(obj)
    assert "waiting for a new upload" in outcome.events[0].message
    outcome = h.reconcile(after(obj, outcome))
    assert outcome.status["phase"] == "WaitingForUpload"


def test_a_provider_that_takes_data_into_a_placeholder_still_gets_one_created() -> None:
    h = Harness()  # no import_local: e.g. Glance, whose uploader fills a queued image
    outcome = h.reconcile(upload_obj())

    assert h.provider.names() == ["find_image", "create_image"]
    assert outcome.status["externalID"] in h.provider.images


# -- spec.source.url.checksum: verified once, on the way to Ready -----------------------------

SHA = "a" * 64
URL_SOURCE = {"url": {"url": "https://example.com/disk.qcow2", "format": "qcow2", "checksum": SHA}}


class HashingProvider(FakeProvider):
    """A fake cloud that can read an image's file back: every image's sha256 is `sha256`."""

    def __init__(self, sha256: str) -> None:
        super().__init__()
        self.sha256 = sha256

    def image_sha256(self, external_id: str) -> str:
        self.calls.append(("image_sha256", (external_id,)))
        return self.sha256


def url_ready(h: Harness) -> tuple[Any, Any]:
    obj = make_obj(spec=make_spec(source=URL_SOURCE))
    outcome = h.reconcile(obj)
    h.provider.advance(outcome.status["externalID"], CloudState.AVAILABLE, 100)
    obj = after(obj, outcome)
    return obj, h.reconcile(obj)


def test_a_matching_url_checksum_is_verified_once_then_ready() -> None:
    h = Harness(provider=HashingProvider(SHA))
    obj, outcome = url_ready(h)

    assert outcome.status["phase"] == "Ready"
    assert reasons(outcome) == ["ChecksumVerified", "Ready"]
    assert len(h.provider.calls_to("image_sha256")) == 1
    h.reconcile(after(obj, outcome))
    assert len(h.provider.calls_to("image_sha256")) == 1  # not once per poll


def test_a_url_checksum_mismatch_stalls_and_names_both_sums_and_the_field() -> None:
    bad = "b" * 64
    h = Harness(provider=HashingProvider(bad))
    obj, outcome = url_ready(h)

    assert outcome.status["phase"] == "Failed"
    stalled = cond(outcome, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "ChecksumMismatch")
    assert f"sha256 is {bad}, but spec.source.url.checksum expects {SHA}" in stalled["message"]
    assert cond(outcome, "Ready")["status"] == "False"
    assert reasons(outcome) == ["ChecksumMismatch"]

    again = h.reconcile(after(obj, outcome))
    assert again.status["phase"] == "Failed" and again.events == []
    assert len(h.provider.calls_to("image_sha256")) == 1  # known bad: no second download


def test_a_provider_that_cannot_read_files_back_says_the_checksum_was_not_verified() -> None:
    h = Harness()  # FakeProvider: image_sha256 is the base class's Unsupported
    _, outcome = url_ready(h)

    assert outcome.status["phase"] == "Ready"
    assert reasons(outcome) == ["ChecksumNotVerified", "Ready"]
    assert "spec.source.url.checksum was not verified" in outcome.events[0].message
    assert outcome.events[0].type == "Warning"


# -- spec.source.image: a copy across providers -----------------------------------------------


class ExportingCloud(FakeProvider, ExportsImages):
    """A source cloud that hands out download URLs (as ucloudstack's GetImageDownloadURL)."""

    type_name = "exporter"

    def export_image(self, external_id: str) -> ExportedImage:
        self.calls.append(("export_image", (external_id,)))
        return ExportedImage(
            url=f"https://dl.example.com/{external_id}?Signature=s3cr3t", format=ImageFormat.QCOW2
        )


class RecordingImporter(FakeProvider):
    """The target: remembers the spec of each create, to check what it was asked to import."""

    def __init__(self) -> None:
        super().__init__()
        self.created: list[Any] = []

    def create_image(self, request: Any) -> Any:
        self.created.append(request.spec)
        return super().create_image(request)


COPY_SOURCE = {"image": {"imageRef": {"name": "src"}}}


def copy_obj() -> Any:
    return make_obj(spec=make_spec(source=COPY_SOURCE))


def test_a_copy_waits_until_its_source_is_ready() -> None:
    h = Harness()
    source = CopySource("src", provider_name="other", external_id=None, ready=False)
    outcome = h.reconciler.reconcile(copy_obj(), h.handle, 0, source)

    waiting = cond(outcome, "Reconciling")
    assert waiting["reason"] == "WaitingForSource"
    assert "Image 'src', which is not Ready yet" in waiting["message"]
    assert h.provider.names() == []


def test_a_missing_source_is_named_in_the_wait() -> None:
    h = Harness()
    problem = "spec.source.image.imageRef names Image 'src', which does not exist"
    outcome = h.reconciler.reconcile(copy_obj(), h.handle, 0, CopySource("src", problem=problem))
    assert cond(outcome, "Reconciling")["message"] == problem


def test_a_copy_across_providers_imports_the_sources_download_url_and_records_both_sides() -> None:
    target = RecordingImporter()
    h = Harness(provider=target)
    exporter = ExportingCloud()
    exporter.seed("other-uid", spec=make_spec(), external_id="image-src")
    source = CopySource(
        "src",
        provider_name="dc1",
        external_id="image-src",
        ready=True,
        exporter=exporter,
        exporter_label="exporter provider 'dc1'",
    )

    outcome = h.reconciler.reconcile(copy_obj(), h.handle, 0, source)

    (spec,) = target.created
    assert spec.source.url.url == "https://dl.example.com/image-src?Signature=s3cr3t"
    assert spec.source.url.format.value == "qcow2"
    assert outcome.status["copiedFrom"] == {
        "image": "src",
        "provider": "dc1",
        "externalID": "image-src",
    }
    assert reasons(outcome)[0] == "Copying"
    assert "Signature" not in " ".join(e.message for e in outcome.events)  # no URL secrets


def test_a_copy_within_one_provider_uses_its_copy_api_once() -> None:
    h = Harness()
    source_id = h.provider.seed("other-uid", spec=make_spec())
    source = CopySource("src", provider_name="fake", external_id=source_id, ready=True)

    outcome = h.reconciler.reconcile(copy_obj(), h.handle, 0, source)

    ((key, copied_from),) = h.provider.calls_to("copy_within")
    assert copied_from == source_id
    assert "create_image" not in h.provider.names()  # no export, no import
    copy_id = outcome.status["externalID"]
    assert copy_id != source_id and h.provider.images[copy_id].key == key
    assert outcome.status["copiedFrom"] == {
        "image": "src",
        "provider": "fake",
        "externalID": source_id,
    }
    assert "within fake provider 'fake'" in outcome.events[0].message
    # The status write was lost: the next step finds the copy instead of copying again.
    h.provider.reset_calls()
    again = h.reconciler.reconcile(copy_obj(), h.handle, 0, source)
    assert again.status["externalID"] == copy_id
    assert h.provider.calls_to("copy_within") == []
    assert "Recovered" in reasons(again)


def test_a_copy_within_a_provider_without_a_copy_api_stalls_as_unsupported() -> None:
    h = Harness(provider=FakeProvider([o for o in Operation if o is not Operation.COPY]))
    source = CopySource("src", provider_name="fake", external_id="image-1", ready=True)
    outcome = h.reconciler.reconcile(copy_obj(), h.handle, 0, source)

    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "Unsupported"
    assert "provider type 'fake' cannot copy an image" in stalled["message"]


PIPELINE_SOURCE = {"pipeline": {"pipelineRef": {"name": "nightly"}, "runID": "exec-1"}}


def test_a_pipeline_built_image_is_never_created_and_says_how_to_adopt() -> None:
    h = Harness()
    outcome = h.reconciler.reconcile(make_obj(spec=make_spec(source=PIPELINE_SOURCE)), h.handle)

    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "NotBuiltHere"
    assert "ImagePipeline 'nightly'" in stalled["message"]
    assert "imageops.io/external-id" in stalled["message"]
    assert h.provider.names() == []


def test_a_pipeline_built_image_adopts_the_annotated_image() -> None:
    h = Harness()
    built = h.provider.seed("pipeline-run", spec=make_spec())
    obj = make_obj(
        spec=make_spec(source=PIPELINE_SOURCE),
        annotations={ANNOTATION_EXTERNAL_ID: built},
    )
    outcome = h.reconciler.reconcile(obj, h.handle)
    assert outcome.status["externalID"] == built
    assert "Adopted" in reasons(outcome)
    assert "create_image" not in h.provider.names()


def test_a_source_provider_without_downloads_stalls_naming_the_field() -> None:
    h = Harness()
    source = CopySource(
        "src",
        provider_name="dc1",
        external_id="image-src",
        ready=True,
        exporter=FakeProvider().exporter,  # a provider without downloads
        exporter_label="fake provider 'dc1'",
    )
    outcome = h.reconciler.reconcile(copy_obj(), h.handle, 0, source)

    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "Unsupported"
    assert "spec.source.image.imageRef names Image 'src'" in stalled["message"]
    assert "cannot export images" in stalled["message"]


# -- an ETA for every long operation ----------------------------------------------------------


def test_progress_of_a_capture_carries_an_eta_extrapolated_from_time_spent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = Harness()
    obj = make_obj(spec=make_spec(source={"vm": {"vmID": "vm-1"}}))
    monkeypatch.setattr(outcome_module, "now_rfc3339", lambda: "2026-01-01T00:00:00Z")
    outcome = h.reconcile(obj)  # Reconciling turns True at 00:00:00
    external_id = outcome.status["externalID"]

    h.provider.advance(external_id, CloudState.CREATING, progress=25)
    monkeypatch.setattr(outcome_module, "now_rfc3339", lambda: "2026-01-01T00:00:30Z")
    outcome = h.reconcile(after(obj, outcome))

    # 25 % in 30 s: 75 % more takes 90 s.
    assert "(25%), ETA 90s" in cond(outcome, "Reconciling")["message"]
    assert outcome.status["progress"] == 25
