"""Optional provider abilities: declared by name, handed out measured by the instrumenting
wrapper, and usable by the reconcilers through it on every Python.

The wrapper once forwarded vendor calls with `__getattr__` and the reconcilers asked
`isinstance(provider, SomeRuntimeProtocol)`: from Python 3.12 that check no longer sees
`__getattr__`, so uploads and copies broke behind the wrapper (the unit tests used unwrapped
fakes and never noticed). These tests drive each ability through `InstrumentedProvider`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import pytest
from prometheus_client import REGISTRY

from image_operator.api.image import ImageFormat, OsInfo
from image_operator.api.pipeline import ImagePipelineSpec
from image_operator.providers.base import Provider
from image_operator.providers.capabilities import (
    BaseImageInfo,
    BaseImages,
    CopiesWithin,
    ExportedImage,
    ExportsImages,
    LocalImport,
    MultipartUploads,
    PlaceholderUploads,
    UploadSession,
)
from image_operator.providers.instrumented import InstrumentedProvider
from image_operator.providers.model import CloudImage, CloudState, ImageRequest
from image_operator.providers.observer import ImageObserver
from image_operator.providers.pipelines import (
    BuildsPipelines,
    PipelineBuild,
    PipelineExecution,
    PipelineInfo,
)
from image_operator.providers.publishing import Listing, Publication, Publishes, PublishRequest
from image_operator.reconcilers.copy import CopySource
from image_operator.reconcilers.image import ImageReconciler
from image_operator.reconcilers.managed import ProviderHandle
from tests.unit.fakes import FakeProvider
from tests.unit.test_image_reconciler import BACKOFF, UID, make_obj, make_spec

SESSION = UploadSession(image_id="image-up", upload_id="u-1", bucket="b")
EXECUTION = PipelineExecution(execution_id="exec-1", pipeline_id="ipl-1", status="BUILDING")


class EveryAbility(
    FakeProvider,
    ExportsImages,
    MultipartUploads,
    PlaceholderUploads,
    BaseImages,
    Publishes,
    BuildsPipelines,
):
    """A provider that declares every optional ability, each call answering a fixed value."""

    type_name = "every"

    def export_image(self, external_id: str) -> ExportedImage:
        return ExportedImage(url=f"https://dl/{external_id}", format=ImageFormat.RAW)

    def import_local(self, request: LocalImport) -> UploadSession:
        return SESSION

    def upload_part(self, upload: UploadSession, part_number: int, data: bytes) -> str:
        return f"etag-{part_number}"

    def complete_upload(self, upload: UploadSession) -> None:
        self.calls.append(("complete_upload", (upload.image_id,)))

    def abort_upload(self, upload: UploadSession) -> None:
        self.calls.append(("abort_upload", (upload.image_id,)))

    def receiving_upload(self, image: CloudImage) -> bool:
        return image.state is CloudState.CREATING

    def upload(self, external_id: str, data: Iterable[bytes], size: int) -> CloudImage:
        return CloudImage(external_id=external_id, state=CloudState.CREATING)

    def clone_to_base_image(self, source_image_id: str, name: str) -> str:
        return f"base-{source_image_id}"

    def describe_base_images(self, image_ids: Iterable[str] | None = None) -> list[BaseImageInfo]:
        return [BaseImageInfo(image_id=i, name="n") for i in image_ids or []]

    def delete_base_image(self, image_id: str) -> None:
        self.calls.append(("delete_base_image", (image_id,)))

    def clone_source(self, image: CloudImage) -> str | None:
        return None

    def find_clone(self, name: str, source_id: str) -> CloudImage | None:
        return None

    def container_made(self, image: CloudImage) -> bool:
        return True

    def publication_copy_name(self, request: ImageRequest) -> str:
        return f"copy-{request.name}"

    def copy_image(self, external_id: str, target_name: str | None = None) -> str:
        return f"copy-of-{external_id}"

    def publish(self, image_id: str, request: PublishRequest) -> None:
        self.calls.append(("publish", (image_id, request.version_name)))

    def describe_publication(self, image_id: str) -> Publication | None:
        return None

    def describe_listing(self, group_id: str) -> Listing:
        return Listing(group_id=group_id, name="l", published=False, versions=[])

    def pipeline_fingerprint(self, build: PipelineBuild) -> str:
        return "f" * 16

    def pipeline_client_token(self, purpose: str, key: str) -> str:
        return f"{purpose}-{key}"

    def create_pipeline(self, build: PipelineBuild, *, client_token: str) -> str:
        return "ipl-1"

    def start_pipeline_execution(
        self,
        pipeline_id: str,
        *,
        client_token: str | None = None,
        tags: Iterable[tuple[str, str]] = (),
    ) -> str:
        return "exec-1"

    def describe_pipeline_executions(
        self,
        *,
        pipeline_id: str | None = None,
        execution_id: str | None = None,
        statuses: Iterable[str] = (),
    ) -> list[PipelineExecution]:
        return [EXECUTION]

    def get_pipeline_execution(self, execution_id: str) -> PipelineExecution:
        return EXECUTION

    def cancel_pipeline_execution(self, execution_id: str) -> None:
        self.calls.append(("cancel_pipeline_execution", (execution_id,)))

    def delete_pipeline(self, pipeline_id: str) -> None:
        self.calls.append(("delete_pipeline", (pipeline_id,)))

    def describe_pipelines(
        self, pipeline_ids: Sequence[str] = (), *, name: str | None = None
    ) -> list[PipelineInfo]:
        return [PipelineInfo(pipeline_id=i) for i in pipeline_ids]


def calls_counted(provider: str, action: str) -> float:
    value = REGISTRY.get_sample_value(
        "imageops_cloud_requests_total",
        {"provider": provider, "action": action, "outcome": "ok"},
    )
    return value or 0.0


def _request() -> ImageRequest:
    return ImageRequest(idempotency_key=UID, name="web", namespace="ns", spec=make_spec())


BUILD = PipelineBuild(
    name="ipl",
    spec=ImagePipelineSpec.model_validate(
        {"providerRef": {"name": "ecs"}, "baseImage": {"id": "m-1"}, "buildContent": "RUN true"}
    ),
)

# One call per cloud-calling method of each ability, through the wrapper: (action, call).
MEASURED: list[tuple[str, Callable[[Provider], object]]] = [
    ("copy_within", lambda p: p.copier and p.copier.copy_within(_request(), "src")),
    ("export_image", lambda p: p.exporter and p.exporter.export_image("img-1")),
    (
        "import_local",
        lambda p: (
            p.multipart_uploads
            and p.multipart_uploads.import_local(
                LocalImport(
                    name="n",
                    image_format="qcow2",
                    os=OsInfo(type="Linux", distribution="Ubuntu", version="22.04"),
                    idempotency_key=UID,
                )
            )
        ),
    ),
    (
        "upload_part",
        lambda p: p.multipart_uploads and p.multipart_uploads.upload_part(SESSION, 1, b"x"),
    ),
    (
        "complete_upload",
        lambda p: p.multipart_uploads and p.multipart_uploads.complete_upload(SESSION),
    ),
    ("abort_upload", lambda p: p.multipart_uploads and p.multipart_uploads.abort_upload(SESSION)),
    ("upload", lambda p: p.placeholder_uploads and p.placeholder_uploads.upload("i", [b"x"], 1)),
    (
        "clone_to_base_image",
        lambda p: p.base_images and p.base_images.clone_to_base_image("i", "n"),
    ),
    ("describe_base_images", lambda p: p.base_images and p.base_images.describe_base_images(["b"])),
    ("delete_base_image", lambda p: p.base_images and p.base_images.delete_base_image("b")),
    ("find_clone", lambda p: p.base_images and p.base_images.find_clone("n", "i")),
    ("copy_image", lambda p: p.publisher and p.publisher.copy_image("i", "n")),
    (
        "publish",
        lambda p: p.publisher and p.publisher.publish("i", PublishRequest(version_name="v1")),
    ),
    ("describe_publication", lambda p: p.publisher and p.publisher.describe_publication("i")),
    ("describe_listing", lambda p: p.publisher and p.publisher.describe_listing("g")),
    (
        "create_pipeline",
        lambda p: p.pipelines and p.pipelines.create_pipeline(BUILD, client_token="t"),
    ),
    (
        "start_pipeline_execution",
        lambda p: p.pipelines and p.pipelines.start_pipeline_execution("ipl-1"),
    ),
    (
        "describe_pipeline_executions",
        lambda p: p.pipelines and p.pipelines.describe_pipeline_executions(),
    ),
    ("get_pipeline_execution", lambda p: p.pipelines and p.pipelines.get_pipeline_execution("e")),
    (
        "cancel_pipeline_execution",
        lambda p: p.pipelines and p.pipelines.cancel_pipeline_execution("e"),
    ),
    ("delete_pipeline", lambda p: p.pipelines and p.pipelines.delete_pipeline("ipl-1")),
    ("describe_pipelines", lambda p: p.pipelines and p.pipelines.describe_pipelines(["ipl-1"])),
]


@pytest.mark.parametrize(("action", "call"), MEASURED, ids=[a for a, _ in MEASURED])
def test_every_ability_is_reachable_and_measured_through_the_wrapper(
    action: str, call: Callable[[Provider], object]
) -> None:
    inner = EveryAbility()
    inner.seed("other-uid", spec=make_spec(), external_id="src")  # what copy_within copies
    wrapped = InstrumentedProvider(inner)
    before = calls_counted("every", action)

    call(wrapped)

    assert calls_counted("every", action) == before + 1


def test_the_wrapper_hands_out_no_ability_the_provider_lacks() -> None:
    wrapped = InstrumentedProvider(FakeProvider())  # declares CopiesWithin only
    assert wrapped.copier is not None
    absent = (
        wrapped.exporter,
        wrapped.multipart_uploads,
        wrapped.placeholder_uploads,
        wrapped.base_images,
        wrapped.publisher,
        wrapped.pipelines,
    )
    assert absent == (None, None, None, None, None, None)


def test_local_judgements_are_forwarded_but_not_counted_as_cloud_calls() -> None:
    wrapped = InstrumentedProvider(EveryAbility())
    uploads, publisher, pipelines = wrapped.multipart_uploads, wrapped.publisher, wrapped.pipelines
    assert uploads is not None and publisher is not None and pipelines is not None
    creating = CloudImage(external_id="i", state=CloudState.CREATING)

    assert uploads.receiving_upload(creating) is True
    assert publisher.container_made(creating) is True
    assert publisher.publication_copy_name(_request()) == "copy-web"
    assert pipelines.pipeline_fingerprint(BUILD) == "f" * 16
    assert pipelines.pipeline_client_token("run", "k") == "run-k"
    for action in ("receiving_upload", "container_made", "pipeline_fingerprint"):
        assert calls_counted("every", action) == 0


def _wrapped_handle(inner: FakeProvider) -> ProviderHandle:
    wrapped = InstrumentedProvider(inner)
    return ProviderHandle("fake", wrapped, ImageObserver(wrapped, max_age=5.0), poll_interval=7.0)


def test_an_image_copy_within_a_provider_works_behind_the_wrapper() -> None:
    cloud = FakeProvider()
    source_id = cloud.seed("other-uid", spec=make_spec())
    handle = _wrapped_handle(cloud)
    obj = make_obj(spec=make_spec(source={"image": {"imageRef": {"name": "src"}}}))
    source = CopySource("src", provider_name="fake", external_id=source_id, ready=True)

    outcome = ImageReconciler(BACKOFF).reconcile(obj, handle, 0, source)

    assert [args[1] for args in cloud.calls_to("copy_within")] == [source_id]
    assert outcome.status["externalID"] in cloud.images


def test_an_upload_image_waits_for_the_cli_behind_the_wrapper() -> None:
    cloud = EveryAbility()  # its uploads are multipart: the CLI opens them, never create_image
    handle = _wrapped_handle(cloud)
    upload = {
        "upload": {
            "format": "qcow2",
            "os": {"type": "Linux", "distribution": "Ubuntu", "version": "22.04"},
        }
    }
    obj = make_obj(spec=make_spec(source=upload))

    outcome = ImageReconciler(BACKOFF).reconcile(obj, handle, 0)

    assert outcome.status["phase"] == "WaitingForUpload"
    assert "create_image" not in cloud.names()


def test_abilities_are_declared_on_the_interface_not_found_by_shape() -> None:
    """A class with the right method but no declaration is not a copier: what counts is the
    declared interface, which behaves the same on Python 3.11, 3.12 and 3.13."""

    class LooksLikeAnExporter(FakeProvider):
        def export_image(self, external_id: str) -> ExportedImage:
            raise AssertionError("never called: not declared")

    assert LooksLikeAnExporter().exporter is None
    assert isinstance(EveryAbility().exporter, ExportsImages)
    assert InstrumentedProvider(LooksLikeAnExporter()).exporter is None


def test_the_copier_of_a_wrapped_provider_is_a_copies_within() -> None:
    copier = InstrumentedProvider(FakeProvider()).copier
    assert isinstance(copier, CopiesWithin)
    assert not isinstance(copier, Provider)  # a forwarder of one ability, not the provider
