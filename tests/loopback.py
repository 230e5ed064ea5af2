"""Tests' clouds listen on loopback (the emulator, Glance, the registry, the control plane),
which the operator refuses as an ImageProvider endpoint by default: tests allow it, as the
demo does, the way an administrator would (docs/providers/README.md)."""

from __future__ import annotations

from image_operator.providers.endpoints import EndpointPolicy

LOOPBACK_CIDRS = "127.0.0.0/8,::1/128"
#: For `build_provider(..., endpoints=LOOPBACK_ENDPOINTS)` in-process.
LOOPBACK_ENDPOINTS = EndpointPolicy.from_lists(allowed_cidrs=LOOPBACK_CIDRS.split(","))
#: For an operator or CLI process.
LOOPBACK_ENV = {"IMAGE_OPERATOR_ALLOWED_ENDPOINT_CIDRS": LOOPBACK_CIDRS}
