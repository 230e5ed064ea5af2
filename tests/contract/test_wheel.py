"""The runtime wheel holds the operator and nothing of development: no emulator, no local
control plane, no generators, no aiohttp requirement. The dev wheel holds those, and the
development commands' entry points.

Each wheel is built offline (`pip wheel --no-deps --no-build-isolation --no-index`, with the
setuptools and wheel of the dev extra) from a copy of its sources, so a stale `build/` folder
in the checkout cannot leak old files into it. A build is a process: this is a contract test.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Modules that moved to image-operator-dev and must never come back into the runtime wheel.
DEV_ONLY = re.compile(
    r"(^|/)(emulator/|localcluster\.py|crdgen\.py|docsgen\.py|chartvalues\.py|generated\.py)"
)
_IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")


def build_wheel(sources: list[str], source_root: Path, tmp_path: Path) -> Path:
    """Copy ``sources`` (relative to ``source_root``) to a fresh folder and build its wheel."""
    src = tmp_path / "src"
    src.mkdir()
    for name in sources:
        origin = source_root / name
        if origin.is_dir():
            shutil.copytree(origin, src / name, ignore=_IGNORE)
        else:
            shutil.copy2(origin, src / name)
    out = tmp_path / "wheel"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel"),
            *("--no-deps", "--no-build-isolation", "--no-index", "--disable-pip-version-check"),
            *("--wheel-dir", str(out), str(src)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (
        "the wheel does not build offline (the dev extra provides setuptools>=77 and wheel; "
        f"rerun `make venv`):\n{result.stdout}\n{result.stderr}"
    )
    (wheel,) = out.glob("*.whl")
    return wheel


def dist_info_file(archive: zipfile.ZipFile, name: str) -> str:
    (path,) = [n for n in archive.namelist() if n.endswith(f".dist-info/{name}")]
    return archive.read(path).decode()


@pytest.fixture(scope="module")
def runtime_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(
        ["pyproject.toml", "README.md", "operator"], ROOT, tmp_path_factory.mktemp("runtime")
    )


def test_runtime_wheel_holds_no_development_module(runtime_wheel: Path) -> None:
    with zipfile.ZipFile(runtime_wheel) as archive:
        names = archive.namelist()
    print(f"\n{runtime_wheel.name}: {runtime_wheel.stat().st_size} bytes, {len(names)} files")
    packages = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert packages == {"image_operator"}
    assert [n for n in names if DEV_ONLY.search(n)] == []
    # What the operator needs at runtime is still there.
    for needed in ("cli.py", "py.typed", "api/crdinfo.py", "handlers/__init__.py", "upload.py"):
        assert f"image_operator/{needed}" in names


def test_runtime_wheel_does_not_require_aiohttp(runtime_wheel: Path) -> None:
    with zipfile.ZipFile(runtime_wheel) as archive:
        metadata = dist_info_file(archive, "METADATA")
        entry_points = dist_info_file(archive, "entry_points.txt")
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert requires, metadata
    assert not [line for line in requires if re.match(r"Requires-Dist: *aiohttp\b", line, re.I)]
    assert "image-operator = image_operator.cli:main" in entry_points
    assert "image_operator.commands" not in entry_points


def test_dev_wheel_holds_the_development_modules_and_commands(tmp_path: Path) -> None:
    wheel = build_wheel(["pyproject.toml", "image_operator_dev"], ROOT / "dev", tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = dist_info_file(archive, "METADATA")
        entry_points = dist_info_file(archive, "entry_points.txt")
    packages = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert packages == {"image_operator_dev"}
    for module in ("emulator/server.py", "localcluster.py", "crdgen.py", "generated.py"):
        assert f"image_operator_dev/{module}" in names
    assert re.search(r"^Requires-Dist: *aiohttp\b", metadata, re.M | re.I)
    assert re.search(r"^Requires-Dist: *image-operator\b", metadata, re.M)
    assert "[image_operator.commands]" in entry_points
    for command in ("emulator", "local-cluster", "crds", "generate"):
        assert re.search(rf"^{command} *= *image_operator_dev\.commands:", entry_points, re.M)
