"""Decide what to do for an `Image`: given its spec, status and the cloud's answer, one step.

Each step makes at most one mutating cloud call and returns, so the external ID reaches the
status as soon as a create returns. Plain code: the handlers pass everything in, and tests
drive it with an in-memory provider.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from image_operator import commandtemplate
from image_operator.api.common import (
    ANNOTATION_EXTERNAL_ID,
    ANNOTATION_PROVIDER_TYPE,
    ConditionStatus,
)
from image_operator.api.image import (
    AdoptPolicy,
    CopySourceStatus,
    ImageSpec,
    ImageStatus,
    ManagementPolicy,
)
from image_operator.api.provider import DriftPolicy
from image_operator.providers.base import Provider
from image_operator.providers.errors import (
    Conflict,
    NotFound,
    ProviderError,
    Transient,
    Unsupported,
)
from image_operator.providers.model import (
    CloudImage,
    CloudState,
    ImageMatch,
    ImageRequest,
    ImageSelector,
    Operation,
)
from image_operator.providers.observer import ImageObserver
from image_operator.reconcilers import progress
from image_operator.reconcilers.copy import CopySource, export_request
from image_operator.reconcilers.managed import (
    ManagedObject,
    ManagedReconciler,
    ProviderHandle,
    delete_and_wait,
    vanished,
)
from image_operator.reconcilers.outcome import (
    Event,
    Outcome,
)
from image_operator.reconcilers.step import Step

CHECKSUM_MISMATCH = "ChecksumMismatch"
# How many candidates an ambiguous selector's message names (the rest are counted).
CANDIDATES_SHOWN = 5


@dataclass(frozen=True)
class ImageObject(ManagedObject[ImageSpec]):
    """The parts of an `Image` body a reconcile needs. `owned_by` names another Image of the
    same provider that owns the cloud image this one adopts or would delete (see `owner`)."""

    owned_by: str | None = None
    provider_name: str = ""
    created: str = ""  # metadata.creationTimestamp: who adopted first
    # For spec.adopt: cloud image ID -> the other Image of the same provider that owns it
    # (`claims`); such an image is never adopted by selector.
    claimed: Mapping[str, str] = field(default_factory=dict)
    # An older Image of the same provider with the same selector that has not adopted yet
    # (`rival`): it adopts a lone match first, so two such Images never both take it.
    rival: str | None = None

    def request(self) -> ImageRequest:
        assert self.spec is not None
        return ImageRequest(
            idempotency_key=self.uid, name=self.name, namespace=self.namespace, spec=self.spec
        )


_Step = Step[ImageObject, ImageStatus]


class ImageReconciler(ManagedReconciler):
    # -- create / update -------------------------------------------------------------------
    def reconcile(
        self,
        obj: ImageObject,
        handle: ProviderHandle,
        attempt: int = 0,
        copy_source: CopySource | None = None,
    ) -> Outcome:
        step = _Step.start(obj, ImageStatus)
        problem = (
            obj.spec_error
            if obj.spec is None
            else spec_problem(obj.spec) or copies_itself(obj.name, obj.spec)
        )
        early = self.preamble(
            step,
            handle,
            problem=problem,
            never_ready="paused before the image was made",
        )
        if early is not None:
            return early
        assert handle.provider is not None and handle.observer is not None
        step.status.provider_type = handle.provider.type_name
        try:
            return self._reconcile(step, handle.provider, handle.observer, handle, copy_source)
        except ProviderError as exc:
            return self.provider_error(step, exc, attempt)

    def _reconcile(
        self,
        step: _Step,
        provider: Provider,
        observer: ImageObserver,
        handle: ProviderHandle,
        copy_source: CopySource | None = None,
    ) -> Outcome:
        obj = step.obj
        assert obj.spec is not None
        request = obj.request()
        spec = obj.spec
        copying = spec.source.image is not None
        built = spec.source.pipeline  # made by a pipeline run: adopted, never created
        creates = spec.allows(ManagementPolicy.CREATE)
        # An Image that may not create never uses spec.source, so the provider need not
        # support it; a copy needs what _copy_request decides.
        if creates and not copying and built is None:
            provider.require_source(spec.source.kind())
        provider.require_options(spec)  # spec.<type> options match the provider (issue 12)
        external_id = step.status.external_id
        adopt = obj.annotations.get(ANNOTATION_EXTERNAL_ID)
        drift = step.status.drift
        if (
            drift is not None
            and drift.generation == obj.generation
            and external_id
            and handle.drift_policy is DriftPolicy.REPORT
            # One that may neither create nor update corrects nothing anyway: its drift
            # record and event are the report, and it goes on mirroring the cloud.
            and (creates or spec.allows(ManagementPolicy.UPDATE))
        ):
            return step.stalled(
                "Drifted",
                f"{drift.message}; ImageProvider {handle.name!r} has spec.driftPolicy: Report, "
                "so the cloud image is left as it is: change this Image's spec to apply it "
                "again, or set driftPolicy: Correct",
            )

        if adopt and external_id and adopt != external_id:
            return step.stalled(
                "AdoptionConflict",
                f"annotation {ANNOTATION_EXTERNAL_ID} names {adopt!r}, but this object already "
                f"manages cloud image {external_id!r}; adopting another would leave that one "
                "unaccounted for: delete this object (deletionPolicy decides the old image's "
                "fate) and adopt in a new one",
            )
        if adopt and adopt != external_id and obj.owned_by:
            return step.stalled(
                "AdoptionConflict",
                f"annotation {ANNOTATION_EXTERNAL_ID} names {adopt!r}, which Image "
                f"{obj.owned_by!r} already manages: a cloud image has one owner; remove the "
                "annotation, or delete that Image with spec.deletionPolicy: Orphan first",
            )
        if adopt and adopt != external_id:
            try:
                cloud: CloudImage | None = provider.get_image(adopt)
            except NotFound:
                return step.stalled(
                    "AdoptionFailed",
                    f"annotation {ANNOTATION_EXTERNAL_ID} names {adopt!r}, but {handle.label} "
                    "has no such image: correct the ID or remove the annotation",
                )
            step.status.external_id = adopt
            step.events.append(Event("Adopted", f"took over existing cloud image {adopt!r}"))
            if cloud is not None:
                observer.remember(cloud)
        elif not external_id:
            if spec.adopt is not None:
                selected = self._select(step, provider, observer, handle)
                if selected is not None:
                    return (
                        selected
                        if isinstance(selected, Outcome)
                        else self._observe(step, provider, observer, request, selected, handle)
                    )
                # Nothing matched and spec.adopt.policy is AdoptOrCreate: create below.
            if not creates:
                return step.stalled(
                    "NothingToObserve",
                    "spec.managementPolicies has no Create, so this Image never makes a cloud "
                    f"image: name one to observe with the annotation {ANNOTATION_EXTERNAL_ID} "
                    "or spec.adopt, or add Create",
                )
            # A provider whose uploader opens the import itself (multipart): the cloud image
            # appears when `image-operator upload` starts; the others get a placeholder from
            # create_image that the uploader then fills.
            if obj.spec.source.upload is not None and provider.multipart_uploads is not None:
                return self._await_upload(step, provider, observer, request, handle)
            if built is not None:
                return step.stalled(
                    "NotBuiltHere",
                    f"spec.source.pipeline: this image is built by runs of ImagePipeline "
                    f"{built.pipeline_ref.name!r} (spec.outputImages), never "
                    f"created here; set the annotation {ANNOTATION_EXTERNAL_ID} to a run's image "
                    "ID (the pipeline's status.runs[].imageID) to adopt it",
                )
            make: Callable[[ImageRequest], CloudImage] = provider.create_image
            if copying:
                prepared = self._copy_request(step, provider, request, handle, copy_source)
                if isinstance(prepared, Outcome):
                    return prepared
                request, make = prepared
            return self._create(step, provider, observer, request, handle, make)
        else:
            cloud = observer.observe(external_id)
            if cloud is None and not adopt and spec.adopt is not None:
                # Adopted by selector: forget it and select again (another match, a wait, or
                # a create, as spec.adopt.policy says).
                return vanished(
                    step,
                    handle,
                    external_id,
                    adopted=False,
                    noun="cloud image",
                    anew="",
                    again="looking for a match of spec.adopt.selector again",
                )
            if cloud is None and not creates:
                return step.stalled(
                    "CloudImageGone",
                    f"cloud image {external_id!r} no longer exists in {handle.label}, and "
                    "spec.managementPolicies has no Create: there is nothing left to observe; "
                    "delete this Image, or name another image to observe in a new one",
                )
            if cloud is None:
                if not adopt:
                    step.status.progress = None
                uploads = obj.spec.source.upload is not None
                return vanished(
                    step,
                    handle,
                    external_id,
                    adopted=bool(adopt),
                    noun="cloud image",
                    anew="create a new one",
                    again="waiting for a new upload" if uploads else "creating it again",
                )

        assert cloud is not None
        return self._observe(step, provider, observer, request, cloud, handle)

    def _create(
        self,
        step: _Step,
        provider: Provider,
        observer: ImageObserver,
        request: ImageRequest,
        handle: ProviderHandle,
        make: Callable[[ImageRequest], CloudImage],
    ) -> Outcome:
        # Look up first: a crash between an earlier create and its status write left an image
        # carrying our idempotency key, and it must be found, not duplicated. A cloud that
        # refuses a duplicate key says so itself (Conflict, below): no lookup first there.
        cloud = None if provider.create_refuses_duplicates else provider.find_image(request)
        if cloud is not None:
            step.events.append(
                Event(
                    "Recovered",
                    f"found cloud image {cloud.external_id!r} made by an earlier attempt; "
                    "not creating another",
                )
            )
        else:
            try:
                cloud = make(request)
                if cloud.state is not CloudState.AVAILABLE:  # else the Ready event says it
                    step.events.append(
                        Event("Creating", f"{handle.label} accepted image {cloud.external_id!r}")
                    )
            except Conflict:
                cloud = provider.find_image(request)
                if cloud is None:
                    raise Transient(
                        "the cloud reported the image as existing but it cannot be found yet"
                    ) from None
                step.events.append(
                    Event("Recovered", f"cloud image {cloud.external_id!r} already existed")
                )
        step.status.external_id = cloud.external_id
        # Known to the observer from now on, so the next poll round batches it with the rest
        # instead of describing it on its own.
        observer.remember(cloud)
        if cloud.state is CloudState.AVAILABLE:
            # Made at once (a registry copy, a cloud with nothing to pull): Ready in this pass,
            # so the status is written once, not as Creating and then again as Ready.
            return self._observe(step, provider, observer, request, cloud, handle)
        return self._progress(step, cloud, handle)

    def _copy_request(
        self,
        step: _Step,
        provider: Provider,
        request: ImageRequest,
        handle: ProviderHandle,
        source: CopySource | None,
    ) -> tuple[ImageRequest, Callable[[ImageRequest], CloudImage]] | Outcome:
        """How to make a copy (the request and the call that makes it), or why it must wait."""
        if source is None or source.problem:
            problem = (source.problem if source else None) or "the source Image is not known"
            return step.waiting(
                "WaitingForSource", problem, self.backoff.provider_wait, phase="Pending"
            )
        if not source.ready or not source.external_id:
            message = (
                f"spec.source.image.imageRef names Image {source.name!r}, which is not Ready "
                "yet; the copy starts when it is"
            )
            return step.waiting("WaitingForSource", message, handle.poll_interval, phase="Pending")
        source_id = source.external_id
        make: Callable[[ImageRequest], CloudImage]
        if source.provider_name == handle.name:
            provider.require(Operation.COPY)
            copier = provider.copier
            if copier is None:  # declared COPY without the interface: our bug
                raise Unsupported(f"{handle.label} declares copies but has no copy call")

            def make(copy: ImageRequest) -> CloudImage:
                return copier.copy_within(copy, source_id)

            how = f"copying image {source_id!r} (Image {source.name!r}) within {handle.label}"
        else:
            provider.require(Operation.IMPORT_URL)
            request = export_request(request, source.exporter, source, source.exporter_label)
            make = provider.create_image
            how = (
                f"exporting image {source_id!r} of {source.exporter_label} "
                f"(Image {source.name!r}) into {handle.label}"
            )
        step.status.copied_from = CopySourceStatus(
            image=source.name, provider=source.provider_name, external_id=source_id
        )
        step.events.append(Event("Copying", how))
        return request, make

    def _await_upload(
        self,
        step: _Step,
        provider: Provider,
        observer: ImageObserver,
        request: ImageRequest,
        handle: ProviderHandle,
    ) -> Outcome:
        # The CLI makes the cloud image (it holds the file); it tags it with our UID, so a
        # lookup finds it whether or not the upload has finished.
        cloud = provider.find_image(request)
        if cloud is None:
            obj = step.obj
            message = (
                f"waiting for the file: run `image-operator upload img/{obj.name} FILE "
                f"-n {obj.namespace}` to upload it into {handle.label}"
            )
            return step.waiting(
                "WaitingForUpload", message, handle.poll_interval, phase="WaitingForUpload"
            )
        step.status.external_id = cloud.external_id
        step.events.append(
            Event("UploadStarted", f"an upload into cloud image {cloud.external_id!r} began")
        )
        observer.remember(cloud)
        return self._observe(step, provider, observer, request, cloud, handle)

    def _observe(
        self,
        step: _Step,
        provider: Provider,
        observer: ImageObserver,
        request: ImageRequest,
        cloud: CloudImage,
        handle: ProviderHandle,
    ) -> Outcome:
        obj = step.obj
        step.status.cloud_state = cloud.state.value
        step.status.message = cloud.message or None

        if cloud.state is CloudState.FAILED:
            failed_generation = step.status.failed_generation
            assert obj.spec is not None
            remakes = obj.spec.allows(ManagementPolicy.CREATE) and obj.spec.allows(
                ManagementPolicy.DELETE
            )
            if (
                remakes
                and failed_generation is not None
                and obj.generation > int(failed_generation)
            ):
                # The spec changed since the cloud gave up: clear the failed image, start over.
                with contextlib.suppress(NotFound):  # already gone is just as good
                    provider.delete_image(cloud.external_id)
                observer.invalidate(cloud.external_id)
                step.status.external_id = None
                step.status.failed_generation = None
                step.events.append(
                    Event("Recreating", f"deleted failed image {cloud.external_id!r}; retrying")
                )
                return step.waiting("Recreating", "creating the image again", 1.0, phase="Pending")
            message = (
                f"{handle.label} failed to make image {cloud.external_id!r}: "
                f"{cloud.message or 'no reason given'}; change the spec to try again"
            )
            if failed_generation is None:  # one Warning per failure, not per reconcile
                step.events.append(Event("CloudFailed", message, "Warning"))
            # Remember which spec failed: a later generation means "try again", however many
            # other outcomes (retries, pauses) moved observedGeneration in between.
            step.status.failed_generation = (
                obj.generation if failed_generation is None else failed_generation
            )
            return step.outcome(
                phase="Failed",
                ready=(False, "CloudFailed", message),
                stalled=(True, "CloudFailed", message),
            )

        if cloud.state is not CloudState.AVAILABLE:
            return self._progress(step, cloud, handle)

        step.status.failed_generation = None
        assert obj.spec is not None
        if not obj.spec.allows(ManagementPolicy.UPDATE) and provider.needs_update(request, cloud):
            return self._not_updated(step, cloud, handle)
        if provider.needs_update(request, cloud):
            provider.require(Operation.UPDATE)
            try:
                updated = provider.update_image(cloud.external_id, request)
            except NotFound:
                # Gone between the poll and the update: the next poll sees it missing.
                observer.invalidate(cloud.external_id)
                raise Transient(
                    f"cloud image {cloud.external_id!r} vanished during update"
                ) from None
            # Some clouds answer an update with a new identity (a registry copy's new digest).
            step.status.external_id = updated.external_id
            observer.remember(updated)
            step.events.append(
                Event("Updated", f"pushed spec changes to cloud image {cloud.external_id!r}")
            )
            return self._progress(step, updated, handle, updating=True)

        if step.status.phase != "Ready":
            # Once, on the way to Ready: reading a whole image back is not a per-poll cost.
            refused = self._verify_checksum(step, provider, cloud, handle)
            if refused is not None:
                return refused

        return self._ready(step, cloud, handle)

    def _ready(
        self, step: _Step, cloud: CloudImage, handle: ProviderHandle, differs: str = ""
    ) -> Outcome:
        """Ready: `Available`, or `Observed` for an Image that may only observe (it mirrors a
        cloud image it does not manage). `differs` says what of the spec is not applied."""
        spec = step.obj.spec
        assert spec is not None
        step.status.progress = 100
        observes = not any(
            spec.allows(p)
            for p in (ManagementPolicy.CREATE, ManagementPolicy.UPDATE, ManagementPolicy.DELETE)
        )
        message = f"image {cloud.external_id!r} is available in {handle.label}{differs}"
        if observes:
            message = f"observing {message} (spec.managementPolicies: Observe)"
        before = step.condition("Ready")
        if step.status.phase != "Ready" or (before is not None and before.message != message):
            step.events.append(Event("Ready", message))
        reason = "Observed" if observes else "Available"
        return step.outcome(phase="Ready", ready=(True, reason, message))

    def _not_updated(self, step: _Step, cloud: CloudImage, handle: ProviderHandle) -> Outcome:
        """The cloud image differs from the spec, and spec.managementPolicies has no Update:
        reported (in Ready's message, and by the drift resync), never corrected."""
        return self._ready(
            step,
            cloud,
            handle,
            differs="; its fields differ from this Image's spec, which is not pushed: "
            "spec.managementPolicies has no Update",
        )

    def _select(
        self, step: _Step, provider: Provider, observer: ImageObserver, handle: ProviderHandle
    ) -> CloudImage | Outcome | None:
        """spec.adopt: the one cloud image its selector matches, adopted (status.externalID
        set); or the outcome that waits or stalls; or None to create (AdoptOrCreate, no
        match). Images another Image owns are never candidates (one owner per image)."""
        obj = step.obj
        assert obj.spec is not None and obj.spec.adopt is not None
        adoption = obj.spec.adopt
        selector = adoption.selector
        path = "spec.adopt.selector." + ("name" if selector.name is not None else "tags")
        matches = provider.find_images(
            ImageSelector(name=selector.name, tags=dict(selector.tags or {}))
        )
        free = [m for m in matches if m.external_id not in obj.claimed]
        if len(free) > 1:
            return step.stalled(
                "AdoptionAmbiguous",
                f"{path} matches {len(free)} cloud images in {handle.label}: "
                f"{_candidates(free)}; exactly one is adopted: narrow the selector, or adopt "
                f"one by ID with the annotation {ANNOTATION_EXTERNAL_ID}",
            )
        if free and obj.rival:
            return step.waiting(
                "WaitingForAdoption",
                f"Image {obj.rival!r} is older and selects with the same {path}: it adopts "
                f"{free[0].external_id!r} first (a cloud image has one owner)",
                handle.poll_interval,
                phase="Pending",
            )
        if free:
            chosen = free[0].external_id
            try:
                cloud = provider.get_image(chosen)
            except NotFound:
                raise Transient(f"cloud image {chosen!r} vanished while being adopted") from None
            step.status.external_id = chosen
            step.events.append(
                Event("Adopted", f"took over existing cloud image {chosen!r} matched by {path}")
            )
            observer.remember(cloud)
            return cloud
        if matches:
            owned = ", ".join(
                f"{m.external_id!r} (Image {obj.claimed[m.external_id]!r})"
                for m in matches[:CANDIDATES_SHOWN]
            )
            return step.stalled(
                "AdoptionConflict",
                f"{path} matches only cloud images other Images already manage: {owned}; a "
                "cloud image has one owner: change the selector, or delete that Image with "
                "spec.deletionPolicy: Orphan first",
            )
        if adoption.policy is AdoptPolicy.ADOPT_OR_CREATE:
            return None
        return step.waiting(
            "WaitingForMatch",
            f"{path} matches no cloud image in {handle.label}; spec.adopt.policy is "
            "AdoptOrWait, so it looks again",
            # Jittered near the backoff's ceiling: many waiting Images do not list together.
            max(handle.poll_interval, self.backoff.delay(16)),
            phase="Pending",
        )

    def _verify_checksum(
        self, step: _Step, provider: Provider, cloud: CloudImage, handle: ProviderHandle
    ) -> Outcome | None:
        """None when the checksum matches (or cannot be checked: said in a Warning event);
        otherwise a Stalled outcome. The CLI checks an upload's checksum before completing it,
        so only `spec.source.url.checksum` is verified here."""
        spec = step.obj.spec
        assert spec is not None
        expected = spec.source.url.checksum if spec.source.url is not None else None
        if expected is None:
            return None
        stalled = step.condition("Stalled")
        known_bad = stalled is not None and stalled.status is ConditionStatus.TRUE
        if known_bad and stalled is not None and stalled.reason == CHECKSUM_MISMATCH:
            # Known bad, and spec.source is immutable: no second download, no second event.
            return step.outcome(
                phase="Failed",
                ready=(False, CHECKSUM_MISMATCH, stalled.message),
                stalled=(True, CHECKSUM_MISMATCH, stalled.message),
            )
        try:
            actual = provider.image_sha256(cloud.external_id)
        except Unsupported as exc:
            step.events.append(
                Event(
                    "ChecksumNotVerified",
                    f"spec.source.url.checksum was not verified: {exc.message}",
                    "Warning",
                )
            )
            return None
        if actual == expected:
            step.events.append(
                Event("ChecksumVerified", f"image {cloud.external_id!r} has sha256 {actual}")
            )
            return None
        message = (
            f"{handle.label} imported a file whose sha256 is {actual}, but "
            f"spec.source.url.checksum expects {expected}: the URL served other bytes; fix "
            "the file behind spec.source.url.url or the checksum, then delete and recreate "
            "this Image (spec.source is immutable)"
        )
        step.events.append(Event(CHECKSUM_MISMATCH, message, "Warning"))
        return step.outcome(
            phase="Failed",
            ready=(False, CHECKSUM_MISMATCH, message),
            stalled=(True, CHECKSUM_MISMATCH, message),
        )

    def _progress(
        self, step: _Step, cloud: CloudImage, handle: ProviderHandle, *, updating: bool = False
    ) -> Outcome:
        reason, message = progress.report(step, cloud, handle.label, updating=updating)
        return step.waiting(reason, message, handle.poll_interval, phase=reason)

    def ahead(self, obj: ImageObject, handle: ProviderHandle) -> dict[str, str]:
        """`status.providerType`, before the first pass that can reach the provider (every
        create, copy or adoption needs it): once it is durable, its absence proves that this
        operator never sent anything for the object. Nothing when the annotation
        `imageops.io/provider-type` says the same: the handlers write it with the finalizer."""
        if handle.provider is None or obj.paused or obj.status.get("providerType"):
            return {}
        if obj.annotations.get(ANNOTATION_PROVIDER_TYPE):  # written with the finalizer
            return {}
        return {"providerType": handle.provider.type_name}

    # -- deletion ---------------------------------------------------------------------------
    def finalize(self, obj: ImageObject, handle: ProviderHandle, attempt: int = 0) -> Outcome:
        step = _Step.start(obj, ImageStatus)
        external_id = step.status.external_id
        if obj.spec is not None and not obj.spec.allows(ManagementPolicy.DELETE):
            # Whatever spec.deletionPolicy says: no call to the cloud at all.
            if external_id:
                step.events.append(
                    Event(
                        "Orphaned",
                        f"left cloud image {external_id!r} in place: spec.managementPolicies "
                        "has no Delete",
                    )
                )
            return step.outcome(phase="Deleting", ready=(False, "Deleting", "not ours to delete"))
        early = self.finalize_preamble(
            step,
            handle,
            noun="cloud image",
            # An upload's cloud image is made by `image-operator upload`, not by the operator:
            # the operator's status cannot prove that none was made.
            never_sent=not external_id
            and step.status.provider_type is None
            and not obj.annotations.get(ANNOTATION_PROVIDER_TYPE)
            and obj.spec is not None
            and obj.spec.source.upload is None,
        )
        if early is not None:
            return early
        assert handle.provider is not None
        provider = handle.provider
        if external_id and obj.owned_by:
            step.events.append(
                Event(
                    "NotDeleted",
                    f"cloud image {external_id!r} is managed by Image {obj.owned_by!r} too: "
                    "left in place for it",
                )
            )
            return step.outcome(phase="Deleting", ready=(False, "Deleting", "left to its owner"))
        try:
            if not external_id and obj.spec is not None:
                # A create may have succeeded without its status write: find it, never leak it.
                found = provider.find_image(obj.request())
                external_id = found.external_id if found else None
            return delete_and_wait(
                step,
                handle,
                external_id,
                delete=provider.delete_image,
                describe=provider.get_image,
                noun="cloud image",
                waiting_noun="image",
            )
        except ProviderError as exc:
            doing = f"cannot delete cloud image {external_id!r}"
            return self.delete_failed(step, exc, attempt, doing=doing)


def spec_problem(spec: ImageSpec) -> str | None:
    """What the API server's CEL rules may have let through (e.g. objects stored before a CRD
    upgrade), said in one sentence per field."""
    issues = commandtemplate.validate(
        spec.command or [], spec.inputs or [], spec.outputs or [], spec.configs or []
    )
    return "; ".join(issue.message for issue in issues) or None


def copies_itself(name: str, spec: ImageSpec) -> str | None:
    """Why the spec is a copy of this very Image, if it is: it would wait for itself to be
    Ready, forever, and only a new object (spec.source is immutable) can fix it, so it stalls
    before any cloud call."""
    source = spec.source.image
    if source is None or source.image_ref.name != name:
        return None
    return (
        f"spec.source.image.imageRef names this Image ({name!r}) itself: a copy needs another "
        "Image as its source"
    )


def _candidates(matches: list[ImageMatch]) -> str:
    """The first CANDIDATES_SHOWN matches as "'id' (name 'n')", and how many more there are."""
    shown = ", ".join(
        f"{m.external_id!r} (name {m.name!r})" if m.name else repr(m.external_id)
        for m in matches[:CANDIDATES_SHOWN]
    )
    more = len(matches) - CANDIDATES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def claims(obj: ImageObject, others: list[dict[str, Any]]) -> dict[str, str]:
    """Every cloud image ID another Image of the same provider owns (by `owner`'s rule),
    mapped to that Image's name: what adoption by selector must leave alone."""
    ids = set()
    for other in others:
        ids.add((other.get("status") or {}).get("externalID"))
        ids.add(
            ((other.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_EXTERNAL_ID)
        )
    found = {}
    for external_id in ids - {None, ""}:
        name = owner(obj, str(external_id), others)
        if name is not None:
            found[str(external_id)] = name
    return found


def rival(obj: ImageObject, others: list[dict[str, Any]]) -> str | None:
    """The oldest (then by name) other Image of the same provider, older than `obj`, that
    selects with the same spec.adopt.selector and holds no cloud image yet: it adopts first."""
    assert obj.spec is not None and obj.spec.adopt is not None
    mine = obj.spec.adopt.selector.model_dump(by_alias=True, exclude_none=True, mode="json")
    older = []
    for other in others:
        meta = other.get("metadata") or {}
        spec = other.get("spec") or {}
        if (
            meta.get("uid") == obj.uid
            or meta.get("deletionTimestamp")
            or (spec.get("providerRef") or {}).get("name") != obj.provider_name
            or (other.get("status") or {}).get("externalID")
            or ((spec.get("adopt") or {}).get("selector")) != mine
        ):
            continue
        older.append((str(meta.get("creationTimestamp") or ""), str(meta.get("name"))))
    first = min(older, default=None)
    return first[1] if first is not None and first < (obj.created, obj.name) else None


def owner(
    obj: ImageObject, external_id: str, others: list[dict[str, Any]], *, deleting: bool = False
) -> str | None:
    """Which other Image of the same provider owns `external_id`, if one does: one that holds it
    in `status.externalID` (an adoption or a delete must not take it away), else, for an
    adoption, the first (oldest, then by name) of those claiming it with the adoption
    annotation, so that two Images adopting one cloud image at once agree on who gets it."""
    provider = obj.provider_name
    holders, claimants = [], []
    for other in others:
        meta = other.get("metadata") or {}
        if meta.get("uid") == obj.uid:
            continue
        if ((other.get("spec") or {}).get("providerRef") or {}).get("name") != provider:
            continue
        name = str(meta.get("name"))
        if (other.get("status") or {}).get("externalID") == external_id:
            holders.append(name)
        elif (meta.get("annotations") or {}).get(ANNOTATION_EXTERNAL_ID) == external_id:
            claimants.append((str(meta.get("creationTimestamp") or ""), name))
    if holders or deleting:
        return min(holders, default=None)
    mine = (obj.created, obj.name)
    first = min(claimants, default=None)
    return first[1] if first is not None and first < mine else None
