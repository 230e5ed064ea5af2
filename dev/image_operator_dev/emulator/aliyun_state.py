"""What every ECS action shares: settings, store, clock, and ClientToken idempotency.

Objects live in the shared `Store` under vendor `aliyun`, with the region as scope:
`image`, `pipeline`, `execution`; `token` holds ClientToken answers (scope
`<region>/<action>`), `oss` the emulated OSS objects (scope = bucket).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel, ConfigDict

from image_operator_dev.emulator.aliyun_wire import AliyunError, fingerprint
from image_operator_dev.emulator.clock import Clock
from image_operator_dev.emulator.config import AliyunSettings
from image_operator_dev.emulator.store import JSONObject, Store

VENDOR: Final = "aliyun"
IMAGE: Final = "image"
PIPELINE: Final = "pipeline"
EXECUTION: Final = "execution"
TOKEN: Final = "token"  # noqa: S105 - a store kind, not a password
OSS: Final = "oss"


class TokenRecord(BaseModel):
    """The answer given to the first call with a ClientToken, and what that call asked."""

    model_config = ConfigDict(extra="forbid")

    fingerprint: str
    answer: JSONObject


@dataclass
class Context:
    settings: AliyunSettings
    store: Store
    clock: Clock

    def idempotent(
        self,
        *,
        region: str,
        action: str,
        token: str | None,
        params: Mapping[str, str],
        create: Callable[[], JSONObject],
    ) -> JSONObject:
        """Run `create` once per ClientToken: the same token with the same parameters gets the
        first answer again; with different parameters it is refused."""
        if token is None:
            return create()
        scope = f"{region}/{action}"
        digest = fingerprint(params)
        stored = self.store.get(VENDOR, TOKEN, scope, token)
        if stored is not None:
            record = TokenRecord.model_validate(stored)
            if record.fingerprint != digest:
                raise AliyunError(
                    400,
                    "IdempotentParameterMismatch",
                    "The request uses the same ClientToken as a previous, but non-identical "
                    f"{action} request; use a new ClientToken for different parameters.",
                )
            return record.answer
        answer = create()
        self.store.insert(
            VENDOR,
            TOKEN,
            scope,
            token,
            TokenRecord(fingerprint=digest, answer=answer).model_dump(),
        )
        return answer
