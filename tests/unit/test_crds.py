"""The CRDs in crds/ and the chart are exactly what the models generate, and are well-formed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from image_operator.api import ALL_KINDS
from image_operator_dev import crdgen

ROOT = Path(__file__).resolve().parents[2]
TARGETS = [ROOT / "crds", ROOT / "charts" / "image-operator" / "crds"]


@pytest.mark.parametrize("target", TARGETS, ids=lambda p: str(p.relative_to(ROOT)))
def test_checked_in_crds_match_the_generator(target: Path) -> None:
    assert crdgen.drift(target) == [], "run `make crds` and commit the result"


def test_drift_detects_an_edited_file(tmp_path: Path) -> None:
    crdgen.write(tmp_path)
    victim = tmp_path / "imageops.io_images.yaml"
    victim.write_text(victim.read_text() + "# edited by hand\n")
    (tmp_path / "imageops.io_stale.yaml").write_text("{}")

    assert crdgen.drift(tmp_path) == ["imageops.io_images.yaml", "imageops.io_stale.yaml"]


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.get("properties", {}).items():
            found += _walk(value, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            found += _walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            found += _walk(node["additionalProperties"], f"{path}{{}}")
    return found


@pytest.mark.parametrize("model", ALL_KINDS, ids=lambda m: m.crd.kind)
def test_schema_is_structural_and_explained(model: Any) -> None:
    crd = crdgen.render_crd(model)
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    text = yaml.safe_dump(crd)
    for forbidden in ("$ref", "anyOf", "allOf", "oneOf", "title:", "const:", "$defs"):
        assert forbidden not in text, forbidden
    for path, node in _walk(schema["properties"]["spec"], "spec"):
        assert "type" in node or "x-kubernetes-int-or-string" in node, f"{path} has no type"
        # docstrings are unwrapped: `kubectl explain` wraps text itself
        assert "\n" not in node.get("description", ""), f"{path} has a wrapped description"
    for name, node in schema["properties"]["spec"]["properties"].items():
        # every spec field explains itself in `kubectl explain`
        assert node.get("description"), f"spec.{name} has no description"
    assert version["subresources"] == {"status": {}}
    assert "imageops" in crd["spec"]["names"]["categories"]
    assert crd["spec"]["names"]["shortNames"] == list(model.crd.short_names)
    columns = {c["name"] for c in version["additionalPrinterColumns"]}
    assert {"Ready", "Age"} <= columns


def test_image_crd_carries_the_rules_the_issue_asks_for() -> None:
    crd = crdgen.render_crd(ALL_KINDS[1])
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert any("findAll" in r and "inputs" in r for r in rules)
    assert any("findAll" in r and "configs" in r for r in rules)
    assert any("findAll" in r and "outputs" in r for r in rules)
    source_rules = [r["rule"] for r in spec["properties"]["source"]["x-kubernetes-validations"]]
    assert "self == oldSelf" in source_rules
    assert any("size() == 1" in r for r in source_rules)
    provider_rules = spec["properties"]["providerRef"]["x-kubernetes-validations"]
    assert provider_rules[0]["rule"] == "self == oldSelf"
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == ["Provider", "Phase", "External ID", "Progress", "Ready", "Age"]
