"""The status command's Kubernetes side, kept thin: the lists of the kinds a tree reads, watches
that keep those lists current, and every failure as a sentence with an exit code.

A watch per kind lists, then watches from the list's resourceVersion and applies each event to
its copy; when the server says the version is too old (410) or the connection breaks, it lists
again (after a pause that grows to 10 s), and says so meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import urllib3.exceptions
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from image_operator import kubeconfig
from image_operator.api.common import GROUP, VERSION
from image_operator.statusview.health import Obj
from image_operator.statusview.kinds import KINDS
from image_operator.statusview.tree import Snapshot

EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_NO_CLUSTER = 3
EXIT_REFUSED = 4  # 401 / 403: the cluster refused who we are or what we asked
EXIT_NO_CRDS = 5
REQUEST_TIMEOUT = (10, 30)  # connect, read (seconds)
WATCH_SECONDS = 240  # the server ends each watch after this; it is started again
RETRY_MAX_SECONDS = 10.0


class StatusError(Exception):
    """A failure the command reports as a sentence and an exit code, never a traceback."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _server_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    return str(body.get("message") or exc.reason or f"HTTP {exc.status}")


def explain(exc: Exception, *, server: str, doing: str) -> StatusError:
    """What went wrong while `doing` (e.g. "list images in namespace x"), for a user."""
    if isinstance(exc, ApiException):
        message = _server_message(exc)
        if exc.status == 403:
            return StatusError(f"forbidden: cannot {doing}: {message}", EXIT_REFUSED)
        if exc.status == 401:
            return StatusError(
                f"unauthorized: the cluster at {server} refused the credentials of the "
                f"kubeconfig ({message})",
                EXIT_REFUSED,
            )
        if exc.status == 404:
            return StatusError(
                f"cannot {doing}: the cluster at {server} does not serve {GROUP}/{VERSION} "
                f"({message}); install the CRDs: kubectl apply -f crds/",
                EXIT_NO_CRDS,
            )
        if exc.status == 0 or exc.status is None:
            return StatusError(
                f"cannot reach the cluster at {server}: {exc.reason}", EXIT_NO_CLUSTER
            )
        return StatusError(f"cannot {doing}: HTTP {exc.status}: {message}", EXIT_NO_CLUSTER)
    if isinstance(exc, config.ConfigException):
        return StatusError(
            f"no usable kubeconfig: {exc} (set KUBECONFIG or pass --kubeconfig / --context)",
            EXIT_NO_CLUSTER,
        )
    reason = exc
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        reason = exc.reason
    return StatusError(f"cannot reach the cluster at {server}: {reason}", EXIT_NO_CLUSTER)


#: What connecting and reading may raise besides our own errors.
FAILURES = (ApiException, config.ConfigException, urllib3.exceptions.HTTPError, OSError)


def connect(kubeconfig_path: str | None, context: str | None) -> kubeconfig.Cluster:
    try:
        return kubeconfig.connect(kubeconfig_path, context)
    except FAILURES as exc:
        raise explain(exc, server="(none)", doing="load the kubeconfig") from exc


@dataclass(frozen=True)
class Reader:
    """Lists the imageops kinds in one namespace, or in all (`namespace` None)."""

    cluster: kubeconfig.Cluster
    namespace: str | None

    @property
    def where(self) -> str:
        return "all namespaces" if self.namespace is None else f"namespace {self.namespace}"

    def doing(self, plural: str) -> str:
        return f"list {plural}.{GROUP} in {self.where}"

    def list(self, plural: str) -> tuple[list[Obj], str]:
        """The objects of a kind and the list's resourceVersion."""
        custom = client.CustomObjectsApi(self.cluster.api)
        try:
            if self.namespace is None:
                answer = custom.list_cluster_custom_object(
                    GROUP, VERSION, plural, _request_timeout=REQUEST_TIMEOUT
                )
            else:
                answer = custom.list_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, plural, _request_timeout=REQUEST_TIMEOUT
                )
        except FAILURES as exc:
            raise explain(exc, server=self.cluster.server, doing=self.doing(plural)) from exc
        body = cast(dict[str, Any], answer)
        kind = KINDS[plural].kind
        items = [dict(item, kind=kind) for item in body.get("items") or []]
        return items, str((body.get("metadata") or {}).get("resourceVersion", ""))

    def read(self, kinds: Iterable[str], needed: Iterable[str]) -> tuple[Snapshot, dict[str, str]]:
        """Every object of `kinds`, and each list's resourceVersion. A kind outside `needed`
        that RBAC hides is left out, with the reason (a user who may read Images but not
        BaseImages still sees the Images)."""
        objects: dict[str, list[Obj]] = {}
        versions: dict[str, str] = {}
        hidden: dict[str, str] = {}
        for plural in sorted(kinds):
            try:
                objects[plural], versions[plural] = self.list(plural)
            except StatusError as exc:
                if exc.code != EXIT_REFUSED or plural in set(needed):
                    raise
                hidden[plural] = "forbidden"
        if not objects:
            raise StatusError(
                f"forbidden: cannot list any imageops kind in {self.where}", EXIT_REFUSED
            )
        return Snapshot(objects, hidden), versions


class LiveSnapshot:
    """A snapshot of `kinds` kept current by one watch per kind; `changed` is set on every
    change (and when a watch breaks or recovers)."""

    def __init__(self, reader: Reader, kinds: Iterable[str], changed: threading.Event) -> None:
        self.reader = reader
        self.kinds = sorted(kinds)
        self.changed = changed
        self._lock = threading.Lock()
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {}
        self._hidden: dict[str, str] = {}
        self._problems: dict[str, str] = {}
        self._stop = threading.Event()

    def start(self, needed: Iterable[str]) -> None:
        """List every kind (failing as `Reader.read` does), then watch each."""
        first, versions = self.reader.read(self.kinds, needed)
        for plural, items in first.objects.items():
            self._replace(plural, list(items))
        self._hidden = dict(first.hidden)
        for plural, version in versions.items():
            threading.Thread(target=self._watch, args=(plural, version), daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def snapshot(self) -> Snapshot:
        with self._lock:
            objects = {p: list(items.values()) for p, items in self._objects.items()}
            return Snapshot(objects, dict(self._hidden))

    def problems(self) -> list[str]:
        with self._lock:
            return [f"watch of {p}: {why}" for p, why in sorted(self._problems.items())]

    def _replace(self, plural: str, items: list[Obj]) -> None:
        with self._lock:
            self._objects[plural] = {_key(item): item for item in items}

    def _apply(self, plural: str, event: dict[str, Any]) -> None:
        obj = event.get("object")
        if not isinstance(obj, dict) or event.get("type") not in ("ADDED", "MODIFIED", "DELETED"):
            return
        obj = dict(obj, kind=KINDS[plural].kind)
        with self._lock:
            items = self._objects.setdefault(plural, {})
            if event["type"] == "DELETED":
                items.pop(_key(obj), None)
            else:
                items[_key(obj)] = obj
        self.changed.set()

    def _problem(self, plural: str, why: str | None) -> None:
        with self._lock:
            before = self._problems.get(plural)
            if why is None:
                self._problems.pop(plural, None)
            else:
                self._problems[plural] = why
        if before != why:
            self.changed.set()

    def _watch(self, plural: str, version: str | None) -> None:
        pause = 1.0
        while not self._stop.is_set():
            try:
                if version is None:
                    items, version = self.reader.list(plural)
                    self._replace(plural, items)
                    self._problem(plural, None)
                    self.changed.set()
                version = self._follow(plural, version)
                pause = 1.0
                continue
            except ApiException as exc:
                if exc.status == 410:  # the history is gone: list again, at once
                    version = None
                    continue
                why = str(explain(exc, server=self.reader.cluster.server, doing="watch"))
            except StatusError as exc:
                why = str(exc)
            except FAILURES as exc:
                why = str(explain(exc, server=self.reader.cluster.server, doing="watch"))
            self._problem(plural, f"{why}; retrying")
            version = None
            self._stop.wait(pause)
            pause = min(RETRY_MAX_SECONDS, pause * 2)

    def _follow(self, plural: str, version: str) -> str | None:
        """Apply events from `version` on until the server ends the watch; the version to go
        on from, or None when the history is gone (list again)."""
        custom = client.CustomObjectsApi(self.reader.cluster.api)
        stream: Callable[..., Any]
        args: tuple[Any, ...]
        if self.reader.namespace is None:
            stream, args = custom.list_cluster_custom_object, (GROUP, VERSION, plural)
        else:
            stream = custom.list_namespaced_custom_object
            args = (GROUP, VERSION, self.reader.namespace, plural)
        watcher = watch.Watch()  # type: ignore[no-untyped-call]
        try:
            for event in watcher.stream(  # type: ignore[no-untyped-call]
                stream,
                *args,
                resource_version=version,
                timeout_seconds=WATCH_SECONDS,
                allow_watch_bookmarks=True,
                _request_timeout=(REQUEST_TIMEOUT[0], WATCH_SECONDS + 30),
            ):
                if self._stop.is_set():
                    break
                if event.get("type") == "ERROR":
                    return None
                self._apply(plural, event)
                meta = (event.get("object") or {}).get("metadata") or {}
                version = str(meta.get("resourceVersion") or version)
        finally:
            with contextlib.suppress(Exception):
                watcher.stop()  # type: ignore[no-untyped-call]
        return version


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))
