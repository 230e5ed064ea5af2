"""Every file generated from the typed models, in one list: `image-operator generate` writes
them, `image-operator generate --check` (and a test) fails when a checked-in copy drifts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from image_operator_dev import crdgen
from image_operator_dev.chartvalues import values_schema
from image_operator_dev.docsgen import crd_reference, settings_reference

CRD_DIRS = (Path("crds"), Path("charts/image-operator/crds"))


def generated_files() -> dict[Path, Callable[[], str]]:
    """Path relative to the repository root -> the function that renders it."""
    files: dict[Path, Callable[[], str]] = {
        Path("charts/image-operator/values.schema.json"): values_schema,
        Path("docs/reference.md"): crd_reference,
        Path("docs/configuration.md"): settings_reference,
    }
    crds = crdgen.rendered_files()
    for directory in CRD_DIRS:
        for name, text in crds.items():
            files[directory / name] = lambda text=text: text  # type: ignore[misc]
    return files


def write(root: Path) -> list[Path]:
    written = []
    for relative, render in generated_files().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(), encoding="utf-8")
        written.append(relative)
    return written


def drift(root: Path) -> list[Path]:
    """Generated files that are missing or differ, plus stale CRD files nobody generates."""
    stale = [
        relative
        for relative, render in generated_files().items()
        if not (root / relative).is_file()
        or (root / relative).read_text(encoding="utf-8") != render()
    ]
    for directory in CRD_DIRS:
        stale += [
            directory / name
            for name in crdgen.drift(root / directory)
            if directory / name not in stale
        ]
    return sorted(set(stale))
