"""The `image-operator` command's offline subcommands (render, crds), how it finds the
development commands, and how its cluster commands report a refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException

from image_operator.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "transcode-image.yaml"


def test_render_prints_the_command_with_values_and_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "render",
            str(FIXTURE),
            "--set",
            "inputs.task_id=42",
            "--set",
            "inputs.date=2020-12-21",
            "--set",
            "inputs.input_file=/in.mp4",
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(
        "python3 /home/mediacloud/main_transcode.py --task_id=42 --date=2020-12-21"
    )
    assert "--cache_path=/data/y/argon/workdir/default/cache_path" in out


def test_render_names_the_missing_value(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["render", str(FIXTURE), "--set", "inputs.task_id=42"])

    err = capsys.readouterr().err
    assert code == 1
    assert "inputs.date has no value and no default; pass --set inputs.date=..." in err


def test_render_rejects_a_malformed_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(FIXTURE), "--set", "task_id"]) == 1
    assert "KIND.NAME=VALUE" in capsys.readouterr().err


def test_render_reports_an_unreadable_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "/nonexistent/image.yaml"]) == 2
    assert "cannot read /nonexistent/image.yaml" in capsys.readouterr().err


def test_crds_check_fails_on_drift_and_passes_after_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["crds", "--output", str(tmp_path), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err

    assert main(["crds", "--output", str(tmp_path)]) == 0
    assert main(["crds", "--output", str(tmp_path), "--check"]) == 0


def test_development_commands_come_from_the_entry_point_group() -> None:
    from image_operator import cli

    installed = cli._dev_commands()
    assert set(cli.DEV_COMMANDS) <= set(installed), "make venv installs image-operator-dev"
    assert all(ep.value.startswith("image_operator_dev.") for ep in installed.values())


@pytest.mark.parametrize("command", ["emulator", "local-cluster", "crds", "generate"])
def test_development_command_without_the_dev_package_says_how_to_get_it(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from image_operator import cli

    monkeypatch.setattr(cli, "_dev_commands", dict)  # what a runtime-only install finds
    assert main([command, "--help"]) == 2
    err = capsys.readouterr().err
    assert f"`image-operator {command}` is a development command" in err
    assert "pip install ./dev" in err
    with pytest.raises(SystemExit):
        main(["--help"])
    assert f"{command}" in capsys.readouterr().out


def _raise(error: Exception) -> Any:
    def command(*_args: Any, **_kwargs: Any) -> Any:
        raise error

    return command


@pytest.mark.parametrize(
    ("error", "code", "says"),
    [
        (ConfigException("Invalid kube-config file."), 3, "error: no usable kubeconfig"),
        (ApiException(status=404, reason="Not Found"), 1, "answered HTTP 404: Not Found"),
        (ApiException(status=403, reason="Forbidden"), 4, "answered HTTP 403: Forbidden"),
    ],
)
@pytest.mark.parametrize("command", ["upload", "download-url"])
def test_cluster_commands_say_what_the_cluster_refused_in_one_sentence(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: str,
    error: Exception,
    code: int,
    says: str,
) -> None:
    from image_operator import downloadurl, upload

    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(b"QFI\xfb")
    monkeypatch.setattr(upload, "connect", _raise(error))
    monkeypatch.setattr(downloadurl, "connect", _raise(error))
    argv = ["upload", "img/vm", str(disk)] if command == "upload" else ["download-url", "img/vm"]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert says in err
    assert "Traceback" not in err
