"""The `aliyun` provider: Alibaba Cloud ECS through its official SDK, `alibabacloud_ecs20140526`.

Images: an `Image` with a `url` source is imported with ImportImage from OSS (the URL names the
bucket and object, see `oss_location`); `copy_image` copies a known image ID with CopyImage
(the Image reconciler does not resolve a source `Image` to its cloud ID yet, so `image`
sources are not offered through `create_image`). Every create carries a `ClientToken` derived
from the Kubernetes UID and the tag `imageops.io/uid=<UID>`; `find_image` looks the tag up, so
a create whose answer was lost is found again instead of repeated. Polls describe up to 100
images per DescribeImages call.

Pipelines (seed 004): typed methods for the ImagePipeline controller: create (every seed field,
ClientToken), start, describe executions (with per-region and per-account results), cancel,
delete, describe; and image share permissions.

The SDK signs (ACS3-HMAC-SHA256), serialises and parses; this module only maps the operator's
model onto its request models (`aliyun_images`, `aliyun_pipelines`) and its errors onto the
provider error set (`aliyun_errors.map_error`).
SDK retries stay off: the reconcilers own retrying, with backoff.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import urlsplit

from alibabacloud_ecs20140526 import models as ecs  # type: ignore[import-untyped]
from alibabacloud_ecs20140526.client import Client as EcsClient  # type: ignore[import-untyped]
from alibabacloud_tea_openapi.utils_models import Config  # type: ignore[import-untyped]
from darabonba.runtime import RuntimeOptions  # type: ignore[import-untyped]

from image_operator.api.image import UrlSource
from image_operator.providers.aliyun_errors import map_error
from image_operator.providers.aliyun_images import (
    ARCHITECTURES,
    FORMATS,
    STATES,
    client_token,
    cloud_name,
    image_tags,
    oss_location,
    sdk_tags,
    uid_tag,
)
from image_operator.providers.aliyun_pipelines import (
    PipelineTemplate,
    execution_from_row,
    pipeline_info_from_row,
    pipeline_request,
    pipeline_template,
    template_hash,
)
from image_operator.providers.aliyun_transport import refuse_redirects
from image_operator.providers.base import Provider
from image_operator.providers.capabilities import CopiesWithin
from image_operator.providers.errors import InvalidInput, NotFound, Unsupported
from image_operator.providers.model import (
    CloudImage,
    CloudState,
    ImageMatch,
    ImageRequest,
    ImageSelector,
    Operation,
)
from image_operator.providers.pipelines import (
    BuildsPipelines,
    PipelineBuild,
    PipelineExecution,
    PipelineInfo,
)
from image_operator.providers.ratelimit import TokenBucket

if TYPE_CHECKING:
    from image_operator.providers.factory import ProviderConfig

T = TypeVar("T")

DESCRIBE_BATCH: Final = 100  # ImageIds per DescribeImages call (ECS's limit)
SHARE_BATCH: Final = 10  # AddAccount.N / RemoveAccount.N per ModifyImageSharePermission


class AliyunProvider(Provider, CopiesWithin, BuildsPipelines):
    type_name = "aliyun"
    operations = frozenset({Operation.IMPORT_URL, Operation.COPY, Operation.DELETE})

    def __init__(
        self,
        *,
        client: EcsClient,
        region: str,
        endpoint: str | None = None,
        limiter: TokenBucket | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.region = region
        self.endpoint = endpoint
        self._client = client
        self._limiter = limiter
        self._runtime = RuntimeOptions(
            read_timeout=int(timeout * 1000), connect_timeout=int(min(timeout, 10.0) * 1000)
        )

    def _call(self, action: str, method: Callable[[Any, Any], Any], request: Any) -> Any:
        """One SDK call (its `…_with_options` method): rate-limited, errors mapped."""
        if self._limiter is not None:
            self._limiter.acquire()
        try:
            return method(request, self._runtime).body
        except Exception as exc:
            raise map_error(action, exc) from None

    # -- images --

    def _cloud_image(self, image: Any) -> CloudImage:
        status = str(image.status or "")
        state = STATES.get(status, CloudState.CREATING)
        progress = None
        if isinstance(image.progress, str) and image.progress.rstrip("%").isdigit():
            progress = min(100, int(image.progress.rstrip("%")))
        message = None
        if state is CloudState.FAILED:
            message = f"ECS reports the image as {status}"
        return CloudImage(
            external_id=str(image.image_id),
            state=state,
            progress=progress,
            message=message,
            raw=image.to_map(),
        )

    def _describe(self, **fields: Any) -> list[Any]:
        request = ecs.DescribeImagesRequest(
            region_id=self.region,
            image_owner_alias="self",
            status="ALL",  # ECS shows only Available images unless asked
            page_size=DESCRIBE_BATCH,
            **fields,
        )
        images: list[Any] = []
        page = 1
        while True:
            request.page_number = page
            body = self._call("DescribeImages", self._client.describe_images_with_options, request)
            batch = list((body.images.image if body.images else None) or [])
            images += batch
            if len(batch) < DESCRIBE_BATCH or len(images) >= (body.total_count or 0):
                return images
            page += 1

    def probe(self) -> str:
        body = self._call(
            "DescribeRegions",
            self._client.describe_regions_with_options,
            ecs.DescribeRegionsRequest(),
        )
        regions = [r.region_id for r in ((body.regions.region if body.regions else None) or [])]
        if self.region not in regions:
            raise InvalidInput(
                f"spec.region {self.region!r} is not an ECS region of this endpoint; "
                f"available: {', '.join(regions)}"
            )
        where = self.endpoint or "the public ECS endpoint"
        return f"aliyun ECS at {where}: region {self.region} ({len(regions)} regions)"

    def create_image(self, request: ImageRequest) -> CloudImage:
        source = request.spec.source
        self.require_source(source.kind())
        if source.url is None:
            # A copy needs its source's image ID, which only the reconciler knows.
            raise Unsupported(
                f"provider type aliyun creates images from spec.source.url; an Image with "
                f"spec.source.{source.kind()} is made by copy_within, not create_image"
            )
        return self.import_image(request, source.url)

    def import_image(self, request: ImageRequest, url: UrlSource) -> CloudImage:
        """ImportImage from the OSS object `url` names; idempotent by ClientToken."""
        location = oss_location(url.url, self.endpoint)
        if location.region is not None and location.region != self.region:
            raise InvalidInput(
                f"spec.source.url.url is in OSS region {location.region}, but ECS imports only "
                f"from the provider's region ({self.region}): copy the object there"
            )
        fmt = FORMATS.get(url.format)
        if fmt is None:
            raise InvalidInput(
                f"ECS cannot import {url.format.value} files; use qcow2, raw, vhd or vmdk"
            )
        os_info = url.os
        call = ecs.ImportImageRequest(
            region_id=self.region,
            client_token=client_token("import", request.idempotency_key),
            image_name=cloud_name(request),
            description=request.spec.description,
            disk_device_mapping=[
                ecs.ImportImageRequestDiskDeviceMapping(
                    ossbucket=location.bucket, ossobject=location.key, format=fmt
                )
            ],
            ostype=os_info.type.lower() if os_info else None,
            platform=os_info.distribution if os_info else None,
            architecture=ARCHITECTURES.get(os_info.arch, os_info.arch) if os_info else None,
            tag=sdk_tags(ecs.ImportImageRequestTag, image_tags(request)),
        )
        body = self._call("ImportImage", self._client.import_image_with_options, call)
        return CloudImage(external_id=str(body.image_id), state=CloudState.PENDING, progress=0)

    def copy_image(
        self, request: ImageRequest, source_image_id: str, source_region: str | None = None
    ) -> CloudImage:
        """CopyImage of a known image into this provider's region; idempotent by ClientToken,
        and the copy carries the request's UID tag, so `find_image` finds it too."""
        call = ecs.CopyImageRequest(
            region_id=source_region or self.region,
            image_id=source_image_id,
            destination_region_id=self.region,
            destination_image_name=cloud_name(request),
            destination_description=request.spec.description,
            client_token=client_token("copy", request.idempotency_key),
            tag=sdk_tags(ecs.CopyImageRequestTag, image_tags(request)),
        )
        body = self._call("CopyImage", self._client.copy_image_with_options, call)
        return CloudImage(external_id=str(body.image_id), state=CloudState.PENDING, progress=0)

    def copy_within(self, request: ImageRequest, source_external_id: str) -> CloudImage:
        """`spec.source.image` naming an image of this provider: a same-region CopyImage."""
        self.require(Operation.COPY)
        return self.copy_image(request, source_external_id)

    def find_image(self, request: ImageRequest) -> CloudImage | None:
        key, value = uid_tag(request)
        found = self._describe(tag=[ecs.DescribeImagesRequestTag(key=key, value=value)])
        if not found:
            return None
        images = [self._cloud_image(image) for image in found]
        # A failed attempt and a later good one may both carry the key: prefer the good one.
        images.sort(key=lambda image: image.state is CloudState.FAILED)
        return images[0]

    def get_image(self, external_id: str) -> CloudImage:
        found = self.get_images([external_id]).get(external_id)
        if found is None:
            raise NotFound(f"aliyun ECS has no image {external_id!r} in region {self.region}")
        return found

    def get_images(self, external_ids: Iterable[str]) -> dict[str, CloudImage | None]:
        wanted = list(dict.fromkeys(external_ids))
        result: dict[str, CloudImage | None] = dict.fromkeys(wanted)
        for start in range(0, len(wanted), DESCRIBE_BATCH):
            batch = wanted[start : start + DESCRIBE_BATCH]
            for image in self._describe(image_id=",".join(batch)):
                cloud = self._cloud_image(image)
                if cloud.external_id in result:
                    result[cloud.external_id] = cloud
        return result

    def needs_update(self, request: ImageRequest, current: CloudImage) -> bool:
        # Name and description are fixed at import; nothing else of the spec lives in ECS.
        return False

    def update_image(self, external_id: str, request: ImageRequest) -> CloudImage:
        self.require(Operation.UPDATE)
        raise AssertionError("unreachable: aliyun does not offer updates")  # pragma: no cover

    def delete_image(self, external_id: str) -> None:
        self.require(Operation.DELETE)
        self._call(
            "DeleteImage",
            self._client.delete_image_with_options,
            ecs.DeleteImageRequest(region_id=self.region, image_id=external_id),
        )

    def modify_image_share_permission(
        self,
        image_id: str,
        *,
        add_accounts: Sequence[int | str] = (),
        remove_accounts: Sequence[int | str] = (),
        is_public: bool | None = None,
    ) -> None:
        """Share an image with accounts (or stop sharing), ten accounts per call."""
        adds = [str(a) for a in add_accounts]
        removes = [str(a) for a in remove_accounts]
        first = True
        while first or adds or removes:
            first = False
            self._call(
                "ModifyImageSharePermission",
                self._client.modify_image_share_permission_with_options,
                ecs.ModifyImageSharePermissionRequest(
                    region_id=self.region,
                    image_id=image_id,
                    add_account=adds[:SHARE_BATCH] or None,
                    remove_account=removes[:SHARE_BATCH] or None,
                    is_public=is_public,
                ),
            )
            adds, removes = adds[SHARE_BATCH:], removes[SHARE_BATCH:]

    # -- pipelines --

    def pipeline_fingerprint(self, build: PipelineBuild) -> str:
        return template_hash(pipeline_template(build))

    def pipeline_client_token(self, purpose: str, key: str) -> str:
        return client_token(purpose, key)

    def create_pipeline(self, build: PipelineBuild, *, client_token: str) -> str:
        """CreateImagePipeline for the template `build` makes."""
        return self.create_pipeline_from_template(
            pipeline_template(build), client_token=client_token
        )

    def create_pipeline_from_template(
        self, template: PipelineTemplate, *, client_token: str
    ) -> str:
        """CreateImagePipeline; the same `client_token` with the same template returns the
        same ID, with a different template raises Conflict."""
        request = pipeline_request(self.region, template, client_token)
        body = self._call(
            "CreateImagePipeline", self._client.create_image_pipeline_with_options, request
        )
        return str(body.image_pipeline_id)

    def start_pipeline_execution(
        self,
        pipeline_id: str,
        *,
        client_token: str | None = None,
        tags: Iterable[tuple[str, str]] = (),
    ) -> str:
        request = ecs.StartImagePipelineExecutionRequest(
            region_id=self.region,
            image_pipeline_id=pipeline_id,
            client_token=client_token,
            tag=sdk_tags(ecs.StartImagePipelineExecutionRequestTag, tags) or None,
        )
        body = self._call(
            "StartImagePipelineExecution",
            self._client.start_image_pipeline_execution_with_options,
            request,
        )
        return str(body.execution_id)

    def describe_pipeline_executions(
        self,
        *,
        pipeline_id: str | None = None,
        execution_id: str | None = None,
        statuses: Iterable[str] = (),
    ) -> list[PipelineExecution]:
        request = ecs.DescribeImagePipelineExecutionsRequest(
            region_id=self.region,
            image_pipeline_id=pipeline_id,
            execution_id=execution_id,
            status=",".join(statuses) or None,
            max_results=500,
        )

        def page(body: Any) -> list[Any]:
            container = body.image_pipeline_execution
            return list((container.image_pipeline_execution_set if container else None) or [])

        rows = self._pages(
            "DescribeImagePipelineExecutions",
            self._client.describe_image_pipeline_executions_with_options,
            request,
            page,
        )
        return [execution_from_row(row) for row in rows]

    def get_pipeline_execution(self, execution_id: str) -> PipelineExecution:
        found = self.describe_pipeline_executions(execution_id=execution_id)
        if not found:
            raise NotFound(f"aliyun ECS has no pipeline execution {execution_id!r}")
        return found[0]

    def cancel_pipeline_execution(self, execution_id: str) -> None:
        self._call(
            "CancelImagePipelineExecution",
            self._client.cancel_image_pipeline_execution_with_options,
            ecs.CancelImagePipelineExecutionRequest(
                region_id=self.region, execution_id=execution_id
            ),
        )

    def delete_pipeline(self, pipeline_id: str) -> None:
        self._call(
            "DeleteImagePipeline",
            self._client.delete_image_pipeline_with_options,
            ecs.DeleteImagePipelineRequest(region_id=self.region, image_pipeline_id=pipeline_id),
        )

    def describe_pipelines(
        self, pipeline_ids: Sequence[str] = (), *, name: str | None = None
    ) -> list[PipelineInfo]:
        """Templates by ID (any number: ECS takes 100 per call) or name, or all of them."""
        ids = list(pipeline_ids)
        batches = [ids[i : i + DESCRIBE_BATCH] for i in range(0, len(ids), DESCRIBE_BATCH)]

        def page(body: Any) -> list[Any]:
            container = body.image_pipeline
            return list((container.image_pipeline_set if container else None) or [])

        rows: list[Any] = []
        for batch in batches or [[]]:
            request = ecs.DescribeImagePipelinesRequest(
                region_id=self.region, image_pipeline_id=batch or None, name=name, max_results=500
            )
            rows += self._pages(
                "DescribeImagePipelines",
                self._client.describe_image_pipelines_with_options,
                request,
                page,
            )
        return [pipeline_info_from_row(row) for row in rows]

    def _pages(
        self,
        action: str,
        method: Callable[[Any, Any], Any],
        request: Any,
        rows: Callable[[Any], list[T]],
    ) -> list[T]:
        """Every row of a NextToken-paged Describe call."""
        result: list[T] = []
        while True:
            body = self._call(action, method, request)
            result += rows(body)
            if not body.next_token:
                return result
            request.next_token = body.next_token

    # -- adoption by selector (spec.adopt) --

    def find_images(self, selector: ImageSelector) -> list[ImageMatch]:
        """The account's images named exactly `selector.name` (DescribeImages' ImageName
        filter is a fuzzy match, so the answer is filtered), or carrying every tag of
        `selector.tags` (DescribeImages' Tag filter, which ANDs its up to 20 pairs)."""
        if selector.name is not None:
            found = self._describe(image_name=selector.name)
        else:
            found = self._describe(
                tag=[
                    ecs.DescribeImagesRequestTag(key=key, value=value)
                    for key, value in sorted(selector.tags.items())
                ]
            )
        return [
            ImageMatch(external_id=str(image.image_id), name=str(image.image_name or ""))
            for image in found
            if selector.name is None or image.image_name == selector.name
        ]


def build(config: ProviderConfig) -> AliyunProvider:
    """The factory's entry point for type `aliyun`."""
    spec = config.spec
    if not spec.region:
        raise InvalidInput(
            "spec.region (the ECS RegionId, e.g. cn-hangzhou) is required for type aliyun"
        )
    endpoint_host = None
    protocol = "https"
    if spec.endpoint:
        parsed = urlsplit(spec.endpoint)
        if parsed.path not in ("", "/") or parsed.query:
            raise InvalidInput(
                "spec.endpoint must be a base URL without a path for type aliyun, "
                "e.g. https://ecs.cn-hangzhou.aliyuncs.com"
            )
        endpoint_host, protocol = parsed.netloc, parsed.scheme
    refuse_redirects()
    sdk_config = Config(
        access_key_id=config.credentials["accessKeyId"],
        access_key_secret=config.credentials["accessKeySecret"],
        region_id=spec.region,
        endpoint=endpoint_host,
        protocol=protocol,
    )
    try:
        client = EcsClient(sdk_config)
    except Exception as exc:
        raise InvalidInput(
            f"cannot configure the ECS client for region {spec.region!r}: {type(exc).__name__}"
        ) from None
    return AliyunProvider(
        client=client,
        region=spec.region,
        endpoint=spec.endpoint.rstrip("/") if spec.endpoint else None,
        limiter=config.limiter,
    )
