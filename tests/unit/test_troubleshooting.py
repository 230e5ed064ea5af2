"""docs/troubleshooting.md lists every reason the operator can write in a `Reconciling` or
`Stalled` condition, and no other: the code's reasons are read from its source
(tests/unit/emitted_reasons.py), the documented ones from the tables' first column."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tests.unit.emitted_reasons import ReasonScan

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "image_operator"
TROUBLESHOOTING = ROOT / "docs" / "troubleshooting.md"
CONDITIONS = ("Reconciling", "Stalled")


def documented(text: str) -> dict[str, set[str]]:
    """Reasons per condition, from table rows that start `| `Stalled=True`, reason `X` / `Y``."""
    found: dict[str, set[str]] = {condition: set() for condition in CONDITIONS}
    for line in text.splitlines():
        first = line.split("|")[1] if line.startswith("|") and line.count("|") > 2 else ""
        match = re.match(r"\s*`(Reconciling|Stalled)=True`, reason (.*)", first)
        if match:
            found[match.group(1)] |= set(re.findall(r"`([A-Z][A-Za-z]*)`", match.group(2)))
    return found


@pytest.fixture(scope="module")
def scan() -> ReasonScan:
    return ReasonScan(PACKAGE, ROOT).scan()


def test_every_reason_in_the_code_can_be_traced(scan: ReasonScan) -> None:
    # A reason the scan cannot follow could be anything: make it a literal or a constant.
    assert scan.unresolved == []


@pytest.mark.parametrize("condition", CONDITIONS)
def test_troubleshooting_lists_exactly_the_reasons_the_code_emits(
    scan: ReasonScan, condition: str
) -> None:
    emitted = scan.reasons(condition)
    listed = documented(TROUBLESHOOTING.read_text())[condition]

    missing = {reason: sorted(emitted[reason]) for reason in sorted(emitted.keys() - listed)}
    assert missing == {}, f"emitted as {condition} but not in docs/troubleshooting.md"
    assert sorted(listed - emitted.keys()) == [], f"documented as {condition}, never emitted"


def test_the_issue_s_missing_reason_is_found_and_listed(scan: ReasonScan) -> None:
    # A provider's NotFound that nothing catches stalls the object (issue 10 saw it unlisted).
    assert "NotFound" in scan.reasons("Stalled")
    assert "NotFound" in documented(TROUBLESHOOTING.read_text())["Stalled"]


# -- the scan itself, on a small package that emits reasons every way the code does ---------

SAMPLE = {
    "errors.py": """
        class ProviderError(Exception):
            retryable = False
            reason = "ProviderError"
        class Throttled(ProviderError):
            retryable = True
            reason = "Throttled"
        class Gone(ProviderError):
            reason = "Gone"
        class WaitFor(Exception):
            def __init__(self, reason, message):
                self.reason = reason
    """,
    "step.py": """
        class Step:
            def outcome(self, *, ready, reconciling=None, stalled=None):
                return set_conditions(ready=ready, reconciling=reconciling, stalled=stalled)
            def stalled(self, reason, message):
                condition = (True, reason, message)
                return self.outcome(ready=(False, reason, message), stalled=condition)
            def waiting(self, reason, message):
                condition = (True, reason, message)
                return self.outcome(ready=(False, reason, message), reconciling=condition)
    """,
    "kind.py": """
        from pkg.errors import Gone, ProviderError, Throttled, WaitFor
        MISMATCH = "Mismatch"
        def progress(updating):
            reason = "Updating" if updating else "Creating"
            return reason, "message"
        def retry(step, reason):
            return step.waiting(reason, "again")
        def reconcile(step, exc: ProviderError):
            step.stalled("Literal", "m")
            step.outcome(ready=(True, "Ready", "m"), stalled=(True, MISMATCH, "m"))
            step.outcome(ready=(True, "Paused", "m"), reconciling=(False, "NotWritten", "m"))
            reason, message = progress(False)
            step.waiting(reason, message)
            if exc.retryable:
                return retry(step, exc.reason)
            try:
                raise WaitFor("WaitingForThing", "m")
            except WaitFor as wait:
                step.waiting(wait.reason, "m")
            return step.stalled(exc.reason, "m")
    """,
}


def _sample(tmp_path: Path, extra: str = "") -> ReasonScan:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, source in SAMPLE.items():
        (package / name).write_text(
            textwrap.dedent(source) + textwrap.dedent(extra) * (name == "kind.py")
        )
    return ReasonScan(package, tmp_path).scan()


def test_the_scan_follows_literals_constants_parameters_returns_and_error_classes(
    tmp_path: Path,
) -> None:
    scan = _sample(tmp_path)

    assert scan.unresolved == []
    assert set(scan.reasons("Stalled")) == {"Literal", "Mismatch", "Gone"}
    assert set(scan.reasons("Reconciling")) == {
        "Creating",
        "Updating",
        "Throttled",
        "WaitingForThing",
    }
    assert scan.reasons("Stalled")["Mismatch"] == {"pkg/kind.py:3"}


def test_the_scan_reports_a_reason_it_cannot_follow(tmp_path: Path) -> None:
    scan = _sample(tmp_path, 'def later(step, kind):\n    step.stalled(f"{kind}Failed", "m")\n')

    assert len(scan.unresolved) == 1
    assert "pkg/kind.py:" in scan.unresolved[0] and "a reason" in scan.unresolved[0]
