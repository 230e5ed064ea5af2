"""UCloud-style API errors mapped to the provider error set, in one place.

Used by every provider that speaks a UCloud-style signed RPC through `ucloud-sdk-python3`
(ucloudstack, and CompShare if it wants), and by the ucloudstack provider's S3-style data
calls. Messages are sentences safe to show users: they carry the action, the RetCode and the
server's message, never a key or a signature (the SDK never puts those in its exceptions).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final
from xml.etree import ElementTree

import httpx
import requests
from ucloud.core import exc as ucloud_exc  # type: ignore[import-untyped]

from image_operator.providers.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    ProviderError,
    Throttled,
    Transient,
    redact,
)

# The gateway's common RetCodes (see emulator/ucloud_rpc.py and docs/providers/ucloudstack.md).
COMMON_RET_CODES: Final[Mapping[int, type[ProviderError]]] = {
    130: Transient,  # service error
    150: Transient,  # service unavailable
    152: Throttled,  # requests too frequent
    160: InvalidInput,  # missing Action
    161: InvalidInput,  # Action not found
    170: Forbidden,  # missing signature
    171: Forbidden,  # Signature VerifyAC Error
    172: Forbidden,  # User Not Exists (unknown PublicKey)
    173: Forbidden,  # permission denied for that CompanyID / ProjectID
    220: InvalidInput,  # missing params
    230: InvalidInput,  # params not available
}


def rpc_error(
    error: Exception,
    *,
    service: str,
    action: str,
    ret_codes: Mapping[int, type[ProviderError]] | None = None,
    secrets: Iterable[str] = (),
) -> ProviderError:
    """The provider error for anything `Client.invoke(action, ...)` raised.

    `ret_codes` adds the service's own codes; an unknown RetCode is treated as transient (a
    retry with backoff is the safe default for a code we cannot judge). `secrets` are values
    from the provider's Secret that are sent as parameters (ucloudstack's CompanyID): the
    server may quote them, and they are redacted from the message.
    """
    if isinstance(error, ucloud_exc.RetCodeException):
        code = int(error.code)
        said = redact(error.message or "no message", secrets, label="<companyID from the Secret>")
        text = f"{service} {action} failed with RetCode {code}: {said}"
        kind = {**COMMON_RET_CODES, **(ret_codes or {})}.get(code, Transient)
        return kind(text, vendor_code=str(code))
    if isinstance(error, ucloud_exc.HTTPStatusException):
        status = int(error.status_code)
        if status == 404:
            # The RPC endpoint itself is missing: never "the image is gone".
            return InvalidInput(
                f"{service} {action} answered HTTP 404: spec.endpoint does not serve the API",
                vendor_code="404",
            )
        # The SDK keeps no headers of an HTTP error, so a 429's Retry-After is lost here.
        return _http_status_error(status, f"{service} {action}", None, "")
    if isinstance(error, ucloud_exc.InvalidResponseException):
        return Transient(f"{service} {action} answered something that is not JSON")
    if isinstance(error, ucloud_exc.ValidationException):
        return InvalidInput(f"{service} {action}: the SDK refused the request: {error}")
    if isinstance(error, requests.RequestException):
        return Transient(f"{service} is unreachable ({action}): {type(error).__name__}: {error}")
    return Transient(f"{service} {action} failed: {type(error).__name__}: {error}")


def _http_status_error(
    status: int, what: str, retry_after: float | None, detail: str
) -> ProviderError:
    text = f"{what} answered HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429:
        return Throttled(text, vendor_code="429", retry_after=retry_after)
    if status in (401, 403):
        return Forbidden(text, vendor_code=str(status))
    if status == 404:
        return NotFound(text, vendor_code=str(status))
    if status >= 500:
        return Transient(text, vendor_code=str(status))
    return InvalidInput(text, vendor_code=str(status))


def data_error(response: httpx.Response, *, service: str, operation: str) -> ProviderError:
    """The provider error for a failed call to the S3-style data routes (XML `<Error>`, or a
    RetCode JSON body when the gateway itself refused: throttling, outages)."""
    code = ""
    message = ""
    content_type = response.headers.get("Content-Type", "")
    if "xml" in content_type:
        try:
            root = ElementTree.fromstring(response.text)  # noqa: S314 - our own endpoint's error
            code = root.findtext("Code") or ""
            message = root.findtext("Message") or ""
        except ElementTree.ParseError:
            pass
    elif "json" in content_type:
        try:
            body = response.json()
            code = str(body.get("RetCode", ""))
            message = str(body.get("Message", ""))
        except ValueError:
            pass
    retry_after = response.headers.get("Retry-After")
    detail = f"{code}: {message}" if code else message
    error = _http_status_error(
        response.status_code,
        f"{service} {operation}",
        float(retry_after) if retry_after and retry_after.isdigit() else None,
        detail,
    )
    if code:
        error.vendor_code = code
    return error


def transport_error(error: httpx.TransportError, *, service: str, operation: str) -> Transient:
    return Transient(f"{service} is unreachable ({operation}): {type(error).__name__}: {error}")
