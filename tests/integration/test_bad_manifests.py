"""The bad-manifest corpus (`bad_manifests.py`) against the real API server, the operator
process and an emulator of its own (so that every cloud object it holds is this test's).

Per case, exactly one of: refused at admission (422/400) with the field named; accepted and
then `Stalled=True` with the field named (or, for a reference to an object that may yet come,
`Reconciling/Waiting…` naming it); for the largest valid objects, Ready. A case with a known gap
must still show the outcome its gap records. For the whole run: no bad case makes a cloud
object, no traceback in the operator's log, the operator still runs.

Efficient on purpose: every case is first judged by a server-side dry run (nothing stored);
only those the API server accepts are created, all at once, and watched in one polling loop.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from image_operator.api.common import ANNOTATION_PAUSED, GROUP, VERSION
from image_operator_dev.emulator.config import ArgonSettings, CompShareSettings, EmulatorConfig
from image_operator_dev.emulator.server import EmulatorThread
from tests.integration.bad_manifest_bases import (
    ALIYUN,
    ALIYUN_PUBLIC_IMAGE,
    ARGON,
    COMPSHARE,
    CONTAINER_INSTANCE,
    COVER_B64,
    COVER_KEY,
    EMULATOR,
    FX_ARGON,
    FX_BASE,
    FX_CONTAINER,
    FX_COVER_SECRET,
    FX_COVERS,
    FX_LONG,
    FX_UCS,
    FX_VM,
    IMMUTABLE_BASES,
    KINDS,
    PLURALS,
    REPOSITORY_SOURCE,
    SECRETS,
    UCLOUDSTACK,
    UCS_VM,
    VM_INSTANCE,
    Body,
    baseimage_spec,
    image_spec,
    listing_spec,
    manifest,
    pipeline_spec,
    provider_spec,
)
from tests.integration.bad_manifest_cases import BAD, LIMIT, VENDORS
from tests.integration.bad_manifests import CATEGORIES, Case, corpus
from tests.integration.conftest import (
    ARGON_TOKEN,
    TEST_NAMESPACE_PREFIX,
    OperatorProcess,
    _object,
    wait_for,
)

pytestmark = pytest.mark.integration

CASES = corpus()
KEYS = {
    ARGON: {"token": ARGON_TOKEN},
    COMPSHARE: {"publicKey": "corpus-compshare-pk", "privateKey": "corpus-compshare-sk"},
    UCLOUDSTACK: {
        "publicKey": "corpus-ucloudstack-pk",
        "privateKey": "corpus-ucloudstack-sk",
        "companyID": "200000236",
    },
    ALIYUN: {"accessKeyId": "corpus-aliyun-key", "accessKeySecret": "corpus-aliyun-secret"},
}
# How long accepted cases may take to settle (Stalled, Ready or waiting for a reference).
SETTLE_SECONDS = 60.0


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorThread]:
    """An emulator for this module alone: what it holds was made by this module's objects."""
    config = EmulatorConfig(
        state_dir=tmp_path_factory.mktemp("corpus-emulator"),
        argon=ArgonSettings(tokens=[ARGON_TOKEN], creation_seconds=1.0, deletion_seconds=0.5),
        compshare=CompShareSettings(
            enabled=True,
            keys={KEYS[COMPSHARE]["publicKey"]: KEYS[COMPSHARE]["privateKey"]},
            making_seconds=1.0,
            review_seconds=1.0,
        ),
        ucloudstack={
            "enabled": True,
            "accounts": [
                {
                    "public_key": KEYS[UCLOUDSTACK]["publicKey"],
                    "private_key": KEYS[UCLOUDSTACK]["privateKey"],
                }
            ],
            "making_seconds": 1.0,
            "clone_seconds": 1.0,
        },
        aliyun={
            "enabled": True,
            "access_keys": {KEYS[ALIYUN]["accessKeyId"]: KEYS[ALIYUN]["accessKeySecret"]},
            "building_seconds": 1.0,
            "distributing_seconds": 1.0,
        },
    )
    with EmulatorThread(config) as thread:
        yield thread


# --- the cloud's objects --------------------------------------------------------------------

# The fields that identify an object in the emulator's state dumps, per vendor.
_IDS = ("ImageId", "CompShareImageId", "ImageID", "ImagePipelineId", "ExecutionId", "GroupId")


def cloud_objects(cloud: EmulatorThread) -> dict[str, str]:
    """identity -> the object as JSON, for every object every vendor holds."""
    found: dict[str, str] = {}
    for vendor in VENDORS:
        state = httpx.get(cloud.url(vendor) + "/_emulator/state", timeout=30).json()
        _collect(vendor, state, found)
    return found


def _collect(where: str, node: Any, found: dict[str, str], *, nested: bool = False) -> None:
    """Objects are the items of the state's lists, and the items with an ID of their lists (a
    listing group's versions); other lists in an object (an image's inputs) are its fields."""
    if isinstance(node, list):
        for item in node:
            if not isinstance(item, dict):
                continue
            ident = next((f"{k}={item[k]}" for k in _IDS if item.get(k)), None)
            if ident is None and nested:
                continue
            if ident is None and item.get("name"):
                ident = f"name={item['name']}"
            key = f"{where}:{ident or json.dumps(item, sort_keys=True)}"
            found[key] = json.dumps(item, ensure_ascii=False)
            for name, value in item.items():
                if isinstance(value, list):
                    _collect(f"{key}.{name}", value, found, nested=True)
    elif isinstance(node, dict):
        for name, value in node.items():
            if isinstance(value, list | dict):
                _collect(f"{where}.{name}", value, found, nested=nested)


def requests_made(cloud: EmulatorThread) -> dict[str, int]:
    return {
        vendor: int(httpx.get(cloud.url(vendor) + "/_emulator/stats", timeout=30).json()["total"])
        for vendor in VENDORS
    }


# --- applying cases -------------------------------------------------------------------------


@dataclass
class Observed:
    outcome: str
    detail: str = ""
    created: list[str] = field(default_factory=list)


@dataclass
class Run:
    namespace: str
    observed: dict[str, Observed]
    unattributed: list[str]
    requests: dict[str, int]
    tracebacks: list[str]
    alive: bool
    seconds: dict[str, float]


def _on_emulator(value: Any, urls: dict[str, str]) -> Any:
    """`value` with every EMULATOR placeholder endpoint pointed at this module's emulator: the
    placeholder alone or followed by a path (a value grown past its maximum length stays as
    it is, so that it is still too long)."""
    if isinstance(value, str):
        for vendor, url in urls.items():
            placeholder = EMULATOR + vendor
            if value == placeholder or value.startswith(placeholder + "/"):
                return url + value.removeprefix(placeholder)
        return value
    if isinstance(value, dict):
        return {key: _on_emulator(item, urls) for key, item in value.items()}
    if isinstance(value, list):
        return [_on_emulator(item, urls) for item in value]
    return value


class Cluster:
    def __init__(self, api: client.ApiClient, namespace: str, urls: dict[str, str]) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.urls = urls

    def create(self, body: Body, *, dry_run: bool = False) -> dict[str, Any]:
        body = _on_emulator(body, self.urls)
        return _object(
            self.custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURALS[body["kind"]],
                body,
                field_validation="Strict",
                dry_run="All" if dry_run else None,
            )
        )

    def patch_dry_run(self, kind: str, name: str, patch: Body) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            PLURALS[kind],
            name,
            patch,
            dry_run="All",
            field_validation="Strict",
        )

    def items(self, kind: str) -> dict[str, dict[str, Any]]:
        listed = _object(
            self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURALS[kind])
        )
        return {item["metadata"]["name"]: item for item in listed["items"]}

    def ready(self, kind: str, name: str) -> bool:
        body = self.items(kind).get(name) or {}
        return _true(body, "Ready") is not None


def _true(body: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (body.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return dict(cond)
    return None


def _refusal(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "")["message"])
    except (TypeError, ValueError, KeyError):
        return str(exc.body or exc.reason)


def admission(cluster: Cluster, case: Case) -> Observed | None:
    """The API server's answer to a dry run of `case`: an outcome if it refused, None if it
    accepted (for a change of an immutable field: `admitted`)."""
    try:
        if case.patch:
            cluster.patch_dry_run(case.kind, IMMUTABLE_BASES[case.kind], case.body)
            return Observed("admitted", "the change was accepted")
        cluster.create(case.body, dry_run=True)
    except ApiException as exc:
        message = _refusal(exc)
        if exc.status not in (400, 422):
            return Observed(f"refused-{exc.status}", message[:300])
        named = case.field in message
        return Observed("refused" if named else "refused-unnamed", message[:300])
    return None


def outcome(case: Case, body: dict[str, Any] | None) -> tuple[str, bool, str]:
    """(outcome word, whether the status is of the current generation, detail) of a created
    case's object as it is now."""
    if body is None:
        return "gone", True, ""
    status = body.get("status") or {}
    current = status.get("observedGeneration") == body["metadata"].get("generation")
    if not status.get("conditions"):
        return "no-status", current, json.dumps(status)[:300]
    stalled, ready = _true(body, "Stalled"), _true(body, "Ready")
    reconciling = _true(body, "Reconciling")
    if stalled is not None:
        named = bool(case.field) and case.field in stalled["message"]
        word = "stalled" if named else "stalled-unnamed"
        return f"{word}:{stalled['reason']}", current, stalled["message"][:300]
    if ready is not None:
        return "ready", current, ready.get("message", "")[:300]
    if reconciling is not None:
        reason, message = reconciling["reason"], reconciling["message"]
        waiting = reason.startswith("Waiting")
        word = "waiting" if waiting and case.field in message else "reconciling"
        return f"{word}:{reason}", current, message[:300]
    conds = (status.get("conditions") or [{}])[0]
    return f"not-ready:{conds.get('reason')}", current, str(conds.get("message"))[:300]


def settled(case: Case, word: str, current: bool) -> bool:
    """Whether `word` is where the case stays: Stalled, Ready or waiting for a reference (for
    the current generation), or the outcome its known gap records."""
    return (current and word.startswith(("stalled", "ready", "waiting"))) or (
        case.gap is not None and word == case.gap.seen.removesuffix("+created")
    )


def good(case: Case, word: str) -> bool:
    if case.expect == LIMIT:
        return word == "ready"
    return (
        word == "refused"
        or word.startswith("stalled:")
        or (case.may_wait and word.startswith("waiting:"))
    )


# --- setting up what the cases refer to -----------------------------------------------------


def _secret(cluster: Cluster, name: str, data: dict[str, str]) -> None:
    cluster.core.create_namespaced_secret(
        cluster.namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data),
    )


def set_up(cluster: Cluster) -> None:
    """Providers, Ready Images of each kind the cases refer to, a BaseImage, the cover in a
    ConfigMap and a Secret, and the paused objects the immutable-field cases change."""
    for vendor in VENDORS:
        _secret(cluster, SECRETS[vendor], KEYS[vendor])
        cluster.create(manifest("ImageProvider", vendor, provider_spec(vendor)))
    cluster.core.create_namespaced_config_map(
        cluster.namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=FX_COVERS),
            binary_data={COVER_KEY: COVER_B64},
        ),
    )
    _secret(cluster, FX_COVER_SECRET, {COVER_KEY: COVER_B64})
    vm = {"vm": {"vmID": UCS_VM}}
    for name, source, provider in (
        (FX_ARGON, REPOSITORY_SOURCE, ARGON),
        (FX_CONTAINER, {"vm": {"vmID": CONTAINER_INSTANCE}}, COMPSHARE),
        (FX_VM, {"vm": {"vmID": VM_INSTANCE}}, COMPSHARE),
        (FX_UCS, vm, UCLOUDSTACK),
        (FX_LONG, vm, UCLOUDSTACK),
    ):
        cluster.create(manifest("Image", name, image_spec(source, provider)))
    cluster.create(manifest("BaseImage", FX_BASE, baseimage_spec({"imageRef": {"name": FX_UCS}})))
    paused = {"annotations": {ANNOTATION_PAUSED: "true"}}
    orphan = {"deletionPolicy": "Orphan"}
    for body in (
        manifest(
            "Image", IMMUTABLE_BASES["Image"], image_spec(REPOSITORY_SOURCE) | orphan, **paused
        ),
        manifest(
            "BaseImage",
            IMMUTABLE_BASES["BaseImage"],
            baseimage_spec({"imageRef": {"name": FX_UCS}}) | orphan,
            **paused,
        ),
        manifest(
            "ImagePipeline",
            IMMUTABLE_BASES["ImagePipeline"],
            pipeline_spec({"id": ALIYUN_PUBLIC_IMAGE}) | orphan,
            **paused,
        ),
        manifest(
            "CommunityListing",
            IMMUTABLE_BASES["CommunityListing"],
            listing_spec({"inline": COVER_B64}) | orphan,
            **paused,
        ),
        manifest("ImageProvider", IMMUTABLE_BASES["ImageProvider"], provider_spec(ARGON)),
    ):
        cluster.create(body)
    needed = [("ImageProvider", vendor) for vendor in VENDORS] + [
        ("Image", name) for name in (FX_ARGON, FX_CONTAINER, FX_VM, FX_UCS, FX_LONG)
    ]
    needed.append(("BaseImage", FX_BASE))

    def unready() -> list[str]:
        found = []
        for kind, name in needed:
            body = cluster.items(kind).get(name) or {}
            if _true(body, "Ready") is None:
                conditions = (body.get("status") or {}).get("conditions")
                found.append(f"{kind} {name}: {conditions}")
        return found

    deadline = time.monotonic() + 120
    while left := unready():
        assert time.monotonic() < deadline, "not Ready after 120 s:\n" + "\n".join(left)
        time.sleep(0.5)


def tear_down(cluster: Cluster) -> None:
    """Delete every object of the namespace, without waiting for the operator to delete the
    cloud side (this module's emulator goes with the module), so that none is left calling
    the emulator once it has stopped: deleted, then released from the finalizer."""
    for kind in KINDS:
        for name in cluster.items(kind):
            for call, args in (
                (cluster.custom.delete_namespaced_custom_object, ()),
                (
                    cluster.custom.patch_namespaced_custom_object,
                    ({"metadata": {"finalizers": None}},),
                ),
            ):
                try:
                    call(GROUP, VERSION, cluster.namespace, PLURALS[kind], name, *args)
                except ApiException as exc:
                    if exc.status != 404:
                        raise
    wait_for(
        lambda: not any(cluster.items(kind) for kind in KINDS),
        timeout=30,
        what="the corpus's objects to be gone",
    )


def _log_since(operator: OperatorProcess, offset: int) -> str:
    with operator.log_path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


def _tracebacks(log: str) -> list[str]:
    """The log records (a timestamped line and those that follow it) that hold a traceback."""
    records: list[list[str]] = []
    for line in log.splitlines():
        if line.startswith("[") or not records:
            records.append([line])
        else:
            records[-1].append(line)
    return ["\n".join(r) for r in records if any(x.startswith("Traceback (") for x in r)]


@pytest.fixture(scope="module")
def run(control_plane: Any, operator: OperatorProcess, cloud: EmulatorThread) -> Iterator[Run]:
    api = control_plane.api_client()
    namespace = f"{TEST_NAMESPACE_PREFIX}corpus-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
    )
    cluster = Cluster(api, namespace, {vendor: cloud.url(vendor) for vendor in VENDORS})
    seconds: dict[str, float] = {}
    started = time.monotonic()
    set_up(cluster)
    seconds["set up"] = time.monotonic() - started
    log_offset = operator.log_path.stat().st_size
    before, calls_before = cloud_objects(cloud), requests_made(cloud)

    started = time.monotonic()
    observed: dict[str, Observed] = {}
    live: list[Case] = []
    for case in CASES:
        answer = admission(cluster, case)
        if answer is None:
            live.append(case)
        else:
            observed[case.name] = answer
    seconds["dry runs"] = time.monotonic() - started

    started = time.monotonic()
    for case in live:
        cluster.create(case.body)
    states = settle(cluster, live)
    seconds["accepted cases"] = time.monotonic() - started
    observed.update(states)

    after = cloud_objects(cloud)
    calls_after = requests_made(cloud)
    unattributed = attribute(
        cluster, live, observed, {k: after[k] for k in after if k not in before}
    )
    report = os.environ.get("IMAGE_OPERATOR_CORPUS_REPORT")
    if report:  # every case's outcome, for whoever updates bad_manifest_gaps.py
        outcomes = {name: vars(seen) for name, seen in observed.items()}
        Path(report).write_text(json.dumps(outcomes, indent=1, ensure_ascii=False))
    yield Run(
        namespace=namespace,
        observed=observed,
        unattributed=unattributed,
        requests={v: calls_after[v] - calls_before[v] for v in VENDORS},
        tracebacks=_tracebacks(_log_since(operator, log_offset)),
        alive=operator.alive(),
        seconds=seconds,
    )
    tear_down(cluster)
    api.close()


def settle(cluster: Cluster, live: list[Case]) -> dict[str, Observed]:
    """Poll every created case (one list call per kind) until each is settled — Stalled,
    Ready or waiting for a reference, for its current generation — or SETTLE_SECONDS pass."""
    deadline = time.monotonic() + SETTLE_SECONDS
    states: dict[str, Observed] = {}
    while True:
        bodies = {kind: cluster.items(kind) for kind in KINDS}
        unsettled = 0
        for case in live:
            word, current, detail = outcome(case, bodies[case.kind].get(case.object_name))
            states[case.name] = Observed(word, detail)
            unsettled += not settled(case, word, current)
        if not unsettled or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def attribute(
    cluster: Cluster, live: list[Case], observed: dict[str, Observed], new: dict[str, str]
) -> list[str]:
    """Give each new cloud object to the case whose object made it (its UID's first 8 hex
    digits, or an ID its status names, appear in it); the new objects no case made."""
    marks: dict[str, list[str]] = {}
    bodies = {kind: cluster.items(kind) for kind in KINDS}
    for case in live:
        body = bodies[case.kind].get(case.object_name) or {}
        uid = str((body.get("metadata") or {}).get("uid", "")).replace("-", "")
        status = body.get("status") or {}
        ids = {uid[:8], str(status.get("externalID") or "")}
        ids |= {str(v.get("imageID")) for v in status.get("versions") or [] if v.get("imageID")}
        ids |= {str(r.get("id")) for r in status.get("runs") or []}
        marks[case.name] = [mark for mark in ids if len(mark) >= 8]
    unattributed = []
    for key, text in new.items():
        owners = [name for name, ids in marks.items() if any(mark in text for mark in ids)]
        for name in owners:
            observed[name].created.append(key)
        if not owners:
            unattributed.append(f"{key}: {text[:200]}")
    for case in live:
        if observed[case.name].created and case.expect == BAD:
            observed[case.name].outcome += "+created"
    return unattributed


# --- the assertions -------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case(run: Run, case: Case) -> None:
    seen = run.observed[case.name]
    if case.gap is not None:
        assert seen.outcome == case.gap.seen, (
            f"known gap changed: now {seen.outcome} ({seen.detail}); was {case.gap.seen}: "
            f"{case.gap.why} -- if fixed, remove it from bad_manifest_gaps.py"
        )
    else:
        expected = "Ready" if case.expect == LIMIT else f"refused or Stalled naming {case.field}"
        assert good(case, seen.outcome), f"{seen.outcome}, expected {expected}: {seen.detail}"


def test_no_bad_case_makes_a_cloud_object(run: Run) -> None:
    assert not run.unattributed, "cloud objects no case accounts for:\n" + "\n".join(
        run.unattributed
    )
    made = {
        name: seen.created
        for name, seen in run.observed.items()
        if seen.created and "+created" in seen.outcome
    }
    allowed = {case.name for case in CASES if case.gap and "+created" in case.gap.seen}
    assert set(made) <= allowed, {name: made[name] for name in set(made) - allowed}


def test_the_operator_logs_no_traceback_and_still_runs(run: Run) -> None:
    """No traceback but those known gaps make (each still made), and the operator is up."""
    assert run.alive
    expected = {case.gap.traceback for case in CASES if case.gap and case.gap.traceback}
    unexplained = [t for t in run.tracebacks if not any(e in t for e in expected)]
    assert not unexplained, "\n\n".join(unexplained[:5])
    gone = {e for e in expected if not any(e in t for t in run.tracebacks)}
    assert not gone, f"known gaps no longer log these tracebacks: {gone}"


def test_summary(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    """Counts by outcome, kind and category, printed in the test output."""
    table = summary(run)
    with capsys.disabled():
        print("\n" + table)
    assert len(CASES) >= 200
    assert {case.kind for case in CASES} == set(KINDS)
    assert {case.category for case in CASES} == set(CATEGORIES)


GROUPS = (
    "refused at admission",
    "Stalled naming the field",
    "waiting, naming the field",
    "Ready at the limit",
    "known gap",
    "unexpected",
)


def _group(case: Case, seen: Observed) -> str:
    if case.gap is not None:
        return "known gap"
    if not good(case, seen.outcome):
        return "unexpected"
    if case.expect == LIMIT:
        return "Ready at the limit"
    return {"refused": GROUPS[0], "stalled": GROUPS[1]}.get(seen.outcome.split(":")[0], GROUPS[2])


def summary(run: Run) -> str:
    groups = GROUPS
    by_group = Counter(_group(case, run.observed[case.name]) for case in CASES)
    lines = [f"bad-manifest corpus: {len(CASES)} cases in {run.namespace}"]
    lines += [f"  {group:<28}{by_group[group]:>5}" for group in groups]
    lines.append("  by kind and category (refused / Stalled / waiting / Ready / gap / unexpected):")
    cells: dict[tuple[str, str], Counter[str]] = {}
    for case in CASES:
        cells.setdefault((case.kind, case.category), Counter())[
            _group(case, run.observed[case.name])
        ] += 1
    header = f"  {'':<17}" + "".join(f"{kind[:14]:>16}" for kind in KINDS)
    lines.append(header)
    for category in CATEGORIES:
        row = f"  {category:<17}"
        for kind in KINDS:
            count = cells.get((kind, category))
            row += f"{'/'.join(str(count[g]) for g in groups) if count else '-':>16}"
        lines.append(row)
    lines.append(f"  cloud requests during the run: {run.requests}")
    lines.append("  seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in run.seconds.items()))
    gaps = [case for case in CASES if case.gap is not None]
    lines.append(f"  known gaps ({len(gaps)}):")
    lines += [f"    {case.name}: {run.observed[case.name].outcome}" for case in gaps]
    return "\n".join(lines)
