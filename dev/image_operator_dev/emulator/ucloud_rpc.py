"""UCloud-style signed RPC on the emulator: action dispatch, signature checks, the error format.

Every UCloud-style API (the ucloudstack IMAGE API, CompShare) is one endpoint that takes
`Action=<Name>` plus flat parameters (form-encoded POST, or a GET query), signed with the
caller's key pair exactly as `ucloud-sdk-python3` signs them, and answers JSON carrying
`RetCode` (0 = success) and `Action: "<Name>Response"`. This module holds that shared part so a
vendor module only declares its actions and writes their handlers:

    dispatcher = RpcDispatcher(private_key_of=lambda public_key: keys.get(public_key))
    dispatcher.register(ActionSpec("DescribeImage", required={"Region"}, optional={...},
                                   lists={"ImageIDs"}), handler)
    app.router.add_post("/", dispatcher.handle)

Signatures are verified with the SDK's own `ucloud.core.auth.Credential.verify_ac`, never
re-implemented, so the emulator accepts exactly what the SDK (and the real gateway) does.
"""

from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from aiohttp import web
from multidict import MultiMapping
from ucloud.core.auth import Credential  # type: ignore[import-untyped]

from image_operator_dev.emulator.store import JSONObject
from image_operator_dev.emulator.vendor import ErrorKind, json_response

REQUEST_UUID_HEADER: Final = "X-UCLOUD-REQUEST-UUID"
"""The header the SDK reads into its exceptions' `request_uuid`."""

# Parameters every action takes; the rest is declared per action.
ACTION: Final = "Action"
PUBLIC_KEY: Final = "PublicKey"
SIGNATURE: Final = "Signature"
ENVELOPE: Final = frozenset({ACTION, PUBLIC_KEY, SIGNATURE})

_LIST_ITEM = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9]*)\.(?P<index>0|[1-9][0-9]{0,3})$")
_INTEGER = re.compile(r"^-?(0|[1-9][0-9]{0,17})$")


class RetCode(IntEnum):
    """The common RetCodes of the UCloud API gateway (as its clients and the SDK see them).

    Vendors add their own service codes (> 2000; the SDK calls those "retryable", but the
    operator's providers decide retries themselves from the code).
    """

    OK = 0
    SERVICE_ERROR = 130  # the service failed while handling the call
    SERVICE_UNAVAILABLE = 150  # temporarily unavailable (also HTTP 503)
    TOO_FREQUENT = 152  # throttled (also HTTP 429 with Retry-After)
    MISSING_ACTION = 160
    ACTION_NOT_FOUND = 161
    MISSING_SIGNATURE = 170
    SIGNATURE_ERROR = 171  # "Signature VerifyAC Error"
    USER_NOT_EXISTS = 172  # unknown PublicKey
    PERMISSION_DENIED = 173  # the key may not act for that CompanyID / ProjectID
    MISSING_PARAMS = 220  # "Missing params [X]"
    PARAMS_NOT_AVAILABLE = 230  # "Params [X] not available": a value is refused


class RpcError(Exception):
    """An RPC answer with a non-zero RetCode. Raised by handlers and the dispatcher."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        http_status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message
        # UCloud answers API errors with HTTP 200 and the RetCode in the body; only the
        # gateway's own refusals (throttling, outages) use HTTP statuses.
        self.http_status = http_status
        self.headers = dict(headers or {})


def missing(*names: str) -> RpcError:
    return RpcError(RetCode.MISSING_PARAMS, f"Missing params [{', '.join(names)}]")


def not_available(name: str, why: str) -> RpcError:
    """230 for one parameter; `why` is a sentence saying what is accepted."""
    return RpcError(RetCode.PARAMS_NOT_AVAILABLE, f"Params [{name}] not available: {why}")


def rpc_response(action: str, body: JSONObject | None = None) -> web.Response:
    payload: JSONObject = {"RetCode": 0, "Action": f"{action}Response", **(body or {})}
    return json_response(payload, headers={REQUEST_UUID_HEADER: str(uuid.uuid4())})


def rpc_error_response(action: str, error: RpcError) -> web.Response:
    payload: JSONObject = {
        "RetCode": error.code,
        "Message": error.message,
        "Action": f"{action}Response" if action else "",
    }
    headers = {REQUEST_UUID_HEADER: str(uuid.uuid4()), **error.headers}
    return json_response(payload, status=error.http_status, headers=headers)


# The shared server plumbing (faults, unknown routes, crashes) raises ErrorKinds; this is how
# they look on a UCloud-style wire. Throttling and outages use HTTP statuses the SDK itself
# treats as transport errors (429/503), so that S3-style data routes on the same port get a
# meaningful status too; the body still carries a RetCode.
_PLUMBING: Final[dict[ErrorKind, tuple[int, RetCode]]] = {
    ErrorKind.BAD_REQUEST: (200, RetCode.PARAMS_NOT_AVAILABLE),
    ErrorKind.UNAUTHORIZED: (200, RetCode.USER_NOT_EXISTS),
    ErrorKind.NOT_FOUND: (404, RetCode.ACTION_NOT_FOUND),
    ErrorKind.METHOD_NOT_ALLOWED: (405, RetCode.ACTION_NOT_FOUND),
    ErrorKind.TOO_LARGE: (413, RetCode.PARAMS_NOT_AVAILABLE),
    ErrorKind.THROTTLED: (429, RetCode.TOO_FREQUENT),
    ErrorKind.UNAVAILABLE: (503, RetCode.SERVICE_UNAVAILABLE),
    ErrorKind.INTERNAL: (500, RetCode.SERVICE_ERROR),
}


def plumbing_error_response(
    kind: ErrorKind, message: str, *, retry_after: int | None = None
) -> web.Response:
    """`VendorService.error_response` for UCloud-style vendors. The action is not known at
    that layer, so `Action` is empty."""
    status, code = _PLUMBING[kind]
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return rpc_error_response("", RpcError(code, message, http_status=status, headers=headers))


# --- parameters ---------------------------------------------------------------------------


class ActionSpec:
    """What one action accepts. `lists` are array parameters (`Name.0`, `Name.1`, … as the
    SDK encodes them, or one comma-separated `Name`); they may also be required."""

    __slots__ = ("lists", "name", "optional", "required")

    def __init__(
        self,
        name: str,
        *,
        required: Iterable[str] = (),
        optional: Iterable[str] = (),
        lists: Iterable[str] = (),
    ) -> None:
        self.name = name
        self.required = frozenset(required)
        self.optional = frozenset(optional)
        self.lists = frozenset(lists)

    @property
    def accepted(self) -> frozenset[str]:
        return self.required | self.optional


@dataclass
class RpcParams:
    """One request's parameters, checked against its `ActionSpec`, with typed accessors that
    raise 230 naming the parameter and what it accepts."""

    action: str
    public_key: str
    scalars: dict[str, str]
    lists: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.scalars.get(name)

    def text(
        self,
        name: str,
        *,
        required: bool = False,
        max_length: int | None = None,
    ) -> str | None:
        value = self.scalars.get(name)
        if value is None:
            if required:
                raise missing(name)
            return None
        if max_length is not None and len(value) > max_length:
            raise not_available(
                name, f"must be at most {max_length} characters long (got {len(value)})"
            )
        return value

    def require(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None  # text() raised otherwise
        return value

    def integer(
        self,
        name: str,
        *,
        default: int | None = None,
        ge: int | None = None,
        le: int | None = None,
        hint: str = "",
    ) -> int | None:
        raw = self.scalars.get(name)
        if raw is None:
            return default
        if not _INTEGER.fullmatch(raw):
            raise not_available(name, f"must be an integer (got {_shown(raw)}){hint}")
        value = int(raw)
        if (ge is not None and value < ge) or (le is not None and value > le):
            if ge is not None and le is not None:
                bounds = f"from {ge} to {le}"
            else:
                bounds = f"≥ {ge}" if ge is not None else f"≤ {le}"
            raise not_available(name, f"must be an integer {bounds} (got {value}){hint}")
        return value

    def boolean(self, name: str) -> bool | None:
        raw = self.scalars.get(name)
        if raw is None:
            return None
        if raw not in ("true", "false"):
            raise not_available(name, f'must be "true" or "false" (got {_shown(raw)})')
        return raw == "true"

    def choice(self, name: str, choices: Iterable[str], *, required: bool = False) -> str | None:
        value = self.text(name, required=required)
        allowed = list(choices)
        if value is not None and value not in allowed:
            raise not_available(name, f"must be one of {', '.join(allowed)} (got {_shown(value)})")
        return value

    def items(self, name: str) -> list[str]:
        return list(self.lists.get(name, []))


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 60 else repr(value[:57] + "...")


def parse_params(spec: ActionSpec, public_key: str, raw: Mapping[str, str]) -> RpcParams:
    """Split flat wire parameters into scalars and lists; refuse unknown and missing ones."""
    scalars: dict[str, str] = {}
    indexed: dict[str, dict[int, str]] = {}
    unknown: list[str] = []
    for key, value in raw.items():
        if key in ENVELOPE:
            continue
        item = _LIST_ITEM.fullmatch(key)
        if item and item["name"] in spec.lists:
            indexed.setdefault(item["name"], {})[int(item["index"])] = value
        elif key in spec.lists:
            # The seed: "多个元素之间用,分隔" (elements separated by commas).
            indexed.setdefault(key, {}).update(
                {1_000_000 + i: part for i, part in enumerate(value.split(","))}
            )
        elif key in spec.accepted:
            scalars[key] = value
        else:
            unknown.append(key)
    if unknown:
        accepted = ", ".join(sorted(spec.accepted))
        raise not_available(
            sorted(unknown)[0],
            f"{', '.join(sorted(unknown))} is not a parameter of {spec.name}; accepted: {accepted}",
        )
    lists = {
        name: [v.strip() for _, v in sorted(values.items()) if v.strip()]
        for name, values in indexed.items()
    }
    absent = [
        name
        for name in sorted(spec.required)
        if not (scalars.get(name) if name not in spec.lists else lists.get(name))
    ]
    if absent:
        raise missing(*absent)
    return RpcParams(action=spec.name, public_key=public_key, scalars=scalars, lists=lists)


# --- dispatch ------------------------------------------------------------------------------

Handler = Callable[[RpcParams], Awaitable[JSONObject]]


def verify_signature(raw: Mapping[str, str], private_key_of: Callable[[str], str | None]) -> str:
    """The caller's public key once `Signature` matches what the SDK computes; else 170-172.

    `Credential.verify_ac` is the SDK's signer: sorted keys, `key + value` concatenated, the
    private key appended, SHA-1 hex. It is given every parameter but `Signature`.
    """
    signature = raw.get(SIGNATURE)
    if not signature:
        raise RpcError(RetCode.MISSING_SIGNATURE, "Missing signature")
    public_key = raw.get(PUBLIC_KEY)
    private_key = private_key_of(public_key) if public_key else None
    if not public_key or private_key is None:
        raise RpcError(RetCode.USER_NOT_EXISTS, "User Not Exists")
    signed = {key: value for key, value in raw.items() if key != SIGNATURE}
    expected: str = Credential(public_key, private_key).verify_ac(signed)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise RpcError(RetCode.SIGNATURE_ERROR, "Signature VerifyAC Error")
    return public_key


async def read_wire_params(request: web.Request) -> dict[str, str]:
    """The flat parameters of a call: a form-encoded POST body or the GET query."""
    multi: MultiMapping[object]
    if request.method == "GET":
        multi = request.query
    else:
        content_type = request.content_type
        if content_type != "application/x-www-form-urlencoded":
            raise RpcError(
                RetCode.PARAMS_NOT_AVAILABLE,
                "the request body must be application/x-www-form-urlencoded "
                f"(got {content_type or 'none'})",
            )
        multi = await request.post()
    params: dict[str, str] = {}
    for key in multi:
        values = multi.getall(key)
        if len(values) != 1:
            raise not_available(key, "must be sent once (use Name.0, Name.1, … for lists)")
        value = values[0]
        if not isinstance(value, str):
            raise not_available(key, "must be a plain value, not a file")
        params[key] = value
    return params


class RpcDispatcher:
    """Routes `Action` to its handler after the envelope checks, in the gateway's order:
    160/161 (action), 170-172 (signature), 220/230 (parameters), then the handler."""

    def __init__(self, private_key_of: Callable[[str], str | None]) -> None:
        self._private_key_of = private_key_of
        self._actions: dict[str, tuple[ActionSpec, Handler]] = {}

    def register(self, spec: ActionSpec, handler: Handler) -> None:
        self._actions[spec.name] = (spec, handler)

    @property
    def actions(self) -> list[str]:
        return sorted(self._actions)

    async def handle(self, request: web.Request) -> web.Response:
        action = ""
        try:
            raw = await read_wire_params(request)
            action = raw.get(ACTION, "")
            if not action:
                raise RpcError(RetCode.MISSING_ACTION, "Missing Action")
            entry = self._actions.get(action)
            if entry is None:
                raise RpcError(RetCode.ACTION_NOT_FOUND, f"Action [{action}] not found")
            spec, handler = entry
            public_key = verify_signature(raw, self._private_key_of)
            body = await handler(parse_params(spec, public_key, raw))
        except RpcError as error:
            return rpc_error_response(action, error)
        return rpc_response(action, body)


__all__ = [
    "ActionSpec",
    "RetCode",
    "RpcDispatcher",
    "RpcError",
    "RpcParams",
    "missing",
    "not_available",
    "parse_params",
    "plumbing_error_response",
    "read_wire_params",
    "rpc_error_response",
    "rpc_response",
    "verify_signature",
]
