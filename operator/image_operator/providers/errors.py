"""The one small set of errors every provider raises; vendor errors are mapped into these.

Reconcilers decide from the class alone: throttled and transient errors are retried with
backoff, the rest make the object `Stalled` until its spec changes.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable


class ProviderError(Exception):
    """Base of all provider errors. `message` is safe to show users (never holds secrets)."""

    retryable: bool = False
    reason: str = "ProviderError"

    def __init__(self, message: str, *, vendor_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.vendor_code = vendor_code


class Throttled(ProviderError):
    """The cloud asked us to slow down; retry after `retry_after` seconds if given."""

    retryable = True
    reason = "Throttled"

    def __init__(
        self, message: str, *, vendor_code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, vendor_code=vendor_code)
        self.retry_after = retry_after


class Transient(ProviderError):
    """A failure that may pass by itself: 5xx, timeouts, connection resets."""

    retryable = True
    reason = "CloudUnavailable"


class NotFound(ProviderError):
    """The cloud object does not exist (or no longer does)."""

    reason = "NotFound"


class Conflict(ProviderError):
    """An object with this identity already exists (used to recover idempotent creates)."""

    reason = "AlreadyExists"


class InvalidInput(ProviderError):
    """The cloud refused the request as invalid; nothing improves until the spec changes."""

    reason = "InvalidSpec"


class Forbidden(ProviderError):
    """The credentials are refused or lack permission."""

    reason = "PermissionDenied"


class Unsupported(ProviderError):
    """The provider type cannot perform the requested operation."""

    reason = "Unsupported"


_BY_STATUS: dict[int, type[ProviderError]] = {
    401: Forbidden,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: Throttled,
}


def from_http_status(
    status: int,
    message: str,
    *,
    vendor_code: str | None = None,
    retry_after: float | None = None,
    invalid: Collection[int] = (400, 422),
) -> ProviderError:
    """The error an HTTP status means, the same for every vendor that answers in HTTP:
    401/403 Forbidden, 404 NotFound, 409 Conflict, 429 Throttled (after `retry_after` seconds),
    the statuses in `invalid` InvalidInput (vendors differ there), anything else Transient."""
    kind = _BY_STATUS.get(status) or (InvalidInput if status in invalid else Transient)
    if kind is Throttled:
        return Throttled(message, vendor_code=vendor_code, retry_after=retry_after)
    return kind(message, vendor_code=vendor_code)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header; None for an HTTP date or nothing (the reconciler's own
    backoff applies then)."""
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


def redact(text: str, secrets: Iterable[str], *, label: str = "<from the Secret>") -> str:
    """`text` with every whole-word occurrence of a Secret's value replaced by `label`: clouds
    quote request parameters in their errors (UCloudStack names the CompanyID it refused), and
    an error message goes to status, events and logs."""
    for secret in secrets:
        if secret:
            text = re.sub(rf"(?<![\w]){re.escape(secret)}(?![\w])", label, text)
    return text
