"""What kstatus reads from every kind in every state (issue 10), on the real API server.

Each (kind, state) is driven on the session's kube-apiserver with the operator process and the
emulator, and read by the kstatus library itself (sigs.k8s.io/cli-utils, built from
`hack/kstatus`): the reading of Flux, Helm 4's `--wait` and every other kstatus-based tool. The
objects of one kind are driven in one thread, the five kinds at once, by the session's one
operator.

How each state is reached:

- just created: made in a namespace the operator does not watch (it watches `it-*`), so it is
  read exactly as the API server serves an object nobody has written a status for.
- in progress: the first version with `Reconciling=True` on an object's way to Ready, read from
  a watch (every version the API server stores, so none is missed however short).
- Ready: that object once `Ready=True` for its generation.
- Stalled: a spec the CRD admits but the operator refuses (named per kind below).
- paused: a second Ready object annotated `imageops.io/paused: "true"`, once `phase: Paused`.
- paused and changed: the first object paused and changed in one patch, once `phase: Paused`.
- deleting: the paused object deleted: its finalizer is held while it is paused.
- handler error: a provider whose endpoint answers what its API never does (a maintenance
  page with status 200; an answer without the ID a call returns), so that the reconciler raises
  where no rule expects it (named per kind below). For ImagePipeline no such answer is known
  (its client maps every malformed one to an error of ours): the handler boundary's outcome is
  computed in this process and written through the status subresource instead.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from image_operator.api.common import ANNOTATION_PAUSED, GROUP, VERSION
from image_operator.reconcilers.managed import Backoff, internal_error
from image_operator.reconcilers.pipeline import PipelineObject
from tests.integration.conftest import (
    TEST_NAMESPACE_PREFIX,
    Emulator,
    Kube,
    OperatorProcess,
    free_port,
    image_manifest,
    provider_image,
)
from tests.integration.test_baseimage import _base_manifest, _vm_image
from tests.integration.test_listing import _listing
from tests.integration.test_pipeline import _pipeline, add_aliyun_provider
from tests.integration.test_provider_compshare import _add_compshare_provider
from tests.integration.test_provider_ucloudstack import _ucloudstack_provider

pytestmark = pytest.mark.integration

PLURALS = {
    "ImageProvider": "imageproviders",
    "Image": "images",
    "BaseImage": "baseimages",
    "ImagePipeline": "imagepipelines",
    "CommunityListing": "communitylistings",
}
KINDS = tuple(PLURALS)
# The table the issue asks for: what kstatus must say of every kind in each state.
EXPECTED = {
    "just created": "InProgress",
    "in progress": "InProgress",
    "Ready": "Current",
    "Stalled": "Failed",
    "paused": "Current",
    "paused and changed": "InProgress",
    "deleting": "Terminating",
    "handler error": "InProgress",
}
# Cases the operator gets wrong today, each with why (strict: fixing one fails until removed).
KNOWN_BUGS: dict[tuple[str, str], str] = {}
# Holds an ImageProvider in deletion: the operator puts no finalizer on providers.
HOLD = "kstatus-test.imageops.io/hold"
SPEC_CHANGE = {"deletionPolicy": "Orphan"}  # a spec change every managed kind accepts


class FaultyCloud:
    """A cloud endpoint that breaks its API in one way, so that a reconciler meets an answer no
    rule of ours expects: with `upstream`, it passes every request on and drops the field `drop`
    from the JSON answers; without, it answers everything with 200 and a maintenance page."""

    def __init__(self, upstream: str | None = None, drop: str = "") -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self) -> None:
                request = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body = 200, b"<html><body>down for maintenance</body></html>"
                if upstream is not None:
                    skipped = ("host", "content-length")
                    response = httpx.request(
                        self.command,
                        upstream + self.path,
                        headers={k: v for k, v in self.headers.items() if k.lower() not in skipped},
                        content=request,
                        timeout=30,
                    )
                    status, body = response.status_code, response.content
                    with contextlib.suppress(ValueError):  # not JSON: passed on as it is
                        answer = json.loads(body)
                        if isinstance(answer, dict) and answer.pop(drop, None) is not None:
                            body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class FaultyClouds:
    maintenance: str  # 200 and a maintenance page, for anything
    ucloudstack: str  # the emulator's ucloudstack, clone answers without DestImageID
    compshare: str  # the emulator's compshare, copy answers without NewCompShareImageId


@dataclass
class Driver:
    """One kind's objects: `kube` is watched by the operator, `fresh` is not."""

    kube: Kube
    fresh: Kube
    emulator: Emulator
    clouds: FaultyClouds
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)


def _cond(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == type_), {})


# Reconciling reasons that wait on something else, not on the object's own work in the cloud.
NOT_IN_FLIGHT = {"InternalError", "WaitingForImage", "WaitingForProvider"}


def _reconciling(obj: dict[str, Any]) -> bool:
    cond = _cond(obj, "Reconciling")
    return cond.get("status") == "True" and cond.get("reason") not in NOT_IN_FLIGHT


def _ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    current = status.get("observedGeneration") == obj["metadata"]["generation"]
    return current and _cond(obj, "Ready").get("status") == "True"


def _stalled(obj: dict[str, Any]) -> bool:
    return _cond(obj, "Stalled").get("status") == "True"


def _paused(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("phase") == "Paused"


def _internal_error(obj: dict[str, Any]) -> bool:
    return _cond(obj, "Reconciling").get("reason") == "InternalError"


def _deleting(obj: dict[str, Any]) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def _first(
    kube: Kube,
    plural: str,
    name: str,
    holds: Callable[[dict[str, Any]], bool],
    what: str,
    *,
    since: str | None = None,
    timeout: int = 90,
) -> dict[str, Any]:
    """The first version of the object for which `holds`: the current one, or (from `since`, a
    resourceVersion, every version after it) the next ones as a watch delivers them."""
    if since is None:
        current = kube.get(plural, name)
        assert current is not None, f"{plural}/{name} does not exist"
        if holds(current):
            return current
        since = current["metadata"]["resourceVersion"]
    stream = watch.Watch()  # type: ignore[no-untyped-call]
    last: dict[str, Any] | None = None
    for event in stream.stream(  # type: ignore[no-untyped-call]
        kube.custom.list_namespaced_custom_object,
        GROUP,
        VERSION,
        kube.namespace,
        plural,
        field_selector=f"metadata.name={name}",
        resource_version=since,
        timeout_seconds=timeout,
    ):
        last = event["object"]
        assert event["type"] != "ERROR", f"watch of {plural}/{name} failed: {last}"
        if holds(last):
            stream.stop()  # type: ignore[no-untyped-call]
            return last
    raise AssertionError(f"{plural}/{name}: no {what} within {timeout}s; last seen: {last!r}")


def _create(kube: Kube, plural: str, body: dict[str, Any]) -> str:
    """Create the object; the resourceVersion to watch it from."""
    return str(kube.create(plural, body)["metadata"]["resourceVersion"])


def _just_created(d: Driver, plural: str, body: dict[str, Any]) -> None:
    """The object in the unwatched namespace, as the API server serves it."""
    name = body["metadata"]["name"]
    d.fresh.create(plural, body)
    d.seen["just created"] = d.fresh.get(plural, name) or {}


def _managed_states(d: Driver, plural: str, since: str, broken_since: str | None) -> None:
    """Every state but "just created" of a managed kind, from its objects: `changed` (created
    at `since`): in progress, Ready, then paused and changed in one patch; `held`: Ready, then
    paused, then deleted (its finalizer waits while it is paused); `stalled`; and `broken`
    (created at `broken_since`; None when the caller reads its handler error otherwise)."""
    d.seen["in progress"] = _first(
        d.kube, plural, "changed", _reconciling, "Reconciling=True", since=since
    )
    d.seen["Ready"] = _first(d.kube, plural, "changed", _ready, "Ready for its generation")
    paused = {"metadata": {"annotations": {ANNOTATION_PAUSED: "true"}}}
    d.kube.patch(plural, "changed", {**paused, "spec": SPEC_CHANGE})
    d.seen["paused and changed"] = _first(d.kube, plural, "changed", _paused, "phase Paused")
    d.seen["Stalled"] = _first(d.kube, plural, "stalled", _stalled, "Stalled=True")
    _first(d.kube, plural, "held", _ready, "Ready for its generation")
    d.kube.patch(plural, "held", paused)
    d.seen["paused"] = _first(d.kube, plural, "held", _paused, "phase Paused")
    d.kube.delete(plural, "held")
    d.seen["deleting"] = _first(d.kube, plural, "held", _deleting, "a deletionTimestamp")
    if broken_since is not None:
        d.seen["handler error"] = _first(
            d.kube, plural, "broken", _internal_error, "InternalError", since=broken_since
        )


# kopf's own records, where handlers/setup.py keeps them (`status.kopf`): the digest of the
# last handled spec and annotations, and each handler's progress (retries after a failure). For an
# ImageProvider, which has no paused phase and no handler boundary, they are what shows that the
# operator has handled a change, or failed to.
def _kopf_status(obj: dict[str, Any]) -> dict[str, Any]:
    return dict((obj.get("status") or {}).get("kopf") or {})


def _handled_after(before: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """Holds once kopf has handled a change made after `before` (its diff base moved)."""
    digest = _kopf_status(before).get("diffbase")
    return lambda obj: _kopf_status(obj).get("diffbase") not in (None, digest)


def _handler_failed(obj: dict[str, Any]) -> bool:
    """Holds once kopf has recorded a retry of a handler that raised."""
    for progress in (_kopf_status(obj).get("progress") or {}).values():
        if progress.get("retries", 0) >= 1 and not progress.get("success"):
            return True
    return False


def _provider(name: str, type_: str, endpoint: str, secret: str, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "ImageProvider",
        "metadata": {"name": name},
        "spec": {
            "type": type_,
            "endpoint": endpoint,
            "credentialsSecretRef": {"name": secret},
            "pollIntervalSeconds": 1,
            **spec,
        },
    }


def _secret(kube: Kube, name: str, **data: str) -> None:
    kube.core.create_namespaced_secret(
        kube.namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data),
    )


def _argon(name: str, endpoint: str, secret: str = "argon-credentials") -> dict[str, Any]:
    return _provider(name, "argon", endpoint, secret, project="default")


def _image_providers(d: Driver) -> None:
    """Stalled: a Secret without the `token` key argon needs. In progress: an endpoint nobody
    listens on (the probe is retried: Reconciling/CloudUnavailable). Handler error: an endpoint
    answering 200 with a body that is not JSON; the argon client raises on it, and the
    ImageProvider handler has no boundary that would write a status (so none is written).
    Deleting: held by a finalizer of the test's own (the operator puts none on providers)."""
    argon = d.emulator.argon_url
    _just_created(d, "imageproviders", _argon("fresh", argon))
    _secret(d.kube, "no-token", tokn="x")
    _create(d.kube, "imageproviders", _argon("stalled", argon, secret="no-token"))
    _create(d.kube, "imageproviders", _argon("unreachable", f"http://127.0.0.1:{free_port()}"))
    _create(d.kube, "imageproviders", _argon("not-json", d.clouds.maintenance))
    held = _argon("held", argon)
    held["metadata"]["finalizers"] = [HOLD]
    _create(d.kube, "imageproviders", held)
    _create(d.kube, "imageproviders", _argon("changed", argon))

    d.seen["in progress"] = _first(
        d.kube, "imageproviders", "unreachable", _reconciling, "Reconciling=True"
    )
    d.seen["Ready"] = _first(d.kube, "imageproviders", "changed", _ready, "Ready")
    d.kube.patch(
        "imageproviders",
        "changed",
        {
            "metadata": {"annotations": {ANNOTATION_PAUSED: "true"}},
            "spec": {"pollIntervalSeconds": 2},
        },
    )
    d.seen["paused and changed"] = _first(
        d.kube,
        "imageproviders",
        "changed",
        lambda obj: _paused(obj) or (obj.get("status") or {}).get("observedGeneration") == 2,
        "phase Paused or generation 2 observed",
    )
    d.seen["Stalled"] = _first(d.kube, "imageproviders", "stalled", _stalled, "Stalled=True")
    handled = _handled_after(_first(d.kube, "imageproviders", "held", _ready, "Ready"))
    d.kube.patch(
        "imageproviders", "held", {"metadata": {"annotations": {ANNOTATION_PAUSED: "true"}}}
    )
    d.seen["paused"] = _first(
        d.kube, "imageproviders", "held", handled, "the annotation handled by the operator"
    )
    d.kube.delete("imageproviders", "held")
    d.seen["deleting"] = _first(d.kube, "imageproviders", "held", _deleting, "deletionTimestamp")
    d.seen["handler error"] = _first(
        d.kube, "imageproviders", "not-json", _handler_failed, "a failed handler recorded by kopf"
    )


def _images(d: Driver) -> None:
    """Stalled: an argon Image from a VM (argon makes images from repositories only:
    Unsupported). Handler error: an argon provider answering 200 with a body that is not JSON
    (the argon client raises a JSONDecodeError, caught at the handler boundary)."""
    _just_created(d, "images", image_manifest("fresh"))
    _create(d.kube, "images", image_manifest("stalled", source={"vm": {"vmID": "vm-1"}}))
    _create(d.kube, "imageproviders", _argon("argon-not-json", d.clouds.maintenance))
    broken = image_manifest("broken", providerRef={"name": "argon-not-json"})
    broken_since = _create(d.kube, "images", broken)
    _create(d.kube, "images", image_manifest("held"))
    since = _create(d.kube, "images", image_manifest("changed"))
    _managed_states(d, "images", since, broken_since)


def _base_images(d: Driver) -> None:
    """Stalled: a BaseImage on the argon provider (only ucloudstack clones: Unsupported).
    Handler error: a ucloudstack provider whose clone answers lack `DestImageID`; the client
    raises a KeyError (the retry then finds the clone by name and goes on)."""
    _just_created(d, "baseimages", _base_manifest("fresh", {"externalID": "img-x"}, name="fresh"))
    _ucloudstack_provider(d.kube, d.emulator)
    faulty = _provider(
        "ucloudstack-faulty", "ucloudstack", d.clouds.ucloudstack, "ucloudstack-keys", region="cn"
    )
    _create(d.kube, "imageproviders", faulty)
    stalled = _base_manifest("stalled", {"externalID": "img-x"}, name="stalled")
    stalled["spec"]["providerRef"] = {"name": "argon"}
    _create(d.kube, "baseimages", stalled)
    _create(d.kube, "baseimages", _base_manifest("held", {"imageRef": {"name": "web"}}, name="h"))
    since = _create(
        d.kube, "baseimages", _base_manifest("changed", {"imageRef": {"name": "web"}}, name="c")
    )
    source = _vm_image(d.kube, "web")
    broken = _base_manifest("broken", {"externalID": source}, name="broken")
    broken["spec"]["providerRef"] = {"name": "ucloudstack-faulty"}
    broken_since = _create(d.kube, "baseimages", broken)
    _managed_states(d, "baseimages", since, broken_since)


def _pipelines(d: Driver) -> None:
    """Stalled: a schedule that never fires ('0 0 31 2 *'). Handler error: not reachable on
    the real server (the aliyun client maps every malformed answer to an error of ours, and
    nothing before the step raises on a spec the CRD admits); see _handler_error_in_process."""
    _just_created(d, "imagepipelines", _pipeline("fresh"))
    add_aliyun_provider(d.kube, d.emulator)
    never = {"cron": "0 0 31 2 *", "timeZone": "UTC"}
    _create(d.kube, "imagepipelines", _pipeline("stalled", toRegionIDs=None, schedule=never))
    _create(d.kube, "imagepipelines", _pipeline("held", toRegionIDs=None))
    since = _create(d.kube, "imagepipelines", _pipeline("changed", toRegionIDs=None))
    _managed_states(d, "imagepipelines", since, None)
    d.seen["handler error"] = _pipeline_handler_error(d.fresh)


def _pipeline_handler_error(fresh: Kube) -> dict[str, Any]:
    """What the handler boundary (`kinds.run`) writes when a first reconcile raises, computed
    here from an ImagePipeline as the API server serves it and written through the status
    subresource, in the namespace the operator does not watch (nothing overwrites it)."""
    plural, name = "imagepipelines", "broken"
    created = fresh.create(plural, _pipeline(name))
    meta = created["metadata"]
    obj = PipelineObject(
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta["uid"],
        generation=int(meta["generation"]),
        annotations={},
        spec=None,
        status=created.get("status") or {},
    )
    outcome = internal_error(obj, RuntimeError("raised in a step"), 0, Backoff())
    fresh.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, fresh.namespace, plural, name, {"status": outcome.status}
    )
    return fresh.get(plural, name) or {}


def _listings(d: Driver) -> None:
    """Stalled: a listing of an argon Image (only compshare images are published:
    Unsupported). Handler error: an Image of a compshare provider whose copy answers lack
    `NewCompShareImageId`; the listing's copy raises a KeyError (the retry then finds the copy
    by name and goes on)."""
    _just_created(d, "communitylistings", _listing("fresh"))
    instance = _add_compshare_provider(d.kube, d.emulator)
    compshare = (d.kube.get("imageproviders", "compshare") or {})["spec"]
    faulty = _provider(
        "compshare-faulty",
        "compshare",
        d.clouds.compshare,
        "compshare-keys",
        region=compshare["region"],
        zone=compshare["zone"],
    )
    _create(d.kube, "imageproviders", faulty)
    _create(d.kube, "images", image_manifest("argon-img"))
    _create(d.kube, "communitylistings", _listing("stalled", imageRef={"name": "argon-img"}))
    for name, provider in (("ai-env", "compshare"), ("faulty-src", "compshare-faulty")):
        _create(d.kube, "images", provider_image(name, provider, {"vm": {"vmID": instance}}))
    _create(d.kube, "communitylistings", _listing("held"))
    since = _create(d.kube, "communitylistings", _listing("changed"))
    broken = _listing("broken", imageRef={"name": "faulty-src"})
    broken_since = _create(d.kube, "communitylistings", broken)
    _managed_states(d, "communitylistings", since, broken_since)


DRIVERS: dict[str, Callable[[Driver], None]] = {
    "ImageProvider": _image_providers,
    "Image": _images,
    "BaseImage": _base_images,
    "ImagePipeline": _pipelines,
    "CommunityListing": _listings,
}


@dataclass(frozen=True)
class Reading:
    """What kstatus said of one object, and the object it said it of."""

    status: str
    message: str
    obj: dict[str, Any]


@dataclass
class Table:
    readings: dict[tuple[str, str], Reading]
    failures: dict[str, str]  # kind -> why its states could not all be driven


def kstatus(cli: str, objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(status, message) of each object, from the kstatus library (hack/kstatus)."""
    result = subprocess.run(
        [cli], input=json.dumps(objects), capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return [(str(line["status"]), str(line["message"])) for line in lines]


@pytest.fixture(scope="module")
def faulty_clouds(emulator: Emulator) -> Iterator[FaultyClouds]:
    clouds = [
        FaultyCloud(),
        FaultyCloud(emulator.thread.url("ucloudstack"), drop="DestImageID"),
        FaultyCloud(emulator.thread.url("compshare"), drop="NewCompShareImageId"),
    ]
    try:
        yield FaultyClouds(*(cloud.url for cloud in clouds))
    finally:
        for cloud in clouds:
            cloud.close()


@pytest.fixture(scope="module")
def table(
    control_plane: Any,
    emulator: Emulator,
    operator: OperatorProcess,
    kstatus_cli: str,
    faulty_clouds: FaultyClouds,
) -> Iterator[Table]:
    """Every kind driven through every state (a thread per kind), read by kstatus."""
    suffix = uuid.uuid4().hex[:6]
    watched = f"{TEST_NAMESPACE_PREFIX}kstatus-{suffix}"
    unwatched = f"kstatus-{suffix}"  # outside the operator's `it-*`
    api = control_plane.api_client()
    clients: list[Any] = [api]  # closed at the end
    for namespace in (watched, unwatched):
        client.CoreV1Api(api).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
        )
    setup = Kube(api, watched)
    setup.add_argon_provider(emulator)
    setup.wait_ready("imageproviders", "argon")
    drivers: dict[str, Driver] = {}
    for kind in KINDS:  # a client per thread
        own = control_plane.api_client()
        clients.append(own)
        drivers[kind] = Driver(Kube(own, watched), Kube(own, unwatched), emulator, faulty_clouds)
    failures: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=len(KINDS)) as pool:
        running = {kind: pool.submit(DRIVERS[kind], drivers[kind]) for kind in KINDS}
        for kind, future in running.items():
            error = future.exception()
            if error is not None:
                failures[kind] = f"{type(error).__name__}: {error}"
    cells = [(kind, state) for kind in KINDS for state in drivers[kind].seen]
    objects = [drivers[kind].seen[state] for kind, state in cells]
    readings = {
        cell: Reading(status, message, obj)
        for cell, (status, message), obj in zip(
            cells, kstatus(kstatus_cli, objects), objects, strict=True
        )
    }
    try:
        yield Table(readings, failures)
    finally:
        for namespace in (watched, unwatched):
            _remove_everything(Kube(api, namespace))
        for each in clients:
            each.close()


def _remove_everything(kube: Kube) -> None:
    """Delete every object of ours in the namespace, finalizers and all: there is no
    namespace controller here, and paused or broken objects would otherwise keep the operator
    busy for the rest of the session."""
    for plural in PLURALS.values():
        listed = kube.custom.list_namespaced_custom_object(GROUP, VERSION, kube.namespace, plural)
        for item in cast(dict[str, Any], listed)["items"]:
            name = item["metadata"]["name"]
            with contextlib.suppress(ApiException):  # gone already
                kube.delete(plural, name)
                kube.patch(plural, name, {"metadata": {"finalizers": None}})


CASES = [
    pytest.param(
        kind,
        state,
        id=f"{kind}-{state.replace(' ', '-')}",
        marks=[pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[kind, state])]
        if (kind, state) in KNOWN_BUGS
        else [],
    )
    for kind in KINDS
    for state in EXPECTED
]


@pytest.mark.parametrize(("kind", "state"), CASES)
def test_kstatus_reads_each_kind_in_each_state(
    table: Table, operator: OperatorProcess, kind: str, state: str
) -> None:
    reading = table.readings.get((kind, state))
    if reading is None:
        pytest.fail(f"{kind} never reached {state!r}: {table.failures.get(kind, '?')}")
    assert reading.status == EXPECTED[state], (
        f"kstatus reads {kind} {state} as {reading.status} ({reading.message}); "
        f"generation {reading.obj['metadata'].get('generation')}, "
        f"status {json.dumps(reading.obj.get('status'))}"
    )


def test_an_object_nobody_has_written_reads_generation_minus_one(table: Table) -> None:
    # The CRDs' structural defaults, applied by the API server on every read.
    for kind in KINDS:
        reading = table.readings.get((kind, "just created"))
        assert reading is not None, table.failures.get(kind)
        assert reading.obj["status"] == {"observedGeneration": -1}, kind
        assert reading.obj["metadata"]["generation"] == 1
        assert "latest observed generation is -1" in reading.message
