"""kill -9 campaigns: the operator SIGKILLed again and again while it creates and deletes
Images, restarted after each kill, must end with exactly one cloud image per Image, no cloud
image left once the Images are deleted, and nothing stuck.

Per provider (argon, and ucloudstack's signed RPC), on an emulator of the test's own whose
lifecycles take a fraction of a second and whose successful mutating calls are answered a
moment after their commit (`COMMIT_LATENCY`), 100 Images are created in batches of 8, then
deleted in batches of 8. For each batch the test notes what the operator has done so far (cloud
images made, Images Ready), makes the batch, waits until the operator has done a seeded random
amount of further work, waits a seeded random moment longer (up to `LONGEST_PAUSE`), kills the
operator with SIGKILL and starts it again: 13 kills while creating and 13 while deleting. The
cloud is counted from the emulator's admin dump, which no fault touches. The figures (and how
many creates a kill interrupted, found again by their idempotency key: `Recovered` events) are
printed: `pytest -s` shows them.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from image_operator_dev.emulator.config import (
    ArgonSettings,
    EmulatorConfig,
    FaultSettings,
    UCloudStackAccount,
    UCloudStackSettings,
)
from image_operator_dev.emulator.server import EmulatorThread
from tests.integration.conftest import (
    Kube,
    OperatorProcess,
    add_provider,
    add_secret,
    image_manifest,
    namespace_kube,
    namespace_operator,
    provider_image,
    wait_for,
)

pytestmark = pytest.mark.integration

IMAGES = 100
BATCH = 8  # Images created (later deleted) per kill
SEED = 20261201
LONGEST_PAUSE = 0.4  # seconds, after the operator was seen working, before the kill
TOKEN = "kill-campaign-token"
PUBLIC_KEY, PRIVATE_KEY, COMPANY = "kill-campaign-pk", "kill-campaign-sk", 300000001
UID_TAG = "imageops.io/uid"
#: How long a successful mutating call's answer is held after its commit, so that kills fall
#: between a create and the status write that records it. ucloudstack's RPC is all POSTs, so
#: there every call waits, reads too: a shorter hold keeps its campaign's wall time down.
COMMIT_LATENCY = {"argon": 0.3, "ucloudstack": 0.1}


@dataclass
class Figures:
    provider: str
    kills: int = 0
    kills_creating: int = 0
    creations: int = 0
    deletions: int = 0
    duplicates: int = 0
    missing: int = 0
    leaks: int = 0
    recovered: int = 0  # creates whose answer a kill lost, found again by their key
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"kill -9 campaign {self.provider}: {self.kills} kills "
            f"({self.kills_creating} while creating), {self.creations} creations, "
            f"{self.deletions} deletions, {self.duplicates} duplicates, {self.missing} missing, "
            f"{self.leaks} leaked cloud images, {self.recovered} creates recovered by lookup, "
            f"{self.seconds:.0f}s"
        )


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorThread]:
    def faults(vendor: str) -> FaultSettings:
        return FaultSettings(latency_after_commit_seconds=COMMIT_LATENCY[vendor])

    config = EmulatorConfig(
        state_dir=tmp_path_factory.mktemp("kill-campaign-emulator"),
        argon=ArgonSettings(
            tokens=[TOKEN], creation_seconds=0.3, deletion_seconds=0.1, faults=faults("argon")
        ),
        ucloudstack=UCloudStackSettings(
            enabled=True,
            accounts=[
                UCloudStackAccount(
                    public_key=PUBLIC_KEY, private_key=PRIVATE_KEY, company_id=COMPANY
                )
            ],
            making_seconds=0.3,
            deletion_seconds=0.1,
            faults=faults("ucloudstack"),
        ),
    )
    with EmulatorThread(config) as thread:
        yield thread


def _state(cloud: EmulatorThread, vendor: str) -> Any:
    return httpx.get(f"{cloud.url(vendor)}/_emulator/state", timeout=30).raise_for_status().json()


@dataclass(frozen=True)
class Provider:
    """How one provider type is set up, what an Image of it is, and how the cloud is counted:
    `owners` gives, per cloud image, the key of the Image it was made for (`owner_key`)."""

    name: str
    setup: Callable[[Kube, EmulatorThread], None]
    manifest: Callable[[str], dict[str, Any]]
    owners: Callable[[EmulatorThread], list[tuple[str, str]]]  # (owner key, external ID)
    owner_key: Callable[[dict[str, Any]], str]


def _argon_setup(kube: Kube, cloud: EmulatorThread) -> None:
    add_secret(kube, "keys", {"token": TOKEN})
    spec = {"type": "argon", "endpoint": cloud.url("argon"), "project": kube.namespace}
    add_provider(kube, "cloud", {**spec, "credentialsSecretRef": {"name": "keys"}})


def _argon_owners(cloud: EmulatorThread) -> list[tuple[str, str]]:
    # The cloud name is the idempotency key: <Image name>-<first 8 hex digits of its UID>.
    return [(image["name"], image["name"]) for image in _state(cloud, "argon")["images"]]


def _ucloudstack_setup(kube: Kube, cloud: EmulatorThread) -> None:
    keys = {"publicKey": PUBLIC_KEY, "privateKey": PRIVATE_KEY, "companyID": str(COMPANY)}
    add_secret(kube, "keys", keys)
    spec = {"type": "ucloudstack", "endpoint": cloud.url("ucloudstack"), "region": "cn"}
    add_provider(kube, "cloud", {**spec, "credentialsSecretRef": {"name": "keys"}})


def _ucloudstack_owners(cloud: EmulatorThread) -> list[tuple[str, str]]:
    owners = []
    for image in _state(cloud, "ucloudstack")["images"]:
        tags = {tag["Key"]: tag["Value"] for tag in image["Tags"]}
        owners.append((tags.get(UID_TAG, f"untagged {image['ImageID']}"), image["ImageID"]))
    return owners


PROVIDERS = [
    Provider(
        "argon",
        _argon_setup,
        lambda name: image_manifest(name, providerRef={"name": "cloud"}),
        _argon_owners,
        lambda obj: f"{obj['metadata']['name']}-{obj['metadata']['uid'].replace('-', '')[:8]}",
    ),
    Provider(
        "ucloudstack",
        _ucloudstack_setup,
        lambda name: provider_image(name, "cloud", {"vm": {"vmID": "vm-kill0001"}}),
        _ucloudstack_owners,
        lambda obj: str(obj["metadata"]["uid"]),
    ),
]


def _images(kube: Kube) -> list[dict[str, Any]]:
    listed = kube.custom.list_namespaced_custom_object(
        "imageops.io", "v1alpha1", kube.namespace, "images"
    )
    assert isinstance(listed, dict)
    return list(listed["items"])


def _ready(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class Campaign:
    """The operator under fire: `kill_after_progress` is one kill and restart."""

    def __init__(
        self, kube: Kube, cloud: EmulatorThread, provider: Provider, operator: OperatorProcess
    ) -> None:
        self.kube, self.cloud, self.provider, self.operator = kube, cloud, provider, operator
        self.rng = random.Random(f"{SEED}-{provider.name}")
        self.figures = Figures(provider.name)

    def progress(self) -> tuple[int, int]:
        """What the operator has done: cloud images made and not deleted, Ready Images (not
        the Images listed, which the test's own creates change)."""
        images = _images(self.kube)
        return len(self.provider.owners(self.cloud)), sum(_ready(obj) for obj in images)

    def kill_after_progress(self, batch: list[str], act: Callable[[list[str]], None]) -> None:
        """Do `act(batch)`, wait until the operator has done a seeded random amount of work
        since (steps: a cloud image made or gone, an Image turned Ready or not; at most the
        two steps per Image of the batch, so that the batch alone can provide them), then a
        seeded random moment more; then SIGKILL it and start it again."""
        before = self.progress()
        steps = self.rng.randint(1, 2 * len(batch))
        act(batch)

        def worked() -> bool:
            now = self.progress()
            return sum(abs(a - b) for a, b in zip(now, before, strict=True)) >= steps

        wait_for(worked, timeout=180, interval=0.1, what=f"{steps} steps of work from {before}")
        time.sleep(self.rng.uniform(0, LONGEST_PAUSE))
        self.operator.kill()
        self.figures.kills += 1
        self.operator.start()


@pytest.mark.parametrize("provider", PROVIDERS, ids=[p.name for p in PROVIDERS])
def test_kill_9_campaign_leaves_one_cloud_image_per_image_and_no_leak(
    control_plane: Any, cloud: EmulatorThread, provider: Provider, tmp_path: Path
) -> None:
    api = control_plane.api_client()
    kube = namespace_kube(api, "kill-")
    operator = namespace_operator(control_plane, kube.namespace, tmp_path / "operator.log")
    operator.args = ["run", "--standalone"]
    provider.setup(kube, cloud)
    campaign = Campaign(kube, cloud, provider, operator)
    figures = campaign.figures
    started = time.monotonic()
    operator.start()
    try:
        kube.wait_ready("imageproviders", "cloud", timeout=60)
        names = [f"img-{n:03d}" for n in range(IMAGES)]
        batches = [names[i : i + BATCH] for i in range(0, IMAGES, BATCH)]

        def create(batch: list[str]) -> None:
            for name in batch:
                kube.create("images", provider.manifest(name))
            figures.creations += len(batch)

        def delete(batch: list[str]) -> None:
            for name in batch:
                kube.delete("images", name)
            figures.deletions += len(batch)

        for batch in batches:
            campaign.kill_after_progress(batch, create)
        figures.kills_creating = figures.kills

        def all_ready() -> bool:
            images = _images(kube)
            return len(images) == IMAGES and all(_ready(obj) for obj in images)

        wait_for(all_ready, timeout=300, what="every Image Ready after the kills")
        images = _images(kube)
        wanted = Counter(provider.owner_key(obj) for obj in images)
        made = Counter(owner for owner, _ in provider.owners(cloud))
        figures.duplicates = sum(made[key] - 1 for key in wanted if made[key] > 1)
        figures.missing = sum(1 for key in wanted if made[key] == 0)
        strays = sorted(set(made) - set(wanted))
        by_owner = {owner: external_id for owner, external_id in provider.owners(cloud)}
        recorded = {
            obj["metadata"]["name"]: (
                obj["status"].get("externalID"),
                by_owner.get(provider.owner_key(obj)),
            )
            for obj in images
        }
        wrong = {name: ids for name, ids in recorded.items() if ids[0] != ids[1]}

        for batch in batches:
            campaign.kill_after_progress(batch, delete)
        wait_for(lambda: not _images(kube), timeout=300, what="every Image gone after the kills")
        # A finalizer is released only once its cloud image is gone: whatever is left leaked.
        figures.leaks = len(provider.owners(cloud))
        recovered = kube.core.list_namespaced_event(
            kube.namespace, field_selector="reason=Recovered"
        )
        figures.recovered = len(recovered.items)
    finally:
        figures.seconds = time.monotonic() - started
        operator.stop()
        print(figures.line())
        api.close()

    assert figures.kills >= 20 and figures.kills_creating >= 10, figures.line()
    assert (figures.creations, figures.deletions) == (IMAGES, IMAGES)
    assert (figures.duplicates, figures.missing, strays) == (0, 0, []), figures.line()
    assert not wrong, f"status.externalID vs the cloud image made for the Image: {wrong}"
    assert figures.leaks == 0, figures.line()
