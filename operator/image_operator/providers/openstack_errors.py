"""openstacksdk, keystoneauth and requests failures as provider errors (`map_error`), and URLs
made safe to quote in messages (`safe_url`). Used by `providers.openstack` and
`providers.openstack_connect`.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit, urlunsplit

import requests
from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as sdk_exceptions

from image_operator.providers.errors import (
    Forbidden,
    InvalidInput,
    ProviderError,
    Throttled,
    Transient,
    from_http_status,
    parse_retry_after,
)


def _detail(exc: sdk_exceptions.HttpException) -> str:
    """Glance's own explanation, as a short plain sentence (its bodies are HTML-escaped)."""
    text = str(exc.details or exc.message or "")
    response = exc.response
    if response is not None and text in ("", response.reason) and response.text:
        # openstacksdk reads JSON and HTML bodies only; Glance answers some errors in plain text.
        text = response.text
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    text = re.sub(r"\s+", " ", text).strip()
    return text[:400] or "no details given"


def safe_url(url: str) -> str:
    """The URL without user info, query or fragment (they may carry credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


# Statuses Glance answers for a request that will not succeed as it stands.
_INVALID_STATUSES = frozenset({400, 406, 411, 413, 415, 422})


def map_error(exc: Exception, action: str) -> ProviderError:
    """Every openstacksdk / keystoneauth failure as one of the provider errors."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, sdk_exceptions.HttpException) and exc.status_code is not None:
        code = int(exc.status_code)
        text = f"glance answered {code} to {action}: {_detail(exc)}"
        retry_after = parse_retry_after(
            exc.response.headers.get("Retry-After") if exc.response is not None else None
        )
        if code == 413 and retry_after:  # Glance's way of saying "too much at once"
            return Throttled(text, vendor_code=str(code), retry_after=retry_after)
        return from_http_status(
            code, text, vendor_code=str(code), retry_after=retry_after, invalid=_INVALID_STATUSES
        )
    if isinstance(exc, ks_exceptions.Unauthorized | ks_exceptions.Forbidden):
        return Forbidden(f"the identity service refused the credentials while trying to {action}")
    if isinstance(exc, ks_exceptions.EndpointNotFound):
        return InvalidInput(
            f"the service catalog has no image (Glance) endpoint for this region: cannot {action}"
        )
    if isinstance(exc, ks_exceptions.DiscoveryFailure):
        return Transient(
            f"glance is unreachable, or the endpoint is not an image service: cannot {action}"
        )
    if isinstance(exc, ks_exceptions.ConnectionError):
        return Transient(f"glance is unreachable: cannot {action} ({type(exc).__name__})")
    if isinstance(exc, ks_exceptions.ClientException):
        return Transient(f"glance client error while trying to {action} ({type(exc).__name__})")
    if isinstance(exc, requests.RequestException):
        return Transient(
            f"the connection to glance failed while trying to {action} ({type(exc).__name__})"
        )
    if isinstance(exc, sdk_exceptions.InvalidRequest):
        return InvalidInput(f"cannot {action}: {exc}")
    if isinstance(exc, sdk_exceptions.SDKException):
        return Transient(f"openstacksdk failed to {action}: {exc}")
    raise exc
