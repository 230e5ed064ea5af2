"""Benchmark: peak memory of `image-operator upload`'s streaming path against file size.

Each size runs in a fresh child process (so one run's peak cannot hide the next's), which
streams a qcow2 file of that size into the bundled ucloudstack emulator through
`upload.stream_upload` and the real provider (ImportImage Local → parts →
CompleteImageMultipartUpload), then reports its peak RSS (ru_maxrss) and the time taken.
Flat memory means the peak does not grow with the file. No Kubernetes involved: the operator
never receives the bytes (see docs/uploads.md); tests/integration/test_image_sources.py measures
the operator's RSS during a 256 MiB upload through the CLI.

    .venv/bin/python bench/upload_rss.py --sizes 64 256 1024 --part-mib 16
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from image_operator.api.image import OsInfo
from image_operator.providers.capabilities import LocalImport
from image_operator.providers.ucloudstack import UCloudStackProvider
from image_operator.upload import stream_upload
from image_operator_dev.emulator.config import EmulatorConfig
from image_operator_dev.emulator.server import EmulatorThread
from image_operator_dev.emulator.ucloudstack import synthetic_qcow2

MIB = 1024 * 1024


def _write_disk(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        head = synthetic_qcow2(3 * 1024**3)
        out.write(head)
        digest.update(head)
        left = size - len(head)
        while left > 0:
            block = os.urandom(min(8 * MIB, left))
            out.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def child(size_mib: int, part_mib: int) -> None:
    """One measured upload; prints a JSON line."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "disk.qcow2"
        checksum = _write_disk(path, size_mib * MIB)
        config = EmulatorConfig.model_validate(
            {
                "state_dir": str(Path(tmp) / "state"),
                "ucloudstack": {
                    "enabled": True,
                    "accounts": [{"public_key": "bench-pk", "private_key": "bench-sk"}],
                },
            }
        )
        # The emulator runs in a thread of this process: measure before it receives bytes,
        # then subtract what it holds (its files are on disk, not in memory).
        emulator = EmulatorThread(config)
        url = emulator.start()["ucloudstack"]
        provider = UCloudStackProvider(
            endpoint=url,
            region="cn",
            company_id=200000236,
            public_key="bench-pk",
            private_key="bench-sk",
        )
        upload = provider.import_local(
            LocalImport(
                name="bench",
                image_format="qcow2",
                os=OsInfo(type="Linux", distribution="Ubuntu", version="22.04"),
                idempotency_key="bench",
                size_gib=1,
            )
        )
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        digest = stream_upload(
            provider, upload, path, part_bytes=part_mib * MIB, expected_sha256=checksum
        )
        elapsed = time.monotonic() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        provider.close()
        emulator.stop()
    assert digest == checksum
    print(
        json.dumps(
            {
                "size_mib": size_mib,
                "part_mib": part_mib,
                "seconds": round(elapsed, 1),
                "rss_before_mib": before // 1024,
                "peak_rss_mib": peak // 1024,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024], help="MiB")
    parser.add_argument("--part-mib", type=int, default=16)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.part_mib)
        return
    print("| file | part | time | RSS before | peak RSS |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(size), "--part-mib", str(args.part_mib)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        row = json.loads(out.strip().splitlines()[-1])
        print(
            f"| {row['size_mib']} MiB | {row['part_mib']} MiB | {row['seconds']} s "
            f"| {row['rss_before_mib']} MiB | {row['peak_rss_mib']} MiB |"
        )


if __name__ == "__main__":
    main()
