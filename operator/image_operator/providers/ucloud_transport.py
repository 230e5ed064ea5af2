"""The transport of the UCloud-style providers (compshare, ucloudstack): the SDK's own, with
every request judged by the provider's `HostGuard` first.

`ucloud-sdk-python3` sends through `requests`, which follows redirects: a 307/308 answer would
make it POST the signed body (PublicKey, Signature, CompanyID) again to whatever host the
answer names. The SDK has no switch for that; the transport adapter it mounts for each request
is the one place that sees every hop, so ours refuses any host but the endpoint's.
"""

from __future__ import annotations

from typing import Any

from ucloud.core.transport import RequestsTransport  # type: ignore[import-untyped]

from image_operator.providers.endpoints import GuardedAdapter, HostGuard


class GuardedTransport(RequestsTransport):  # type: ignore[misc]
    """`RequestsTransport` whose adapter is a `GuardedAdapter` (and which never retries: the
    reconcilers do, with backoff)."""

    def __init__(self, guard: HostGuard) -> None:
        self._guard = guard  # before super().__init__, which loads the adapter
        super().__init__(max_retries=0)

    def _load_adapter(self, max_retries: Any = None) -> GuardedAdapter:
        return GuardedAdapter(self._guard)
