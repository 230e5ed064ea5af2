"""Alibaba Cloud ECS (API version 2014-05-26) as `alibabacloud_ecs20140526` calls it.

Seed 004 specifies CreateImagePipeline; the other actions the operator needs (executions,
images, sharing) follow the SDK's request and response models. Every call is `POST /` (or
`GET /`) with the action's parameters in the query string, signed ACS3-HMAC-SHA256 (the SDK's
default) or HMAC-SHA1 (`signature_algorithm="v2"`); answers are JSON with a `RequestId`, and
errors are Alibaba's `{"RequestId", "HostId", "Code", "Message", "Recommend"}` with the HTTP
status ECS uses. The emulated OSS lives on the same port under `/oss/<bucket>/<key>` (plain
PUT/GET/HEAD/DELETE, no signature) so that ImportImage has objects to read.

The rules and lifecycles are in the sibling modules: `aliyun_wire` (signatures, parameters),
`aliyun_rules` (shared field rules), `aliyun_images`, `aliyun_pipelines`, `aliyun_state`.
"""

from __future__ import annotations

import base64
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from image_operator_dev.emulator.aliyun_images import Images
from image_operator_dev.emulator.aliyun_pipelines import Pipelines
from image_operator_dev.emulator.aliyun_sharing import Sharing
from image_operator_dev.emulator.aliyun_state import OSS, VENDOR, Context
from image_operator_dev.emulator.aliyun_wire import (
    API_VERSION,
    AliyunError,
    NonceCache,
    Params,
    SignedRequest,
    verify_acs3,
    verify_v1,
)
from image_operator_dev.emulator.clock import Clock
from image_operator_dev.emulator.config import AliyunSettings
from image_operator_dev.emulator.store import JSONObject, Store
from image_operator_dev.emulator.vendor import (
    ErrorKind,
    VendorService,
    is_admin_path,
    json_response,
)

OSS_PREFIX: Final = "/oss/"
# The SDK puts every parameter in the query string: two 16 KB templates, percent-encoded,
# need far more than aiohttp's default 8190-byte request line.
MAX_REQUEST_LINE: Final = 512 * 1024
DEFAULT_HOST: Final = "ecs.aliyuncs.com"

Action = Callable[[Params], JSONObject]

REQUEST_ID = web.RequestKey("aliyun_request_id", str)
ACTION = web.RequestKey("aliyun_action", str)
PARAMS = web.RequestKey("aliyun_params", Mapping[str, str])

_ERROR_KINDS: Final = {
    ErrorKind.BAD_REQUEST: (400, "InvalidParameter"),
    ErrorKind.UNAUTHORIZED: (403, "Forbidden"),
    ErrorKind.NOT_FOUND: (404, "InvalidAction.NotFound"),
    ErrorKind.METHOD_NOT_ALLOWED: (405, "UnsupportedHTTPMethod"),
    ErrorKind.TOO_LARGE: (413, "RequestEntityTooLarge"),
    ErrorKind.THROTTLED: (400, "Throttling.User"),
    ErrorKind.UNAVAILABLE: (503, "ServiceUnavailable"),
    ErrorKind.INTERNAL: (500, "InternalError"),
}


def error_body(request_id: str, host: str, code: str, message: str) -> JSONObject:
    return {
        "RequestId": request_id,
        "HostId": host,
        "Code": code,
        "Message": message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product=Ecs",
    }


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


class AliyunService(VendorService):
    """Serves the ECS RPC endpoint (and the emulated OSS) on one port."""

    name = "aliyun"

    def __init__(self, settings: AliyunSettings, store: Store, clock: Clock) -> None:
        super().__init__(store, clock)
        self.settings = settings
        self.ctx = Context(settings, store, clock)
        self.images = Images(self.ctx)
        self.pipelines = Pipelines(self.ctx, self.images)
        self.sharing = Sharing(self.images)
        self.nonces = NonceCache(settings.signature_max_skew_seconds)
        self.calls: Counter[str] = Counter()
        self.actions: dict[str, Action] = {
            "DescribeRegions": self.describe_regions,
            "CreateImagePipeline": self.pipelines.create_pipeline,
            "DescribeImagePipelines": self.pipelines.describe_pipelines,
            "DeleteImagePipeline": self.pipelines.delete_pipeline,
            "StartImagePipelineExecution": self.pipelines.start_execution,
            "DescribeImagePipelineExecutions": self.pipelines.describe_executions,
            "CancelImagePipelineExecution": self.pipelines.cancel_execution,
            "DescribeImages": self.images.describe_images,
            "ImportImage": self.images.import_image,
            "CopyImage": self.images.copy_image,
            "ModifyImageSharePermission": self.images.modify_share_permission,
            "DescribeImageSharePermission": self.sharing.describe_share_permission,
            "DeleteImage": self.images.delete_image,
        }

    # -- plumbing --

    def add_routes(self, app: web.Application) -> None:
        # Only the runner's request handler reads this, after add_routes; the shared server
        # offers no other way to raise the request-line limit for one vendor.
        app._handler_args = {**(app._handler_args or {}), "max_line_size": MAX_REQUEST_LINE}
        app.router.add_post("/", self.rpc)
        app.router.add_get("/", self.rpc, allow_head=False)
        app.router.add_put(OSS_PREFIX + "{bucket}/{key:.+}", self.oss_put)
        app.router.add_get(OSS_PREFIX + "{bucket}/{key:.+}", self.oss_get)
        app.router.add_delete(OSS_PREFIX + "{bucket}/{key:.+}", self.oss_delete)

    def error_response(
        self, kind: ErrorKind, message: str, *, retry_after: int | None = None
    ) -> web.Response:
        status, code = _ERROR_KINDS[kind]
        retry_ms = retry_after * 1000 if retry_after is not None else None
        return self._error(AliyunError(status, code, message, retry_after_ms=retry_ms))

    def _error(
        self, error: AliyunError, request_id: str | None = None, host: str = DEFAULT_HOST
    ) -> web.Response:
        rid = request_id or _request_id()
        headers = {"x-acs-request-id": rid}
        if error.retry_after_ms is not None:
            # What the SDK reads to raise ThrottlingException with retry_after (milliseconds).
            headers["x-acs-retry-after"] = str(max(1, error.retry_after_ms))
        body = error_body(rid, host, error.code, error.message)
        return json_response(body, status=error.status, headers=headers)

    def middlewares(self) -> list[Middleware]:
        @web.middleware
        async def aliyun(request: web.Request, handler: Handler) -> web.StreamResponse:
            if is_admin_path(request.path):
                return await handler(request)
            request_id = _request_id()
            request[REQUEST_ID] = request_id
            try:
                if not request.path.startswith(OSS_PREFIX):
                    await self._authenticate(request)
                return await handler(request)
            except AliyunError as error:
                return self._error(error, request_id, request.host or DEFAULT_HOST)

        return [aliyun]

    async def _authenticate(self, request: web.Request) -> None:
        body = await request.read()
        query = dict(parse_qsl(request.query_string, keep_blank_values=True))
        params = dict(query)
        if body and request.content_type == "application/x-www-form-urlencoded":
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        signed: SignedRequest
        if "Authorization" in request.headers:
            signed = verify_acs3(
                method=request.method,
                path=request.path,
                query=query,
                headers=request.headers,
                body=body,
                secrets=self.settings.access_keys,
                nonces=self.nonces,
                max_skew=self.settings.signature_max_skew_seconds,
            )
        elif "Signature" in params:
            signed = verify_v1(
                method=request.method,
                params=params,
                secrets=self.settings.access_keys,
                nonces=self.nonces,
                max_skew=self.settings.signature_max_skew_seconds,
            )
        else:
            raise AliyunError(
                400,
                "IncompleteSignature",
                "The request signature does not conform to Aliyun standards: send an "
                "Authorization header (ACS3-HMAC-SHA256) or a Signature parameter (HMAC-SHA1).",
            )
        if signed.version != API_VERSION:
            raise AliyunError(
                400,
                "InvalidVersion",
                f"Specified parameter Version {signed.version!r} is not valid; ECS is "
                f"{API_VERSION}.",
            )
        if signed.action not in self.actions:
            raise AliyunError(
                404,
                "InvalidAction.NotFound",
                f"Specified api {signed.action!r} is not found, please check your url and method.",
            )
        request[ACTION] = signed.action
        request[PARAMS] = params

    # -- routes --

    async def rpc(self, request: web.Request) -> web.Response:
        action = request[ACTION]
        self.calls[action] += 1
        # No await from here on: each action's read-check-write is atomic on this event loop.
        body = self.actions[action](Params(request[PARAMS]))
        request_id = request[REQUEST_ID]
        return json_response(
            {"RequestId": request_id, **body}, headers={"x-acs-request-id": request_id}
        )

    def describe_regions(self, p: Params) -> JSONObject:
        p.text("AcceptLanguage")
        return {
            "Regions": {
                "Region": [
                    {
                        "RegionId": region_id,
                        "LocalName": region_id,
                        "RegionEndpoint": f"ecs.{region_id}.aliyuncs.com",
                        "Status": "available",
                    }
                    for region_id in self.settings.regions
                ]
            }
        }

    async def oss_put(self, request: web.Request) -> web.Response:
        content = await request.read()
        obj = self.images.put_object(
            request.match_info["bucket"], request.match_info["key"], content
        )
        etag = f'"{obj.md5.upper()}"'
        return json_response(
            {"Bucket": obj.bucket, "Key": obj.key, "Size": obj.size, "ETag": etag},
            headers={"ETag": etag},
        )

    async def oss_get(self, request: web.Request) -> web.Response:
        bucket, key = request.match_info["bucket"], request.match_info["key"]
        obj = self.images.get_object(bucket, key)
        if obj is None:
            raise AliyunError(
                404, "NoSuchKey", f"The OSS object {key!r} in {bucket!r} does not exist."
            )
        return web.Response(
            body=base64.b64decode(obj.content_b64),
            content_type="application/octet-stream",
            headers={"ETag": f'"{obj.md5.upper()}"'},
        )

    async def oss_delete(self, request: web.Request) -> web.Response:
        self.images.delete_object(request.match_info["bucket"], request.match_info["key"])
        return web.Response(status=204)

    # -- admin --

    def dump_state(self) -> JSONObject:
        now = self.clock()
        images = []
        for region_id in self.settings.regions:
            images += [
                {"RegionId": region_id, **self.images.render(record, status, progress)}
                for record, status, progress in self.images.visible(region_id, now)
            ]
        pipelines, executions = self.pipelines.dump()
        objects = [
            {
                "Bucket": stored.scope,
                "Key": stored.name,
                "Size": stored.doc["size"],
                "Sha256": stored.doc["sha256"],
            }
            for stored in self.store.list_objects(VENDOR, OSS)
        ]
        return {
            "images": images,
            "pipelines": pipelines,
            "executions": executions,
            "oss": objects,
            "calls": dict(sorted(self.calls.items())),
        }
