"""The `image-operator` command: run the operator, render commands, upload disk images, show
objects as a tree; plus the development commands (emulator, local-cluster, crds, generate) that
image-operator-dev plugs in. `kubectl-imageops` is the same `status` as a kubectl plugin."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import yaml

from image_operator import __version__

#: The subcommands of the operator itself; anything else comes from an installed plugin.
RUNTIME_COMMANDS = frozenset({"run", "render", "upload", "download-url", "status"})
#: The entry-point group where development commands register: `name = "module:function"`,
#: the function taking the rest of the command line and returning an exit code. The
#: image-operator-dev distribution (dev/pyproject.toml) fills it; this package never imports it.
COMMANDS_GROUP = "image_operator.commands"
#: The development commands we know of, so that their absence is explained, not "invalid choice".
DEV_COMMANDS = {
    "emulator": "serve the bundled cloud emulator (see --help)",
    "local-cluster": "start a local kube-apiserver + etcd (see --help)",
    "crds": "write the CRDs generated from the models",
    "generate": "write every generated file: CRDs, chart values schema, reference docs",
}
INSTALL_HINT = "run `pip install ./dev` in the checkout (or `make venv`, which installs it)"


def _dev_commands() -> dict[str, importlib.metadata.EntryPoint]:
    """Installed development commands by name (none where only the runtime wheel is)."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=COMMANDS_GROUP)}


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
    import secrets

    import kopf
    import prometheus_client

    from image_operator.handlers.sharding import (
        ShardingUnsupported,
        check_server_filters,
        peering_name,
    )
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
    if settings.shards > 1:
        try:
            check_server_filters(_list_one, settings.shard_index, settings.shards)
        except ShardingUnsupported as exc:
            print(f"image-operator: {exc}", file=sys.stderr)
            return 2
    # Distinct priorities elect one active replica; equal ones would pause them all.
    priority = settings.peering_priority
    if priority is None:
        priority = secrets.randbelow(2**31 - 1) + 1
    kopf.run(
        standalone=standalone,
        priority=priority,
        # Naming a peering makes it mandatory in kopf, which a standalone run must not ask for.
        peering_name=None
        if standalone
        else peering_name(settings.peering_name, settings.shard_index, settings.shards),
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness,
    )
    return 0


def _list_one(path: str, selector: str) -> tuple[int, Mapping[str, Any]]:
    """HTTP status and answer of listing one object at `path` with `shardSelector` (the
    kubeconfig's or in-cluster credentials, as kopf uses): the sharding check's probe."""
    from image_operator.handlers.context import context

    api = context().kube.api
    method, url, headers, body, post = api.param_serialize(
        "GET",
        path,
        query_params=[("limit", 1), ("shardSelector", selector)],
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    response = api.call_api(method, url, headers, body, post, _request_timeout=30)
    data = response.read()  # type: ignore[no-untyped-call]
    try:
        answer = json.loads(data)
    except ValueError:
        answer = {"message": data.decode(errors="replace")[:500]}
    return response.status, cast(Mapping[str, Any], answer if isinstance(answer, dict) else {})


def _upload(args: argparse.Namespace) -> int:
    import signal

    from image_operator import upload

    def cancel(_signum: int, _frame: object) -> None:
        raise upload.Cancelled()

    # SIGTERM unwinds like Ctrl-C, so the half-done multipart upload is aborted, not orphaned.
    signal.signal(signal.SIGTERM, cancel)
    # The progress line is rewritten in place (\r): an error starts on a line of its own.
    return _cluster_command(
        lambda: upload.run(
            args.image, Path(args.file), namespace=args.namespace, part_bytes=args.part_size
        ),
        lead="\n",
    )


def _download_url(args: argparse.Namespace) -> int:
    from image_operator import downloadurl

    return _cluster_command(
        lambda: downloadurl.run(args.image, namespace=args.namespace, output=args.output)
    )


def _cluster_command(command: Callable[[], int], lead: str = "") -> int:
    """Run a command that reads the cluster (and a cloud): each way it can fail is one sentence
    on stderr and an exit code (1 refused or failed, 3 no usable kubeconfig, 4 not allowed),
    never a traceback."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config import ConfigException

    from image_operator.imageaccess import CommandError
    from image_operator.providers.errors import ProviderError

    try:
        return command()
    except (CommandError, ProviderError) as exc:
        print(f"{lead}error: {exc}", file=sys.stderr)
        return 1
    except ConfigException as exc:
        print(f"{lead}error: no usable kubeconfig: {exc}", file=sys.stderr)
        return 3
    except ApiException as exc:
        # The Image, its ImageProvider or its Secret: the API server's reason names which.
        print(f"{lead}error: the cluster answered HTTP {exc.status}: {exc.reason}", file=sys.stderr)
        return 4 if exc.status in (401, 403) else 1


def _status(args: argparse.Namespace) -> int:
    from image_operator.statusview import command

    return command.main(args)


def _add_status(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from image_operator.statusview import command

    status = sub.add_parser(
        "status", help="show pipelines, listings, images as a tree with their state (--watch: live)"
    )
    command.add_arguments(status)
    status.set_defaults(func=_status)


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

    render = sub.add_parser("render", help="render an Image manifest's command template")
    render.add_argument("file", help="an Image manifest (YAML)")
    render.add_argument(
        "--set", action="append", metavar="KIND.NAME=VALUE", help="e.g. inputs.task_id=42"
    )
    render.set_defaults(func=_render)

    up = sub.add_parser(
        "upload",
        help="upload a local disk file into an Image (source.upload)",
        description="Stream a local disk file into the cloud image of an Image whose "
        "spec.source.upload names it, part by part (Ctrl-C or SIGTERM aborts the upload in the "
        "cloud). Exit codes: 0 uploaded, 1 the Image, its provider, the file or the cloud "
        "refused (the reason on stderr), 3 no usable kubeconfig, 4 refused (401/403).",
    )
    up.add_argument("image", help="img/NAME: the Image whose spec.source.upload takes the file")
    up.add_argument("file", help="the disk image file (qcow2, iso, ...), streamed part by part")
    up.add_argument("-n", "--namespace", help="the Image's namespace (default: the context's)")
    up.add_argument(
        "--part-size", type=int, default=16 * 1024 * 1024, help="bytes per part (min 5 MiB)"
    )
    up.set_defaults(func=_upload)

    dl = sub.add_parser(
        "download-url",
        help="print a time-limited link to an Image's file (ucloudstack: GetImageDownloadURL)",
        description="Ask the Image's cloud for a link to its file, with the keys of its "
        "ImageProvider's Secret (your RBAC must allow reading it). The link goes to stdout "
        "alone, its format and expiry to stderr; it is never stored in status: whoever holds "
        "it can download the image until it expires. Exit codes: 0 printed, 1 the Image, its "
        "provider or its cloud cannot give one (the reason on stderr), 3 no usable kubeconfig, "
        "4 refused (401/403).",
    )
    dl.add_argument("image", help="img/NAME: a Ready Image of a ucloudstack provider")
    dl.add_argument("-n", "--namespace", help="the Image's namespace (default: the context's)")
    dl.add_argument(
        "-o",
        "--output",
        choices=("url", "json"),
        default="url",
        help="url: the link alone; json: {url, format, expiresAt (Unix seconds)}",
    )
    dl.set_defaults(func=_download_url)

    _add_status(sub)

    installed = _dev_commands()
    for name in sorted({*DEV_COMMANDS, *installed}):
        help_text = DEV_COMMANDS.get(name, "a development command of image-operator-dev")
        if name not in installed:
            help_text += " (not installed: needs image-operator-dev, `pip install ./dev`)"
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # A development command owns its flags: hand the rest of the line over untouched.
    if argv and argv[0] not in RUNTIME_COMMANDS and not argv[0].startswith("-"):
        installed = _dev_commands()
        if argv[0] in installed:
            command = installed[argv[0]].load()
            return int(command(argv[1:]))
        if argv[0] in DEV_COMMANDS:
            print(
                f"error: `image-operator {argv[0]}` is a development command, served by the "
                "image-operator-dev distribution (dev/ in a checkout of image-operator), which "
                f"is not installed here: {INSTALL_HINT}",
                file=sys.stderr,
            )
            return 2
    args = build_parser().parse_args(argv)
    return int(args.func(args))


def kubectl_plugin(argv: Sequence[str] | None = None) -> int:
    """`kubectl imageops status ...`: kubectl runs the `kubectl-imageops` executable it finds
    on PATH with the rest of its command line (flags such as -n and --context included)."""
    parser = argparse.ArgumentParser(
        prog="kubectl imageops", description="image-operator's view of imageops objects."
    )
    parser.add_argument("--version", action="version", version=f"image-operator {__version__}")
    _add_status(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
