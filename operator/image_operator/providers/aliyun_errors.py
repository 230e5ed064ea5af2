"""Alibaba Cloud SDK and ECS errors as provider errors: the one place they are mapped."""

from __future__ import annotations

from typing import Final

from alibabacloud_tea_openapi import exceptions as sdk_errors  # type: ignore[import-untyped]
from darabonba.exceptions import (  # type: ignore[import-untyped]
    UnretryableException,
    ValidateException,
)
from Tea.exceptions import ValidateException as TeaValidateException  # type: ignore[import-untyped]

from image_operator.providers.endpoints import EndpointRefused
from image_operator.providers.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ProviderError,
    Throttled,
    Transient,
)

# Vendor codes, by what they mean to a reconciler.
_NOT_FOUND: Final = frozenset(
    {
        "InvalidImageId.NotFound",
        "InvalidImagePipelineId.NotFound",
        "InvalidImagePipelineExecutionId.NotFound",
    }
)
_CONFLICT: Final = frozenset({"IdempotentParameterMismatch", "Idempotence.SignatureMismatch"})
_FORBIDDEN_PREFIXES: Final = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidSecurityToken",
    "InvalidTimeStamp",
    "Forbidden",
    "NoPermission",
)
# The object is busy (being made, a run in progress): the same call succeeds later.
_BUSY: Final = frozenset(
    {
        "IncorrectImageStatus",
        "SignatureNonceUsed",
        "OperationDenied.ImagePipelineExecutionRunning",
    }
)


def map_error(action: str, exc: Exception) -> ProviderError:
    """The one place where SDK and ECS errors become provider errors (messages carry no keys)."""
    if isinstance(exc, ValidateException | TeaValidateException):
        return InvalidInput(f"aliyun ECS {action}: the SDK refused the request: {exc}")
    if isinstance(exc, UnretryableException):
        inner = getattr(exc, "inner_exception", None)
        if "TooManyRedirects" in {type(inner).__name__, type(exc).__name__} or (
            "Exceeded 0 redirects" in str(exc)
        ):
            return EndpointRefused(
                f"aliyun ECS {action}: the endpoint answered with a redirect, which the operator "
                "does not follow (a provider's requests go to spec.endpoint's host only)"
            )
        # The inner exception's text can hold the request URL; its type says enough.
        return Transient(
            f"aliyun ECS {action}: the endpoint is unreachable "
            f"({type(inner).__name__ if inner is not None else 'no response'})"
        )
    if not isinstance(exc, sdk_errors.AlibabaCloudException):
        return Transient(f"aliyun ECS {action}: unexpected {type(exc).__name__}")
    data = exc.data if isinstance(exc.data, dict) else {}
    code = str(exc.code or data.get("Code") or "Unknown")
    text = str(data.get("Message") or "no message")
    request_id = data.get("RequestId") or exc.request_id
    message = f"aliyun ECS {action} answered {code}: {text}"
    if request_id:
        message += f" (request {request_id})"
    status = exc.status_code or 0
    if isinstance(exc, sdk_errors.ThrottlingException) or code.startswith("Throttling"):
        retry_after_ms = getattr(exc, "retry_after", None)
        return Throttled(
            message,
            vendor_code=code,
            retry_after=retry_after_ms / 1000 if retry_after_ms else None,
        )
    if code in _NOT_FOUND:
        return NotFound(message, vendor_code=code)
    if code in _CONFLICT:
        return Conflict(message, vendor_code=code)
    if code.startswith(_FORBIDDEN_PREFIXES):
        return Forbidden(message, vendor_code=code)
    if code in _BUSY or status >= 500:
        return Transient(message, vendor_code=code)
    return InvalidInput(message, vendor_code=code)
