"""Alibaba Cloud RPC on the wire: errors, flattened parameters and request signatures.

The ECS SDK (`alibabacloud_ecs20140526` on `alibabacloud_tea_openapi`) sends every call as
`POST /?<parameters>` with the action and version in `x-acs-action` / `x-acs-version` and an
`Authorization: ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…` header (the
default), or, with `signature_algorithm="v2"`, the older form where `Action`, `Version`,
`AccessKeyId`, `SignatureMethod=HMAC-SHA1` and `Signature` are query parameters. Lists and
objects are flattened into `Name.N` / `Name.N.Field` keys. Both signatures are recomputed with
the SDK's own functions (`alibabacloud_tea_openapi.utils.Utils`), never re-implemented, so the
emulator accepts exactly what the SDK signs.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TypeVar

from alibabacloud_tea_openapi.utils import Utils  # type: ignore[import-untyped]
from darabonba.request import DaraRequest  # type: ignore[import-untyped]
from multidict import CIMultiDictProxy

API_VERSION: Final = "2014-05-26"
T = TypeVar("T")

# The parameters every RPC call may carry that are not the action's own (v1 signature,
# format, the SDK's owner fields); they never take part in ClientToken comparisons.
COMMON_PARAMETERS: Final = frozenset(
    {
        "Action",
        "Version",
        "Format",
        "Timestamp",
        "SignatureNonce",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureType",
        "AccessKeyId",
        "Signature",
        "SecurityToken",
        "OwnerId",
        "OwnerAccount",
        "ResourceOwnerId",
        "ResourceOwnerAccount",
    }
)


class AliyunError(Exception):
    """An error answer: HTTP status plus Alibaba's `Code` and `Message`."""

    def __init__(
        self, status: int, code: str, message: str, *, retry_after_ms: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms


def missing(name: str) -> AliyunError:
    return AliyunError(
        400,
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request is not '
        "supplied.",
    )


def invalid(name: str, why: str, code: str | None = None) -> AliyunError:
    return AliyunError(
        400, code or "InvalidParameter", f'The specified parameter "{name}" is not valid: {why}'
    )


# --- parameters ------------------------------------------------------------------------------

_INDEX = re.compile(r"[1-9][0-9]{0,3}")


class Params:
    """The flattened parameters of one call, with typed accessors that raise `AliyunError`.

    Nested values (`Tag.1.Key`, `ImportImageOptions.DiskDeviceMappings.2.OSSObject`) are read
    through `sub(prefix)` and `items(prefix, limit)`, which see the keys below a prefix.
    """

    def __init__(self, flat: Mapping[str, str], prefix: str = "") -> None:
        self._flat = dict(flat)
        self._prefix = prefix

    def name(self, key: str) -> str:
        return f"{self._prefix}{key}"

    def has(self, key: str) -> bool:
        full = self.name(key)
        return full in self._flat or any(k.startswith(full + ".") for k in self._flat)

    def raw(self, key: str) -> str | None:
        return self._flat.get(self.name(key))

    def text(
        self,
        key: str,
        *,
        required: bool = False,
        check: Callable[[str, str], None] | None = None,
    ) -> str | None:
        value = self.raw(key)
        if value is None or (value == "" and required):
            if required:
                raise missing(self.name(key))
            return None
        if check is not None:
            check(self.name(key), value)
        return value

    def required(self, key: str, check: Callable[[str, str], None] | None = None) -> str:
        value = self.text(key, required=True, check=check)
        assert value is not None
        return value

    def integer(
        self,
        key: str,
        *,
        low: int | None = None,
        high: int | None = None,
        code: str | None = None,
        required: bool = False,
    ) -> int | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        try:
            number = int(value, 10)
        except ValueError:
            raise invalid(self.name(key), f"{value!r} is not an integer", code) from None
        if (low is not None and number < low) or (high is not None and number > high):
            bounds = f"{low if low is not None else '-∞'} to {high if high is not None else '∞'}"
            raise invalid(self.name(key), f"{number} is outside {bounds}", code)
        return number

    def flag(self, key: str, *, code: str | None = None) -> bool | None:
        value = self.raw(key)
        if value is None:
            return None
        # The Python SDK sends str(True) == "True"; other SDKs send "true".
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise invalid(self.name(key), f"{value!r} is not true or false", code)
        return lowered == "true"

    def enum(
        self, key: str, allowed: tuple[str, ...], *, code: str | None = None, required: bool = False
    ) -> str | None:
        value = self.text(key, required=required)
        if value is not None and value not in allowed:
            raise invalid(self.name(key), f"{value!r} is not one of {', '.join(allowed)}", code)
        return value

    def indexes(self, key: str, limit: int, *, code: str | None = None) -> list[int]:
        """The N of every `key.N…` parameter, sorted; each N must be 1..limit."""
        full = self.name(key) + "."
        found: set[int] = set()
        for flat_key in self._flat:
            if not flat_key.startswith(full):
                continue
            head = flat_key[len(full) :].split(".", 1)[0]
            if not _INDEX.fullmatch(head):
                raise invalid(flat_key, f"{head!r} is not an index N (1..{limit})", code)
            found.add(int(head))
        if any(n > limit for n in found):
            raise invalid(
                self.name(key),
                f"at most {limit} entries are accepted (N is 1..{limit}); got N={max(found)}",
                code or f"InvalidParameter.{key.replace('.', '')}CountExceeded",
            )
        return sorted(found)

    def values(self, key: str, limit: int, *, code: str | None = None) -> list[str]:
        """`key.1`, `key.2`, … as a list (the SDK's flattening of a list of scalars)."""
        result = []
        for n in self.indexes(key, limit, code=code):
            value = self.raw(f"{key}.{n}")
            if value is None:
                raise invalid(f"{self.name(key)}.{n}", "a list entry must be a plain value", code)
            result.append(value)
        return result

    def items(self, key: str, limit: int, *, code: str | None = None) -> list[Params]:
        """`key.N.Field` groups as Params views (the SDK's flattening of a list of objects)."""
        return [self.sub(f"{key}.{n}") for n in self.indexes(key, limit, code=code)]

    def sub(self, key: str) -> Params:
        return Params(self._flat, self.name(key) + ".")

    def flat(self) -> dict[str, str]:
        return dict(self._flat)


# --- signatures ------------------------------------------------------------------------------

_AUTHORIZATION = re.compile(
    r"(?P<algorithm>ACS3-HMAC-SHA256|ACS3-HMAC-SM3) "
    r"Credential=(?P<key>[^,\s]+),SignedHeaders=(?P<headers>[a-z0-9;._-]+),"
    r"Signature=(?P<signature>[0-9a-f]+)"
)
_TIMESTAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"


def _incomplete(detail: str) -> AliyunError:
    return AliyunError(
        400,
        "IncompleteSignature",
        f"The request signature does not conform to Aliyun standards: {detail}",
    )


class NonceCache:
    """SignatureNonce values seen recently; a replayed nonce is refused."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def check_and_remember(self, nonce: str) -> None:
        now = self._clock()
        while self._seen:
            oldest, seen_at = next(iter(self._seen.items()))
            if now - seen_at <= self._ttl:
                break
            self._seen.pop(oldest)
        if nonce in self._seen:
            raise AliyunError(
                400, "SignatureNonceUsed", "Specified signature nonce was used already."
            )
        self._seen[nonce] = now


@dataclass(frozen=True)
class SignedRequest:
    """What a verified request says about itself."""

    access_key_id: str
    action: str
    version: str


def _check_timestamp(value: str | None, name: str, max_skew: float) -> None:
    if not value:
        raise _incomplete(f"{name} is missing")
    try:
        moment = datetime.strptime(value, _TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise AliyunError(
            400,
            "InvalidTimeStamp.Format",
            f"Specified time stamp or date value is not well formatted: {name} must be "
            "UTC yyyy-MM-ddTHH:mm:ssZ.",
        ) from None
    # Freshness is judged against the machine's clock (the SDK signs with it), never against
    # the emulator's injectable lifecycle clock.
    if abs(time.time() - moment.timestamp()) > max_skew:
        raise AliyunError(
            400,
            "InvalidTimeStamp.Expired",
            f"Specified time stamp or date value is expired: {name} is more than "
            f"{max_skew:.0f} seconds away from the server's time.",
        )


def _secret_for(secrets: Mapping[str, str], key_id: str) -> str:
    secret = secrets.get(key_id)
    if secret is None:
        raise AliyunError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    return secret


def verify_acs3(
    *,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: CIMultiDictProxy[str],
    body: bytes,
    secrets: Mapping[str, str],
    nonces: NonceCache,
    max_skew: float,
) -> SignedRequest:
    """Check an `Authorization: ACS3-…` request with the SDK's `Utils.get_authorization`."""
    authorization = headers.get("Authorization", "")
    match = _AUTHORIZATION.fullmatch(authorization.strip())
    if match is None:
        raise _incomplete(
            "the Authorization header must read '<ACS3-HMAC-SHA256|ACS3-HMAC-SM3> "
            "Credential=<AccessKeyId>,SignedHeaders=<h1;h2;…>,Signature=<hex>'"
        )
    signed = match["headers"].split(";")
    required = {
        "host",
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    }
    if not required <= set(signed):
        raise _incomplete(f"SignedHeaders must include {', '.join(sorted(required))}")
    if signed != sorted(signed):
        raise _incomplete("SignedHeaders must be sorted and lowercase")
    signed_headers: dict[str, str] = {}
    for name in signed:
        values = headers.getall(name, [])
        if not values:
            raise _incomplete(f"the signed header {name!r} is not in the request")
        # get_canonicalized_headers joins repeated headers itself; one value each is the SDK's
        # own shape, so a repeated header is folded the same way here.
        signed_headers[name] = ",".join(v.strip() for v in values)
    secret = _secret_for(secrets, match["key"])
    _check_timestamp(signed_headers.get("x-acs-date"), "x-acs-date", max_skew)
    algorithm = match["algorithm"]
    payload_hash = Utils.hash(body, algorithm).hex()

    request = DaraRequest()
    request.method = method
    request.pathname = path
    request.query = dict(query)
    request.headers = signed_headers
    expected = Utils.get_authorization(request, algorithm, payload_hash, match["key"], secret)
    if not hmac.compare_digest(expected.encode(), authorization.strip().encode()):
        raise AliyunError(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation (check the "
            "AccessKeySecret, and that the request was not changed after signing).",
        )
    nonces.check_and_remember(signed_headers["x-acs-signature-nonce"])
    return SignedRequest(
        access_key_id=match["key"],
        action=signed_headers["x-acs-action"],
        version=signed_headers["x-acs-version"],
    )


def verify_v1(
    *,
    method: str,
    params: Mapping[str, str],
    secrets: Mapping[str, str],
    nonces: NonceCache,
    max_skew: float,
) -> SignedRequest:
    """Check a `SignatureMethod=HMAC-SHA1` request with the SDK's `Utils.get_rpcsignature`."""
    for name in ("AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce"):
        if not params.get(name):
            raise _incomplete(f"the parameter {name} is missing")
    if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
        raise _incomplete("SignatureMethod must be HMAC-SHA1 and SignatureVersion 1.0")
    secret = _secret_for(secrets, params["AccessKeyId"])
    _check_timestamp(params.get("Timestamp"), "Timestamp", max_skew)
    presented = params["Signature"]
    unsigned = {k: v for k, v in params.items() if k != "Signature"}
    expected = Utils.get_rpcsignature(unsigned, method, secret)
    if not hmac.compare_digest(expected.encode(), presented.encode()):
        raise AliyunError(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation (check the "
            "AccessKeySecret, and that the request was not changed after signing).",
        )
    nonces.check_and_remember(params["SignatureNonce"])
    if not params.get("Action"):
        raise missing("Action")
    if not params.get("Version"):
        raise missing("Version")
    return SignedRequest(
        access_key_id=params["AccessKeyId"], action=params["Action"], version=params["Version"]
    )


def fingerprint(params: Mapping[str, str], *, exclude: frozenset[str] = frozenset()) -> str:
    """A digest of a call's own parameters, to compare two calls carrying one ClientToken."""
    own = sorted(
        (k, v)
        for k, v in params.items()
        if k not in COMMON_PARAMETERS and k not in exclude and k != "ClientToken"
    )
    digest = hashlib.sha256()
    for key, value in own:
        digest.update(key.encode() + b"\0" + value.encode() + b"\0")
    return digest.hexdigest()
