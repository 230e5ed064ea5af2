"""The developer subcommands of `image-operator`, found by the runtime CLI through the
`image_operator.commands` entry-point group (see dev/pyproject.toml).

Each is `(argv) -> exit code` and owns its flags; heavy imports happen inside, so listing the
commands stays cheap.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

#: Where `image-operator crds` writes without --output (relative to the current directory).
DEFAULT_CRD_DIRS = ("crds", "charts/image-operator/crds")


def emulator(argv: Sequence[str]) -> int:
    """serve the bundled cloud emulator (see --help)"""
    from image_operator_dev.emulator import server

    return server.main(list(argv))


def local_cluster(argv: Sequence[str]) -> int:
    """start a local kube-apiserver + etcd (see --help)"""
    from image_operator_dev import localcluster

    return localcluster.main(list(argv))


def crds(argv: Sequence[str]) -> int:
    """write the CRDs generated from the models"""
    from image_operator_dev import crdgen

    parser = argparse.ArgumentParser(prog="image-operator crds", description=crds.__doc__)
    parser.add_argument(
        "--output",
        action="append",
        default=None,
        help="directory (repeatable; default: crds/ and charts/image-operator/crds/)",
    )
    parser.add_argument("--check", action="store_true", help="fail if the files are out of date")
    args = parser.parse_args(list(argv))
    targets = [Path(p) for p in (args.output or DEFAULT_CRD_DIRS)]
    if args.check:
        drifted = {str(t): crdgen.drift(t) for t in targets}
        stale = {t: names for t, names in drifted.items() if names}
        for stale_dir, names in stale.items():
            print(f"{stale_dir}: out of date: {', '.join(names)}", file=sys.stderr)
        if stale:
            print("run `image-operator crds` to regenerate", file=sys.stderr)
            return 1
        return 0
    for target in targets:
        for path in crdgen.write(target):
            print(path)
    return 0


def generate(argv: Sequence[str]) -> int:
    """write every generated file: CRDs, chart values schema, reference docs"""
    from image_operator_dev import generated

    parser = argparse.ArgumentParser(prog="image-operator generate", description=generate.__doc__)
    parser.add_argument("--root", default=".", help="repository root (default: .)")
    parser.add_argument("--check", action="store_true", help="fail if any file is out of date")
    args = parser.parse_args(list(argv))
    root = Path(args.root)
    if args.check:
        stale = generated.drift(root)
        for path in stale:
            print(f"out of date: {path}", file=sys.stderr)
        if stale:
            print("run `image-operator generate` (or `make generate`) and commit", file=sys.stderr)
            return 1
        return 0
    for path in generated.write(root):
        print(path)
    return 0
