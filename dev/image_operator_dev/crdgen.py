"""Render the pydantic models into CustomResourceDefinitions (structural OpenAPI v3 schemas).

Kubernetes wants every schema inline (no `$ref`), no `anyOf` for optional fields, no titles,
and its own `x-kubernetes-*` extensions; pydantic's JSON Schema is reshaped accordingly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from image_operator.api import ALL_KINDS
from image_operator.api.base import ApiModel
from image_operator.api.common import GROUP, VERSION

_DROPPED_KEYS = {"title", "discriminator", "examples"}
# Readable order in the generated YAML: what a field is, then its constraints, then children.
_KEY_ORDER = {
    "type": 0,
    "description": 1,
    "default": 2,
    "enum": 3,
    "required": 90,
    "properties": 91,
}


class _NoAliasDumper(yaml.SafeDumper):
    """Write shared sub-schemas out in full: anchors/aliases confuse readers and diff tools."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if key == "x-kubernetes-validations" and key in merged:
            merged[key] = [*merged[key], *value]
        else:
            merged[key] = value
    return merged


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Inline references and translate pydantic's JSON Schema into a structural schema."""
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if node.get("default", ...) is None:
        # `X | None = None`: absence already means "unset". Dropped before merging, so that a
        # default the referenced model declares itself (a status's `{}`) is kept.
        del node["default"]
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        node = _merge(_structural(target, defs), _structural(node, defs))
    if "allOf" in node and len(node["allOf"]) == 1:
        node = _merge(_structural(node.pop("allOf")[0], defs), node)
    if "anyOf" in node:
        # Optional[X] is `anyOf: [X, {type: null}]`; absence already means "unset".
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express a union of {len(options)} types in a CRD: {node}")
        node = _merge(_structural(options[0], defs), node)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if node.get("additionalProperties") is False:
        # Structural schemas forbid it beside `properties`; unknown fields are pruned, and
        # kubectl's strict field validation reports them.
        del node["additionalProperties"]
    out: dict[str, Any] = {}
    for key, value in sorted(node.items(), key=lambda kv: _KEY_ORDER.get(kv[0], 99)):
        if key in _DROPPED_KEYS:
            continue
        if key == "properties":
            out[key] = {name: _structural(prop, defs) for name, prop in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _structural(value, defs)
        elif key == "description" and isinstance(value, str):
            # Docstrings wrap at the code's line length; `kubectl explain` wraps on its own.
            out[key] = " ".join(value.split())
        else:
            out[key] = value
    if "properties" in out:
        out.setdefault("type", "object")
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


# kopf's bookkeeping: handler progress and the diff base digest (handlers/diffbase.py). In the
# status, kopf writes them in the same PATCH as the status a handler returns.
KOPF_STATUS: dict[str, Any] = {
    "type": "object",
    "description": "The operator's own bookkeeping (kopf's handler progress and the digest of "
    "the last handled spec); not for users.",
    "x-kubernetes-preserve-unknown-fields": True,
}


def openapi_schema(model: type[ApiModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    schema: dict[str, Any] = _structural(raw, defs)
    crd = model.crd  # type: ignore[attr-defined]
    status = schema["properties"].get("status")
    if status is not None:
        status.setdefault("properties", {})["kopf"] = KOPF_STATUS
    properties = {
        "apiVersion": {"type": "string", "description": "imageops.io/v1alpha1"},
        "kind": {"type": "string", "description": crd.kind},
        "metadata": {"type": "object"},
        **schema["properties"],
    }
    return {
        "type": "object",
        "description": crd.description,
        "required": ["spec"],
        "properties": properties,
    }


def render_crd(model: type[ApiModel]) -> dict[str, Any]:
    crd = model.crd  # type: ignore[attr-defined]
    columns = []
    for column in crd.columns:
        entry: dict[str, Any] = {
            "name": column.name,
            "type": column.type,
            "jsonPath": column.json_path,
        }
        if column.description:
            entry["description"] = column.description
        if column.priority:
            entry["priority"] = column.priority
        if column.format:
            entry["format"] = column.format
        columns.append(entry)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{crd.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "image-operator"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": crd.kind,
                "listKind": f"{crd.kind}List",
                "plural": crd.plural,
                "singular": crd.singular,
                "shortNames": list(crd.short_names),
                "categories": list(crd.categories),
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": openapi_schema(model)},
                }
            ],
        },
    }


HEADER = "# Generated by `image-operator generate` from the pydantic models. Do not edit.\n"


# kopf's peering resources (group kopf.dev), needed for replicas > 1; shipped with ours.
KOPF_PEERING_CRDS: list[dict[str, Any]] = [
    {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.kopf.dev",
            "labels": {"app.kubernetes.io/part-of": "image-operator"},
        },
        "spec": {
            "scope": scope,
            "group": "kopf.dev",
            "names": {"kind": kind, "plural": plural, "singular": plural[:-1]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": f"Liveness records of kopf operators ({scope}).",
                            "properties": {
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    for kind, plural, scope in (
        ("ClusterKopfPeering", "clusterkopfpeerings", "Cluster"),
        ("KopfPeering", "kopfpeerings", "Namespaced"),
    )
]


def _dump(documents: list[dict[str, Any]]) -> str:
    return HEADER + "---\n".join(
        yaml.dump(doc, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True, width=100)
        for doc in documents
    )


def rendered_files() -> dict[str, str]:
    """File name -> YAML text for every CRD."""
    files = {"kopf.dev_peerings.yaml": _dump(KOPF_PEERING_CRDS)}
    for model in ALL_KINDS:
        files[f"{GROUP}_{model.crd.plural}.yaml"] = _dump([render_crd(model)])
    return files


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered_files().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def drift(directory: Path) -> list[str]:
    """Names of files in `directory` that differ from (or are missing against) the generator."""
    expected = rendered_files()
    stale = [
        name
        for name, text in expected.items()
        if not (directory / name).is_file()
        or (directory / name).read_text(encoding="utf-8") != text
    ]
    extra = [p.name for p in directory.glob(f"{GROUP}_*.yaml") if p.name not in expected]
    return sorted(stale + extra)
