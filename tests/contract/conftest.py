"""Fixtures for contract tests against the bundled emulator, started for real on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from image_operator_dev.emulator.clock import Clock, system_clock
from image_operator_dev.emulator.config import EmulatorConfig
from image_operator_dev.emulator.testing import ArgonHarness
from tests.seedcoverage import Recorder

ARGON_TOKEN = "contract-test-token"

StartArgon = Callable[..., ArgonHarness]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "emulator-state"


@pytest.fixture
def argon_config(state_dir: Path) -> Callable[..., EmulatorConfig]:
    """Build a config with short lifecycles; keyword arguments override the argon section."""

    def build(**argon: Any) -> EmulatorConfig:
        section = {
            "tokens": [ARGON_TOKEN],
            "creation_seconds": 0.5,
            "deletion_seconds": 0.3,
            **argon,
        }
        return EmulatorConfig.model_validate({"state_dir": state_dir, "argon": section})

    return build


@pytest.fixture
def start_argon(argon_config: Callable[..., EmulatorConfig]) -> Iterator[StartArgon]:
    """Start an emulator on the test's state_dir (stopped at teardown); calling it again after
    closing the first one is a restart on the same state."""
    harnesses: list[ArgonHarness] = []

    def start(*, clock: Clock = system_clock, **argon: Any) -> ArgonHarness:
        harness = ArgonHarness(argon_config(**argon), clock=clock)
        harnesses.append(harness)
        return harness

    yield start
    for harness in harnesses:
        harness.close()


@pytest.fixture
def argon(start_argon: StartArgon) -> ArgonHarness:
    return start_argon()


# -- seed coverage (docs/seed-coverage.md): every parameter a provider sends in any contract
# test must have a row on that page; the session fails otherwise (tests/seedcoverage.py).
SENT = Recorder()


@pytest.fixture(autouse=True)
def _record_seed_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    SENT.install(monkeypatch)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    missing = SENT.unaccounted()
    if missing:
        lines = "\n".join(
            f"  seed {seed}: {action}: {parameter}" for seed, action, parameter in missing
        )
        print(f"\nparameters sent that docs/seed-coverage.md does not account for:\n{lines}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
