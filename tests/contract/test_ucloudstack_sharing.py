"""`spec.sharing` on ucloudstack against the emulator: seed 003 documents no action that shares
an image with another tenant (DescribeBaseImage only reports a base image's `Permission`), so
the provider declares no `Shares`, and an Available Image with `spec.sharing` stalls
`Unsupported` naming the field, leaving the cloud as it was."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from image_operator.providers.instrumented import InstrumentedProvider
from image_operator.providers.model import CloudState
from image_operator.providers.observer import ImageObserver
from image_operator.reconcilers.image import ImageObject, ImageReconciler
from image_operator.reconcilers.managed import Backoff, ProviderHandle
from image_operator.reconcilers.outcome import condition
from tests.contract.test_ucloudstack_emulator import UCloudStackHarness, ucloudstack_config
from tests.contract.test_ucloudstack_provider import UID, provider, vm_request, wait_state


@pytest.fixture
def emulator(state_dir: Path) -> Iterator[UCloudStackHarness]:
    harness = UCloudStackHarness(ucloudstack_config(state_dir))
    yield harness
    harness.close()


def test_sharing_on_ucloudstack_stalls_unsupported_naming_the_field(
    emulator: UCloudStackHarness,
) -> None:
    inner = provider(emulator)
    request = vm_request(sharing={"members": [{"id": "project-b"}]})
    image_id = inner.create_image(request).external_id
    wait_state(inner, image_id, CloudState.AVAILABLE)
    wrapped = InstrumentedProvider(inner)
    handle = ProviderHandle("ucs", wrapped, ImageObserver(wrapped, max_age=0.0))
    obj = ImageObject(
        name=request.name,
        namespace=request.namespace,
        uid=UID,
        generation=1,
        annotations={},
        spec=request.spec,
        status={"externalID": image_id},
    )
    before = emulator.state()

    outcome = ImageReconciler(Backoff()).reconcile(obj, handle)

    assert wrapped.sharer is None
    stalled = condition(outcome.status, "Stalled")
    assert stalled is not None and stalled["reason"] == "Unsupported"
    assert stalled["message"].startswith("spec.sharing: provider type 'ucloudstack' cannot")
    assert emulator.state() == before  # nothing in the cloud changed
