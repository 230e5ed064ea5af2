"""Benchmark: N Images on one argon provider, reconciled until Ready, against the emulator.

Measures what batched polling buys: cloud calls per object, list calls per poll round, and the
CPU cost of a reconcile step. No Kubernetes involved: the reconciler is driven directly, the
way the handlers drive it, with statuses written back in memory.

    .venv/bin/python bench/batch_polling.py --images 200
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import replace

from image_operator.api.image import ImageSpec
from image_operator.providers.argon import ArgonProvider
from image_operator.providers.observer import ImageObserver
from image_operator.reconcilers.image import ImageObject, ImageReconciler
from image_operator.reconcilers.managed import ProviderHandle
from image_operator_dev.emulator.config import EmulatorConfig
from image_operator_dev.emulator.server import EmulatorThread

SPEC = ImageSpec.model_validate(
    {
        "providerRef": {"name": "argon"},
        "source": {"repository": {"image": "library/busybox:1.36"}},
        "displayName": "bench",
        "command": ["run --id={{inputs.id}}"],
        "inputs": [{"name": "id", "default": "0"}],
    }
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--poll", type=float, default=0.5, help="poll interval (seconds)")
    args = parser.parse_args()

    config = EmulatorConfig.model_validate(
        {"argon": {"tokens": ["bench"], "creation_seconds": 3, "deletion_seconds": 0.5}}
    )
    emulator = EmulatorThread(config)
    url = emulator.start()["argon"]
    provider = ArgonProvider(endpoint=url, namespace="default", token="bench")
    observer = ImageObserver(provider, max_age=args.poll * 0.8)
    handle = ProviderHandle("argon", provider, observer, poll_interval=args.poll)
    reconciler = ImageReconciler()
    objects = [
        ImageObject(
            name=f"img{i}",
            namespace="bench",
            uid=f"{i:08x}-0000-0000-0000-000000000000",
            generation=1,
            annotations={},
            spec=SPEC,
            status={},
        )
        for i in range(args.images)
    ]

    steps = 0
    cpu = 0.0
    rounds = 0
    start = time.monotonic()
    while True:
        rounds += 1
        pending = []
        for index, obj in enumerate(objects):
            if obj.status.get("phase") == "Ready":
                continue
            t0 = time.process_time()
            outcome = reconciler.reconcile(obj, handle)
            cpu += time.process_time() - t0
            steps += 1
            objects[index] = replace(obj, status=outcome.status)
            pending.append(outcome)
        if not pending:
            break
        time.sleep(args.poll)
    wall = time.monotonic() - start

    stats = emulator.emulator.stats("argon")
    routes = stats["routes"]
    assert isinstance(routes, dict)
    lists = routes.get("GET /api/v1/namespaces/{namespace}/images", {}).get("count", 0)
    total = stats["total"]
    emulator.stop()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"images                 {args.images}")
    print(f"poll rounds            {rounds - 1} (interval {args.poll}s), wall {wall:.1f}s")
    print(f"reconcile steps        {steps}, CPU per step {1000 * cpu / steps:.2f} ms")
    print(f"cloud requests         {total} = {total / args.images:.2f} per image")
    print(f"  list (batch) calls   {lists} = {lists / max(rounds - 1, 1):.2f} per poll round")
    print(f"max RSS                {rss_mib:.0f} MiB (process incl. emulator thread)")


if __name__ == "__main__":
    main()
