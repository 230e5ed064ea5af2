"""`image-operator download-url` without a cluster: what it prints, and the sentences it refuses
with (the command against a real cluster and the emulator: tests/integration/
test_provider_ucloudstack.py)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from image_operator import downloadurl
from image_operator.api.image import ImageFormat, ImageSpec
from image_operator.api.provider import ImageProviderSpec
from image_operator.imageaccess import CommandError
from image_operator.providers.capabilities import ExportedImage, ExportsImages
from tests.unit.test_image_reconciler import make_spec

NOW = 1_800_000_000


class _Exporter(ExportsImages):
    def __init__(self) -> None:
        self.asked: list[str] = []

    def export_image(self, external_id: str) -> ExportedImage:
        self.asked.append(external_id)
        return ExportedImage(
            url=f"https://files.example/{external_id}?sig=s3cr3t",
            format=ImageFormat.QCOW2,
            expires_at=NOW + 3600 + 5,
        )


@dataclass
class _Provider:
    exporter: ExportsImages | None
    closed: bool = False

    def close(self) -> None:
        self.closed = True


@dataclass
class _Cluster:
    image: dict[str, Any]
    provider_type: str
    made: _Provider
    namespace: str = "team"
    reads: list[str] = field(default_factory=list)

    def get(self, plural: str, name: str) -> dict[str, Any]:
        self.reads.append(f"{plural}/{name}")
        return self.image

    def provider(self, spec: ImageSpec) -> tuple[_Provider, ImageProviderSpec]:
        provider_spec = ImageProviderSpec.model_validate(
            {"type": self.provider_type, "endpoint": "https://cloud.example"}
        )
        return self.made, provider_spec


def _run(
    monkeypatch: pytest.MonkeyPatch, cluster: _Cluster, *args: str, output: str = "url"
) -> tuple[int, str, str]:
    monkeypatch.setattr(downloadurl, "connect", lambda namespace: cluster)
    monkeypatch.setattr("image_operator.downloadurl.time.time", lambda: float(NOW))
    out, err = io.StringIO(), io.StringIO()
    code = downloadurl.run(*args, namespace=None, output=output, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _image(external_id: str | None) -> dict[str, Any]:
    status = {"externalID": external_id} if external_id else {}
    return {"spec": make_spec().model_dump(by_alias=True, mode="json"), "status": status}


def test_the_link_alone_goes_to_stdout_and_its_expiry_to_stderr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exporter = _Exporter()
    provider = _Provider(exporter)
    cluster = _Cluster(_image("img-123"), "ucloudstack", provider)

    code, out, err = _run(monkeypatch, cluster, "img/vm")

    assert code == 0
    assert out == "https://files.example/img-123?sig=s3cr3t\n"
    assert err == (
        "qcow2 file of cloud image img-123; expires at 2027-01-15T09:00:05Z (in 60m05s)\n"
    )
    assert exporter.asked == ["img-123"] and cluster.reads == ["images/vm"]
    assert provider.closed


def test_json_output_has_the_url_format_and_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = _Cluster(_image("img-123"), "ucloudstack", _Provider(_Exporter()))

    code, out, _ = _run(monkeypatch, cluster, "vm", output="json")

    assert code == 0
    assert json.loads(out) == {
        "url": "https://files.example/img-123?sig=s3cr3t",
        "format": "qcow2",
        "expiresAt": NOW + 3605,
    }


def test_an_image_without_a_cloud_image_is_refused_before_the_provider_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = _Provider(_Exporter())
    cluster = _Cluster(_image(None), "ucloudstack", provider)

    with pytest.raises(CommandError, match=r"no cloud image yet \(status.externalID is empty\)"):
        _run(monkeypatch, cluster, "img/vm")
    assert not provider.closed  # never built


def test_a_provider_without_links_is_named_and_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = _Provider(None)
    cluster = _Cluster(_image("a-1"), "argon", provider)

    with pytest.raises(CommandError, match="type argon, whose cloud hands out no download links"):
        _run(monkeypatch, cluster, "img/vm")
    assert provider.closed


def test_another_kind_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = _Cluster(_image("a-1"), "ucloudstack", _Provider(_Exporter()))

    with pytest.raises(CommandError, match="expected img/NAME"):
        _run(monkeypatch, cluster, "bimg/vm")
    assert cluster.reads == []
