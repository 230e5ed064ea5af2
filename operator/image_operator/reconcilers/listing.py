"""Decide what to do for a `CommunityListing`: publish one container-made `Image` (seed 000).

CompShare lets an image carry one version only (an image in review or published cannot be
submitted again), and it has no call that withdraws a version: terminating the image takes
its version offline. So every version is published from a copy of the Image that the listing
owns (`CopyCompShareCustomImage`): a new `versionName` gets a new copy in the same listing
group, and deleting the listing terminates its copies, which withdraws the versions. The copy's
name carries the idempotency key (listing UID and version), so a copy whose status write was
lost is found by name, and a publication is looked up before it is sent.

Each step makes at most one mutating cloud call and returns. Plain code: the handlers pass
everything in (the referenced Image, the cover, the provider), tests drive it with a fake.
"""

from __future__ import annotations

from dataclasses import dataclass

from image_operator.api.image import ImageSpec
from image_operator.api.listing import (
    CommunityListingSpec,
    CommunityListingStatus,
    ListingVersion,
)
from image_operator.providers.base import Provider
from image_operator.providers.errors import Conflict, NotFound, ProviderError, Transient
from image_operator.providers.model import CloudState, ImageRequest
from image_operator.providers.publishing import (
    Publication,
    PublicationState,
    Publishes,
    PublishRequest,
)
from image_operator.reconcilers.cover import Cover, resolve_cover
from image_operator.reconcilers.listing_versions import (
    COPYING,
    IN_REVIEW,
    PUBLISHED,
    REJECTED,
    refresh,
    withdraw,
)
from image_operator.reconcilers.managed import (
    ManagedObject,
    ManagedReconciler,
    ProviderHandle,
)
from image_operator.reconcilers.outcome import Event, Outcome, now_rfc3339
from image_operator.reconcilers.step import Step

__all__ = ["Cover", "ListingObject", "ListingReconciler", "SourceImage", "resolve_cover"]

PROVIDER_TYPE = "compshare"


@dataclass(frozen=True)
class ListingObject(ManagedObject[CommunityListingSpec]):
    """The parts of a `CommunityListing` body a reconcile needs."""


@dataclass(frozen=True)
class SourceImage:
    """The `Image` that spec.imageRef names, as the handler read it."""

    name: str
    found: bool
    ready: bool = False
    external_id: str | None = None
    spec: ImageSpec | None = None
    provider_name: str | None = None


def copy_base_name(listing: str, version: str) -> str:
    """The copy's name before the UID suffix: version first, so a long listing name cannot
    cut it off (`cloud_name` keeps 41 characters and appends 8 hex of the UID)."""
    return f"{version}-{listing}"


_Step = Step[ListingObject, CommunityListingStatus]


def _versions(step: _Step) -> list[ListingVersion]:
    """status.versions, present (empty at first) from here on, to be changed in place."""
    if step.status.versions is None:
        step.status.versions = []
    return step.status.versions


class ListingReconciler(ManagedReconciler):
    # -- create / update -------------------------------------------------------------------
    def reconcile(
        self,
        obj: ListingObject,
        source: SourceImage,
        cover: Cover,
        handle: ProviderHandle,
        attempt: int = 0,
    ) -> Outcome:
        step = _Step.start(obj, CommunityListingStatus)
        early = self.preamble(
            step,
            None,  # the referenced Image comes first: its absence is what to report
            problem=None if obj.spec else (obj.spec_error or "spec is invalid"),
            never_ready="paused before anything was published",
        )
        if early is not None:
            return early
        assert obj.spec is not None
        recheck = self.backoff.provider_wait
        # The Image matters until the current version has its copy; after that the copy is
        # what gets published, so an Image being updated (or deleted) does not unpublish it.
        copied = any(
            v.version_name == obj.spec.version_name and v.image_id
            for v in step.status.versions or []
        )
        if not copied and not source.found:
            return step.stalled(
                "ImageNotFound",
                f"spec.imageRef names Image {source.name!r}, which does not exist in namespace "
                f"{obj.namespace!r}: create it or name an existing container-made Image",
                recheck=recheck,
            )
        if handle.provider is None:
            return self.wait_for_provider(
                step, handle, via=f"the ImageProvider of Image {source.name!r} (spec.imageRef)"
            )
        publisher = handle.provider.publisher
        if publisher is None:
            return step.stalled(
                "Unsupported",
                f"spec.imageRef names Image {source.name!r} of {handle.label}; only images of "
                f"a provider of type {PROVIDER_TYPE} can be published to the community "
                "(PublishCompShareImage): reference a container-made compshare Image",
            )
        step.status.provider_name = handle.name
        if not copied and (not source.ready or not source.external_id):
            # It becomes Ready by itself (or its own status says why not): waiting, not failed.
            return step.waiting(
                "WaitingForImage",
                f"spec.imageRef names Image {source.name!r}, which is not Ready yet; only an "
                "Available image can be published: publishing starts when it is",
                recheck,
                phase="Pending",
            )
        try:
            return self._reconcile(step, handle.provider, publisher, source, cover, handle)
        except ProviderError as exc:
            return self.provider_error(step, exc, attempt)

    def _reconcile(
        self,
        step: _Step,
        provider: Provider,
        publisher: Publishes,
        source: SourceImage,
        cover: Cover,
        handle: ProviderHandle,
    ) -> Outcome:
        spec = step.obj.spec
        assert spec is not None
        if spec.group_id and step.status.group_id not in (None, spec.group_id):
            return step.stalled(
                "GroupConflict",
                f"spec.groupID is {spec.group_id!r}, but this listing already published into "
                f"group {step.status.group_id!r}: remove spec.groupID or set it to that group",
            )
        versions = _versions(step)
        entry = next((v for v in versions if v.version_name == spec.version_name), None)
        early = self._judge_before_copying(step, publisher, cover, entry)
        if early is not None:
            return early
        group_id = step.status.group_id or spec.group_id
        submitted = [v for v in versions if v.image_id and v.state != COPYING]
        if group_id and submitted:
            # One call for every version of the listing: the poll of all reviews at once.
            refresh(step, publisher.describe_listing(group_id), versions)

        if entry is None:
            entry = ListingVersion(version_name=spec.version_name, state=COPYING)
            versions.append(entry)
        step.status.external_id = entry.image_id or None
        if not entry.image_id:
            return self._copy(step, provider, publisher, source, entry, handle)

        state = entry.state
        if state == COPYING:
            return self._prepare(step, provider, publisher, source, cover, entry, handle)
        if state == IN_REVIEW:
            message = (
                f"version {spec.version_name} (image {entry.image_id!r}) is in the "
                "community's review"
            )
            return step.waiting("InReview", message, handle.poll_interval, phase=IN_REVIEW)
        if state == PUBLISHED:
            message = f"version {spec.version_name} is published in listing group {group_id!r}"
            if (entry.submitted_generation or 0) < step.obj.generation:
                message += (
                    "; CompShare cannot change a published version: set a new "
                    "spec.versionName to publish the changed spec"
                )
            return step.outcome(phase=PUBLISHED, ready=(True, "Published", message))
        if state == REJECTED:
            if (entry.submitted_generation or 0) < step.obj.generation:
                # The spec changed since the review said no: submit again (CompShare accepts a
                # rejected image again and withdraws the rejected version).
                return self._publish(step, publisher, cover, entry, handle)
            message = (
                f"the community review rejected version {spec.version_name}: "
                f"{entry.reason or 'no reason given'}; change the spec (e.g. "
                "spec.communityImageName or a new spec.versionName) to submit again"
            )
            return step.stalled("Rejected", message, phase=REJECTED)
        # Offline (the copy was terminated behind our back) or unknown: make a new copy.
        step.events.append(
            Event(
                "CopyMissing",
                f"image {entry.image_id!r} of version {spec.version_name} is {state}; "
                "copying the Image again",
                "Warning",
            )
        )
        entry.image_id = None
        entry.state = COPYING
        step.status.external_id = None
        return step.waiting("Copying", "copying the Image again", 1.0, phase=COPYING)

    def _judge_before_copying(
        self, step: _Step, publisher: Publishes, cover: Cover, entry: ListingVersion | None
    ) -> Outcome | None:
        """What can be judged before the current version costs a copy: its cover, and a given
        spec.groupID that CompShare does not know. Both stall (a copy made for a version that
        cannot be submitted would only be deleted again); the cover is read from Kubernetes, so
        looking again later (a ConfigMap may appear) costs no cloud call."""
        spec = step.obj.spec
        assert spec is not None
        if entry is not None and entry.image_id and entry.state != COPYING:
            return None  # submitted already: the cover and the group were judged then
        if cover.problem:
            return step.stalled("InvalidCover", cover.problem, recheck=self.backoff.provider_wait)
        if spec.group_id and not step.status.group_id and not (entry and entry.image_id):
            try:
                publisher.describe_listing(spec.group_id)
            except NotFound as exc:
                return _group_not_found(step, spec.group_id, exc)
        return None

    def _copy(
        self,
        step: _Step,
        provider: Provider,
        publisher: Publishes,
        source: SourceImage,
        entry: ListingVersion,
        handle: ProviderHandle,
    ) -> Outcome:
        obj = step.obj
        assert obj.spec is not None and source.external_id is not None
        original = provider.get_image(source.external_id)
        if not publisher.container_made(original):
            return step.stalled(
                "NotContainerImage",
                f"spec.imageRef names Image {source.name!r}, which was made from a virtual "
                "machine; only images made from a container instance can be published to the "
                "community: reference a container-made Image",
            )
        request = self._copy_request(obj, source, obj.spec.version_name)
        name = publisher.publication_copy_name(request)
        try:
            image_id = publisher.copy_image(source.external_id, name)
            step.events.append(
                Event(
                    "Copying",
                    f"copying image {source.external_id!r} to {image_id!r} ({name}) to publish "
                    f"as version {obj.spec.version_name}",
                )
            )
        except Conflict:
            # A copy made by an earlier attempt whose status write was lost: find it by name.
            found = provider.find_image(request)
            if found is None:
                raise Transient(
                    f"the cloud reported image name {name!r} as taken but it cannot be found yet"
                ) from None
            image_id = found.external_id
            step.events.append(
                Event("Recovered", f"found copy {image_id!r} made by an earlier attempt")
            )
        entry.image_id = image_id
        entry.state = COPYING
        step.status.external_id = image_id
        return step.waiting(
            "Copying",
            f"copying the Image to {image_id!r} for version {obj.spec.version_name}",
            handle.poll_interval,
            phase=COPYING,
        )

    @staticmethod
    def _copy_request(obj: ListingObject, source: SourceImage, version: str) -> ImageRequest:
        assert source.spec is not None
        return ImageRequest(
            idempotency_key=obj.uid,
            name=copy_base_name(obj.name, version),
            namespace=obj.namespace,
            spec=source.spec,
        )

    def _prepare(
        self,
        step: _Step,
        provider: Provider,
        publisher: Publishes,
        source: SourceImage,
        cover: Cover,
        entry: ListingVersion,
        handle: ProviderHandle,
    ) -> Outcome:
        image_id = entry.image_id
        assert image_id is not None
        try:
            copy = provider.get_image(image_id)
        except NotFound:
            entry.image_id = None
            step.status.external_id = None
            step.events.append(
                Event("CopyMissing", f"copy {image_id!r} is gone; copying again", "Warning")
            )
            return step.waiting("Copying", "copying the Image again", 1.0, phase=COPYING)
        if copy.state is CloudState.FAILED:
            # Nothing improves by looking again: the failed copy is ours and useless, so it is
            # terminated now and the next change of the listing copies again. No timer: a
            # stalled listing costs no cloud call until it changes.
            provider.delete_image(image_id)
            entry.image_id = None
            step.status.external_id = None
            return step.stalled(
                "CopyFailed",
                f"copying the Image to {image_id!r} failed: {copy.message or 'no reason'}; "
                "the failed copy was deleted: change the listing (its spec, or any annotation) "
                "to copy again",
            )
        if copy.state is not CloudState.AVAILABLE:
            done = f" ({copy.progress}%)" if copy.progress is not None else ""
            return step.waiting(
                "Copying",
                f"copying the Image to {image_id!r}{done}",
                handle.poll_interval,
                phase=COPYING,
            )
        return self._publish(step, publisher, cover, entry, handle)

    def _publish(
        self,
        step: _Step,
        publisher: Publishes,
        cover: Cover,
        entry: ListingVersion,
        handle: ProviderHandle,
    ) -> Outcome:
        spec = step.obj.spec
        assert spec is not None
        if cover.problem:
            return step.stalled("InvalidCover", cover.problem, recheck=self.backoff.provider_wait)
        image_id = entry.image_id
        assert image_id is not None
        group_id = step.status.group_id or spec.group_id
        # Looked up first: a publish whose status write was lost must not be sent twice.
        existing = publisher.describe_publication(image_id)
        if (
            existing is not None
            and existing.version_name == spec.version_name
            and (existing.state in (PublicationState.IN_REVIEW, PublicationState.PUBLISHED))
        ):
            step.events.append(
                Event(
                    "Recovered",
                    f"version {spec.version_name} was already submitted (image {image_id!r}); "
                    "not submitting it again",
                )
            )
            publication: Publication | None = existing
        else:
            try:
                version = PublishRequest(
                    version_name=spec.version_name,
                    group_id=group_id,
                    community_image_name=spec.community_image_name,
                    version_desc=spec.version_desc,
                    price=spec.price,
                    cover=cover.value,
                    tags=spec.tags,
                    description=spec.description,
                    readme=spec.readme,
                    supported_gpu_types=spec.supported_gpu_types,
                    auto_start=spec.auto_start,
                )
                publisher.publish(image_id, version)
            except NotFound as exc:
                if group_id and not step.status.group_id:
                    return _group_not_found(step, group_id, exc)
                raise
            except Conflict as exc:
                return step.stalled(
                    "VersionExists",
                    f"CompShare refused version {spec.version_name}: {exc.message}; choose "
                    "another spec.versionName",
                )
            step.events.append(
                Event(
                    "Submitted",
                    f"submitted version {spec.version_name} (image {image_id!r}) for review",
                )
            )
            publication = publisher.describe_publication(image_id)
        entry.state = publication.state.value if publication else IN_REVIEW
        entry.submitted_at = now_rfc3339()
        entry.submitted_generation = step.obj.generation
        entry.reason = None
        if publication is not None and publication.group_id:
            step.status.group_id = publication.group_id
        if publication is not None and publication.reason:
            entry.reason = publication.reason
        return step.waiting(
            "InReview",
            f"version {spec.version_name} (image {image_id!r}) is in the community's review",
            handle.poll_interval,
            phase=IN_REVIEW,
        )

    # -- deletion ---------------------------------------------------------------------------
    def finalize(
        self,
        obj: ListingObject,
        source: SourceImage | None,
        handle: ProviderHandle,
        attempt: int = 0,
    ) -> Outcome:
        """Withdraw every version: terminate the copies the listing published (CompShare has
        no un-publish call; a version whose image is gone is Offline), then let go."""
        step = _Step.start(obj, CommunityListingStatus)
        versions = _versions(step)
        live = [v.version_name for v in versions if v.image_id]
        early = self.finalize_preamble(
            step,
            handle,
            noun="versions",
            verb="withdrawn",
            orphaned=f"left versions {', '.join(live)} published (Orphan)" if live else None,
            needs_provider=False,
        )
        if early is not None:
            return early
        if handle.provider is None or handle.provider.publisher is None:
            if not any(v.image_id for v in versions):
                return step.outcome(
                    phase="Deleting", ready=(False, "Deleting", "nothing to withdraw")
                )
            message = (
                "cannot withdraw the published versions: "
                f"{handle.problem or 'the compshare provider is unavailable'}; restore the "
                "ImageProvider or set spec.deletionPolicy: Orphan"
            )
            return step.waiting(
                "WaitingForProvider", message, self.backoff.provider_wait, phase="Deleting"
            )
        try:
            return self._withdraw(step, handle.provider, source, versions, handle)
        except ProviderError as exc:
            doing = "cannot withdraw the published versions"
            return self.delete_failed(step, exc, attempt, doing=doing)

    def _withdraw(
        self,
        step: _Step,
        provider: Provider,
        source: SourceImage | None,
        versions: list[ListingVersion],
        handle: ProviderHandle,
    ) -> Outcome:
        obj = step.obj
        if obj.spec is not None and source is not None and source.spec is not None:
            # A copy may have been made without its status write: find it, never leak it.
            entry = next((v for v in versions if v.version_name == obj.spec.version_name), None)
            if entry is None or not entry.image_id:
                found = provider.find_image(self._copy_request(obj, source, obj.spec.version_name))
                if found is not None:
                    if entry is None:
                        entry = ListingVersion(version_name=obj.spec.version_name, state=COPYING)
                        versions.append(entry)
                    entry.image_id = found.external_id
        return withdraw(step, provider, versions, handle.poll_interval)


def _group_not_found(step: _Step, group_id: str, exc: NotFound) -> Outcome:
    return step.stalled(
        "GroupNotFound",
        f"spec.groupID names listing group {group_id!r}, which CompShare does not know "
        f"({exc.message}): remove spec.groupID to start a new group or name an existing one",
    )
