"""What synchronous tests need to drive the `aliyun` emulator: an emulator thread, ECS SDK
clients signed with its keys, the emulated OSS and the admin routes.

It lives in the package so that the emulator's contract tests, the provider's contract tests
and the integration tests share it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Self
from urllib.parse import quote

import httpx
from alibabacloud_ecs20140526.client import Client as EcsClient  # type: ignore[import-untyped]
from alibabacloud_tea_openapi.utils_models import Config  # type: ignore[import-untyped]

from image_operator_dev.emulator.clock import Clock, system_clock
from image_operator_dev.emulator.config import EmulatorConfig
from image_operator_dev.emulator.server import EmulatorThread

TEST_KEY_ID: Final = "contract-aliyun-key"
TEST_KEY_SECRET: Final = "contract-aliyun-secret"  # noqa: S105 - the emulator's test key


def aliyun_config(state_dir: Path | None, **aliyun: Any) -> EmulatorConfig:
    """A config serving only `aliyun`, with test keys and short lifecycles; keyword arguments
    override the aliyun section."""
    section: dict[str, Any] = {
        "enabled": True,
        "access_keys": {TEST_KEY_ID: TEST_KEY_SECRET},
        "import_seconds": 0.5,
        "copy_seconds": 0.4,
        "preparing_seconds": 0.2,
        "building_seconds": 0.3,
        "testing_seconds": 0.2,
        "distributing_seconds": 0.3,
        "cancelling_seconds": 0.2,
        **aliyun,
    }
    return EmulatorConfig.model_validate(
        {"state_dir": state_dir, "argon": {"enabled": False}, "aliyun": section}
    )


class AliyunHarness:
    """An emulator (with the aliyun section enabled) in a background thread."""

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        clock: Clock = system_clock,
        region: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not config.aliyun.enabled:
            msg = "the aliyun section of the emulator config is not enabled"
            raise ValueError(msg)
        self.config = config
        self.key_id, self.key_secret = next(iter(config.aliyun.access_keys.items()))
        self.region = region or config.aliyun.regions[0]
        self.emulator = EmulatorThread(config, clock=clock)
        self.url = self.emulator.start()["aliyun"]
        self.admin = httpx.Client(base_url=self.url, timeout=timeout)
        self._timeout_ms = int(timeout * 1000)
        self._closed = False

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`: what the SDK's Config(endpoint=...) takes."""
        return self.url.removeprefix("http://")

    def client(
        self,
        *,
        key_id: str | None = None,
        key_secret: str | None = None,
        signature_algorithm: str | None = None,
    ) -> EcsClient:
        """An ECS SDK client for the emulator (ACS3-HMAC-SHA256 unless told "v2")."""
        config = Config(
            access_key_id=key_id or self.key_id,
            access_key_secret=key_secret or self.key_secret,
            endpoint=self.host,
            protocol="http",
            region_id=self.region,
            signature_algorithm=signature_algorithm,
            read_timeout=self._timeout_ms,
            connect_timeout=self._timeout_ms,
        )
        return EcsClient(config)

    def oss_url(self, bucket: str, key: str) -> str:
        return f"{self.url}/oss/{bucket}/{quote(key)}"

    def put_object(self, bucket: str, key: str, content: bytes) -> str:
        """Upload an object to the emulated OSS; returns its URL."""
        url = self.oss_url(bucket, key)
        self.admin.put(url, content=content).raise_for_status()
        return url

    def state(self) -> dict[str, Any]:
        return self._ok(self.admin.get("/_emulator/state"))

    def images(self) -> dict[str, dict[str, Any]]:
        """ImageId → the image as DescribeImages shows it (plus RegionId), from the admin dump."""
        return {image["ImageId"]: image for image in self.state()["images"]}

    def calls(self) -> dict[str, int]:
        """How many times each ECS action was called (since the emulator started)."""
        return dict(self.state()["calls"])

    def set_faults(self, **faults: Any) -> dict[str, Any]:
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
        if not self._closed:
            self._closed = True
            self.admin.close()
            self.emulator.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
