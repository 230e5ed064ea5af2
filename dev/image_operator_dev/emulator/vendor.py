"""What a vendor module provides to the shared server plumbing.

A vendor (Argon today; UCloud-style signed RPC, Alibaba ECS RPC later) is a `VendorService`
subclass: it adds its routes to an aiohttp application, renders errors in its own wire format,
may add its own middlewares (authentication, signature checks) and can dump its state. The
server gives every vendor the same store, clock, fault injection, statistics, logging and
admin routes.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from enum import StrEnum
from functools import partial
from typing import ClassVar

from aiohttp import web
from aiohttp.typedefs import Middleware

from image_operator_dev.emulator.clock import Clock
from image_operator_dev.emulator.store import JSONObject, Store

ADMIN_PREFIX = "/_emulator/"

# Bodies may carry a 1 MiB cover image plus the rest of the image; aiohttp's default limit
# (1 MiB) would refuse such a valid request before the vendor could judge it.
MAX_BODY_BYTES = 4 * 1024 * 1024

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ErrorKind(StrEnum):
    """Errors the shared plumbing raises; each vendor maps them to its own wire format."""

    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    TOO_LARGE = "too_large"
    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class VendorError(Exception):
    """Raised inside a vendor route; the server answers it through `error_response`."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def is_admin_path(path: str) -> bool:
    return path.startswith(ADMIN_PREFIX)


_dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


def json_response(
    body: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A UTF-8 JSON response; non-ASCII text (Argon names are often Chinese) is kept as is."""
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


async def read_json_body(request: web.Request) -> object:
    """The request body parsed as JSON, or a `VendorError` saying why it cannot be."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        msg = f"the request body is larger than the {MAX_BODY_BYTES} bytes accepted"
        raise VendorError(ErrorKind.TOO_LARGE, msg) from exc
    if not raw:
        raise VendorError(ErrorKind.BAD_REQUEST, "the request body is empty; send a JSON object")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        msg = f"the request body is not valid UTF-8 JSON: {exc}"
        raise VendorError(ErrorKind.BAD_REQUEST, msg) from exc


def _reject_constant(name: str) -> object:
    # Python's json accepts NaN and Infinity, which are not JSON; a real server would refuse.
    msg = f"{name} is not a valid JSON value"
    raise ValueError(msg)


class VendorService(ABC):
    """One vendor's API, served on its own port."""

    name: ClassVar[str]
    """The vendor's name: its config section, its key in URLs maps and in the store."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    @abstractmethod
    def add_routes(self, app: web.Application) -> None:
        """Register the vendor's API routes (never under /_emulator/)."""

    @abstractmethod
    def error_response(
        self, kind: ErrorKind, message: str, *, retry_after: int | None = None
    ) -> web.Response:
        """An error in the vendor's own format (status code, body and headers)."""

    def middlewares(self) -> list[Middleware]:
        """Vendor middlewares, run innermost (after faults); e.g. authentication."""
        return []

    @abstractmethod
    def dump_state(self) -> JSONObject:
        """Every object of this vendor, JSON-ready, for GET /_emulator/state."""

    def clear_state(self) -> int:
        """Forget every object of this vendor (DELETE /_emulator/state)."""
        return self.store.clear(self.name)
