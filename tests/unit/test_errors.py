"""The HTTP-status rule every HTTP-speaking provider shares, and Retry-After parsing."""

from __future__ import annotations

import pytest
from ucloud.core import exc as ucloud_exc  # type: ignore[import-untyped]

from image_operator.providers.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ProviderError,
    Throttled,
    Transient,
    from_http_status,
    parse_retry_after,
    redact,
)
from image_operator.providers.ucloud_errors import rpc_error


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, Forbidden),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (429, Throttled),
        (400, InvalidInput),
        (422, InvalidInput),
        (413, Transient),  # not in the default `invalid` set
        (500, Transient),
        (503, Transient),
    ],
)
def test_each_status_means_one_error(status: int, kind: type[ProviderError]) -> None:
    error = from_http_status(status, "m", vendor_code="v")
    assert type(error) is kind
    assert (error.message, error.vendor_code) == ("m", "v")


def test_vendors_name_their_own_invalid_statuses() -> None:
    assert type(from_http_status(413, "m", invalid={413})) is InvalidInput
    assert type(from_http_status(400, "m", invalid={413})) is Transient


def test_throttled_carries_retry_after() -> None:
    error = from_http_status(429, "slow down", retry_after=7.0)
    assert isinstance(error, Throttled) and error.retry_after == 7.0 and error.retryable


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("12", 12.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2026 07:28:00 GMT", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_seconds_or_nothing(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_a_secret_value_the_cloud_quotes_is_redacted_from_the_message() -> None:
    refused = ucloud_exc.RetCodeException(
        "DescribeImage", 173, "key pair may not act for CompanyID 200031"
    )

    error = rpc_error(refused, service="ucloudstack", action="DescribeImage", secrets=("200031",))

    assert "200031" not in error.message
    assert "CompanyID <companyID from the Secret>" in error.message
    assert redact("2000310", ["200031"]) == "2000310"  # whole words only
