"""One owner per cloud image (reconcilers/image.py: owner, and its use by reconcile/finalize)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from image_operator.api.common import ANNOTATION_EXTERNAL_ID
from image_operator.reconcilers.image import owner
from tests.unit.test_image_reconciler import Harness, cond, make_obj, make_ready


def _other(
    name: str, *, held: str | None = None, claims: str | None = None, created: str = "t1"
) -> dict[str, Any]:
    annotations = {ANNOTATION_EXTERNAL_ID: claims} if claims else {}
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "creationTimestamp": created,
            "annotations": annotations,
        },
        "spec": {"providerRef": {"name": "fake"}},
        "status": {"externalID": held} if held else {},
    }


ME = replace(make_obj(), provider_name="fake", created="t2")


def test_an_image_holding_the_id_owns_it_whatever_the_age() -> None:
    others = [_other("older-claimant", claims="img-1", created="t0"), _other("a", held="img-1")]
    assert owner(ME, "img-1", others) == "a"


def test_among_claimants_the_oldest_wins_so_concurrent_adoptions_agree() -> None:
    older = _other("older", claims="img-1", created="t1")
    younger = _other("younger", claims="img-1", created="t3")
    assert owner(ME, "img-1", [older, younger]) == "older"
    assert owner(replace(ME, created="t0"), "img-1", [older, younger]) is None


def test_other_providers_and_itself_do_not_count() -> None:
    elsewhere = _other("b", held="img-1")
    elsewhere["spec"]["providerRef"]["name"] = "another"
    itself = _other("me", held="img-1")
    itself["metadata"]["uid"] = ME.uid
    assert owner(ME, "img-1", [elsewhere, itself]) is None


def test_deleting_only_holders_count() -> None:
    assert owner(ME, "img-1", [_other("old", claims="img-1", created="t0")], deleting=True) is None


def test_adopting_an_owned_image_is_refused_without_a_cloud_call() -> None:
    h = Harness()
    taken = h.provider.seed("someone", spec=ME.spec)  # type: ignore[arg-type]
    obj = replace(ME, annotations={ANNOTATION_EXTERNAL_ID: taken}, owned_by="first")
    h.provider.reset_calls()

    outcome = h.reconcile(obj)

    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "AdoptionConflict" and "'first'" in stalled["message"]
    assert h.provider.calls == []
    assert outcome.status.get("externalID") is None


def test_deleting_never_deletes_a_cloud_image_another_image_owns() -> None:
    h = Harness()
    obj, _ = make_ready(h)
    h.provider.reset_calls()

    outcome = h.finalize(replace(obj, owned_by="first"))

    assert h.provider.calls_to("delete_image") == []
    assert outcome.done is True
    assert "NotDeleted" in [e.reason for e in outcome.events]
