"""spec.adopt (reconcilers/image.py: _select, claims): adoption by cloud name or tags. One match
is adopted, none waits or creates as spec.adopt.policy says, several stall naming them, and an
image another Image owns is never adopted."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import kopf
import pytest

from image_operator.api.common import ANNOTATION_EXTERNAL_ID
from image_operator.api.image import ImageSpec
from image_operator.handlers import image as handler
from image_operator.providers.errors import Unsupported
from image_operator.providers.model import ImageSelector
from image_operator.reconcilers.image import CANDIDATES_SHOWN, ImageObject, claims, rival
from tests.unit.fakes import FakeProvider
from tests.unit.test_image_reconciler import (
    BACKOFF,
    POLL,
    Harness,
    after,
    cond,
    make_obj,
    make_spec,
    reasons,
)
from tests.unit.test_management_policies import mutating

GPU = {"pool": "gpu"}


def adopting(selector: dict[str, Any], policy: str = "AdoptOrWait", **spec: Any) -> ImageObject:
    adopt: dict[str, Any] = {"selector": selector, "policy": policy}
    return make_obj(spec=make_spec(adopt=adopt, **spec))


def seed(h: Harness, name: str, tags: dict[str, str] | None = None) -> str:
    return h.provider.seed(f"key-{name}", spec=make_spec(), name=name, tags=tags)


@pytest.mark.parametrize("selector", [{"tags": GPU}, {"name": "golden"}])
def test_the_one_match_is_adopted_and_nothing_is_created(selector: dict[str, Any]) -> None:
    h = Harness()
    match = seed(h, "golden", GPU)
    seed(h, "other", {"pool": "cpu"})

    outcome = h.reconcile(adopting(selector))

    assert outcome.status["externalID"] == match
    assert cond(outcome, "Ready")["status"] == "True"
    assert reasons(outcome)[0] == "Adopted" and "spec.adopt.selector" in outcome.events[0].message
    assert h.provider.calls_to("find_images") == [
        (ImageSelector(name=selector.get("name"), tags=selector.get("tags") or {}),)
    ]
    assert mutating(h) == []


def test_once_adopted_the_selector_is_not_asked_again() -> None:
    h = Harness()
    seed(h, "golden", GPU)
    obj = adopting({"tags": GPU})
    obj = after(obj, h.reconcile(obj))
    h.provider.reset_calls()

    h.reconcile(obj)

    assert h.provider.calls_to("find_images") == []


def test_no_match_under_adopt_or_wait_waits_naming_the_field_and_creates_nothing() -> None:
    h = Harness()
    seed(h, "other", {"pool": "cpu"})

    outcome = h.reconcile(adopting({"tags": GPU}))

    reconciling = cond(outcome, "Reconciling")
    assert reconciling["reason"] == "WaitingForMatch"
    assert "spec.adopt.selector.tags" in reconciling["message"]
    assert "AdoptOrWait" in reconciling["message"]
    # Looked again on the backoff's jittered ceiling (never sooner than a poll).
    assert outcome.requeue_after == max(POLL, BACKOFF.delay(16))
    assert "externalID" not in outcome.status
    assert mutating(h) == []


def test_no_match_under_adopt_or_create_creates_from_the_source() -> None:
    h = Harness()

    outcome = h.reconcile(adopting({"name": "golden"}, "AdoptOrCreate"))

    assert h.provider.names()[:3] == ["find_images", "find_image", "create_image"]
    assert outcome.status["externalID"] in h.provider.images


def test_several_matches_stall_naming_each_candidate() -> None:
    h = Harness()
    first, second = seed(h, "golden-a", GPU), seed(h, "golden-b", GPU)

    outcome = h.reconcile(adopting({"tags": GPU}, "AdoptOrCreate"))

    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "AdoptionAmbiguous"
    assert "spec.adopt.selector.tags" in stalled["message"]
    for external_id, name in ((first, "golden-a"), (second, "golden-b")):
        assert f"{external_id!r} (name {name!r})" in stalled["message"]
    assert mutating(h) == []


def test_a_long_list_of_candidates_is_bounded() -> None:
    h = Harness()
    for index in range(CANDIDATES_SHOWN + 3):
        seed(h, f"golden-{index}", GPU)

    message = cond(h.reconcile(adopting({"tags": GPU})), "Stalled")["message"]

    assert "and 3 more" in message
    assert "golden-7" not in message


def test_an_image_another_image_owns_is_not_a_candidate() -> None:
    h = Harness()
    taken, free = seed(h, "golden-a", GPU), seed(h, "golden-b", GPU)
    obj = replace(adopting({"tags": GPU}), claimed={taken: "first"})

    outcome = h.reconcile(obj)

    assert outcome.status["externalID"] == free


def test_when_every_match_is_owned_it_stalls_naming_the_owner_even_for_adopt_or_create() -> None:
    h = Harness()
    taken = seed(h, "golden", GPU)
    obj = replace(adopting({"tags": GPU}, "AdoptOrCreate"), claimed={taken: "first"})

    outcome = h.reconcile(obj)

    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "AdoptionConflict"
    assert taken in stalled["message"] and "'first'" in stalled["message"]
    assert mutating(h) == []


def test_a_provider_that_cannot_match_stalls_unsupported_naming_the_field() -> None:
    class NoLookups(FakeProvider):
        def find_images(self, selector: ImageSelector) -> list[Any]:
            return super(FakeProvider, self).find_images(selector)

    h = Harness(provider=NoLookups())

    outcome = h.reconcile(adopting({"tags": GPU}))

    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == Unsupported.reason
    assert "spec.adopt.selector.tags" in stalled["message"]
    assert mutating(h) == []


def test_an_adopted_match_deleted_outside_is_selected_again() -> None:
    h = Harness()
    first = seed(h, "golden", GPU)
    obj = adopting({"tags": GPU})
    obj = after(obj, h.reconcile(obj))
    h.provider.vanish(first)
    replacement = seed(h, "golden-2", GPU)

    forgotten = h.reconcile(obj)
    assert "externalID" not in forgotten.status
    again = h.reconcile(after(obj, forgotten))

    assert again.status["externalID"] == replacement
    assert mutating(h) == []


def test_observe_only_adopts_by_selector_and_never_deletes() -> None:
    h = Harness()
    match = seed(h, "golden", GPU)
    obj = adopting({"name": "golden"}, managementPolicies=["Observe"])
    obj = after(obj, h.reconcile(obj))

    gone = h.finalize(obj)

    assert gone.done is True and match in h.provider.images
    assert mutating(h) == []


def test_the_annotation_wins_over_a_selector() -> None:
    h = Harness()
    named = seed(h, "named")
    seed(h, "golden", GPU)
    obj = replace(adopting({"tags": GPU}), annotations={ANNOTATION_EXTERNAL_ID: named})

    outcome = h.reconcile(obj)

    assert outcome.status["externalID"] == named
    assert h.provider.calls_to("find_images") == []


def _other(name: str, *, held: str | None = None, provider: str = "fake") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": "t0"},
        "spec": {"providerRef": {"name": provider}},
        "status": {"externalID": held} if held else {},
    }


def test_claims_maps_what_other_images_of_the_provider_hold() -> None:
    me = replace(adopting({"tags": GPU}), provider_name="fake", created="t1")
    others = [_other("a", held="img-1"), _other("b", held="img-2", provider="another")]

    assert claims(me, others) == {"img-1": "a"}


_BASE = make_spec().model_dump(by_alias=True, exclude_none=True, mode="json")


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"adopt": {"selector": {}}}, "exactly one of name, tags"),
        ({"adopt": {"selector": {"name": "a", "tags": GPU}}}, "exactly one of name, tags"),
        ({"managementPolicies": ["*", "Observe"]}, "list it alone"),
        ({"managementPolicies": ["Create"]}, "must include Observe"),
        (
            {
                "managementPolicies": ["Observe"],
                "adopt": {"selector": {"name": "a"}, "policy": "AdoptOrCreate"},
            },
            "needs Create",
        ),
    ],
)
def test_specs_the_cel_rules_refuse_are_refused_by_the_model_too(
    extra: dict[str, Any], words: str
) -> None:
    """Objects stored before the rules existed reach the operator: they stall InvalidSpec
    instead of, say, an empty selector matching every image."""
    with pytest.raises(ValueError, match=words):
        ImageSpec.model_validate({**_BASE, **extra})


def test_an_older_image_with_the_same_selector_adopts_a_lone_match_first() -> None:
    h = Harness()
    seed(h, "golden", GPU)
    obj = replace(adopting({"tags": GPU}), rival="older")

    outcome = h.reconcile(obj)

    reconciling = cond(outcome, "Reconciling")
    assert reconciling["reason"] == "WaitingForAdoption" and "'older'" in reconciling["message"]
    assert "externalID" not in outcome.status


def test_rival_is_the_oldest_same_selector_image_without_a_cloud_image() -> None:
    me = replace(adopting({"tags": GPU}), provider_name="fake", created="t2")
    selector = {"tags": GPU}

    def other(name: str, created: str, **extra: Any) -> dict[str, Any]:
        body = _other(name)
        body["metadata"]["creationTimestamp"] = created
        body["spec"]["adopt"] = {"selector": extra.pop("selector", selector)}
        body["status"] = extra.pop("status", {})
        return body

    assert rival(me, [other("older", "t1"), other("oldest", "t0")]) == "oldest"
    assert rival(me, [other("younger", "t3")]) is None
    assert rival(me, [other("holds", "t0", status={"externalID": "img-9"})]) is None
    assert rival(me, [other("else", "t0", selector={"name": "x"})]) is None


class _Kube:
    """The one Kubernetes read decode makes: the namespace's Images."""

    def __init__(self, images: list[dict[str, Any]]) -> None:
        self.images = images
        self.lists = 0

    def list_objects(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        assert (plural, namespace) == ("images", "default")
        self.lists += 1
        return self.images


def _body(name: str, created: str, **status: Any) -> dict[str, Any]:
    spec = make_spec(adopt={"selector": {"tags": GPU}}).model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"uid-{name}",
            "creationTimestamp": created,
        },
        "spec": spec,
        "status": status,
    }


def test_decode_hands_the_claims_and_the_rival_to_a_selecting_image(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube = _Kube([_body("holder", "t0", externalID="img-1"), _body("elder", "t1")])
    monkeypatch.setattr(handler, "context", lambda: SimpleNamespace(kube=kube))

    selecting = handler.decode(kopf.Body(_body("me", "t2")))  # type: ignore[arg-type]
    assert dict(selecting.claimed) == {"img-1": "holder"}
    assert selecting.rival == "elder"

    # Once it holds a cloud image, the selector is not asked about: no list at all.
    lists = kube.lists
    held = handler.decode(kopf.Body(_body("me", "t2", externalID="img-2")))  # type: ignore[arg-type]
    assert (held.claimed, held.rival, kube.lists) == ({}, None, lists)
