"""The `image-operator` command: run the operator, generate CRDs, render commands, emulate."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from image_operator import __version__


def _crds(args: argparse.Namespace) -> int:
    from image_operator.api import crdgen

    targets = [Path(p) for p in args.output]
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


def _generate(args: argparse.Namespace) -> int:
    from image_operator import generated

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


def _render(args: argparse.Namespace) -> int:
    from image_operator import commandtemplate

    try:
        manifest = yaml.safe_load(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    try:
        values = commandtemplate.parse_set_arguments(args.set or [])
        lines = commandtemplate.render_manifest(manifest or {}, values)
    except commandtemplate.TemplateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


def _run(args: argparse.Namespace) -> int:
    import logging

    import kopf
    import prometheus_client

    from image_operator.settings import LogFormat, Settings

    settings = Settings()
    namespaces = args.namespace or settings.namespaces
    standalone = args.standalone or settings.standalone
    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON
        if settings.log_format is LogFormat.JSON
        else kopf.LogFormat.FULL,
    )
    logging.getLogger().setLevel("DEBUG" if args.verbose else settings.log_level)
    # One INFO line per cloud request drowns the operator's own story; keep them for --verbose.
    logging.getLogger("httpx").setLevel("DEBUG" if args.verbose else "WARNING")
    import image_operator.handlers  # noqa: F401  (registers the handlers)

    if settings.metrics_port:
        prometheus_client.start_http_server(settings.metrics_port)
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    kopf.run(
        standalone=standalone,
        # Naming a peering makes it mandatory in kopf, which a standalone run must not ask for.
        peering_name=None if standalone else settings.peering_name,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness,
    )
    return 0


def _upload(args: argparse.Namespace) -> int:
    import signal

    from image_operator import upload
    from image_operator.providers.errors import ProviderError

    def cancel(_signum: int, _frame: object) -> None:
        raise upload.Cancelled()

    # SIGTERM unwinds like Ctrl-C, so the half-done multipart upload is aborted, not orphaned.
    signal.signal(signal.SIGTERM, cancel)
    try:
        return upload.run(
            args.image, Path(args.file), namespace=args.namespace, part_bytes=args.part_size
        )
    except (upload.UploadError, ProviderError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1


def _emulator(argv: Sequence[str]) -> int:
    from image_operator.emulator import server

    return server.main(list(argv))


def _local_cluster(argv: Sequence[str]) -> int:
    from image_operator import localcluster

    return localcluster.main(list(argv))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="image-operator", description=__doc__)
    parser.add_argument("--version", action="version", version=f"image-operator {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator against the current kubeconfig/cluster")
    run.add_argument(
        "-n", "--namespace", action="append", help="watch only this namespace (repeatable)"
    )
    run.add_argument("--standalone", action="store_true", help="no peering (single replica only)")
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=_run)

    crds = sub.add_parser("crds", help="write the CRDs generated from the models")
    crds.add_argument(
        "--output",
        action="append",
        default=None,
        help="directory (repeatable; default: crds/ and charts/image-operator/crds/)",
    )
    crds.add_argument("--check", action="store_true", help="fail if the files are out of date")
    crds.set_defaults(func=_crds)

    generate = sub.add_parser(
        "generate", help="write every generated file: CRDs, chart values schema, reference docs"
    )
    generate.add_argument("--root", default=".", help="repository root (default: .)")
    generate.add_argument("--check", action="store_true", help="fail if any file is out of date")
    generate.set_defaults(func=_generate)

    render = sub.add_parser("render", help="render an Image manifest's command template")
    render.add_argument("file", help="an Image manifest (YAML)")
    render.add_argument(
        "--set", action="append", metavar="KIND.NAME=VALUE", help="e.g. inputs.task_id=42"
    )
    render.set_defaults(func=_render)

    up = sub.add_parser("upload", help="upload a local disk file into an Image (source.upload)")
    up.add_argument("image", help="img/NAME: the Image whose spec.source.upload takes the file")
    up.add_argument("file", help="the disk image file (qcow2, iso, ...), streamed part by part")
    up.add_argument("-n", "--namespace", help="the Image's namespace (default: the context's)")
    up.add_argument(
        "--part-size", type=int, default=16 * 1024 * 1024, help="bytes per part (min 5 MiB)"
    )
    up.set_defaults(func=_upload)

    sub.add_parser("emulator", help="serve the bundled cloud emulator (see --help)", add_help=False)
    sub.add_parser(
        "local-cluster", help="start a local kube-apiserver + etcd (see --help)", add_help=False
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # These two own their flags; hand the rest of the line over untouched.
    if argv and argv[0] == "emulator":
        return _emulator(argv[1:])
    if argv and argv[0] == "local-cluster":
        return _local_cluster(argv[1:])
    args = build_parser().parse_args(argv)
    if getattr(args, "output", None) is None and args.command == "crds":
        args.output = ["crds", "charts/image-operator/crds"]
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
