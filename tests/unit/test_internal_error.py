"""A step that raises where nothing should still ends in a truthful status (issue 10): before,
the handler left no status at all and kstatus read the object as Current."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any, cast

import kopf
import pytest

from image_operator.handlers import imageprovider
from image_operator.handlers.status import Requeue
from image_operator.reconcilers.managed import Backoff, internal_error
from image_operator.reconcilers.outcome import condition
from image_operator.settings import Settings
from tests.unit.test_image_reconciler import make_obj

BACKOFF = Backoff(base=2.0, maximum=60.0, spread=lambda: 1.0)


def test_an_unexpected_error_is_reconciling_and_retried_with_backoff() -> None:
    obj = make_obj(status={"phase": "Creating", "externalID": "img-1", "progress": 40})
    outcome = internal_error(obj, KeyError("token=s3cr3t"), attempt=0, backoff=BACKOFF)

    reconciling = condition(outcome.status, "Reconciling")
    assert reconciling is not None
    assert (reconciling["status"], reconciling["reason"]) == ("True", "InternalError")
    assert "KeyError" in reconciling["message"]
    assert "s3cr3t" not in str(outcome.status) + str(outcome.events)  # no exception text
    assert outcome.retrying and outcome.requeue_after == 2.0 and not outcome.done
    # The kind's own fields are kept as they were.
    assert (outcome.status["externalID"], outcome.status["progress"]) == ("img-1", 40)
    assert [e.reason for e in outcome.events] == ["InternalError"]


def test_later_attempts_back_off_without_another_warning() -> None:
    outcome = internal_error(make_obj(), RuntimeError("x"), attempt=3, backoff=BACKOFF)
    assert outcome.requeue_after == 16.0
    assert outcome.events == []


def test_an_imageprovider_whose_client_fails_to_build_unexpectedly_still_gets_a_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Building the client (ProviderRegistry.resolve) ran outside the probe's boundary: an
    # error no rule foresaw left the provider without a status and a traceback every probe.
    class Unresolvable:
        def resolve(self, namespace: str, name: str, *, recheck: bool = False) -> Any:
            raise RuntimeError("Invalid port: 'notaport'")

    ctx = SimpleNamespace(settings=Settings(), providers=Unresolvable(), backoff=BACKOFF)
    monkeypatch.setattr(imageprovider, "context", lambda: ctx)
    monkeypatch.setattr(kopf, "event", lambda *args, **kwargs: None)
    raw: dict[str, Any] = {
        "metadata": {"namespace": "ns", "name": "p", "uid": "u-1", "generation": 1},
        "spec": {"type": "argon", "endpoint": "http://127.0.0.1:notaport/"},
        "status": {"observedGeneration": -1},
    }
    body = kopf.Body(cast(kopf.RawBody, raw))
    patch = kopf.Patch()

    with pytest.raises(Requeue):
        imageprovider._probe(body, patch, logging.getLogger("test"), 0)

    reconciling = condition(dict(patch.status), "Reconciling")
    assert reconciling is not None and reconciling["reason"] == "InternalError"
    assert patch.status["observedGeneration"] == 1
