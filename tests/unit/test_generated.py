"""Generated files are in sync, and the chart's values.yaml fits the typed values model."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel

from image_operator.settings import Settings
from image_operator_dev import generated
from image_operator_dev.chartvalues import CHART_WIRED_SETTINGS, ChartValues

ROOT = Path(__file__).resolve().parents[2]


def test_every_generated_file_is_up_to_date() -> None:
    assert generated.drift(ROOT) == [], "run `make generate` and commit the result"


def test_drift_names_a_changed_file(tmp_path: Path) -> None:
    generated.write(tmp_path)
    (tmp_path / "docs" / "configuration.md").write_text("stale")

    assert generated.drift(tmp_path) == [Path("docs/configuration.md")]


def test_values_yaml_validates_and_sets_every_operator_setting() -> None:
    values = yaml.safe_load((ROOT / "charts" / "image-operator" / "values.yaml").read_text())

    parsed = ChartValues.model_validate(values)

    settings: BaseModel = parsed.settings  # ChartSettings is built at runtime (create_model)
    chart_settings = set(type(settings).model_fields)
    assert chart_settings == set(Settings.model_fields) - CHART_WIRED_SETTINGS
    assert set(values["settings"]) == {
        name.split("_")[0] + "".join(p.title() for p in name.split("_")[1:])
        for name in chart_settings
    }


def test_settings_reference_lists_every_environment_variable() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"`IMAGE_OPERATOR_{name.upper()}`" in text
