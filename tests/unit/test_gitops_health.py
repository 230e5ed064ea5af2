"""Argo CD's health script for the imageops.io kinds, run in a real Lua runtime (lupa)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import LuaRuntime  # type: ignore[import-untyped]

ARGOCD = Path(__file__).resolve().parents[2] / "examples" / "gitops" / "argocd"
SCRIPT = (ARGOCD / "health.lua").read_text()


def _to_lua(lua: LuaRuntime, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


def health(obj: dict[str, Any], script: str = SCRIPT) -> tuple[str, str]:
    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = _to_lua(lua, obj)
    result = lua.execute(script)
    return str(result["status"]), str(result["message"])


def _image(generation: int = 1, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "x", "generation": generation}, "status": status}


def _cond(type_: str, status: str, reason: str = "R", message: str = "m") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


@pytest.mark.parametrize(
    ("obj", "expected", "in_message"),
    [
        ({"metadata": {"generation": 1}}, "Progressing", "Waiting for image-operator"),
        # What the API server shows before the operator writes anything (the CRD's defaults).
        (_image(observedGeneration=-1), "Progressing", "Waiting for image-operator"),
        (
            _image(2, observedGeneration=1, conditions=[_cond("Ready", "True")]),
            "Progressing",
            "generation 2",
        ),
        (
            _image(observedGeneration=1, conditions=[_cond("Ready", "True", "Available", "ok")]),
            "Healthy",
            "ok",
        ),
        (
            _image(
                observedGeneration=1,
                conditions=[
                    _cond("Ready", "False", "Creating"),
                    _cond("Reconciling", "True", "Creating", "argon is creating image (40%)"),
                ],
            ),
            "Progressing",
            "(40%)",
        ),
        (
            _image(
                observedGeneration=1,
                conditions=[
                    _cond("Ready", "False", "InvalidSpec"),
                    _cond("Stalled", "True", "InvalidSpec", "spec.displayName: too long"),
                ],
            ),
            "Degraded",
            "InvalidSpec: spec.displayName: too long",
        ),
        (
            _image(observedGeneration=1, phase="Paused", conditions=[_cond("Ready", "True")]),
            "Suspended",
            "paused",
        ),
    ],
)
def test_health_from_conditions(obj: dict[str, Any], expected: str, in_message: str) -> None:
    status, message = health(obj)
    assert status == expected
    assert in_message.lower() in message.lower()


def test_the_configmap_carries_the_same_script_for_every_kind() -> None:
    configmap = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    keys = sorted(configmap["data"])
    assert keys == [
        f"resource.customizations.health.imageops.io_{kind}"
        for kind in sorted(
            ["BaseImage", "CommunityListing", "Image", "ImagePipeline", "ImageProvider"]
        )
    ]
    for key in keys:
        assert configmap["data"][key].strip() == SCRIPT.strip()
        stalled = _image(observedGeneration=1, conditions=[_cond("Stalled", "True")])
        assert health(stalled, configmap["data"][key])[0] == "Degraded"
