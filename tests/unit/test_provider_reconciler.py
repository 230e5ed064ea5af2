"""reconcile_provider: an ImageProvider's status from one probe call."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from image_operator.api.provider import ImageProviderSpec
from image_operator.providers.endpoints import EndpointRefused
from image_operator.providers.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    ProviderError,
    Throttled,
    Transient,
)
from image_operator.reconcilers import outcome as outcome_module
from image_operator.reconcilers.outcome import Outcome, condition
from image_operator.reconcilers.provider import ProbeRetry, reconcile_provider
from tests.unit.fakes import FakeProvider

RETRY = 30.0
NO_RETRY = ProbeRetry(attempts=0)  # most tests judge one probe as it is reported


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
    build_error: ProviderError | None = None,
    attempt: int = 0,
    retry: ProbeRetry = NO_RETRY,
    paused: bool = False,
    spec: ImageProviderSpec | None = None,
    secret_missing: bool = False,
) -> Outcome:
    return reconcile_provider(
        spec=spec,
        secret_missing=secret_missing,
        paused=paused,
        generation=generation,
        status=status or {},
        provider=provider,
        problem=problem,
        build_error=build_error,
        retry_after=RETRY,
        attempt=attempt,
        retry=retry,
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
    assert outcome.requeue_after is None  # the timer probes again; nothing to retry sooner
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
    assert outcome.requeue_after is None
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


# -- a failed probe of a Ready provider, endpointInfo, refused endpoints --------------------


def _ready(provider: FakeProvider) -> Outcome:
    outcome = run(provider)
    assert cond(outcome, "Ready")["status"] == "True"
    return outcome


def test_a_transient_failure_of_a_ready_provider_is_probed_again_before_it_leaves_ready() -> None:
    provider = FakeProvider(probe_info="argon namespace 'default': 3 images")
    ready = _ready(provider)
    provider.fail_next("probe", Transient("argon is unreachable: ConnectError"), times=3)
    retry = ProbeRetry(attempts=2, delay=5.0)

    first = run(provider, dict(ready.status), attempt=0, retry=retry)
    second = run(provider, dict(first.status), attempt=1, retry=retry)
    for quiet in (first, second):
        # Not reported yet: still Ready (kstatus Current), the same condition, the last answer
        # kept, and probed again shortly.
        assert quiet.status == ready.status
        assert quiet.requeue_after == 5.0
        assert [(e.reason, e.type) for e in quiet.events] == [("ProbeRetrying", "Normal")]
    assert "probing again in 5s (1 of 2)" in first.events[0].message

    third = run(provider, dict(second.status), attempt=2, retry=retry)
    assert cond(third, "Ready")["status"] == "False"
    assert cond(third, "Reconciling")["reason"] == "CloudUnavailable"
    assert "endpointInfo" not in third.status
    assert third.requeue_after == RETRY
    assert [(e.reason, e.type) for e in third.events] == [("CloudUnavailable", "Warning")]
    assert len(provider.calls) == 4


def test_a_blip_then_success_never_leaves_ready() -> None:
    provider = FakeProvider()
    ready = _ready(provider)
    provider.fail_next("probe", Throttled("429", retry_after=1.0))
    retry = ProbeRetry(attempts=2, delay=5.0)

    quiet = run(provider, dict(ready.status), attempt=0, retry=retry)
    back = run(provider, dict(quiet.status), attempt=1, retry=retry)

    assert cond(quiet, "Ready")["status"] == cond(back, "Ready")["status"] == "True"
    assert cond(back, "Ready")["lastTransitionTime"] == cond(ready, "Ready")["lastTransitionTime"]
    assert back.requeue_after is None
    assert [e.reason for e in back.events] == []  # no Ready event: it never left


def test_refused_credentials_leave_ready_at_once_and_drop_the_old_endpoint_info() -> None:
    # After a credential rotation to a wrong key: the old account's answer must not stay.
    provider = FakeProvider(probe_info="ucloudstack region cn: 12 images")
    ready = _ready(provider)
    assert ready.status["endpointInfo"] == "ucloudstack region cn: 12 images"
    provider.fail_next("probe", Forbidden("ucloudstack answered 171: signature invalid"))

    refused = run(provider, dict(ready.status), attempt=0, retry=ProbeRetry(attempts=2))

    assert cond(refused, "Stalled")["reason"] == "PermissionDenied"
    assert cond(refused, "Ready")["status"] == "False"
    assert "endpointInfo" not in refused.status


def test_a_spec_change_is_not_retried_quietly() -> None:
    # A Ready status from generation 1 says nothing about the spec of generation 2.
    provider = FakeProvider()
    ready = _ready(provider)
    provider.fail_next("probe", Transient("timeout"))

    changed = run(provider, dict(ready.status), generation=2, retry=ProbeRetry(attempts=2))

    assert cond(changed, "Ready")["status"] == "False"
    assert changed.status["observedGeneration"] == 2


def test_a_client_that_cannot_be_built_drops_the_old_endpoint_info() -> None:
    provider = FakeProvider(probe_info="old account")
    ready = _ready(provider)

    broken = run(None, dict(ready.status), problem="Secret 'keys' lacks the key token")

    assert "endpointInfo" not in broken.status


def test_a_refused_endpoint_is_stalled_with_its_reason_and_nothing_is_probed() -> None:
    refusal = EndpointRefused(
        "spec.endpoint 'http://169.254.169.254' is refused: its host is 169.254.169.254, a "
        "link-local address; use the cloud API's address"
    )

    outcome = run(None, problem=f"ImageProvider 'p': {refusal.message}", build_error=refusal)

    stalled = cond(outcome, "Stalled")
    assert (stalled["reason"], stalled["message"]) == ("EndpointRefused", refusal.message)
    assert cond(outcome, "Ready")["reason"] == "EndpointRefused"
    assert "Reconciling" not in types(outcome)
    assert outcome.requeue_after is None
    assert [(e.reason, e.type) for e in outcome.events] == [("EndpointRefused", "Warning")]


def test_an_endpoint_that_does_not_resolve_now_is_retried() -> None:
    outcome = run(
        None,
        problem="does not resolve",
        build_error=Transient("spec.endpoint 'https://glance.internal': does not resolve now"),
    )

    assert cond(outcome, "Reconciling")["reason"] == "CloudUnavailable"
    assert "Stalled" not in types(outcome)
    assert outcome.requeue_after == RETRY


def test_a_paused_provider_is_not_probed_and_a_changed_spec_stays_unobserved() -> None:
    provider = FakeProvider()
    ready = _ready(provider)
    provider.reset_calls()

    paused = run(provider, ready.status, generation=2, paused=True)

    assert provider.calls == []
    assert paused.status["observedGeneration"] == 1  # kstatus: InProgress, not Current
    assert cond(paused, "Ready")["status"] == "True"  # kept, as for every kind
    assert paused.status["phase"] == "Paused"


def test_the_first_failure_of_a_new_provider_is_an_event_though_its_status_has_a_default() -> None:
    # The CRD defaults status.observedGeneration to -1: a new object's status is not empty.
    outcome = run(None, {"observedGeneration": -1}, build_error=Forbidden("refused"))

    assert [e.reason for e in outcome.events] == ["PermissionDenied"]


# -- messages that name the field ------------------------------------------------------------


def _compshare(**fields: Any) -> ImageProviderSpec:
    return ImageProviderSpec.model_validate(
        {"type": "compshare", "region": "cn-wlcb", "credentialsSecretRef": {"name": "k"}, **fields}
    )


def test_a_probe_the_cloud_refuses_names_the_fields_whose_values_it_quotes() -> None:
    provider = FakeProvider()
    provider.fail_next(
        "probe",
        InvalidInput(
            "compshare DescribeCompShareCustomImages failed with RetCode 230: Params [Zone] not "
            'available: "cn-sh2-01" is not a zone of region cn-wlcb'
        ),
    )

    outcome = run(provider, spec=_compshare(zone="cn-sh2-01"))

    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "InvalidSpec"
    assert stalled["message"].endswith("(cn-wlcb is spec.region; cn-sh2-01 is spec.zone)")
    assert "spec.type" not in stalled["message"]  # "compshare" is the type, not a refused value


def test_a_probe_that_finds_nothing_names_the_fields_of_its_address() -> None:
    provider = FakeProvider()
    provider.fail_next(
        "probe",
        NotFound("argon answered 404 NotFound: (/admin/api/v1/namespaces/corpus/images)"),
    )
    spec = ImageProviderSpec.model_validate(
        {"type": "argon", "endpoint": "http://argon.example/../../admin", "project": "team-a"}
    )

    outcome = run(provider, spec=spec)

    message = cond(outcome, "Stalled")["message"]
    assert message.startswith("probe failed: argon answered 404")
    assert message.endswith(
        "the address made from spec.endpoint and spec.project is wrong: check them"
    )


def test_a_missing_secret_is_waited_for_naming_the_field() -> None:
    # GitOps applies in any order: the Secret may come after the provider (Reconciling, not
    # Stalled, as for every other reference that may yet be made).
    problem = (
        "ImageProvider 'p': spec.credentialsSecretRef names Secret 'keys', which does not exist "
        "in namespace 'default'"
    )

    waiting = run(None, problem=problem, secret_missing=True)

    reconciling = cond(waiting, "Reconciling")
    assert (reconciling["reason"], reconciling["message"]) == (
        "WaitingForSecret",
        f"{problem}; the provider is probed when it exists",
    )
    assert "Stalled" not in types(waiting)
    assert waiting.requeue_after == RETRY
    assert [(e.reason, e.type) for e in waiting.events] == [("WaitingForSecret", "Normal")]
    again = run(None, dict(waiting.status), problem=problem, secret_missing=True)
    assert again.events == []

    ready = run(FakeProvider(), dict(again.status))
    assert types(ready) == {"Ready"}
