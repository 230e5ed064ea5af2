"""A CommunityListing's versions: the states they are kept in, how the listing the cloud
reports moves them through the community's review, and how deletion withdraws them."""

from __future__ import annotations

import contextlib
from typing import Any

from image_operator.api.listing import CommunityListingStatus, ListingVersion
from image_operator.providers.base import Provider
from image_operator.providers.errors import NotFound
from image_operator.providers.publishing import Listing, PublicationState
from image_operator.reconcilers.outcome import Event, Outcome
from image_operator.reconcilers.step import Step

# Version states kept in status.versions[].state.
COPYING = "Copying"  # the copy to publish is being made (or is made, not yet submitted)
IN_REVIEW = PublicationState.IN_REVIEW.value
PUBLISHED = PublicationState.PUBLISHED.value
REJECTED = PublicationState.REJECTED.value
OFFLINE = PublicationState.OFFLINE.value
WITHDRAWING = "Withdrawing"  # deletion terminated the copy; waiting for it to be gone
WITHDRAWN = "Withdrawn"

_Step = Step[Any, CommunityListingStatus]


def refresh(step: _Step, listing: Listing, versions: list[ListingVersion]) -> None:
    """Take each version's review state from the listing as the cloud reports it, with an
    event per transition a user wants to hear of."""
    by_image = {p.image_id: p for p in listing.versions}
    for version in versions:
        if not version.image_id or version.state in (COPYING, WITHDRAWN):
            continue
        pub = by_image.get(version.image_id)
        if pub is None or pub.version_name != version.version_name:
            # Not in the listing (any more): submit it again; `_publish` looks first.
            version.state = COPYING
            version.reason = None
            continue
        before = version.state
        version.state = pub.state.value
        version.reason = pub.reason or None
        if before == REJECTED and pub.state is PublicationState.IN_REVIEW:
            # Submitted again by a step whose status write was lost.
            version.submitted_generation = step.obj.generation
        current = step.obj.spec is not None and (version.version_name == step.obj.spec.version_name)
        # The current version's rejection is the Stalled outcome's own Warning.
        if before != version.state and not (current and version.state == REJECTED):
            _transition_event(step, version, listing.group_id)


def _transition_event(step: _Step, version: ListingVersion, group_id: str) -> None:
    name, state = version.version_name, version.state
    if state == PUBLISHED:
        step.events.append(
            Event("Published", f"version {name} is published in listing group {group_id!r}")
        )
    elif state == REJECTED:
        step.events.append(
            Event(
                "Rejected",
                f"the community review rejected version {name}: "
                f"{version.reason or 'no reason given'}",
                "Warning",
            )
        )


def withdraw(
    step: _Step, provider: Provider, versions: list[ListingVersion], poll_interval: float
) -> Outcome:
    """Terminate every version's copy (the cloud has no un-publish call: a version whose image
    is gone is Offline), then wait until each is gone."""
    pending = []
    for version in versions:
        image_id = version.image_id
        if not image_id or version.state == WITHDRAWN:
            continue
        if version.state != WITHDRAWING:
            with contextlib.suppress(NotFound):  # already gone is just as good
                provider.delete_image(image_id)
            version.state = WITHDRAWING
            step.events.append(
                Event(
                    "Withdrawing",
                    f"terminating image {image_id!r} to withdraw version {version.version_name}",
                )
            )
        try:
            provider.get_image(image_id)
        except NotFound:
            version.state = WITHDRAWN
            continue
        pending.append(version.version_name)
    if pending:
        return step.waiting(
            "Withdrawing",
            f"waiting for CompShare to withdraw versions {', '.join(pending)}",
            poll_interval,
            phase="Deleting",
        )
    withdrawn = [v.version_name for v in versions if v.state == WITHDRAWN]
    if withdrawn:
        step.events.append(
            Event("Withdrawn", f"versions {', '.join(withdrawn)} are withdrawn (Offline)")
        )
    return step.outcome(phase="Deleted", ready=(False, "Deleted", "versions withdrawn"))
