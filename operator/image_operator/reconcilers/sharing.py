"""`spec.sharing` of an Available `Image`, level-triggered: the owner's member set, or the
receiving side's acceptance.

The owner side: once `spec.sharing.members` is set it is the whole list (as a Kubernetes list
is): members the cloud has that it does not name are removed, whoever added them, and missing
ones are added. Removing `spec.sharing` altogether unshares the members the operator recorded
in `status.sharing` and then leaves the image's sharing alone. Each pass reads the members once
and changes them in at most one `change_members` call.

The receiving side (`spec.sharing.accept`): an Image that adopts a shared image accepts it
where the cloud asks members to (Glance/IMS) and reports its membership; it never pushes its
spec to an image it does not own, so it goes Ready without `needs_update`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from image_operator.api.common import ANNOTATION_EXTERNAL_ID
from image_operator.api.image import ImageSpec, ImageStatus
from image_operator.api.sharing import MemberState, MemberStatus
from image_operator.providers.base import Provider
from image_operator.providers.errors import InvalidInput, Unsupported
from image_operator.providers.model import CloudImage
from image_operator.providers.sharing import Member, Shares
from image_operator.reconcilers.managed import ProviderHandle
from image_operator.reconcilers.outcome import Event, Outcome, now_rfc3339
from image_operator.reconcilers.step import Step

if TYPE_CHECKING:  # image.py calls this module: its types only, no import cycle at run time
    from image_operator.reconcilers.image import ImageObject

    _Step = Step[ImageObject, ImageStatus]

INVALID_SPEC = "InvalidSpec"
ACCEPTED = "Accepted"
#: How often a Ready Image with a member yet to accept or reject reads its members again: the
#: member answers in its own account, so nothing tells the operator; slow, as people answer.
PENDING_RECHECK_SECONDS = 300.0


def require(spec: ImageSpec, provider: Provider) -> None:
    """Raise what makes `spec.sharing` impossible with this provider, before any cloud call
    (so that an impossible spec never leaves a cloud image behind): `Unsupported` for a
    provider that cannot share, `InvalidInput` for member IDs it cannot take."""
    sharing = spec.sharing
    if sharing is None:
        return
    sharer = provider.sharer
    if sharer is None:
        raise Unsupported(
            f"spec.sharing: provider type {provider.type_name!r} cannot share images with other "
            "accounts; remove spec.sharing (openstack and aliyun providers share, see "
            "docs/sharing.md)"
        )
    problem = sharer.member_problem([m.id for m in sharing.members or []])
    if problem is not None:
        raise InvalidInput(f"spec.sharing.members: {problem}")


def reconcile(
    step: _Step, provider: Provider, cloud: CloudImage, handle: ProviderHandle
) -> Outcome | None:
    """The outcome that ends this pass (a stall, or the receiving side's Ready), or None when
    the image's sharing is as the spec says and the Image reconciler goes on. Raises the
    cloud's `ProviderError`s (and `require`'s)."""
    spec = step.obj.spec
    assert spec is not None
    sharing = spec.sharing
    recorded = step.status.sharing or []
    if sharing is None and not recorded:
        return None  # never shared by the operator: no cloud call
    require(spec, provider)
    sharer = provider.sharer
    if sharer is None:  # spec.sharing removed, on a provider that cannot share: nothing shared
        step.status.sharing = None
        return None
    if accepts(spec):
        return _accept(step, sharer, cloud, handle)
    desired = None if sharing is None else [m.id for m in sharing.members or []]
    external_id = cloud.external_id
    current = {m.member_id: m for m in sharer.list_members(external_id)}
    if desired is None:  # spec.sharing removed: take back what the spec had shared
        add: list[str] = []
        remove = [r.id for r in recorded if r.id in current]
    else:
        add = [i for i in desired if i not in current]
        remove = [i for i in current if i not in desired]
    if add or remove:
        sharer.change_members(external_id, add, remove)
        step.events.append(Event("SharingChanged", _said(external_id, add, remove)))
        current = {m.member_id: m for m in sharer.list_members(external_id)}
    step.status.sharing = None if desired is None else _statuses(recorded, current.values())
    return None


def accepts(spec: ImageSpec) -> bool:
    """Whether this Image is the receiving side of a share: it adopts an image it does not
    own, whose fields its spec never sets (so they cannot drift from it)."""
    return spec.sharing is not None and spec.sharing.accept


def recheck(status: ImageStatus) -> float | None:
    """When a Ready Image should look at its members again: while one is Pending."""
    pending = any(m.state is MemberState.PENDING for m in status.sharing or [])
    return PENDING_RECHECK_SECONDS if pending else None


def _accept(step: _Step, sharer: Shares, cloud: CloudImage, handle: ProviderHandle) -> Outcome:
    if not step.obj.annotations.get(ANNOTATION_EXTERNAL_ID):
        return step.stalled(
            INVALID_SPEC,
            f"spec.sharing.accept: this Image accepts an image shared with it, which it must "
            f"adopt: set the annotation {ANNOTATION_EXTERNAL_ID} to the shared image's ID",
        )
    before = step.status.sharing or []
    member = sharer.accept_shared(cloud.external_id)
    step.status.sharing = _statuses(before, [member])
    if member.state is MemberState.ACCEPTED and not any(
        r.state is MemberState.ACCEPTED for r in before
    ):
        step.events.append(
            Event(ACCEPTED, f"accepted image {cloud.external_id!r} shared with {member.member_id}")
        )
    step.status.progress = 100
    message = (
        f"shared image {cloud.external_id!r} is available in {handle.label} "
        f"(membership {member.member_id!r}: {member.state.value})"
    )
    return step.outcome(phase="Ready", ready=(True, ACCEPTED, message))


def _statuses(before: list[MemberStatus], members: Iterable[Member]) -> list[MemberStatus] | None:
    """The members as `status.sharing`, sorted by ID; a state seen before keeps its time."""
    known = {(r.id, r.state): r.last_transition_time for r in before}
    now = now_rfc3339()
    rows = [
        MemberStatus(
            id=m.member_id,
            state=m.state,
            last_transition_time=known.get((m.member_id, m.state)) or now,
        )
        for m in sorted(members, key=lambda m: m.member_id)
    ]
    return rows or None


def _said(external_id: str, add: list[str], remove: list[str]) -> str:
    parts = []
    if add:
        parts.append("shared image {!r} with {}".format(external_id, ", ".join(add)))
    if remove:
        parts.append("stopped sharing image {!r} with {}".format(external_id, ", ".join(remove)))
    return "; ".join(parts)
