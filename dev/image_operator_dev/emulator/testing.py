"""Helpers for synchronous tests that talk to the emulator (httpx clients, polling).

They live in the package, not in a conftest, so that the emulator's own contract tests and the
operator's provider tests share them and can import them by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Self, TypeVar

import httpx

from image_operator_dev.emulator.clock import Clock, system_clock
from image_operator_dev.emulator.config import EmulatorConfig
from image_operator_dev.emulator.server import EmulatorThread

T = TypeVar("T")


def poll_until(
    probe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    deadline: float = 10.0,
    interval: float = 0.01,
) -> list[T]:
    """Call `probe` until `done` holds for its result; returns every result seen, in order.

    Raises AssertionError after `deadline` seconds, so tests wait for states rather than
    sleeping for guessed times.
    """
    seen: list[T] = []
    stop_at = time.monotonic() + deadline
    while True:
        value = probe()
        seen.append(value)
        if done(value):
            return seen
        if time.monotonic() > stop_at:
            msg = f"condition not reached within {deadline}s; last seen: {value!r}"
            raise AssertionError(msg)
        time.sleep(interval)


class ArgonHarness:
    """An emulator in a background thread plus httpx clients for its Argon port.

    `api` sends the bearer token; `admin` does not (the /_emulator/ routes need none).
    """

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        clock: Clock = system_clock,
        namespace: str = "default",
        timeout: float = 10.0,
    ) -> None:
        if not config.argon.tokens:
            msg = "the Argon section of the config accepts no token"
            raise ValueError(msg)
        self.token = config.argon.tokens[0]
        self.namespace = namespace
        self.emulator = EmulatorThread(config, clock=clock)
        self.url = self.emulator.start()["argon"]
        self.api = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=timeout
        )
        self.admin = httpx.Client(base_url=self.url, timeout=timeout)
        self._closed = False

    def images_path(self, namespace: str | None = None) -> str:
        return f"/api/v1/namespaces/{namespace or self.namespace}/images"

    def image_path(self, name: str, namespace: str | None = None) -> str:
        return f"{self.images_path(namespace)}/{name}"

    def create(self, image: dict[str, Any], namespace: str | None = None) -> httpx.Response:
        ns = namespace or self.namespace
        return self.api.post(self.images_path(ns), json={"namespace": ns, "image": image})

    def replace(
        self, name: str, image: dict[str, Any], namespace: str | None = None
    ) -> httpx.Response:
        ns = namespace or self.namespace
        return self.api.put(self.image_path(name, ns), json={"namespace": ns, "image": image})

    def get(self, name: str, namespace: str | None = None) -> httpx.Response:
        return self.api.get(self.image_path(name, namespace))

    def delete(self, name: str, namespace: str | None = None) -> httpx.Response:
        return self.api.delete(self.image_path(name, namespace))

    def status_of(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        """The image's `status`; the image must exist."""
        return dict(self._ok(self.get(name, namespace))["status"])

    def state(self) -> dict[str, Any]:
        return self._ok(self.admin.get("/_emulator/state"))

    def stats(self) -> dict[str, Any]:
        return self._ok(self.admin.get("/_emulator/stats"))

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Replace the fault settings (unnamed ones return to their defaults)."""
        return self._ok(self.admin.put("/_emulator/faults", json=faults))

    @staticmethod
    def _ok(response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            msg = f"{response.request.method} {response.request.url.path}: {response.text}"
            raise AssertionError(msg)
        body = response.json()
        if not isinstance(body, dict):
            msg = f"expected a JSON object, got {body!r}"
            raise AssertionError(msg)
        return body

    def close(self) -> None:
        """Close the clients and stop the emulator; safe to call twice."""
        if not self._closed:
            self._closed = True
            self.api.close()
            self.admin.close()
            self.emulator.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
