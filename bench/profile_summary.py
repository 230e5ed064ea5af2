"""Where an operator's CPU goes, from a py-spy raw profile (`bench/scale.py --profile FILE`).

py-spy's raw format is one collapsed stack per line, frames separated by ";" and the sample
count last. Each sample counts towards every area (a source file pattern) on its stack, so the
shares are inclusive and overlap: "Image handler" holds "cloud HTTP".

    .venv/bin/python bench/profile_summary.py /tmp/profile.txt
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

# (label, source file fragments): a sample is in the area when any frame is in one of them.
AREAS: list[tuple[str, tuple[str, ...]]] = [
    ("Image handler (handlers/image.py)", ("image_operator/handlers/image.py",)),
    ("  its reconciler (reconcilers/)", ("image_operator/reconcilers/",)),
    ("  cloud HTTP (providers/, httpx)", ("image_operator/providers/",)),
    ("  the kopf diff base (handlers/diffbase.py)", ("image_operator/handlers/diffbase.py",)),
    ("kopf event processing (reactor/processing.py)", ("kopf/_core/reactor/processing.py",)),
    ("  patching (clients/patching.py)", ("kopf/_cogs/clients/patching.py",)),
    ("  posting events (engines/posting.py)", ("kopf/_core/engines/posting.py",)),
    ("kopf watching (clients/watching.py)", ("kopf/_cogs/clients/watching.py",)),
    ("kopf's API client (aiohttp, TLS)", ("aiohttp/", "asyncio/sslproto.py", "ssl.py")),
    ("logging", ("logging/__init__.py",)),
    ("JSON", ("json/",)),
]


def frame_file(frame: str) -> str:
    """`function (path/to/file.py:123)` → `path/to/file.py`."""
    _, _, where = frame.rpartition(" (")
    return where.rsplit(":", 1)[0]


def summarize(path: Path, top: int) -> str:
    total = 0
    areas: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        files = {frame_file(frame) for frame in frames}
        leaves[frames[-1]] += count
        for label, fragments in AREAS:
            if any(fragment in file for file in files for fragment in fragments):
                areas[label] += count
    if total == 0:
        return f"{path}: no samples"
    lines = [f"{path}: {total} samples", "", "inclusive share by area:"]
    lines += [f"  {100 * areas[label] / total:5.1f} %  {label}" for label, _ in AREAS]
    lines += ["", f"top {top} frames by own samples:"]
    lines += [f"  {100 * n / total:5.1f} %  {frame}" for frame, n in leaves.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Summarize a py-spy raw profile.")
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=15, help="frames listed by own samples")
    args = parser.parse_args()
    print(summarize(args.profile, args.top))


if __name__ == "__main__":
    main()
