"""`image-operator status [KIND[/NAME]]` and `kubectl imageops status ...`: print the tree once,
or with `--watch` follow it live (a watch on the kinds the tree reads, redrawn on each change).

Exit codes: 0 shown (or `--watch-timeout` reached), 1 the object is not found, 2 a usage error,
3 no cluster (no usable kubeconfig, or it cannot be reached), 4 the cluster refused the
credentials or the request (401/403), 5 the imageops CRDs are not installed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from image_operator.statusview import kube
from image_operator.statusview.kinds import ORDER, Target, UsageError, parse_target
from image_operator.statusview.render import Style, colour_wanted, legend, render, unicode_ok
from image_operator.statusview.tree import Snapshot, TreeBuilder

DEBOUNCE_SECONDS = 0.2  # events closer than this are drawn as one frame
TTY_TICK_SECONDS = 1.0  # a terminal is redrawn this often, so "ago" and ETAs move
CLEAR = "\x1b[H\x1b[2J"

DESCRIPTION = """\
Show imageops objects as a tree: an ImagePipeline with its runs, their targets and Images;
a CommunityListing with its versions; an Image with its copies and what shares it; each with
its state, progress and ETA."""
EPILOG = """\
KIND is a kind, plural, singular or short name (image, images, img, ipl, cl, bimg, iprov).
Without KIND: every imageops object of the namespace, grouped. Symbols: {legend}.
Exit codes: 0 shown, 1 not found, 2 usage, 3 no cluster reachable or no kubeconfig,
4 refused (401/403), 5 CRDs not installed, 130 interrupted."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        nargs="*",
        metavar="KIND[/NAME]",
        help="what to show: KIND/NAME or KIND NAME (one object), KIND (all of a kind), "
        "nothing (everything in the namespace)",
    )
    parser.add_argument("-n", "--namespace", help="the namespace (default: the context's)")
    parser.add_argument(
        "-A", "--all-namespaces", action="store_true", help="every namespace, one tree each"
    )
    parser.add_argument("--kubeconfig", help="the kubeconfig file (default: KUBECONFIG)")
    parser.add_argument("--context", help="the kubeconfig context (default: the current one)")
    parser.add_argument(
        "-w", "--watch", action="store_true", help="follow live: redraw on every change"
    )
    parser.add_argument(
        "--watch-timeout",
        type=float,
        metavar="SECONDS",
        help="with --watch: stop after this long (exit code 0)",
    )
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="auto: on a terminal, unless NO_COLOR is set",
    )
    parser.description = DESCRIPTION
    parser.epilog = EPILOG.format(legend=legend(unicode_ok(sys.stdout.encoding)))
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.set_defaults(func=main)


def view(
    snapshot: Snapshot,
    target: Target,
    namespace: str | None,
    now: datetime,
    style: Style,
    *,
    missing_ok: bool = False,
) -> list[str]:
    """The lines to print for `target` (pure). One object: its tree (not found raises, unless
    `missing_ok`, which says so instead). Otherwise a tree per namespace (`namespace` None: all
    that hold any object)."""
    if target.kind is not None and target.name is not None:
        assert namespace is not None  # KIND/NAME is refused with --all-namespaces
        kind = target.kind
        obj = snapshot.get(kind.plural, namespace, target.name)
        if obj is None:
            message = f"{kind.kind} {target.name} not found in namespace {namespace}"
            if not missing_ok:
                raise kube.StatusError(message, kube.EXIT_NOT_FOUND)
            return [message + " (watching for it)"]
        builder = TreeBuilder(snapshot, namespace, now)
        lines = render(builder.expanded(kind.plural, obj), style)
        lines += [f"{p} not shown: {why}" for p, why in sorted(snapshot.hidden.items())]
        return lines
    kinds = ORDER if target.kind is None else (target.kind.plural,)
    namespaces = [namespace] if namespace is not None else snapshot.namespaces()
    if not namespaces:
        return ["no imageops objects in any namespace"]
    lines = []
    for index, name in enumerate(namespaces):
        if index:
            lines.append("")
        lines += render(TreeBuilder(snapshot, name, now).grouped(kinds), style)
    return lines


def _check(args: argparse.Namespace) -> Target:
    target = parse_target(args.target)
    if args.all_namespaces and args.namespace:
        raise UsageError("--namespace and --all-namespaces exclude each other")
    if args.all_namespaces and target.name:
        raise UsageError(
            f"{target.kind.kind if target.kind else ''} {target.name}: one object is shown "
            "from one namespace; use -n NAMESPACE instead of --all-namespaces"
        )
    if args.watch_timeout is not None and not args.watch:
        raise UsageError("--watch-timeout needs --watch")
    return target


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """The subcommand: exit codes as the module says; errors go to stderr as one sentence."""
    out = out or sys.stdout
    try:
        target = _check(args)
        isatty = out.isatty()
        style = Style(
            colour=colour_wanted(args.color, isatty=isatty, env=os.environ),
            unicode=unicode_ok(getattr(out, "encoding", None)),
        )
        if not style.unicode and hasattr(out, "reconfigure"):
            # A message from a cloud may still hold characters the output cannot carry.
            out.reconfigure(errors="replace")
        cluster = kube.connect(args.kubeconfig, args.context)
        namespace = None if args.all_namespaces else (args.namespace or cluster.namespace)
        reader = kube.Reader(cluster, namespace)
        needed = () if target.kind is None else (target.kind.plural,)
        if args.watch:
            return _watch(reader, target, needed, style, out, args.watch_timeout, isatty)
        snapshot, _ = reader.read(target.reads, needed)
        lines = view(snapshot, target, namespace, datetime.now(UTC), style)
        out.write("\n".join(lines) + "\n")
        out.flush()
        return 0
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return kube.EXIT_USAGE
    except kube.StatusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader left (`... | head`): nothing more to say, and nothing to say it to.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        return 0


def _watch(
    reader: kube.Reader,
    target: Target,
    needed: Sequence[str],
    style: Style,
    out: TextIO,
    timeout: float | None,
    isatty: bool,
) -> int:
    changed = threading.Event()
    live = kube.LiveSnapshot(reader, target.reads, changed)
    live.start(needed)
    deadline = None if timeout is None else time.monotonic() + timeout
    what = "everything" if target.kind is None else target.kind.plural
    if target.name:
        what = f"{target.kind.kind if target.kind else ''} {target.name}"
    context = reader.cluster.context or reader.cluster.server
    shown: list[str] | None = None
    try:
        while True:
            now = datetime.now(UTC)
            lines = view(live.snapshot(), target, reader.namespace, now, style, missing_ok=True)
            lines = [style.paint(p, "33") for p in live.problems()] + lines
            if lines != shown:
                stamp = now.astimezone().strftime("%H:%M:%S")
                if isatty:
                    title = f"watching {what} in {reader.where} ({context}); Ctrl-C stops"
                    out.write(CLEAR + style.paint(f"{title}  {stamp}", "2") + "\n\n")
                else:
                    out.write(f"--- {stamp}\n")
                out.write("\n".join(lines) + "\n")
                out.flush()
                shown = lines
            wait = TTY_TICK_SECONDS if isatty else None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return 0
                wait = left if wait is None else min(wait, left)
            if changed.wait(wait):
                time.sleep(DEBOUNCE_SECONDS)
                changed.clear()
    finally:
        live.stop()
