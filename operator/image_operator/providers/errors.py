"""The one small set of errors every provider raises; vendor errors are mapped into these.

Reconcilers decide from the class alone: throttled and transient errors are retried with
backoff, the rest make the object `Stalled` until its spec changes.
"""

from __future__ import annotations


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
