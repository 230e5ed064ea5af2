"""The CRDs in crds/ and the chart are exactly what the models generate, and are well-formed."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from image_operator.api import ALL_KINDS
from image_operator.api.common import KEY_PATTERN, OPTIONAL_LABEL_PATTERN, TAG_KEY_MAX
from image_operator.api.image import ImageSpec
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
    forbidden = ("$ref", "anyOf", "allOf", "oneOf", "title:", "const:", "$defs")
    # a map's key schema, which a structural schema cannot hold
    for word in (*forbidden, "patternProperties", "propertyNames"):
        assert word not in text, word
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


@pytest.mark.parametrize("model", ALL_KINDS, ids=lambda m: m.crd.kind)
def test_an_unwritten_status_defaults_to_generation_not_observed(model: Any) -> None:
    # The API server fills these in on read: an object the operator has not written yet has
    # observedGeneration -1 < generation, which kstatus reads as InProgress, not Current.
    crd = crdgen.render_crd(model)
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status["default"] == {}
    assert status["properties"]["observedGeneration"]["default"] == -1


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


# The parser the `re` module itself uses: its getwidth() is the shortest and longest match.
_REGEX_PARSER: Any = importlib.import_module("re._parser")
_UNBOUNDED = 2**32  # above any maxLength; getwidth() caps an unbounded repeat far above it


def _match_lengths(pattern: str) -> tuple[int, int]:
    """The shortest and longest string `pattern` matches in full. The API server's regexes are
    Go's (RE2): `\\p{Han}` stands for one character, which Python's parser reads as `X`. An
    end that is not anchored matches any longer string."""
    python = re.sub(r"\\[pP]\{\w+\}", "X", pattern)
    shortest, longest = _REGEX_PARSER.parse(python).getwidth()
    if not (pattern.startswith("^") and pattern.endswith("$")):
        longest = _UNBOUNDED
    return int(shortest), min(int(longest), _UNBOUNDED)


def _generated_schemas() -> list[tuple[str, dict[str, Any]]]:
    nodes: list[tuple[str, dict[str, Any]]] = []
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            for version in crd["spec"]["versions"]:
                schema = version["schema"]["openAPIV3Schema"]
                nodes += _walk(schema, crd["spec"]["names"]["kind"])
    return nodes


def _length_problem(node: dict[str, Any]) -> str | None:
    """Why a string with a `pattern` would be refused for its length by the regex (whose message
    only quotes the regex) rather than by minLength/maxLength (whose message says the limit)."""
    if "enum" in node or "format" in node:
        return None
    if "maxLength" not in node:
        return "has a pattern but no maxLength: say the limit with max_length"
    shortest, longest = _match_lengths(node["pattern"])
    if longest < node["maxLength"]:
        return (
            f"its pattern matches at most {longest} characters but maxLength is "
            f"{node['maxLength']}: move the limit out of the regex into max_length"
        )
    if shortest == longest and node.get("minLength", 0) < shortest:
        return (
            f"its pattern matches exactly {shortest} characters: say it with min_length and "
            "max_length, not in the regex"
        )
    return None


def test_every_pattern_leaves_length_limits_to_min_and_max_length() -> None:
    """A length limit hidden in a regex reaches the user as `should match '^[...]{1,50}$'`;
    minLength/maxLength reach them as "may not be more than 50". Every string with a pattern
    has a maxLength, and the regex refuses no length that the lengths allow."""
    problems = [
        f"{path}: {problem}"
        for path, node in _generated_schemas()
        if "pattern" in node and (problem := _length_problem(node))
    ]
    assert problems == []


@pytest.mark.parametrize(
    ("node", "problem"),
    [
        ({"pattern": r"^[\p{Han}A-Za-z0-9._-]{1,50}$"}, "no maxLength"),
        ({"pattern": r"^[a-z]{1,50}$", "maxLength": 64}, "at most 50 characters"),
        ({"pattern": r"^[a-f0-9]{64}$", "maxLength": 64}, "exactly 64 characters"),
        ({"pattern": r"^[\p{Han}A-Za-z0-9._-]+$", "maxLength": 50}, None),
        ({"pattern": r"^[a-f0-9]+$", "minLength": 64, "maxLength": 64}, None),
        ({"pattern": r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,4})?$", "maxLength": 14}, None),
        ({"pattern": r"^https?://", "maxLength": 2048}, None),
        ({"pattern": "^(a|b)$", "enum": ["a", "b"]}, None),
    ],
)
def test_length_problem_tells_hidden_limits_apart(
    node: dict[str, Any], problem: str | None
) -> None:
    found = _length_problem(node)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_every_cel_rule_says_what_is_wrong_in_words() -> None:
    """A rule without a message is reported as `failed rule: <the CEL expression>`."""
    silent = [
        f"{path}: {rule['rule']}"
        for path, node in _generated_schemas()
        for rule in node.get("x-kubernetes-validations", [])
        if not (rule.get("message") or rule.get("messageExpression"))
    ]
    assert silent == []


def test_tag_keys_are_checked_by_the_model_and_by_a_rule_on_the_map() -> None:
    """A CRD has no schema for a map's keys: pydantic checks them (the key type) and the API
    server with CEL rules on the map, both with the key type's pattern and length."""
    spec = {"providerRef": {"name": "p"}, "source": {"repository": {"image": "app"}}}
    good = {"team": "media", "example.com/owner": "平台 团队", "gpu": "", "成本中心": "a1"}
    assert ImageSpec.model_validate({**spec, "displayName": "x", "tags": good}).tags == good
    for key in ("../../admin", "cn\nevil", "$(id)", "a b", "k" * (TAG_KEY_MAX + 1)):
        with pytest.raises(ValidationError):
            ImageSpec.model_validate({**spec, "displayName": "x", "tags": {key: "v"}})
    crd = crdgen.render_crd(ALL_KINDS[1])
    tags = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]["tags"]
    rules = [rule["rule"] for rule in tags["x-kubernetes-validations"]]
    assert rules == [
        f"self.all(k, size(k) <= {TAG_KEY_MAX})",
        f"self.all(k, k.matches(r'{KEY_PATTERN}'))",
    ]
    assert tags["additionalProperties"]["pattern"] == OPTIONAL_LABEL_PATTERN
