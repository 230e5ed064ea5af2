"""`spec.sharing` on openstack against a real Glance: the provider's `Shares` (members, a
member accepting by updating its own status, unsharing) and the Image reconciler end to end,
the owner's Image and the receiving project's Image (adoption + `accept`) side by side.

The receiving project is the same Glance acting as another project (the identity headers
Keystone's authtoken would set; tests/peers/glance.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from image_operator.api.common import ANNOTATION_EXTERNAL_ID, DeletionPolicy
from image_operator.api.image import ImageSpec
from image_operator.api.provideroptions import OpenStackApi
from image_operator.api.sharing import MemberState
from image_operator.providers.errors import NotFound, Unsupported
from image_operator.providers.instrumented import InstrumentedProvider
from image_operator.providers.observer import ImageObserver
from image_operator.providers.openstack import OpenStackProvider
from image_operator.providers.openstack_metadata import idempotency_tag
from image_operator.providers.sharing import Member
from image_operator.reconcilers.image import ImageObject, ImageReconciler
from image_operator.reconcilers.managed import Backoff, ProviderHandle
from image_operator.reconcilers.outcome import Outcome, condition
from tests.peers.glance import Blob, GlanceServer, make_qcow2
from tests.peers.test_openstack_ims import _provider

MEMBER = "sharing-member-project"
QCOW2 = Blob(make_qcow2())
BACKOFF = Backoff(base=1.0, maximum=5.0, provider_wait=5.0, spread=lambda: 1.0)


@pytest.fixture
def owner(glance: GlanceServer) -> Iterator[OpenStackProvider]:
    provider = OpenStackProvider(glance.connection(), endpoint=glance.url)
    yield provider
    provider.close()


@pytest.fixture
def member(glance: GlanceServer) -> Iterator[OpenStackProvider]:
    provider = OpenStackProvider(glance.connection(project=MEMBER), endpoint=glance.url)
    yield provider
    provider.close()


def _spec(**extra: Any) -> ImageSpec:
    return ImageSpec.model_validate(
        {
            "providerRef": {"name": "glance"},
            "source": {"upload": {"format": "qcow2", "sizeBytes": len(QCOW2.data)}},
            "displayName": "Ubuntu 22.04 base",
            **extra,
        }
    )


def _obj(spec: ImageSpec, uid: str, **fields: Any) -> ImageObject:
    return ImageObject(
        name="ubuntu",
        namespace="team-a",
        uid=uid,
        generation=1,
        annotations={},
        spec=spec,
        status={},
        **fields,
    )


def _uploaded(owner: OpenStackProvider, **extra: Any) -> ImageObject:
    """An owner's Image whose cloud image is active (made and uploaded as the operator does)."""
    obj = _obj(_spec(**extra), str(uuid.uuid4()))
    created = owner.create_image(obj.request())
    owner.upload(created.external_id, iter([QCOW2.data]), len(QCOW2.data))
    return replace(obj, status={"externalID": created.external_id})


def _handle(provider: OpenStackProvider) -> ProviderHandle:
    wrapped = InstrumentedProvider(provider)
    return ProviderHandle("glance", wrapped, ImageObserver(wrapped, max_age=0.0))


def _ready(outcome: Outcome) -> tuple[str, str]:
    ready = condition(outcome.status, "Ready")
    assert ready is not None
    return ready["status"], ready["reason"]


def _members(outcome: Outcome) -> list[tuple[str, str]]:
    return [(m["id"], m["state"]) for m in outcome.status.get("sharing") or []]


def test_share_the_member_accepts_then_unshare(
    owner: OpenStackProvider, member: OpenStackProvider
) -> None:
    external_id = _uploaded(owner).status["externalID"]

    owner.change_members(external_id, [MEMBER], [])
    owner.change_members(external_id, [MEMBER], [])  # again: answered, not refused

    assert owner.list_members(external_id) == [Member(member_id=MEMBER, state=MemberState.PENDING)]
    accepted = member.accept_shared(external_id)
    assert accepted == Member(member_id=MEMBER, state=MemberState.ACCEPTED)
    assert owner.list_members(external_id) == [accepted]
    assert member.accept_shared(external_id) == accepted  # already accepted: no second update

    owner.change_members(external_id, [], [MEMBER])
    owner.change_members(external_id, [], [MEMBER])  # already gone: what was asked
    assert owner.list_members(external_id) == []
    with pytest.raises(NotFound):
        member.accept_shared(external_id)


def test_owner_and_receiver_images_end_to_end(
    owner: OpenStackProvider, member: OpenStackProvider
) -> None:
    owned = _uploaded(owner)
    external_id = owned.status["externalID"]
    tag = idempotency_tag(owned.request())
    owner_handle, member_handle = _handle(owner), _handle(member)
    reconciler = ImageReconciler(BACKOFF)

    sharing = {"members": [{"id": MEMBER}]}
    shared = reconciler.reconcile(replace(owned, spec=_spec(sharing=sharing)), owner_handle)

    assert _ready(shared) == ("True", "Available"), shared.status
    assert _members(shared) == [(MEMBER, "Pending")]
    assert list(member.images(tag=tag)) == []  # pending: not in the member's lists yet

    receiver = replace(
        _obj(
            _spec(displayName="their copy", sharing={"accept": True}, deletionPolicy="Orphan"),
            str(uuid.uuid4()),
        ),
        annotations={ANNOTATION_EXTERNAL_ID: external_id},
        deletion_policy=DeletionPolicy.ORPHAN,
    )
    accepted = reconciler.reconcile(receiver, member_handle)

    assert _ready(accepted) == ("True", "Accepted")
    assert accepted.status["externalID"] == external_id
    assert _members(accepted) == [(MEMBER, "Accepted")]
    assert [i.external_id for i in member.images(tag=tag)] == [external_id]
    assert owner.get_image(external_id).raw["name"] != "their copy"  # never updated by a member

    again = reconciler.reconcile(replace(owned, spec=_spec(sharing=sharing)), owner_handle)
    assert _members(again) == [(MEMBER, "Accepted")]

    unshared = reconciler.reconcile(
        replace(owned, spec=_spec(sharing={"members": []}), status=again.status), owner_handle
    )
    assert _ready(unshared) == ("True", "Available")
    assert unshared.status.get("sharing") is None
    assert owner.list_members(external_id) == []
    assert list(member.images(tag=tag)) == []


def test_ims_mode_shares_within_the_seed_002_index_and_cannot_remove_a_member(
    glance: GlanceServer,
) -> None:
    owner, sent = _provider(glance, OpenStackApi.IMS)
    member, member_sent = _provider(glance, OpenStackApi.IMS, project=MEMBER)
    # IMS shares an image as it is (its update may not change visibility); this Glance, unlike
    # IMS, takes members only for a shared image, which spec.openstack.visibility makes.
    shared = {"openstack": {"visibility": "shared"}}
    external_id = _uploaded(owner, **shared).status["externalID"]

    owner.change_members(external_id, [MEMBER], [])
    assert owner.list_members(external_id) == [Member(member_id=MEMBER, state=MemberState.PENDING)]
    assert member.accept_shared(external_id).state is MemberState.ACCEPTED
    with pytest.raises(Unsupported, match=r"spec\.sharing\.members: removing"):
        owner.change_members(external_id, [], [MEMBER])

    assert sent.outside_ims() == [] and member_sent.outside_ims() == []
    assert sent.parameters.unaccounted() == [] and member_sent.parameters.unaccounted() == []
    assert owner.list_members(external_id)[0].state is MemberState.ACCEPTED  # still a member
    owner.close()
    member.close()
