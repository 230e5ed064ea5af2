"""Contract tests of the bundled emulator's Argon image API.

Each test starts a real emulator on a free loopback port and talks HTTP to it with httpx.
Lifecycle details are checked with a manual clock (exact, no timing); the real-clock tests
only poll with a deadline until a state is reached.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from image_operator_dev.emulator.clock import ManualClock
from image_operator_dev.emulator.config import ConfigError, EmulatorConfig, load_config
from image_operator_dev.emulator.server import Emulator, EmulatorThread
from image_operator_dev.emulator.testing import ArgonHarness, poll_until

StartArgon = Callable[..., ArgonHarness]

# The seed's example request (001_82778ac7fa6c46b3.txt, "实例1"), transcribed by hand from its
# JS-like notation into JSON. Its command names parameters the abbreviated example does not
# declare (date, log_path, …): the emulator must accept it anyway.
SEED_COMMAND = (
    "python3 /home/mediacloud/main_transcode.py --task_id={{inputs.task_id}} "
    "--date={{inputs.date}} --log_path={{configs.log_path}} "
    "--cache_path={{configs.cache_path}} --input_file={{inputs.input_file}} "
    "--output={{outputs.output}} --format={{inputs.format}} --vcodec={{inputs.vcodec}} "
    "--acodec={{inputs.acodec}}"
)
SEED_IMAGE: dict[str, Any] = {
    "command": [SEED_COMMAND],
    "configs": [
        {
            "controls": "input",
            "default": "/data/y/argon/workdir/default/cache_path",
            "displayName": "缓存文件路径",
            "index": 8,
            "kind": "config",
            "name": "cache_path",
            "type": "string",
        }
    ],
    "description": "普通整片转码",
    "displayName": "普通整片转码",
    "inputs": [
        {
            "controls": "input",
            "default": "-",
            "displayName": "任务ID",
            "index": 0,
            "kind": "input",
            "name": "task_id",
            "type": "string",
        }
    ],
    "name": "普通整片转码",
    "outputs": [
        {
            "controls": "input",
            "default": "/data/y/argon/data_path",
            "displayName": "输出文件路径",
            "index": 6,
            "kind": "output",
            "name": "output",
            "type": "string",
        }
    ],
    "price": "0",
    "repository": "nvidia/cuda10.1:tensorflow_mgdc-test-v0.1",
}
SEED_BODY: dict[str, Any] = {"image": SEED_IMAGE, "namespace": "default"}

CLI_TOKEN = "cli-test-token"

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def image(name: str = "img", **fields: Any) -> dict[str, Any]:
    """A small valid image; keyword arguments override or add fields."""
    return {
        "name": name,
        "displayName": f"Image {name}",
        "repository": "nvidia/cuda10.1:tensorflow_mgdc-test-v0.1",
        **fields,
    }


def parse_time(text: str) -> datetime:
    assert RFC3339_UTC.match(text), text
    return datetime.fromisoformat(text)


def assert_status(response: httpx.Response, code: int, reason: str) -> dict[str, Any]:
    """The response is a Kubernetes-style Failure Status with this code and reason."""
    assert response.status_code == code, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["kind"] == "Status"
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert body["reason"] == reason
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


def causes_by_field(body: dict[str, Any]) -> dict[str, str]:
    return {cause["field"]: cause["message"] for cause in body["details"]["causes"]}


# --- create and the asynchronous lifecycle ------------------------------------------------


def test_seed_example_request_is_accepted_verbatim(argon: ArgonHarness) -> None:
    response = argon.api.post(argon.images_path("default"), json=SEED_BODY)

    assert response.status_code == 201, response.text
    created = response.json()
    for key, value in SEED_IMAGE.items():
        assert created[key] == value, key
    assert created["metadata"]["clusterName"] == "default"
    assert created["metadata"]["namespace"] == "default"
    assert uuid.UUID(created["metadata"]["uid"]).version == 4
    status = created["status"]
    assert parse_time(status["createdAt"]) == parse_time(status["updatedAt"])
    assert status["phase"] in {"Pending", "Pulling"}
    assert 0 <= status["progress"] < 100

    fetched = argon.get("普通整片转码")
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["metadata"]["uid"] == created["metadata"]["uid"]
    assert fetched.json()["command"] == [SEED_COMMAND]


def test_create_reaches_ready_on_the_real_clock(argon: ArgonHarness) -> None:
    assert argon.create(image("rt")).status_code == 201

    seen = poll_until(lambda: argon.status_of("rt"), lambda s: s["phase"] == "Ready", deadline=10)

    order = {"Pending": 0, "Pulling": 1, "Ready": 2}
    ranks = [order[s["phase"]] for s in seen]
    progresses = [s["progress"] for s in seen]
    assert ranks == sorted(ranks), seen
    assert progresses == sorted(progresses), seen
    assert seen[-1]["progress"] == 100


def test_lifecycle_phases_and_progress_follow_the_clock(start_argon: StartArgon) -> None:
    clock = ManualClock()
    argon = start_argon(clock=clock, creation_seconds=10)
    assert argon.create(image("lc")).status_code == 201

    observed = []
    for step in [0, 1, 1, 2, 2, 3, 0.9, 0.1]:  # cumulative: 0,1,2,4,6,9,9.9,10
        clock.advance(step)
        status = argon.status_of("lc")
        observed.append((status["phase"], status["progress"]))

    assert observed == [
        ("Pending", 0),
        ("Pending", 0),
        ("Pulling", 0),
        ("Pulling", 25),
        ("Pulling", 50),
        ("Pulling", 87),
        ("Pulling", 98),
        ("Ready", 100),
    ]
    assert "message" not in argon.status_of("lc")


def test_repository_matching_the_fail_pattern_ends_failed(start_argon: StartArgon) -> None:
    clock = ManualClock()
    argon = start_argon(clock=clock, creation_seconds=10, fail_repository_pattern=r":broken$")
    assert argon.create(image("bad", repository="library/app:broken")).status_code == 201
    assert argon.create(image("good", repository="library/app:ok")).status_code == 201

    clock.advance(4)
    assert argon.status_of("bad")["phase"] == "Pulling"
    clock.advance(2)  # half of the pulling time: the pull fails
    failed = argon.status_of("bad")
    clock.advance(100)

    assert failed["phase"] == "Failed"
    assert failed["progress"] == 50
    assert "library/app:broken" in failed["message"]
    assert argon.status_of("bad") == failed
    assert argon.status_of("good")["phase"] == "Ready"


def test_number_price_string_command_and_extra_parameter_fields_are_accepted(
    argon: ArgonHarness,
) -> None:
    body = image(
        "variants",
        price=9.5,
        command="python3 main.py --mode={{inputs.mode}}",
        group="team-a",
        cover="data:image/png;base64,AAAA",
        inputs=[
            {"name": "mode", "type": "enum", "options": ["fast", "slow"], "required": True},
            {"name": "count", "type": "integer", "default": 3},
            {"name": "verbose", "type": "boolean", "default": False},
        ],
    )

    response = argon.create(body)

    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["price"] == 9.5
    assert stored["command"] == body["command"]
    assert stored["inputs"] == body["inputs"]
    assert "outputs" not in stored  # unset optional fields are not invented


def test_duplicate_name_is_409_already_exists(argon: ArgonHarness) -> None:
    first = argon.create(image("dup"))
    assert first.status_code == 201

    body = assert_status(argon.create(image("dup", displayName="other")), 409, "AlreadyExists")

    assert body["details"]["name"] == "dup"
    assert argon.get("dup").json()["displayName"] == "Image dup"
    # The same name in another namespace is another image.
    assert argon.create(image("dup"), namespace="other").status_code == 201


# --- validation ----------------------------------------------------------------------------


def _without(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda body: body["image"].pop(key)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: body["image"].__setitem__(key, value)


def _duplicate_input(body: dict[str, Any]) -> None:
    body["image"]["inputs"].append({"name": "task_id", "kind": "input", "type": "string"})


def _wrong_kind(body: dict[str, Any]) -> None:
    body["image"]["outputs"][0]["kind"] = "input"


def _bad_type(body: dict[str, Any]) -> None:
    body["image"]["configs"][0]["type"] = "float"


def _negative_index(body: dict[str, Any]) -> None:
    body["image"]["inputs"][0]["index"] = -1


def _unknown_parameter_field(body: dict[str, Any]) -> None:
    body["image"]["inputs"][0]["colour"] = "red"


def _namespace_mismatch(body: dict[str, Any]) -> None:
    body["namespace"] = "elsewhere"


def _no_namespace(body: dict[str, Any]) -> None:
    body.pop("namespace")


VALIDATION_CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    # (id, mutation of the seed body, failing field, a word the message must contain)
    ("missing displayName", _without("displayName"), "image.displayName", "required"),
    ("empty displayName", _set("displayName", ""), "image.displayName", "empty"),
    ("long displayName", _set("displayName", "x" * 129), "image.displayName", "128"),
    ("missing repository", _without("repository"), "image.repository", "required"),
    ("missing name", _without("name"), "image.name", "required"),
    ("name with slash", _set("name", "a/b"), "image.name", "/"),
    ("bad repository", _set("repository", "Not A/Valid:ref!"), "image.repository", "docker"),
    ("uppercase repository", _set("repository", "nvidia/CUDA:v1"), "image.repository", "lowercase"),
    ("duplicate parameter", _duplicate_input, "image.inputs[1].name", "unique"),
    ("wrong kind in list", _wrong_kind, "image.outputs[0].kind", "output"),
    ("bad type enum", _bad_type, "image.configs[0].type", "integer"),
    ("negative index", _negative_index, "image.inputs[0].index", "at least 0"),
    ("unknown parameter field", _unknown_parameter_field, "image.inputs[0].colour", "known"),
    ("negative price", _set("price", -1), "image.price", "≥ 0"),
    ("negative price string", _set("price", "-1"), "image.price", "decimal"),
    ("price not a number", _set("price", "free"), "image.price", "decimal"),
    ("price boolean", _set("price", True), "image.price", "number"),
    ("command wrong type", _set("command", ["ok", 3]), "image.command", "list of strings"),
    ("long group", _set("group", "g" * 64), "image.group", "63"),
    ("long description", _set("description", "d" * 1025), "image.description", "1024"),
    ("namespace mismatch", _namespace_mismatch, "namespace", "URL path"),
    ("missing namespace", _no_namespace, "namespace", "required"),
    ("unknown field", _set("colour", "red"), "image.colour", "accepted"),
    ("server-set status", _set("status", {"phase": "Ready"}), "image.status", "server"),
]


@pytest.mark.parametrize(
    ("mutate", "field", "word"),
    [pytest.param(m, f, w, id=case_id) for case_id, m, f, w in VALIDATION_CASES],
)
def test_invalid_create_is_422_naming_the_field(
    argon: ArgonHarness, mutate: Callable[[dict[str, Any]], None], field: str, word: str
) -> None:
    body = copy.deepcopy(SEED_BODY)
    mutate(body)

    response = argon.api.post(argon.images_path("default"), json=body)

    status = assert_status(response, 422, "Invalid")
    causes = causes_by_field(status)
    assert list(causes) == [field], causes
    assert causes[field].startswith(field), causes[field]
    assert word in causes[field], causes[field]
    assert field in status["message"]
    # Nothing was stored.
    assert argon.state()["images"] == []


def test_cover_over_one_mebibyte_is_rejected(argon: ArgonHarness) -> None:
    fits = argon.create(image("cover-ok", cover="c" * (1024 * 1024)))
    too_big = argon.create(image("cover-big", cover="c" * (1024 * 1024 + 1)))

    assert fits.status_code == 201, fits.text[:300]
    causes = causes_by_field(assert_status(too_big, 422, "Invalid"))
    assert list(causes) == ["image.cover"]
    assert "1 MiB" in causes["image.cover"]


def test_every_failing_field_is_listed_at_once(argon: ArgonHarness) -> None:
    body = copy.deepcopy(SEED_BODY)
    body["namespace"] = "elsewhere"
    del body["image"]["displayName"]
    body["image"]["repository"] = "UPPER CASE"
    body["image"]["price"] = -3
    body["image"]["inputs"][0]["kind"] = "config"

    status = assert_status(argon.api.post(argon.images_path(), json=body), 422, "Invalid")

    assert set(causes_by_field(status)) == {
        "namespace",
        "image.displayName",
        "image.repository",
        "image.price",
        "image.inputs[0].kind",
    }
    assert status["details"]["name"] == "普通整片转码"


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]", b'{"namespace": NaN}'], ids=str)
def test_malformed_body_is_400_bad_request(argon: ArgonHarness, content: bytes) -> None:
    response = argon.api.post(
        argon.images_path(), content=content, headers={"Content-Type": "application/json"}
    )

    assert_status(response, 400, "BadRequest")


def test_body_over_the_size_limit_is_413(argon: ArgonHarness) -> None:
    response = argon.create(image("huge", cover="c" * (5 * 1024 * 1024)))

    assert_status(response, 413, "RequestEntityTooLarge")


def test_unknown_route_and_method_answer_in_status_format(argon: ArgonHarness) -> None:
    assert_status(argon.api.get("/api/v1/namespaces/default/widgets"), 404, "NotFound")
    assert_status(argon.api.patch(argon.image_path("x"), json={}), 405, "MethodNotAllowed")


# --- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Basic abc", "Bearer"],
    ids=["missing", "wrong token", "wrong scheme", "empty token"],
)
def test_bad_credentials_are_401_in_status_format(
    argon: ArgonHarness, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    with httpx.Client(base_url=argon.url, headers=headers) as client:
        response = client.post(argon.images_path(), json=SEED_BODY)

    status = assert_status(response, 401, "Unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "wrong-token" not in status["message"]
    assert argon.state()["images"] == []


# --- read, list, update, delete ---------------------------------------------------------------


def test_get_missing_image_is_404_not_found(argon: ArgonHarness) -> None:
    status = assert_status(argon.get("ghost"), 404, "NotFound")

    assert status["details"]["name"] == "ghost"
    assert "ghost" in status["message"]


def test_list_filters_by_names_in_one_call(start_argon: StartArgon) -> None:
    # A clock that stands still: the listed image and the one read after it must be equal, and
    # on the system clock a Pulling image's progress can move between the two calls.
    argon = start_argon(clock=ManualClock())
    for name in ["a", "b", "c"]:
        assert argon.create(image(name)).status_code == 201
    assert argon.create(image("a"), namespace="other").status_code == 201

    def names(query: str = "") -> list[str]:
        response = argon.api.get(argon.images_path() + query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["kind"] == "ImageList"
        return [item["name"] for item in body["items"]]

    assert names() == ["a", "b", "c"]
    assert names("?names=a,c") == ["a", "c"]
    assert names("?names=c,missing") == ["c"]
    assert names("?names=a&names=b") == ["a", "b"]
    assert names("?names=") == []
    listed = argon.api.get(argon.images_path(), params={"names": "b"}).json()["items"][0]
    assert listed == argon.get("b").json()


def test_update_replaces_fields_and_bumps_updated_at(start_argon: StartArgon) -> None:
    clock = ManualClock()
    argon = start_argon(clock=clock, creation_seconds=10)
    created = argon.create(image("up", group="old", description="first")).json()
    clock.advance(20)
    assert argon.status_of("up")["phase"] == "Ready"

    response = argon.replace("up", image("up", displayName="Renamed"))

    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["displayName"] == "Renamed"
    assert "group" not in updated  # replaced, not merged
    assert "description" not in updated
    assert updated["metadata"] == created["metadata"]
    assert updated["status"]["createdAt"] == created["status"]["createdAt"]
    assert parse_time(updated["status"]["updatedAt"]) > parse_time(created["status"]["updatedAt"])
    assert updated["status"]["phase"] == "Ready"  # same repository: nothing to pull
    assert argon.get("up").json() == updated


def test_update_with_a_new_repository_restarts_the_pull(start_argon: StartArgon) -> None:
    clock = ManualClock()
    argon = start_argon(clock=clock, creation_seconds=10)
    argon.create(image("repo"))
    clock.advance(20)

    response = argon.replace("repo", image("repo", repository="registry.local:5000/team/app:v2"))

    assert response.status_code == 200, response.text
    assert response.json()["status"]["phase"] == "Pending"
    clock.advance(6)
    assert argon.status_of("repo")["phase"] == "Pulling"
    clock.advance(4)
    assert argon.status_of("repo")["phase"] == "Ready"


def test_update_of_a_missing_image_is_404(argon: ArgonHarness) -> None:
    assert_status(argon.replace("nothing", image("nothing")), 404, "NotFound")


def test_update_validates_like_create_and_refuses_a_rename(argon: ArgonHarness) -> None:
    argon.create(image("keep"))

    renamed = assert_status(argon.replace("keep", image("other")), 422, "Invalid")
    invalid = assert_status(argon.replace("keep", image("keep", price="-1")), 422, "Invalid")

    assert list(causes_by_field(renamed)) == ["image.name"]
    assert list(causes_by_field(invalid)) == ["image.price"]
    assert argon.get("keep").json()["displayName"] == "Image keep"


def test_delete_goes_through_deleting_then_404(start_argon: StartArgon) -> None:
    clock = ManualClock()
    argon = start_argon(clock=clock, creation_seconds=10, deletion_seconds=5)
    uid = argon.create(image("del")).json()["metadata"]["uid"]
    clock.advance(6)
    progress = argon.status_of("del")["progress"]

    response = argon.delete("del")

    assert response.status_code == 200, response.text
    assert response.json()["kind"] == "Status"
    assert response.json()["status"] == "Success"
    assert response.json()["details"]["uid"] == uid
    clock.advance(4)
    deleting = argon.status_of("del")
    assert deleting["phase"] == "Deleting"
    assert deleting["progress"] == progress  # frozen while deleting
    assert argon.delete("del").status_code == 200  # deleting a Deleting image is fine
    assert_status(argon.create(image("del")), 409, "AlreadyExists")
    assert_status(argon.replace("del", image("del")), 409, "Conflict")

    clock.advance(1)

    assert_status(argon.get("del"), 404, "NotFound")
    assert_status(argon.delete("del"), 404, "NotFound")
    assert argon.api.get(argon.images_path()).json()["items"] == []
    recreated = argon.create(image("del"))
    assert recreated.status_code == 201
    assert recreated.json()["metadata"]["uid"] != uid


def test_delete_completes_on_the_real_clock(argon: ArgonHarness) -> None:
    argon.create(image("gone"))
    assert argon.delete("gone").status_code == 200

    seen = poll_until(lambda: argon.get("gone").status_code, lambda code: code == 404, deadline=10)

    assert set(seen) <= {200, 404}


# --- persistence ---------------------------------------------------------------------------


def test_state_and_progress_survive_a_restart(start_argon: StartArgon) -> None:
    clock = ManualClock()
    first = start_argon(clock=clock, creation_seconds=10)
    created = first.create(image("persist")).json()
    first.create(image("doomed"))
    first.delete("doomed")
    clock.advance(4)
    before = first.status_of("persist")
    assert before["phase"] == "Pulling"
    assert before["progress"] == 25
    first.close()

    clock.advance(2)
    second = start_argon(clock=clock, creation_seconds=999, deletion_seconds=999)

    after = second.get("persist").json()
    assert after["metadata"] == created["metadata"]
    assert after["status"]["phase"] == "Pulling"
    assert after["status"]["progress"] == 50  # continued, with the lifecycle it started with
    assert_status(second.get("doomed"), 404, "NotFound")
    clock.advance(4)
    assert second.status_of("persist")["phase"] == "Ready"


def test_state_survives_a_restart_on_the_real_clock(start_argon: StartArgon) -> None:
    first = start_argon(creation_seconds=0.5)
    uid = first.create(image("real")).json()["metadata"]["uid"]
    first.close()

    second = start_argon(creation_seconds=0.5)
    seen = poll_until(lambda: second.get("real").json(), lambda i: i["status"]["phase"] == "Ready")

    assert all(item["metadata"]["uid"] == uid for item in seen)


# --- faults and admin routes ------------------------------------------------------------------


def test_error_rate_one_fails_every_vendor_call_but_not_admin(argon: ArgonHarness) -> None:
    argon.create(image("before"))
    argon.set_faults(error_rate=1.0)

    calls = [
        argon.create(image("x")),
        argon.get("before"),
        argon.api.get(argon.images_path()),
        argon.replace("before", image("before")),
        argon.delete("before"),
    ]

    for response in calls:
        assert_status(response, 503, "ServiceUnavailable")
    assert argon.admin.get("/_emulator/healthz").json() == {"status": "ok", "vendor": "argon"}
    assert [i["name"] for i in argon.state()["images"]] == ["before"]
    assert argon.stats()["faults"]["error"] == 5
    argon.set_faults(error_rate=0.0)
    assert argon.get("before").status_code == 200


def test_throttle_answers_429_with_retry_after(argon: ArgonHarness) -> None:
    argon.set_faults(throttle_rate=1.0, retry_after_seconds=7)

    response = argon.get("anything")

    status = assert_status(response, 429, "TooManyRequests")
    assert response.headers["Retry-After"] == "7"
    assert status["details"]["retryAfterSeconds"] == 7
    assert argon.stats()["faults"]["throttle"] == 1


def test_faults_from_the_config_file_apply_from_the_start(start_argon: StartArgon) -> None:
    argon = start_argon(faults={"throttle_rate": 1.0})

    assert_status(argon.api.get(argon.images_path()), 429, "TooManyRequests")
    assert argon.admin.get("/_emulator/faults").json()["throttle_rate"] == 1.0


def test_seeded_faults_are_reproducible(argon: ArgonHarness) -> None:
    def sequence() -> list[int]:
        argon.set_faults(error_rate=0.5, seed=1234)
        return [argon.get("none").status_code for _ in range(30)]

    first, second = sequence(), sequence()

    assert first == second
    assert set(first) == {404, 503}


def test_latency_delays_vendor_calls_only(argon: ArgonHarness) -> None:
    argon.set_faults(latency_seconds=0.3)

    started = time.monotonic()
    argon.get("none")
    vendor_elapsed = time.monotonic() - started

    assert vendor_elapsed >= 0.3
    assert argon.stats()["faults"]["latency"] == 1


def test_latency_after_commit_commits_before_answering(argon: ArgonHarness) -> None:
    argon.set_faults(latency_after_commit_seconds=3.0)

    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        pending = pool.submit(argon.create, image("slow"))
        poll_until(lambda: argon.state()["images"], lambda images: len(images) == 1, deadline=5)
        # The image is committed and visible, yet its creator has no answer.
        assert not pending.done()
        response = pending.result(timeout=10)
        elapsed = time.monotonic() - started

    assert response.status_code == 201
    assert elapsed >= 3.0
    assert response.json()["metadata"]["uid"] == argon.state()["images"][0]["metadata"]["uid"]
    assert argon.stats()["faults"]["latency_after_commit"] == 1


def test_lost_response_after_commit_leaves_the_image_created(argon: ArgonHarness) -> None:
    argon.set_faults(latency_after_commit_seconds=3.0)

    with pytest.raises(httpx.ReadTimeout):
        argon.api.post(
            argon.images_path(),
            json={"namespace": "default", "image": image("orphan")},
            timeout=0.5,
        )

    argon.set_faults()
    assert argon.get("orphan").status_code == 200
    assert_status(argon.create(image("orphan")), 409, "AlreadyExists")


def test_invalid_fault_settings_are_rejected(argon: ArgonHarness) -> None:
    response = argon.admin.put("/_emulator/faults", json={"error_rate": 2, "bogus": 1})

    assert response.status_code == 422
    fields = {tuple(error["loc"]) for error in response.json()["details"]}
    assert fields == {("error_rate",), ("bogus",)}
    assert argon.admin.get("/_emulator/faults").json()["error_rate"] == 0.0


def test_stats_count_requests_per_route(argon: ArgonHarness) -> None:
    argon.create(image("s1"))
    argon.create(image("s1"))
    for _ in range(3):
        argon.api.get(argon.images_path(), params={"names": "s1,s2"})
    argon.get("s1")
    argon.admin.get("/_emulator/state")  # admin calls are not counted

    stats = argon.stats()

    routes = stats["routes"]
    assert routes["POST /api/v1/namespaces/{namespace}/images"] == {
        "count": 2,
        "statuses": {"201": 1, "409": 1},
    }
    assert routes["GET /api/v1/namespaces/{namespace}/images"]["count"] == 3
    assert routes["GET /api/v1/namespaces/{namespace}/images/{name}"]["count"] == 1
    assert stats["total"] == 6
    assert argon.admin.delete("/_emulator/stats").json()["total"] == 0


def test_admin_state_can_be_cleared(argon: ArgonHarness) -> None:
    argon.create(image("one"))
    argon.create(image("two"), namespace="other")

    assert argon.admin.delete("/_emulator/state").json() == {"vendor": "argon", "deleted": 2}
    assert argon.state() == {"vendor": "argon", "images": []}


def test_request_log_has_one_line_per_request_without_the_token(
    argon: ArgonHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="image_operator_dev.emulator")

    argon.create(image("logged"))
    argon.get("logged")

    lines = [
        r.getMessage() for r in caplog.records if r.name == "image_operator_dev.emulator.argon"
    ]
    assert any(line.startswith("POST /api/v1/namespaces/default/images 201 ") for line in lines)
    assert any(
        line.startswith("GET /api/v1/namespaces/default/images/logged 200 ") for line in lines
    )
    assert all(line.endswith("ms") for line in lines)
    assert argon.token not in caplog.text


# --- config, programmatic API, command line --------------------------------------------------


def test_config_refuses_non_loopback_hosts() -> None:
    with pytest.raises(ValueError, match="loopback"):
        EmulatorConfig(host="0.0.0.0")
    assert EmulatorConfig(host="0.0.0.0", allow_non_loopback=True).host == "0.0.0.0"
    assert EmulatorConfig(host="::1").host == "::1"


def test_config_loads_from_yaml_and_rejects_typos(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "state_dir: /tmp/x\nargon:\n  port: 0\n  tokens: [t1, t2]\n  creation_seconds: 0.5\n"
        "  fail_repository_pattern: 'fail'\n  faults:\n    error_rate: 0.1\n    seed: 3\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("argon:\n  creation_secs: 1\n")

    config = load_config(good)

    assert config.argon.tokens == ["t1", "t2"]
    assert config.argon.faults.error_rate == 0.1
    assert config.argon.deletion_seconds == 1.0
    with pytest.raises(ConfigError, match="creation_secs"):
        load_config(bad)


def test_async_api_serves_and_stops(state_dir: Path) -> None:
    config = EmulatorConfig.model_validate({"state_dir": state_dir})

    async def scenario() -> tuple[int, str]:
        async with Emulator(config) as emulator:
            url = emulator.url("argon")
            async with httpx.AsyncClient(base_url=url) as client:
                response = await client.get("/_emulator/healthz")
            return response.status_code, url

    code, url = asyncio.run(scenario())

    assert code == 200
    assert url.startswith("http://127.0.0.1:")
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/_emulator/healthz")


def test_thread_helper_reports_bind_failures(state_dir: Path) -> None:
    with EmulatorThread(EmulatorConfig.model_validate({"state_dir": state_dir})) as running:
        port = int(running.url("argon").rsplit(":", 1)[1])
        clash = EmulatorThread(
            EmulatorConfig.model_validate({"state_dir": state_dir, "argon": {"port": port}})
        )
        with pytest.raises(OSError):
            clash.start()
        assert httpx.get(running.url("argon") + "/_emulator/healthz").status_code == 200


def test_command_line_prints_ready_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "emulator.yaml"
    config.write_text(f"argon:\n  tokens: [{CLI_TOKEN}]\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "image_operator_dev.emulator",
            "--config",
            str(config),
            "--state-dir",
            str(tmp_path / "state"),
            "--argon-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        url = ready["vendors"]["argon"]
        response = httpx.get(
            url + "/api/v1/namespaces/default/images",
            headers={"Authorization": f"Bearer {CLI_TOKEN}"},
        )
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert ready["event"] == "ready"
    assert list(ready["vendors"]) == ["argon"]
    assert response.status_code == 200
    assert process.returncode == 0
    assert json.loads(out) == {"event": "stopped"}
    assert "GET /api/v1/namespaces/default/images 200" in err
    assert CLI_TOKEN not in err
    assert (tmp_path / "state" / "emulator.sqlite3").exists()


def test_command_line_rejects_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "emulator.yaml"
    config.write_text("host: 10.1.2.3\n")

    result = subprocess.run(
        [sys.executable, "-m", "image_operator_dev.emulator", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert "loopback" in result.stderr
    assert result.stdout == ""
