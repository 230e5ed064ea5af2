"""Pure functions from imageops objects (the dicts the API server returns) to a tree of `Node`s.

- an `ImagePipeline` with its runs, each run's per-region / per-account targets and the Image
  it made (`spec.outputImages`);
- a `CommunityListing` with its Image and its versions in review;
- an `Image` with its copies (Images whose `spec.source.image.imageRef` names it, expanded in
  turn) and what shares it: BaseImages cloned from it (with their tenant permission),
  CommunityListings publishing it, ImagePipelines building on it; and its last drift;
- an `ImageProvider` with the objects that use it; a `BaseImage` with its source Image;
- a namespace with all of them, grouped by kind, each Image once: a copy under its source, a
  pipeline's output under its run.

`now` is a parameter, so that "3m ago" and ETAs are reproducible in tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from image_operator.statusview import times
from image_operator.statusview.health import (
    Health,
    Obj,
    Verdict,
    object_verdict,
    run_health,
    run_over,
    target_health,
    version_health,
)
from image_operator.statusview.kinds import (
    BASEIMAGES,
    IMAGES,
    KINDS,
    LISTINGS,
    ORDER,
    PIPELINES,
    PROVIDERS,
)


@dataclass(frozen=True)
class Node:
    """One line of the tree (with notes under it) and its children. No verdict: a line of
    information rather than something with a state."""

    title: str
    verdict: Verdict | None = None
    facts: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    children: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """The objects read, by plural, and the kinds that could not be read (plural -> why)."""

    objects: Mapping[str, Sequence[Obj]]
    hidden: Mapping[str, str] = field(default_factory=dict)

    def of(self, plural: str, namespace: str) -> list[Obj]:
        items = [o for o in self.objects.get(plural, ()) if _namespace(o) == namespace]
        return sorted(items, key=_name)

    def get(self, plural: str, namespace: str, name: str) -> Obj | None:
        return next((o for o in self.of(plural, namespace) if _name(o) == name), None)

    def namespaces(self) -> list[str]:
        return sorted({_namespace(o) for items in self.objects.values() for o in items})


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _namespace(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace", ""))


def _spec(obj: Obj) -> dict[str, Any]:
    return dict(obj.get("spec") or {})


def _status(obj: Obj) -> dict[str, Any]:
    return dict(obj.get("status") or {})


def _ref(value: object) -> str | None:
    """The name in a `{name: ...}` reference."""
    return str(value["name"]) if isinstance(value, dict) and value.get("name") else None


def _source_image(base: Obj) -> str | None:
    """The Image a BaseImage is cloned from."""
    return _ref((_spec(base).get("source") or {}).get("imageRef"))


def _copy_source(image: Obj) -> str | None:
    return _ref(((_spec(image).get("source") or {}).get("image") or {}).get("imageRef"))


def _facts(*items: str | None) -> tuple[str, ...]:
    return tuple(item for item in items if item)


def _notes(verdict: Verdict, *more: str | None) -> tuple[str, ...]:
    """The deciding condition's message, unless all is well (a Ready message says nothing)."""
    shown = verdict.message if verdict.health is not Health.READY else None
    return _facts(shown, *more)


def _shared_text(members: Any) -> str | None:
    """`status.sharing` in one line: "shared with 123 (Accepted), 456 (Pending)"."""
    if not isinstance(members, list) or not members:
        return None
    said = [f"{m.get('id')} ({m.get('state')})" for m in members if isinstance(m, dict)]
    return "shared with " + ", ".join(said)


class TreeBuilder:
    """Builds the nodes of one namespace's objects from one snapshot."""

    def __init__(self, snapshot: Snapshot, namespace: str, now: datetime) -> None:
        self.snapshot = snapshot
        self.namespace = namespace
        self.now = now

    def _all(self, plural: str) -> list[Obj]:
        return self.snapshot.of(plural, self.namespace)

    def _get(self, plural: str, name: str | None) -> Obj | None:
        return None if name is None else self.snapshot.get(plural, self.namespace, name)

    # -- Image ----------------------------------------------------------------------------
    def image(self, image: Obj, *, seen: frozenset[str] = frozenset()) -> Node:
        """An Image, its copies (each expanded), what shares it, and its last drift."""
        name = _name(image)
        verdict = object_verdict(image)
        status = _status(image)
        seen = seen | {name}
        children = [
            self.image(copy, seen=seen)
            for copy in self._all(IMAGES)
            if _copy_source(copy) == name and _name(copy) not in seen
        ]
        children += [
            self.baseimage(base, compact=True)
            for base in self._all(BASEIMAGES)
            if _source_image(base) == name
        ]
        children += [
            self.listing(listing, compact=True)
            for listing in self._all(LISTINGS)
            if _ref(_spec(listing).get("imageRef")) == name
        ]
        children += [
            self._compact(PIPELINES, pipeline, "builds on it")
            for pipeline in self._all(PIPELINES)
            if _ref((_spec(pipeline).get("baseImage") or {}).get("imageRef")) == name
        ]
        return Node(
            f"Image {name}",
            verdict,
            self._image_facts(image),
            _notes(verdict, self._drift(status)),
            tuple(children),
        )

    def _image_facts(self, image: Obj) -> tuple[str, ...]:
        spec, status = _spec(image), _status(image)
        return _facts(
            f"provider {_ref(spec.get('providerRef'))}",
            _source_text(spec.get("source") or {}, status.get("copiedFrom") or {}),
            f"id {status['externalID']}" if status.get("externalID") else None,
            _shared_text(status.get("sharing")),
        )

    def _drift(self, status: dict[str, Any]) -> str | None:
        drift = status.get("drift")
        if not isinstance(drift, dict):
            return None
        when = times.ago(times.parse(drift.get("detectedAt")), self.now) or "at an unknown time"
        generation = drift.get("generation")
        return f"drift found {when} (generation {generation}): {drift.get('message', '')}"

    # -- ImagePipeline -------------------------------------------------------------------
    def pipeline(self, pipeline: Obj) -> Node:
        """A pipeline with its runs, their targets and their output Images."""
        spec, status = _spec(pipeline), _status(pipeline)
        verdict = object_verdict(pipeline)
        runs = [r for r in status.get("runs") or [] if isinstance(r, dict)]
        kept = {entry.get("name") for entry in status.get("outputImages") or []}
        schedule = spec.get("schedule") or {}
        next_due = times.parse(status.get("nextScheduleTime"))
        return Node(
            f"ImagePipeline {_name(pipeline)}",
            verdict,
            _facts(
                f"provider {_ref(spec.get('providerRef'))}",
                f"template {status['externalID']}" if status.get("externalID") else None,
                f"schedule '{schedule.get('cron')}' ({schedule.get('timeZone', 'UTC')})"
                if schedule
                else None,
                f"next run in {times.span((next_due - self.now).total_seconds())}"
                if next_due and next_due > self.now
                else None,
            ),
            _notes(
                verdict,
                f"trigger {status['pendingTrigger']!r} waits for the running execution"
                if status.get("pendingTrigger")
                else None,
            ),
            tuple(self._run(spec, run, runs, kept) for run in runs),
        )

    def _run(
        self, spec: dict[str, Any], run: dict[str, Any], runs: list[dict[str, Any]], kept: set[Any]
    ) -> Node:
        phase = str(run.get("phase", ""))
        started = times.parse(run.get("startedAt"))
        finished = times.parse(run.get("finishedAt"))
        over = run_over(phase)
        elapsed = times.between(started, finished if over else self.now)
        eta = None if over or elapsed is None else _run_eta(runs, run, elapsed)
        stages = _stages(spec)
        stage = (
            f"stage {stages.index(phase) + 1} of {len(stages)}"
            if not over and phase in stages
            else None
        )
        children = [self._target(target) for target in run.get("targets") or []]
        output = run.get("outputImage")
        if output:
            image = self._get(IMAGES, output)
            if image is not None:
                children.append(self.image(image))
            else:
                gone = "not found" if output in kept else "deleted (spec.outputImages.retention)"
                children.append(Node(f"Image {output}", facts=(gone,)))
        sequence = run.get("sequence")
        took = None
        if elapsed is not None:
            took = f"took {times.span(elapsed)}" if over else f"running for {times.span(elapsed)}"
        return Node(
            f"run {sequence} {run.get('id')}" if sequence else f"run {run.get('id')}",
            Verdict(run_health(phase), phase, eta_seconds=eta),
            _facts(
                stage,
                f"trigger {run['trigger']}" if run.get("trigger") else None,
                f"started {times.ago(started, self.now)}" if started and over else None,
                took,
                f"image {run['imageID']}" if run.get("imageID") else None,
            ),
            _facts(run.get("reason")),
            tuple(children),
        )

    def _target(self, target: dict[str, Any]) -> Node:
        status = str(target.get("status", ""))
        where = (
            f"region {target['regionID']}"
            if target.get("regionID")
            else f"account {target.get('accountID')}"
        )
        return Node(
            where,
            Verdict(target_health(status), status),
            _facts(f"image {target['imageID']}" if target.get("imageID") else None),
            _facts(target.get("message")),
        )

    # -- CommunityListing ----------------------------------------------------------------
    def listing(self, listing: Obj, *, compact: bool = False) -> Node:
        """A listing with its Image and its versions; compact: one line, under its Image."""
        spec, status = _spec(listing), _status(listing)
        verdict = object_verdict(listing)
        versions = [v for v in status.get("versions") or [] if isinstance(v, dict)]
        title = f"CommunityListing {_name(listing)}"
        if compact:
            latest = versions[-1] if versions else None
            return Node(
                title,
                verdict,
                _facts(
                    "publishes it",
                    f"version {latest.get('versionName')} {latest.get('state')}"
                    if latest
                    else None,
                    f"group {status['groupID']}" if status.get("groupID") else None,
                ),
            )
        image_name = _ref(spec.get("imageRef"))
        image = self._get(IMAGES, image_name)
        children = [
            self._compact(IMAGES, image, "published from it")
            if image is not None
            else Node(f"Image {image_name}", facts=("not found",))
        ]
        children += [self._version(version) for version in versions]
        current = spec.get("versionName")
        if current and current not in {v.get("versionName") for v in versions}:
            children.append(
                Node(
                    f"version {current}",
                    Verdict(Health.IN_PROGRESS, "NotSubmitted"),
                    ("spec.versionName",),
                )
            )
        return Node(
            title,
            verdict,
            _facts(
                f"of Image {image_name}",
                f"provider {status['providerName']}" if status.get("providerName") else None,
                f"group {status['groupID']}" if status.get("groupID") else None,
            ),
            _notes(verdict),
            tuple(children),
        )

    def _version(self, version: dict[str, Any]) -> Node:
        state = str(version.get("state", ""))
        submitted = times.parse(version.get("submittedAt"))
        return Node(
            f"version {version.get('versionName')}",
            Verdict(version_health(state), state),
            _facts(
                f"image {version['imageID']}" if version.get("imageID") else None,
                f"submitted {times.ago(submitted, self.now)}" if submitted else None,
            ),
            _facts(version.get("reason")),
        )

    # -- BaseImage, ImageProvider, one-liners --------------------------------------------
    def baseimage(self, base: Obj, *, compact: bool = False) -> Node:
        spec, status = _spec(base), _status(base)
        verdict = object_verdict(base)
        source = spec.get("source") or {}
        image_name = _ref(source.get("imageRef"))
        facts = _facts(
            "cloned from it"
            if compact
            else f"from Image {image_name}"
            if image_name
            else f"from image {source.get('externalID')}",
            f"permission {status['permission']}" if status.get("permission") else None,
            f"id {status['externalID']}" if status.get("externalID") else None,
        )
        image = None if compact else self._get(IMAGES, image_name)
        children = () if image is None else (self._compact(IMAGES, image, "its source"),)
        return Node(f"BaseImage {_name(base)}", verdict, facts, _notes(verdict), children)

    def provider(self, provider: Obj, *, compact: bool = False) -> Node:
        spec, status = _spec(provider), _status(provider)
        verdict = object_verdict(provider)
        probed = times.parse(status.get("lastProbeTime"))
        facts = _facts(
            spec.get("type"),
            spec.get("endpoint"),
            f"probed {times.ago(probed, self.now)}" if probed else None,
        )
        users: list[Node] = []
        if not compact:
            name = _name(provider)
            for plural in (PIPELINES, IMAGES, BASEIMAGES):
                users += [
                    self._compact(plural, obj, "uses it")
                    for obj in self._all(plural)
                    if _ref(_spec(obj).get("providerRef")) == name
                ]
            users += [
                self._compact(LISTINGS, obj, "publishes through it")
                for obj in self._all(LISTINGS)
                if _status(obj).get("providerName") == name
            ]
        return Node(
            f"ImageProvider {_name(provider)}", verdict, facts, _notes(verdict), tuple(users)
        )

    def _compact(self, plural: str, obj: Obj, relation: str) -> Node:
        """Any object on one line: what it is to its parent, and its state."""
        external_id = _status(obj).get("externalID")
        return Node(
            f"{KINDS[plural].kind} {_name(obj)}",
            object_verdict(obj),
            _facts(relation, f"id {external_id}" if external_id else None),
        )

    # -- a whole namespace ---------------------------------------------------------------
    def expanded(self, plural: str, obj: Obj) -> Node:
        """One object's full tree."""
        if plural == IMAGES:
            return self.image(obj)
        if plural == PIPELINES:
            return self.pipeline(obj)
        if plural == LISTINGS:
            return self.listing(obj)
        if plural == BASEIMAGES:
            return self.baseimage(obj)
        return self.provider(obj)

    def grouped(self, kinds: Iterable[str] = ORDER) -> Node:
        """Every object of `kinds` in the namespace, grouped by kind; an Image that shows
        under its source Image or its pipeline's run is not repeated at the top."""
        shown = [plural for plural in ORDER if plural in set(kinds)]
        nested = self._nested_images(shown)
        children: list[Node] = []
        for plural in shown:
            for obj in self._all(plural):
                if plural == IMAGES and _name(obj) in nested:
                    continue
                if plural == PROVIDERS:
                    children.append(self.provider(obj, compact=True))
                elif (
                    plural == BASEIMAGES
                    and IMAGES in shown
                    and self._get(IMAGES, _source_image(obj))
                ):
                    continue  # under its Image
                else:
                    children.append(self.expanded(plural, obj))
        counts = _count(self.snapshot, self.namespace, shown)
        hidden = [f"{p} not shown: {why}" for p, why in sorted(self.snapshot.hidden.items())]
        if not children:
            counts = "no imageops objects" if not hidden else counts
        return Node(
            f"namespace {self.namespace}", None, _facts(counts), tuple(hidden), tuple(children)
        )

    def _nested_images(self, shown: list[str]) -> set[str]:
        """Images that appear inside another object's tree in this view."""
        if IMAGES not in shown:
            return set()
        names = {_name(i) for i in self._all(IMAGES)}
        nested: set[str] = set()
        if PIPELINES in shown:
            for pipeline in self._all(PIPELINES):
                for run in _status(pipeline).get("runs") or []:
                    if isinstance(run, dict) and run.get("outputImage") in names:
                        nested.add(str(run["outputImage"]))
        sources = {_name(i): _copy_source(i) for i in self._all(IMAGES)}
        for name in names:
            # A copy shows under its source if following the sources reaches an Image that
            # is no copy (a root); a cycle of copies has no root to hang from.
            chain, current = {name}, sources.get(name)
            while current in names and current not in chain:
                chain.add(current)
                current = sources.get(current)
            if sources.get(name) in names and current not in names:
                nested.add(name)
        return nested


def _source_text(source: dict[str, Any], copied_from: dict[str, Any]) -> str | None:
    if "repository" in source:
        return f"from repository {source['repository'].get('image')}"
    if "vm" in source:
        return f"from VM {source['vm'].get('vmID')}"
    if "url" in source:
        return f"from URL {source['url'].get('url')}"
    if "upload" in source:
        return "from an upload"
    if "image" in source:
        origin = _ref(source["image"].get("imageRef"))
        where = ", ".join(_facts(copied_from.get("provider"), copied_from.get("externalID")))
        return f"copy of Image {origin}" + (f" ({where})" if where else "")
    if "pipeline" in source:
        made = source["pipeline"]
        return f"built by ImagePipeline {_ref(made.get('pipelineRef'))} run {made.get('runID')}"
    return None


def _stages(spec: dict[str, Any]) -> list[str]:
    """The phases an execution of this template goes through before it is over (seed 004)."""
    stages = ["PREPARING", "BUILDING"]
    if spec.get("testContent"):
        stages.append("TESTING")
    if spec.get("toRegionIDs") or spec.get("addAccounts"):
        stages.append("DISTRIBUTING")
    return stages


def _run_eta(runs: list[dict[str, Any]], run: dict[str, Any], elapsed: float) -> int | None:
    """Seconds left, if the run takes as long as the latest successful one did."""
    for earlier in reversed(runs[: runs.index(run)]):
        if earlier.get("phase") == "SUCCESS":
            took = times.between(
                times.parse(earlier.get("startedAt")), times.parse(earlier.get("finishedAt"))
            )
            if took is not None and took > elapsed:
                return round(took - elapsed)
            return None
    return None


def _count(snapshot: Snapshot, namespace: str, kinds: Sequence[str]) -> str:
    verdicts = [object_verdict(o) for plural in kinds for o in snapshot.of(plural, namespace)]
    if not verdicts:
        return ""
    tally = {health: sum(v.health is health for v in verdicts) for health in Health}
    parts = ", ".join(f"{n} {health.value}" for health, n in tally.items() if n)
    return f"{len(verdicts)} objects: {parts}"
