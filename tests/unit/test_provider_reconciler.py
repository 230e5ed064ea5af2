"""reconcile_provider: an ImageProvider's status from one probe call."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from image_operator.providers.errors import Forbidden, ProviderError, Throttled, Transient
from image_operator.reconcilers import outcome as outcome_module
from image_operator.reconcilers.outcome import Outcome, condition
from image_operator.reconcilers.provider import reconcile_provider
from tests.unit.fakes import FakeProvider

RETRY = 30.0


@pytest.fixture(autouse=True)
def fake_now(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    seconds = itertools.count()

    def now() -> str:
        s = next(seconds)
        return f"2025-01-01T00:{s // 60:02d}:{s % 60:02d}Z"

    monkeypatch.setattr(outcome_module, "now_rfc3339", now)
    monkeypatch.setattr("image_operator.reconcilers.provider.now_rfc3339", now)
    yield


def run(
    provider: FakeProvider | None,
    status: dict[str, Any] | None = None,
    *,
    generation: int = 1,
    problem: str | None = None,
) -> Outcome:
    return reconcile_provider(
        generation=generation,
        status=status or {},
        provider=provider,
        problem=problem,
        retry_after=RETRY,
    )


def cond(outcome: Outcome, type_: str) -> dict[str, Any]:
    found = condition(outcome.status, type_)
    assert found is not None, f"no {type_} in {outcome.status.get('conditions')}"
    return found


def types(outcome: Outcome) -> set[str]:
    return {c["type"] for c in outcome.status.get("conditions") or []}


def test_successful_probe_is_ready_with_one_event() -> None:
    provider = FakeProvider(probe_info="argon namespace 'team-a': 3 images")

    first = run(provider, generation=2)

    assert provider.calls == [("probe", ())]
    assert first.status["phase"] == "Ready"
    assert first.status["observedGeneration"] == 2
    assert first.status["endpointInfo"] == "argon namespace 'team-a': 3 images"
    assert first.status["lastProbeTime"]
    ready = cond(first, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "ProbeSucceeded")
    assert ready["message"] == "argon namespace 'team-a': 3 images"
    assert types(first) == {"Ready"}
    assert first.requeue_after is None
    assert [(e.reason, e.type) for e in first.events] == [("Ready", "Normal")]

    # The periodic probe: still Ready, no second event, Ready's transition time kept.
    second = run(provider, dict(first.status), generation=2)
    assert second.events == []
    assert cond(second, "Ready")["lastTransitionTime"] == ready["lastTransitionTime"]
    assert second.status["lastProbeTime"] != first.status["lastProbeTime"]
    assert provider.calls == [("probe", ()), ("probe", ())]


def test_forbidden_probe_is_stalled() -> None:
    provider = FakeProvider()
    provider.fail_next("probe", Forbidden("argon answered 401 Unauthorized: bad token"))

    outcome = run(provider)

    assert provider.calls == [("probe", ())]
    assert outcome.status["phase"] == "Error"
    ready, stalled = cond(outcome, "Ready"), cond(outcome, "Stalled")
    assert (ready["status"], ready["reason"]) == ("False", "PermissionDenied")
    assert (stalled["status"], stalled["reason"]) == ("True", "PermissionDenied")
    assert stalled["message"] == "probe failed: argon answered 401 Unauthorized: bad token"
    assert "Reconciling" not in types(outcome)
    assert outcome.requeue_after == RETRY
    assert [(e.reason, e.type) for e in outcome.events] == [("PermissionDenied", "Warning")]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (Transient("argon is unreachable: ConnectError"), "CloudUnavailable"),
        (Throttled("429", retry_after=3.0), "Throttled"),
    ],
)
def test_retryable_probe_failure_is_reconciling(error: ProviderError, reason: str) -> None:
    provider = FakeProvider()
    provider.fail_next("probe", error)

    outcome = run(provider)

    reconciling = cond(outcome, "Reconciling")
    assert (reconciling["status"], reconciling["reason"]) == ("True", reason)
    assert cond(outcome, "Ready")["status"] == "False"
    assert "Stalled" not in types(outcome)
    assert outcome.status["phase"] == "Error"
    assert outcome.requeue_after == RETRY


def test_probe_failure_after_ready_warns_once_and_recovery_is_announced() -> None:
    provider = FakeProvider()
    ready = run(provider)
    provider.fail_next("probe", Transient("timeout"), times=2)

    broken = run(provider, dict(ready.status))
    assert [e.reason for e in broken.events] == ["CloudUnavailable"]
    assert cond(broken, "Ready")["status"] == "False"
    assert cond(broken, "Ready")["lastTransitionTime"] != cond(ready, "Ready")["lastTransitionTime"]

    still_broken = run(provider, dict(broken.status))
    assert still_broken.events == []  # no repeat while it stays broken

    recovered = run(provider, dict(still_broken.status))
    assert [e.reason for e in recovered.events] == ["Ready"]
    assert types(recovered) == {"Ready"}
    assert cond(recovered, "Ready")["status"] == "True"


def test_missing_client_is_a_configuration_error() -> None:
    problem = "Secret 'argon-keys' named by ImageProvider 'argon' does not exist in 'default'"

    outcome = run(None, problem=problem, generation=5)

    assert outcome.status["phase"] == "Error"
    assert outcome.status["observedGeneration"] == 5
    stalled, ready = cond(outcome, "Stalled"), cond(outcome, "Ready")
    assert (stalled["status"], stalled["reason"], stalled["message"]) == (
        "True",
        "ConfigurationError",
        problem,
    )
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "ConfigurationError",
        problem,
    )
    assert "Reconciling" not in types(outcome)
    assert outcome.requeue_after == RETRY
    assert [(e.reason, e.message, e.type) for e in outcome.events] == [
        ("ConfigurationError", problem, "Warning")
    ]


def test_missing_client_without_a_problem_still_says_something() -> None:
    outcome = run(None)
    assert cond(outcome, "Stalled")["message"] == "the provider client could not be built"


def test_configuration_fixed_clears_stalled() -> None:
    broken = run(None, problem="no secret")
    provider = FakeProvider()
    fixed = run(provider, dict(broken.status), generation=2)
    assert types(fixed) == {"Ready"}
    assert fixed.status["phase"] == "Ready"
    assert [e.reason for e in fixed.events] == ["Ready"]
