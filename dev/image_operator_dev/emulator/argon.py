"""The Argon image API: Kubernetes-style REST over images in namespaces, bearer-token auth.

The seed documents only "create an image" (POST /api/v1/namespaces/{ns}/images) with a field
table and one example; the read, list, update and delete routes follow the Kubernetes
conventions Argon's metadata (clusterName/namespace/uid) and paths point to. Errors are
Kubernetes `Status` objects. See docs/emulator.md for how ambiguous seed points were read.

Asynchronous creation is the emulator's extension: `status.phase` goes Pending → Pulling
(with `status.progress` rising) → Ready, or Failed. Phases are derived from the stored
timestamps at read time, never advanced by a background task, so a restart loses nothing.
"""

from __future__ import annotations

import hmac
import json
import math
import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Final, Literal

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails, PydanticCustomError

from image_operator_dev.emulator.clock import Clock, rfc3339
from image_operator_dev.emulator.config import ArgonSettings
from image_operator_dev.emulator.store import JSONObject, Store
from image_operator_dev.emulator.vendor import (
    ErrorKind,
    VendorService,
    is_admin_path,
    json_response,
    read_json_body,
)

KIND: Final = "image"
IMAGES_PATH: Final = "/api/v1/namespaces/{namespace}/images"
IMAGE_PATH: Final = "/api/v1/namespaces/{namespace}/images/{name}"

# Share of `creation_seconds` spent in Pending before pulling starts, and the share of the
# pulling time after which a doomed image fails.
PENDING_SHARE: Final = 0.2
FAIL_SHARE: Final = 0.5

MAX_COVER_BYTES: Final = 1024 * 1024
PARAMETER_LISTS: Final = {"inputs": "input", "outputs": "output", "configs": "config"}
SERVER_SET_FIELDS: Final = frozenset({"metadata", "status"})

# --- validation of request bodies --------------------------------------------------------
#
# Predicates raised by the custom validators below are phrased to follow the field's path
# ("image.price must be …"), which the translator to Status causes prepends.


def _invalid(predicate: str) -> PydanticCustomError:
    return PydanticCustomError("argon_invalid", predicate)


# The Docker reference grammar (distribution/reference), ASCII only: an optional registry
# host[:port], slash-separated lowercase path components, an optional tag and an optional
# digest.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}"
REFERENCE_PATTERN: Final = re.compile(
    rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?",
    re.ASCII,
)
MAX_REFERENCE_LENGTH: Final = 512
_DECIMAL = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?", re.ASCII)


def _check_image_name(value: str) -> str:
    if "/" in value:
        raise _invalid('must not contain "/" (it is a URL path segment)')
    if value in {".", ".."}:
        raise _invalid('must not be "." or ".."')
    return value


def _check_reference(value: str) -> str:
    if len(value) > MAX_REFERENCE_LENGTH or not REFERENCE_PATTERN.fullmatch(value):
        raise _invalid(
            "must be a docker image reference: [registry[:port]/]path[:tag][@digest] with "
            "lowercase path components, e.g. nvidia/cuda10.1:tensorflow_mgdc-test-v0.1"
        )
    return value


def _check_cover(value: str) -> str:
    if len(value.encode("utf-8")) > MAX_COVER_BYTES:
        raise _invalid(f"must be at most {MAX_COVER_BYTES} bytes (1 MiB) of UTF-8")
    return value


def _is_finite_number(value: object) -> bool:
    # bool is an int subclass in Python but true/false are not numbers in JSON.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_price(value: object) -> object:
    # The seed's table says Number, its example sends "0": both are accepted, stored as given.
    # bool is an int subclass in Python but true/false are not numbers in JSON.
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise _invalid("must be a finite number ≥ 0")
        return value
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return value
    raise _invalid('must be a number ≥ 0 or a string holding a non-negative decimal, e.g. "0"')


def _check_command(value: object) -> object:
    # The seed's table says String, its example sends a list of strings: both are accepted.
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise _invalid("must be a string or a list of strings")


def _check_default(value: object) -> object:
    if isinstance(value, str | bool) or _is_finite_number(value):
        return value
    raise _invalid("must be a string, a number or a boolean")


_STRICT = ConfigDict(extra="forbid", strict=True, alias_generator=to_camel)


class ArgonParameter(BaseModel):
    """One entry of `inputs`, `outputs` or `configs`."""

    model_config = _STRICT

    name: Annotated[str, Field(min_length=1, max_length=253)]
    display_name: Annotated[str, Field(max_length=128)] | None = None
    kind: Literal["input", "output", "config"] | None = None
    type: Literal["string", "number", "integer", "boolean", "path", "enum"] | None = None
    default: Annotated[object, PlainValidator(_check_default)] | None = None
    index: Annotated[int, Field(ge=0)] | None = None
    controls: str | None = None
    # Not in the seed, accepted because the operator's parameter model carries them (the
    # allowed values of an enum parameter, and whether a value is required).
    options: list[str] | None = None
    required: bool | None = None


class ArgonImage(BaseModel):
    """The `image` of a create or update request; the seed's table plus its example."""

    model_config = _STRICT

    name: Annotated[str, Field(min_length=1, max_length=253), AfterValidator(_check_image_name)]
    display_name: Annotated[str, Field(min_length=1, max_length=128)]
    repository: Annotated[str, Field(min_length=1), AfterValidator(_check_reference)]
    group: Annotated[str, Field(max_length=63)] | None = None
    price: Annotated[object, PlainValidator(_check_price)] | None = None
    cover: Annotated[str, AfterValidator(_check_cover)] | None = None
    description: Annotated[str, Field(max_length=1024)] | None = None
    command: Annotated[object, PlainValidator(_check_command)] | None = None
    inputs: list[ArgonParameter] | None = None
    outputs: list[ArgonParameter] | None = None
    configs: list[ArgonParameter] | None = None


class ArgonImageRequest(BaseModel):
    """Body of POST and PUT: `{"namespace": ..., "image": {...}}` as in the seed's example."""

    model_config = _STRICT

    namespace: Annotated[str, Field(min_length=1)]
    image: ArgonImage


def _accepted_fields(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


@dataclass(frozen=True, slots=True)
class Cause:
    """One failing field, as in a Kubernetes Status's details.causes."""

    field: str
    message: str
    reason: str

    def to_wire(self) -> JSONObject:
        return {"reason": self.reason, "message": self.message, "field": self.field}


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel]:
    """The model that owns the last element of `loc` (used to list accepted fields)."""
    if len(loc) == 1:
        return ArgonImageRequest
    if len(loc) == 4 and loc[1] in PARAMETER_LISTS:
        return ArgonParameter
    return ArgonImage


def _shown(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _cause_from_error(error: ErrorDetails) -> Cause:
    loc = error["loc"]
    field = _field_path(loc)
    kind = error["type"]
    ctx = error.get("ctx", {})
    got = f" (got {_shown(error['input'])})"
    if kind == "missing":
        return Cause(field, f"{field} is required", "FieldValueRequired")
    if kind == "extra_forbidden":
        if len(loc) == 2 and loc[-1] in SERVER_SET_FIELDS:
            return Cause(
                field, f"{field} is set by the server and must not be sent", "FieldValueForbidden"
            )
        accepted = ", ".join(_accepted_fields(_model_at(loc)))
        return Cause(
            field, f"{field} is not a known field; accepted: {accepted}", "FieldValueForbidden"
        )
    if kind == "string_too_short":
        return Cause(field, f"{field} must not be empty", "FieldValueRequired")
    if kind == "string_too_long":
        limit = ctx.get("max_length")
        return Cause(field, f"{field} must be at most {limit} characters long", "FieldValueTooLong")
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", '"')
        return Cause(field, f"{field} must be one of {expected}{got}", "FieldValueNotSupported")
    if kind == "greater_than_equal":
        return Cause(field, f"{field} must be at least {ctx.get('ge')}{got}", "FieldValueInvalid")
    if kind == "argon_invalid":
        return Cause(field, f"{field} {error['msg']}{got}", "FieldValueInvalid")
    type_predicates = {
        "string_type": "must be a string",
        "int_type": "must be an integer",
        "bool_type": "must be true or false",
        "list_type": "must be a list",
        "model_type": "must be an object",
        "dict_type": "must be an object",
        "model_attributes_type": "must be an object",
    }
    if kind in type_predicates:
        return Cause(field, f"{field} {type_predicates[kind]}{got}", "FieldValueTypeInvalid")
    return Cause(field, f"{field} is invalid: {error['msg']}{got}", "FieldValueInvalid")


def _cross_field_causes(body: JSONObject, namespace: str, path_name: str | None) -> list[Cause]:
    """Rules a single field's validator cannot see; checked on the raw body so that they are
    reported together with the per-field errors, not only once those are fixed."""
    causes: list[Cause] = []
    body_namespace = body.get("namespace")
    if isinstance(body_namespace, str) and body_namespace and body_namespace != namespace:
        causes.append(
            Cause(
                "namespace",
                f"namespace must equal the namespace in the URL path ({_shown(namespace)})"
                f" (got {_shown(body_namespace)})",
                "FieldValueInvalid",
            )
        )
    image = body.get("image")
    if not isinstance(image, dict):
        return causes
    name = image.get("name")
    if path_name is not None and isinstance(name, str) and name != path_name:
        causes.append(
            Cause(
                "image.name",
                f"image.name must equal the name in the URL path ({_shown(path_name)}); "
                f"an image cannot be renamed (got {_shown(name)})",
                "FieldValueInvalid",
            )
        )
    for list_name, expected_kind in PARAMETER_LISTS.items():
        parameters = image.get(list_name)
        if not isinstance(parameters, list):
            continue
        first_seen: dict[str, int] = {}
        for index, parameter in enumerate(parameters):
            if not isinstance(parameter, dict):
                continue
            where = f"image.{list_name}[{index}]"
            kind = parameter.get("kind")
            if kind in PARAMETER_LISTS.values() and kind != expected_kind:
                causes.append(
                    Cause(
                        f"{where}.kind",
                        f'{where}.kind must be "{expected_kind}" for a parameter declared in '
                        f"image.{list_name} (got {_shown(kind)})",
                        "FieldValueInvalid",
                    )
                )
            parameter_name = parameter.get("name")
            if not isinstance(parameter_name, str):
                continue
            if parameter_name in first_seen:
                causes.append(
                    Cause(
                        f"{where}.name",
                        f"{where}.name must be unique within image.{list_name}; "
                        f"{_shown(parameter_name)} is also "
                        f"image.{list_name}[{first_seen[parameter_name]}].name",
                        "FieldValueDuplicate",
                    )
                )
            else:
                first_seen[parameter_name] = index
    return causes


# --- errors in Argon's format ----------------------------------------------------------------


class ArgonStatusError(Exception):
    """An answer other than success, rendered as a Kubernetes Status object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        name: str | None = None,
        causes: list[Cause] | None = None,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.name = name
        self.causes = causes or []
        self.retry_after = retry_after
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        body: JSONObject = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details: JSONObject = {}
        if self.name is not None:
            details.update(name=self.name, kind="images")
        if self.causes:
            details["causes"] = [cause.to_wire() for cause in self.causes]
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
            self.headers["Retry-After"] = str(self.retry_after)
        if details:
            body["details"] = details
        return json_response(body, status=self.code, headers=self.headers)


_ERROR_KINDS: Final = {
    ErrorKind.BAD_REQUEST: (400, "BadRequest"),
    ErrorKind.UNAUTHORIZED: (401, "Unauthorized"),
    ErrorKind.NOT_FOUND: (404, "NotFound"),
    ErrorKind.METHOD_NOT_ALLOWED: (405, "MethodNotAllowed"),
    ErrorKind.TOO_LARGE: (413, "RequestEntityTooLarge"),
    ErrorKind.THROTTLED: (429, "TooManyRequests"),
    ErrorKind.UNAVAILABLE: (503, "ServiceUnavailable"),
    ErrorKind.INTERNAL: (500, "InternalError"),
}


def _not_found(namespace: str, name: str) -> ArgonStatusError:
    return ArgonStatusError(
        404, "NotFound", f'image "{name}" not found in namespace "{namespace}"', name=name
    )


# --- stored state and its lifecycle -------------------------------------------------------


class ArgonImageRecord(BaseModel):
    """What the store keeps per image; timestamps are seconds since the epoch."""

    model_config = ConfigDict(extra="forbid")

    image: JSONObject
    namespace: str
    cluster_name: str
    uid: str
    created_at: float
    updated_at: float
    # The lifecycle's parameters are frozen per image when it starts, so that a restart with
    # different settings does not rewind or jump images already in flight.
    pull_started_at: float
    pull_seconds: float
    fail_message: str | None = None
    deleting_since: float | None = None
    deletion_seconds: float = 0.0

    def gone(self, now: float) -> bool:
        return self.deleting_since is not None and now >= self.deleting_since + (
            self.deletion_seconds
        )


Phase = Literal["Pending", "Pulling", "Ready", "Failed", "Deleting"]


@dataclass(frozen=True, slots=True)
class Lifecycle:
    phase: Phase
    progress: int
    message: str | None = None


def image_lifecycle(record: ArgonImageRecord, now: float) -> Lifecycle:
    """Phase and progress of an image at `now`, derived from its stored timestamps."""
    # A deleting image keeps the progress it had when deletion began.
    moment = now if record.deleting_since is None else min(now, record.deleting_since)
    elapsed = max(0.0, moment - record.pull_started_at)
    total = record.pull_seconds
    pending = total * PENDING_SHARE
    pulling = total - pending

    def progress_at(t: float) -> int:
        if t < pending or pulling <= 0:
            return 0
        return min(99, math.floor(100 * (t - pending) / pulling))

    if record.fail_message is not None:
        fail_at = pending + pulling * FAIL_SHARE
        if elapsed >= fail_at:
            state = Lifecycle("Failed", progress_at(fail_at), record.fail_message)
        else:
            state = Lifecycle("Pending" if elapsed < pending else "Pulling", progress_at(elapsed))
    elif elapsed >= total:
        state = Lifecycle("Ready", 100)
    elif elapsed < pending:
        state = Lifecycle("Pending", 0)
    else:
        state = Lifecycle("Pulling", progress_at(elapsed))
    if record.deleting_since is not None:
        return Lifecycle("Deleting", state.progress)
    return state


# --- the service -------------------------------------------------------------------------


class ArgonService(VendorService):
    """Serves the Argon image routes on one port."""

    name = "argon"

    def __init__(self, settings: ArgonSettings, store: Store, clock: Clock) -> None:
        super().__init__(store, clock)
        self.settings = settings
        self._fail_pattern = (
            re.compile(settings.fail_repository_pattern)
            if settings.fail_repository_pattern is not None
            else None
        )
        self._tokens = [token.encode("utf-8") for token in settings.tokens]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(IMAGES_PATH, self.list_images, allow_head=False)
        app.router.add_post(IMAGES_PATH, self.create_image)
        app.router.add_get(IMAGE_PATH, self.get_image, allow_head=False)
        app.router.add_put(IMAGE_PATH, self.replace_image)
        app.router.add_delete(IMAGE_PATH, self.delete_image)

    def error_response(
        self, kind: ErrorKind, message: str, *, retry_after: int | None = None
    ) -> web.Response:
        code, reason = _ERROR_KINDS[kind]
        return ArgonStatusError(code, reason, message, retry_after=retry_after).response()

    def middlewares(self) -> list[Middleware]:
        @web.middleware
        async def argon(request: web.Request, handler: Handler) -> web.StreamResponse:
            if is_admin_path(request.path):
                return await handler(request)
            try:
                self._authenticate(request)
                return await handler(request)
            except ArgonStatusError as error:
                return error.response()

        return [argon]

    def _authenticate(self, request: web.Request) -> None:
        challenge = {"WWW-Authenticate": 'Bearer realm="argon"'}
        header = request.headers.get("Authorization")
        if header is None:
            message = "missing Authorization header; send Authorization: Bearer <token>"
            raise ArgonStatusError(401, "Unauthorized", message, headers=challenge)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            message = "the Authorization header must be of the form: Bearer <token>"
            raise ArgonStatusError(401, "Unauthorized", message, headers=challenge)
        presented = token.strip().encode("utf-8")
        # Compare against every token without stopping early, so timing reveals nothing.
        matches = [hmac.compare_digest(presented, accepted) for accepted in self._tokens]
        if not any(matches):
            message = "the bearer token is not accepted"
            raise ArgonStatusError(401, "Unauthorized", message, headers=challenge)

    # -- state helpers --

    def _load(self, namespace: str, name: str, now: float) -> ArgonImageRecord | None:
        doc = self.store.get(self.name, KIND, namespace, name)
        return None if doc is None else self._live(namespace, name, doc, now)

    def _live(
        self, namespace: str, name: str, doc: JSONObject, now: float
    ) -> ArgonImageRecord | None:
        """The stored image, or None (and collected) if its deletion has finished."""
        record = ArgonImageRecord.model_validate(doc)
        if record.gone(now):
            # Lazy collection: deletion finished while nobody was looking.
            self.store.delete(self.name, KIND, namespace, name)
            return None
        return record

    def _save(self, record: ArgonImageRecord) -> None:
        self.store.replace(
            self.name, KIND, record.namespace, record.image["name"], record.model_dump()
        )

    def _fail_message(self, repository: str) -> str | None:
        if self._fail_pattern is None or not self._fail_pattern.search(repository):
            return None
        return (
            f'failed to pull "{repository}": manifest unknown (emulated: the repository '
            "matches the emulator's fail_repository_pattern)"
        )

    def render(self, record: ArgonImageRecord, now: float) -> JSONObject:
        """The image as the API shows it: stored fields plus metadata and status."""
        state = image_lifecycle(record, now)
        status: JSONObject = {
            "createdAt": rfc3339(record.created_at),
            "updatedAt": rfc3339(record.updated_at),
            "phase": state.phase,
            "progress": state.progress,
        }
        if state.message is not None:
            status["message"] = state.message
        return {
            **record.image,
            "metadata": {
                "clusterName": record.cluster_name,
                "namespace": record.namespace,
                "uid": record.uid,
            },
            "status": status,
        }

    def _validated_image(self, body: object, namespace: str, path_name: str | None) -> JSONObject:
        """The request's `image`, exactly as sent, once every rule holds; else 422 (or 400)."""
        if not isinstance(body, dict):
            message = 'the request body must be a JSON object: {"namespace": ..., "image": {...}}'
            raise ArgonStatusError(400, "BadRequest", message)
        causes: list[Cause] = []
        try:
            ArgonImageRequest.model_validate(body)
        except ValidationError as exc:
            causes.extend(_cause_from_error(error) for error in exc.errors())
        causes.extend(_cross_field_causes(body, namespace, path_name))
        image = body.get("image")
        name = image.get("name") if isinstance(image, dict) else None
        shown_name = name if isinstance(name, str) and name else path_name
        if causes:
            subject = f'Image "{shown_name}"' if shown_name else "Image"
            message = f"{subject} is invalid: " + "; ".join(cause.message for cause in causes)
            raise ArgonStatusError(422, "Invalid", message, name=shown_name, causes=causes)
        assert isinstance(image, dict)  # guaranteed by the model having validated
        return image

    # -- routes --

    async def list_images(self, request: web.Request) -> web.Response:
        namespace = request.match_info["namespace"]
        wanted: set[str] | None = None
        if "names" in request.query:
            # names=a,b,c (or repeated names=…): one call answers a whole batch of polls.
            wanted = {
                name for value in request.query.getall("names") for name in value.split(",") if name
            }
        now = self.clock()
        # With names, only those are read (by key): a poll of k images costs O(k), not O(N).
        stored_images = (
            self.store.list_objects(self.name, KIND, namespace)
            if wanted is None
            else self.store.get_many(self.name, KIND, namespace, wanted)
        )
        items = []
        for stored in stored_images:
            record = self._live(namespace, stored.name, stored.doc, now)
            if record is not None:
                items.append(self.render(record, now))
        return json_response(
            {"kind": "ImageList", "apiVersion": "v1", "metadata": {}, "items": items}
        )

    async def get_image(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        now = self.clock()
        record = self._load(namespace, name, now)
        if record is None:
            raise _not_found(namespace, name)
        return json_response(self.render(record, now))

    async def create_image(self, request: web.Request) -> web.Response:
        namespace = request.match_info["namespace"]
        body = await read_json_body(request)
        image = self._validated_image(body, namespace, path_name=None)
        # No await from here on: the check and the insert are atomic on this event loop.
        name: str = image["name"]
        now = self.clock()
        existing = self._load(namespace, name, now)
        if existing is not None:
            suffix = (
                " (it is being deleted; retry once it is gone)"
                if (existing.deleting_since is not None)
                else ""
            )
            message = f'image "{name}" already exists in namespace "{namespace}"{suffix}'
            raise ArgonStatusError(409, "AlreadyExists", message, name=name)
        record = ArgonImageRecord(
            image=image,
            namespace=namespace,
            cluster_name=self.settings.cluster_name,
            uid=str(uuid.uuid4()),
            created_at=now,
            updated_at=now,
            pull_started_at=now,
            pull_seconds=self.settings.creation_seconds,
            fail_message=self._fail_message(image["repository"]),
        )
        if not self.store.insert(self.name, KIND, namespace, name, record.model_dump()):
            # Only reachable if another process writes the same state directory.
            message = f'image "{name}" already exists in namespace "{namespace}"'
            raise ArgonStatusError(409, "AlreadyExists", message, name=name)
        return json_response(self.render(record, now), status=201)

    async def replace_image(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        body = await read_json_body(request)
        now = self.clock()
        # Kubernetes order: a missing object is 404 before its new body is judged.
        record = self._load(namespace, name, now)
        if record is None:
            raise _not_found(namespace, name)
        image = self._validated_image(body, namespace, path_name=name)
        if record.deleting_since is not None:
            message = f'image "{name}" is being deleted and cannot be updated'
            raise ArgonStatusError(409, "Conflict", message, name=name)
        update: JSONObject = {
            "image": image,
            # Strictly later, and visibly so at the millisecond precision of updatedAt.
            "updated_at": max(now, record.updated_at + 0.001),
        }
        if image["repository"] != record.image["repository"]:
            update.update(
                pull_started_at=now,
                pull_seconds=self.settings.creation_seconds,
                fail_message=self._fail_message(image["repository"]),
            )
        record = record.model_copy(update=update)
        self._save(record)
        return json_response(self.render(record, now))

    async def delete_image(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        now = self.clock()
        record = self._load(namespace, name, now)
        if record is None:
            raise _not_found(namespace, name)
        if record.deleting_since is None:
            record = record.model_copy(
                update={
                    "deleting_since": now,
                    "deletion_seconds": self.settings.deletion_seconds,
                }
            )
            if record.gone(now):
                self.store.delete(self.name, KIND, namespace, name)
            else:
                self._save(record)
        return json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {"name": name, "kind": "images", "uid": record.uid},
            }
        )

    def dump_state(self) -> JSONObject:
        now = self.clock()
        images = []
        for stored in self.store.list_objects(self.name, KIND):
            record = self._live(stored.scope, stored.name, stored.doc, now)
            if record is not None:
                images.append(self.render(record, now))
        return {"images": images}


__all__ = [
    "ArgonImage",
    "ArgonImageRecord",
    "ArgonImageRequest",
    "ArgonParameter",
    "ArgonService",
    "ArgonStatusError",
    "Lifecycle",
    "image_lifecycle",
]
