"""Benchmark: N Images to Ready on a real local control plane, image-operator against a bare kopf
floor operator in the same run (issue 14).

One run starts, in its own temporary directory and on free loopback ports: etcd and
kube-apiserver (`LocalCluster`, the build in ~/.cache/image-operator), the cloud emulator as a
process (Argon, zero creation delay), then, one after the other in namespaces of their own:

1. the floor (bench/floor_operator.py: kopf, same CRD, marks each Image Ready on create);
2. image-operator (`python -m image_operator run --standalone`) with an argon ImageProvider.

For each, one `kubectl apply --server-side` of all N Images, and a watch that records when
every Image has been seen with Ready=True. Around that window: the API server's
`apiserver_request_total` (so writes and reads per Image by verb, resource and subresource),
CPU (user+sys from /proc) of the operator, kube-apiserver, etcd and the emulator, the
operator's RSS, and the emulator's request counts. Then the restart storm: kill -9
image-operator with N Ready, start it again, and count cloud calls until it is idle.

    .venv/bin/python bench/scale.py --images 200
    .venv/bin/python bench/scale.py --images 1000 --pairs 7   # median wall ratio of 7 pairs
    .venv/bin/python bench/scale.py --memory-only 10000
    .venv/bin/python bench/scale.py --shards 2 --images 2000   # two shards, one namespace

Every process it starts is stopped at the end, and its directory removed (--keep keeps it).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

from image_operator.handlers.sharding import owns
from image_operator_dev.localcluster import (
    LocalCluster,
    apply_manifests,
    find_kubectl,
    resolve_binaries,
)

ROOT = Path(__file__).resolve().parents[1]
FLOOR = Path(__file__).resolve().parent / "floor_operator.py"
GROUP, VERSION = "imageops.io", "v1alpha1"
IMAGES = f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/images"
ARGON_TOKEN = "bench-token"
WARM_UP = "warm-up"  # the Image each operator makes Ready before the measured window
# The emulator listens on loopback, which the operator refuses as an endpoint unless allowed.
LOOPBACK_CIDRS = "127.0.0.0/8,::1/128"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION"})
# The API server's own bookkeeping (its identity lease every 10 s): no operator's doing.
NOT_OURS = frozenset({"leases"})
# `python -c` program: image-operator's entry point under tracemalloc (-X tracemalloc=1); on
# SIGUSR1 it writes the live memory by source line and by file, largest first.
TRACED_OPERATOR = """
import runpy, signal, sys, tracemalloc
def dump(*_):
    snapshot = tracemalloc.take_snapshot()
    total = sum(s.size for s in snapshot.statistics("filename"))
    with open({output!r} + ".tmp", "w") as out:
        out.write(f"traced {{total / 2**20:.1f}} MiB\\n")
        for key in ("lineno", "filename"):
            out.write(f"\\nby {{key}}:\\n")
            for stat in snapshot.statistics(key)[:30]:
                out.write(f"{{stat.size / 2**20:8.2f}} MiB {{stat.count:9d}} {{stat.traceback}}\\n")
    import os; os.replace({output!r} + ".tmp", {output!r})
signal.signal(signal.SIGUSR1, dump)
sys.argv[0] = "image_operator"
runpy.run_module("image_operator", run_name="__main__", alter_sys=True)
"""
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


# --- processes -------------------------------------------------------------------------------


def say(message: str) -> None:
    """Progress on stderr; the figures go to stdout."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat, fields 14 and 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB: resident now, and its peak."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


class Child:
    """A process of the benchmark, its output in a log file; killed at the end whatever
    happens (its own session, so a Ctrl-C reaches the benchmark, which stops it)."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.log_path = log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self, stdout: int | IO[bytes] | None = None) -> None:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=stdout if stdout is not None else log,
                stderr=log,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill: no cleanup, no last write."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


# --- the API server ---------------------------------------------------------------------------


def api_client(cluster: LocalCluster, timeout: float | None = 30.0) -> httpx.Client:
    if cluster.ca_data is not None:
        verify: ssl.SSLContext | bool = ssl.create_default_context(
            cadata=cluster.ca_data.decode("ascii")
        )
    else:
        verify = False
    return httpx.Client(
        base_url=cluster.server_url,
        headers={"Authorization": f"Bearer {cluster.token}"},
        verify=verify,
        timeout=timeout,
        trust_env=False,
    )


RequestKey = tuple[str, str, str]  # (verb, resource, subresource)


def request_counts(api: httpx.Client) -> Counter[RequestKey]:
    """`apiserver_request_total` summed over codes, scopes and components."""
    counts: Counter[RequestKey] = Counter()
    for line in api.get("/metrics").raise_for_status().text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels_text, _, value = line.rpartition("} ")
        labels = dict(_LABEL.findall(labels_text))
        key = (labels.get("verb", ""), labels.get("resource", ""), labels.get("subresource", ""))
        counts[key] += int(float(value))
    return counts


def metric_sum(text: str, name: str, **match: str) -> int:
    """The sum of a Prometheus text exposition's samples of `name` whose labels hold `match`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        labels_text, _, value = line.rpartition("} ")
        labels = dict(_LABEL.findall(labels_text))
        if all(labels.get(key) == wanted for key, wanted in match.items()):
            total += float(value)
    return int(total)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def is_ready(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class ReadyWatch(threading.Thread):
    """Lists then watches a namespace's Images; `done` is set (and `done_at` taken) once every
    name of `expected` has been seen with Ready=True."""

    def __init__(self, cluster: LocalCluster, namespace: str, expected: set[str]) -> None:
        super().__init__(name=f"watch-{namespace}", daemon=True)
        self.cluster = cluster
        self.path = IMAGES.format(namespace=namespace)
        self.expected = expected
        self.ready: set[str] = set()
        self.events = 0
        self.done = threading.Event()
        self.done_at = 0.0
        self.listed = threading.Event()
        self._stopping = False
        self._client: httpx.Client | None = None

    def _seen(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if name in self.expected and is_ready(obj):
            self.ready.add(name)
            if len(self.ready) == len(self.expected) and not self.done.is_set():
                self.done_at = time.monotonic()
                self.done.set()

    def run(self) -> None:
        with api_client(self.cluster, timeout=None) as client:
            self._client = client
            version = ""
            while not self._stopping:
                if not version:
                    listing = client.get(self.path).raise_for_status().json()
                    for item in listing["items"]:
                        self._seen(item)
                    version = listing["metadata"]["resourceVersion"]
                    self.listed.set()
                params = {
                    "watch": "1",
                    "resourceVersion": version,
                    "allowWatchBookmarks": "true",
                    "timeoutSeconds": "3600",
                }
                try:
                    with client.stream("GET", self.path, params=params) as response:
                        for line in response.iter_lines():
                            if not line:
                                continue
                            event = json.loads(line)
                            obj = event["object"]
                            if event["type"] == "ERROR":
                                version = ""  # too old: list again
                                break
                            version = obj["metadata"]["resourceVersion"]
                            if event["type"] in ("ADDED", "MODIFIED"):
                                self.events += 1
                                self._seen(obj)
                except httpx.HTTPError:
                    if self._stopping:
                        return
                    time.sleep(0.5)

    def stop(self) -> None:
        self._stopping = True
        if self._client is not None:
            self._client.close()


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Window:
    """What one measured window cost: API requests, CPU per process, cloud requests."""

    seconds: float
    requests: Counter[RequestKey]
    cpu: dict[str, float]
    cloud: Counter[str]
    # What each process would have burnt idle over the window (its rate in a quiet stretch
    # just before): kube-apiserver and etcd are never quite idle.
    idle_cpu: dict[str, float] = field(default_factory=dict)

    def net_cpu(self, name: str) -> float:
        return max(0.0, self.cpu.get(name, 0.0) - self.idle_cpu.get(name, 0.0))

    def writes(self) -> Counter[RequestKey]:
        return Counter(
            {k: v for k, v in self.requests.items() if k[0] in WRITE_VERBS and k[1] not in NOT_OURS}
        )


@dataclass
class RunResult:
    kind: str
    images: int
    wall: float
    apply_seconds: float
    window: Window
    rss_mib: float
    hwm_mib: float
    watch_events: int
    rss_later_mib: float | None = None
    restart: dict[str, Any] = field(default_factory=dict)


def image_manifest(name: str, namespace: str) -> dict[str, Any]:
    """The Image of tests/integration (image_manifest): an Argon image with a command."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Image",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "providerRef": {"name": "argon"},
            "source": {"repository": {"image": "nvidia/cuda10.1:tensorflow_mgdc-test-v0.1"}},
            "displayName": f"Image {name}",
            "price": "0",
            "command": ["python3 main.py --task_id={{inputs.task_id}} --out={{outputs.output}}"],
            "inputs": [{"name": "task_id", "displayName": "Task ID", "default": "-", "index": 0}],
            "outputs": [{"name": "output", "type": "path", "default": "/data/out", "index": 1}],
        },
    }


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path, cluster: LocalCluster) -> None:
        self.args = args
        self.work = work
        self.cluster = cluster
        self.api = api_client(cluster)
        self.kubectl = find_kubectl(cluster.bin_dir)
        self.children: list[Child] = []
        self.emulator_url = ""
        self.emulator: Child | None = None

    # -- processes

    def base_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("KUBERNETES_") and k not in ("KUBECONFIG", "KUBECTL_CONTEXT")
        }
        env["KUBECONFIG"] = str(self.cluster.kubeconfig_path)
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def child(self, name: str, argv: Sequence[str], env: dict[str, str]) -> Child:
        process = Child(name, argv, env, self.work / f"{name}.log")
        self.children.append(process)
        return process

    def start_emulator(self) -> None:
        config = {
            "state_dir": str(self.work / "emulator"),
            "argon": {"tokens": [ARGON_TOKEN], "creation_seconds": 0, "deletion_seconds": 0},
        }
        config_path = self.work / "emulator.yaml"
        config_path.write_text(yaml.safe_dump(config))
        argv = [sys.executable, "-m", "image_operator_dev.emulator", "--config", str(config_path)]
        argv += ["--argon-port", "0", "--log-level", "WARNING"]
        self.emulator = self.child("emulator", argv, self.base_env())
        self.emulator.start(stdout=subprocess.PIPE)
        assert self.emulator.popen is not None and self.emulator.popen.stdout is not None
        line = self.emulator.popen.stdout.readline().decode()
        if not line:
            raise RuntimeError(f"the emulator did not start:\n{self.emulator.tail()}")
        self.emulator_url = json.loads(line)["vendors"]["argon"]

    def emulator_stats(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.emulator_url}/_emulator/stats", timeout=30, trust_env=False)
        return dict(answer.raise_for_status().json())

    def cloud_calls(self) -> Counter[str]:
        routes = self.emulator_stats()["routes"]
        return Counter({route: int(entry["count"]) for route, entry in routes.items()})

    def operator_env(self, namespace: str) -> dict[str, str]:
        env = self.base_env()
        env.update(
            {
                "IMAGE_OPERATOR_NAMESPACES": namespace,
                "IMAGE_OPERATOR_HEALTH_PORT": "0",
                "IMAGE_OPERATOR_METRICS_PORT": "0",
                "IMAGE_OPERATOR_ALLOWED_ENDPOINT_CIDRS": LOOPBACK_CIDRS,
            }
        )
        return env

    def image_operator(
        self, namespace: str, name: str = "image-operator", env: dict[str, str] | None = None
    ) -> Child:
        argv = [sys.executable, "-m", "image_operator", "run", "--standalone"]
        if self.args.tracemalloc and name == "image-operator":
            # The same entry point under tracemalloc, with a SIGUSR1 handler that writes where
            # the live memory was allocated (see `memory_sites`).
            code = TRACED_OPERATOR.format(output=str(Path(self.args.tracemalloc).resolve()))
            argv = [sys.executable, "-X", "tracemalloc=1", "-c", code, "run", "--standalone"]
        return self.child(name, argv, {**self.operator_env(namespace), **(env or {})})

    def memory_sites(self, operator: Child) -> None:
        """Ask a --tracemalloc operator for its allocation sites and wait for the file."""
        output = Path(self.args.tracemalloc)
        output.unlink(missing_ok=True)
        os.kill(operator.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 120
        while not output.exists() and time.monotonic() < deadline:
            time.sleep(0.5)

    def floor_operator(self, namespace: str) -> Child:
        argv = [sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", namespace]
        return self.child("floor", [*argv, str(FLOOR)], self.base_env())

    # -- Kubernetes objects

    def run_kubectl(self, *args: str) -> None:
        """kubectl with a discovery cache of the run's own (warmed by `start_emulator`'s
        caller before any window, so no run pays for discovery)."""
        subprocess.run(
            [str(self.kubectl), f"--cache-dir={self.work / 'kubectl-cache'}", *args],
            env=self.base_env(),
            stdout=subprocess.DEVNULL,
            check=True,
        )

    def apply(self, docs: list[dict[str, Any]], name: str) -> None:
        path = self.work / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        apply_manifests(self.cluster.kubeconfig_path, [path], kubectl=self.kubectl)

    def setup_namespace(self, namespace: str, *, provider: bool) -> None:
        docs: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        ]
        if provider:
            rps, _, burst = self.args.rate_limit.partition(":")
            docs += [
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "argon-credentials", "namespace": namespace},
                    "stringData": {"token": ARGON_TOKEN},
                },
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "ImageProvider",
                    "metadata": {"name": "argon", "namespace": namespace},
                    "spec": {
                        "type": "argon",
                        "endpoint": self.emulator_url,
                        "project": "default",
                        "credentialsSecretRef": {"name": "argon-credentials"},
                        "pollIntervalSeconds": self.args.poll_interval,
                        "rateLimit": {
                            "requestsPerSecond": int(rps),
                            "burst": int(burst or rps),
                        },
                    },
                },
            ]
        self.apply(docs, f"setup-{namespace}")

    def wait_ready(self, namespace: str, plural: str, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}/{name}"
        while time.monotonic() < deadline:
            answer = self.api.get(path)
            if answer.status_code == 200 and is_ready(answer.json()):
                return
            time.sleep(0.5)
        raise RuntimeError(f"{plural}/{name} in {namespace} not Ready within {timeout}s")

    def ready_count(self, namespace: str) -> int:
        """Ready Images of the namespace, the warm-up one not counted."""
        items = self.api.get(IMAGES.format(namespace=namespace)).raise_for_status().json()
        return sum(
            1 for item in items["items"] if is_ready(item) and item["metadata"]["name"] != WARM_UP
        )

    # -- measuring

    def pids(self, operator: Child) -> dict[str, int]:
        pids = {"operator": operator.pid, **self.cluster.pids}
        if self.emulator is not None:
            pids["emulator"] = self.emulator.pid
        return pids

    def snapshot(self, operator: Child) -> tuple[float, Counter[RequestKey], dict[str, float]]:
        cpu = {name: cpu_seconds(pid) for name, pid in self.pids(operator).items()}
        return time.monotonic(), request_counts(self.api), cpu

    def window_since(
        self,
        before: tuple[float, Counter[RequestKey], dict[str, float]],
        cloud_before: Counter[str],
        operator: Child,
    ) -> Window:
        after = self.snapshot(operator)
        return Window(
            seconds=after[0] - before[0],
            requests=after[1] - before[1],
            cpu={name: after[2][name] - before[2].get(name, 0.0) for name in after[2]},
            cloud=self.cloud_calls() - cloud_before,
        )

    def quiet(self, seconds: float) -> None:
        time.sleep(seconds)

    def create_all(self, kind: str, namespace: str, operator: Child, count: int) -> RunResult:
        """Apply `count` Images in one kubectl call and wait until the watch saw all Ready."""
        names = [f"img-{i:05d}" for i in range(count)]
        watch = ReadyWatch(self.cluster, namespace, set(names))
        watch.start()
        watch.listed.wait(30)
        # A quiet stretch first: what the processes burn doing nothing, to take off later.
        idle_before = self.snapshot(operator)
        self.quiet(max(self.args.settle, 5.0))
        before = self.snapshot(operator)
        idle_rate = {
            name: (before[2][name] - idle_before[2][name]) / (before[0] - idle_before[0])
            for name in before[2]
        }
        cloud_before = self.cloud_calls()
        applied, wall = self.apply_until_ready(kind, watch, namespace, names, [operator])
        # Writes that follow Ready (events posted from a queue) belong to the Image's cost.
        self.quiet(self.args.settle)
        window = self.window_since(before, cloud_before, operator)
        window.idle_cpu = {name: rate * window.seconds for name, rate in idle_rate.items()}
        rss, hwm = memory_mib(operator.pid)
        watch.stop()
        later = None
        if self.args.memory_only and self.args.memory_wait > 0:
            # kopf keeps each object's worker (and the bodies it queued) for a while after its
            # last event: what stays resident once they are gone.
            self.quiet(self.args.memory_wait)
            later = memory_mib(operator.pid)[0]
        if self.args.tracemalloc and kind == "image-operator":
            self.memory_sites(operator)
        return RunResult(kind, count, wall, applied, window, rss, hwm, watch.events, later)

    def apply_until_ready(
        self,
        label: str,
        watch: ReadyWatch,
        namespace: str,
        names: Sequence[str],
        operators: Sequence[Child],
    ) -> tuple[float, float]:
        """Apply the Images and wait until `watch` saw all Ready: (seconds the apply took,
        seconds from its start to the last Ready)."""
        started = time.monotonic()
        self.apply_images(namespace, names, f"images-{namespace}")
        applied = time.monotonic() - started
        say(f"{label}: applied in {applied:.1f} s, waiting for Ready")
        if not watch.done.wait(self.args.timeout):
            watch.stop()
            tails = "\n".join(operator.tail() for operator in operators)
            raise RuntimeError(
                f"{label}: {len(watch.ready)}/{len(names)} Ready after {self.args.timeout}s\n"
                f"{tails}"
            )
        return applied, watch.done_at - started

    def apply_images(self, namespace: str, names: Sequence[str], file_name: str) -> None:
        """One `kubectl apply --server-side` of these Images, as a List in one JSON file."""
        manifests = self.work / f"{file_name}.json"
        items = [image_manifest(name, namespace) for name in names]
        manifests.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        self.run_kubectl("apply", "--server-side", "--output=name", "-f", str(manifests))

    def start_operator(self, kind: str, namespace: str) -> Child:
        """Namespace, operator and one warm-up Image Ready (so the operator is watching)."""
        self.setup_namespace(namespace, provider=kind == "image-operator")
        operator = (
            self.image_operator(namespace)
            if kind == "image-operator"
            else self.floor_operator(namespace)
        )
        operator.start()
        if kind == "image-operator":
            self.wait_ready(namespace, "imageproviders", "argon", timeout=120)
        # The same kubectl call as the measured one, so that neither run pays for discovery
        # or the OpenAPI schema that server-side apply fetches the first time.
        self.apply_images(namespace, [WARM_UP], f"{WARM_UP}-{namespace}")
        self.wait_ready(namespace, "images", WARM_UP, timeout=120)
        return operator

    def more_pairs(self, count: int, pairs: int) -> list[float]:
        """`pairs` more floor / image-operator runs of `count` Images, each in namespaces of its
        own, image-operator first in every other one (the first pair runs the floor first:
        whichever goes second meets the first one's objects in etcd): their wall ratios."""
        ratios = []
        for pair in range(2, pairs + 2):
            order = ("image-operator", "floor") if pair % 2 == 0 else ("floor", "image-operator")
            walls = {}
            for kind in order:
                namespace = f"bench-{'operator' if kind == 'image-operator' else kind}-{pair}"
                say(f"pair {pair}, {kind}: {count} Images")
                process = self.start_operator(kind, namespace)
                walls[kind] = self.create_all(kind, namespace, process, count).wall
                process.stop()
            ratios.append(walls["image-operator"] / walls["floor"])
        return ratios

    def restart_storm(self, operator: Child, namespace: str) -> tuple[Child, dict[str, Any]]:
        """kill -9 the operator with every Image Ready, start it again, and count cloud calls
        until it is idle: no cloud call for --idle seconds and under 2 % of a core over the
        last 5 s, or --restart-window seconds, whichever comes first."""
        self.quiet(self.args.settle)
        cloud_before = self.cloud_calls()
        requests_before = request_counts(self.api)
        operator.kill()
        restarted = self.image_operator(namespace, name="image-operator-restarted")
        killed_at = time.monotonic()
        restarted.start()
        last_total = 0
        last_call = killed_at
        cpu_samples: list[tuple[float, float]] = []
        idle_at: float | None = None
        while time.monotonic() - killed_at < self.args.restart_window:
            time.sleep(1.0)
            now = time.monotonic()
            total = sum((self.cloud_calls() - cloud_before).values())
            if total != last_total:
                last_total, last_call = total, now
            cpu_samples.append((now, cpu_seconds(restarted.pid)))
            recent = [s for s in cpu_samples if now - s[0] <= 5.0]
            busy = (recent[-1][1] - recent[0][1]) / max(recent[-1][0] - recent[0][0], 1e-9)
            if (
                now - killed_at >= self.args.idle
                and now - last_call >= self.args.idle
                and len(recent) >= 4
                and busy < 0.02
            ):
                idle_at = now
                break
        calls = self.cloud_calls() - cloud_before
        requests = request_counts(self.api) - requests_before
        writes = {k: v for k, v in requests.items() if k[0] in WRITE_VERBS and k[1] not in NOT_OURS}
        return restarted, {
            "cloud_calls": sum(calls.values()),
            "cloud_routes": dict(calls),
            "last_call_after_s": round(last_call - killed_at, 1),
            "idle_after_s": None if idle_at is None else round(idle_at - killed_at, 1),
            "window_s": self.args.restart_window,
            "api_writes": sum(writes.values()),
            "api_writes_by_kind": {" ".join(k): v for k, v in writes.items()},
            "ready_after": self.ready_count(namespace),
            "operator_cpu_s": round(cpu_seconds(restarted.pid), 2),
        }

    def profile(self, operator: Child) -> subprocess.Popen[bytes] | None:
        if not self.args.profile:
            return None
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        if py_spy is None:
            print("--profile: py-spy not found (pip install py-spy into the venv)")
            return None
        # --gil: only the thread holding the GIL is sampled, so waits (the executor's idle
        # threads, a blocking read of the cloud's answer) do not count as work.
        # --nonblocking: the operator is never paused to be read.
        argv = [py_spy, "record", "--pid", str(operator.pid), "--format", "raw", "--rate", "50"]
        argv += ["--gil", "--nonblocking", "--output", str(Path(self.args.profile).resolve())]
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def sharded(self, count: int, shards: int) -> dict[str, Any]:
        """`shards` image-operators, one per shard of the UID hash space (the API server's
        shardSelector), on one namespace: wall time to all Ready and, per shard, what its watch
        was sent (`imageops_objects`) and what it created in the cloud, against the UIDs the
        shard owns."""
        namespace = "bench-shards"
        self.setup_namespace(namespace, provider=True)
        ports = [free_port() for _ in range(shards)]
        operators = [
            self.image_operator(
                namespace,
                name=f"shard-{index}",
                env={
                    "IMAGE_OPERATOR_SHARDS": str(shards),
                    "IMAGE_OPERATOR_SHARD_INDEX": str(index),
                    "IMAGE_OPERATOR_METRICS_PORT": str(ports[index]),
                },
            )
            for index in range(shards)
        ]
        for operator in operators:
            operator.start()
        self.wait_ready(namespace, "imageproviders", "argon", timeout=120)
        names = [f"img-{i:05d}" for i in range(count)]
        watch = ReadyWatch(self.cluster, namespace, set(names))
        watch.start()
        watch.listed.wait(30)
        cpu_before = [cpu_seconds(operator.pid) for operator in operators]
        applied, wall = self.apply_until_ready(
            f"{shards} shards", watch, namespace, names, operators
        )
        watch.stop()
        self.quiet(self.args.settle)
        items = self.api.get(IMAGES.format(namespace=namespace)).raise_for_status().json()
        uids = [item["metadata"]["uid"] for item in items["items"]]
        rows = []
        for index, operator in enumerate(operators):
            metrics = httpx.get(f"http://127.0.0.1:{ports[index]}/metrics", timeout=30).text
            owned = sum(1 for uid in uids if owns(uid, index, shards))
            rows.append(
                {
                    "shard": index,
                    "owned": owned,
                    "watched": metric_sum(metrics, "imageops_objects", kind="Image"),
                    "created": metric_sum(
                        metrics, "imageops_cloud_requests_total", action="create_image"
                    ),
                    # per Image it owns: its share of the work
                    "cpu_ms_per_image": 1000
                    * (cpu_seconds(operator.pid) - cpu_before[index])
                    / max(1, owned),
                    "rss_mib": memory_mib(operator.pid)[0],
                }
            )
        return {
            "images": count,
            "shards": shards,
            "load_average": os.getloadavg(),
            "wall_seconds": wall,
            "apply_seconds": applied,
            "per_shard": rows,
        }

    def close(self) -> None:
        for process in reversed(self.children):
            process.stop()
        self.api.close()


# --- reporting --------------------------------------------------------------------------------


def per_image(value: float, images: int) -> str:
    return f"{value / images:.2f}"


def server_cpu(window: Window, *, net: bool) -> float:
    """kube-apiserver + etcd CPU seconds in the window (net: less their idle rate)."""
    names = ("kube-apiserver", "etcd")
    if net:
        return sum(window.net_cpu(name) for name in names)
    return sum(window.cpu.get(name, 0.0) for name in names)


def report(results: list[RunResult]) -> dict[str, Any]:
    by_kind = {r.kind: r for r in results}
    op = by_kind.get("image-operator")
    floor = by_kind.get("floor")
    lines = [f"{'figure':<46}" + "".join(f"{r.kind:>16}" for r in results)]

    def row(label: str, value: Callable[[RunResult], str]) -> None:
        lines.append(f"{label:<46}" + "".join(f"{value(r):>16}" for r in results))

    def requests(verb: str, resource: str) -> Callable[[RunResult], str]:
        return lambda r: per_image(r.window.requests.get((verb, resource, ""), 0), r.images)

    row("Images", lambda r: str(r.images))
    row("wall to all Ready (s)", lambda r: f"{r.wall:.1f}")
    row("  of which kubectl apply (s)", lambda r: f"{r.apply_seconds:.1f}")
    row("  after the apply ended (s)", lambda r: f"{r.wall - r.apply_seconds:.1f}")
    row(
        "API writes per Image (besides the create)",
        lambda r: per_image(sum(r.window.writes().values()), r.images),
    )

    def writes(key: RequestKey) -> Callable[[RunResult], str]:
        return lambda r: per_image(r.window.writes().get(key, 0), r.images)

    for key in sorted({k for r in results for k in r.window.writes()}):
        verb, resource, sub = key
        row(f"  {verb} {resource}{'/' + sub if sub else ''}", writes(key))
    row("the creates (APPLY images) per Image", requests("APPLY", "images"))
    row("GET imageproviders per Image", requests("GET", "imageproviders"))
    row("GET secrets per Image", requests("GET", "secrets"))
    row(
        "operator CPU per Image (ms)", lambda r: f"{1000 * r.window.cpu['operator'] / r.images:.1f}"
    )
    row(
        "kube-apiserver + etcd CPU per Image (ms)",
        lambda r: f"{1000 * server_cpu(r.window, net=False) / r.images:.1f}",
    )
    row(
        "  net of their idle rate (ms)",
        lambda r: f"{1000 * server_cpu(r.window, net=True) / r.images:.1f}",
    )
    row(
        "emulator CPU per Image (ms)",
        lambda r: f"{1000 * r.window.cpu.get('emulator', 0.0) / r.images:.1f}",
    )
    row("operator RSS with all Ready (MiB)", lambda r: f"{r.rss_mib:.0f}")
    row("operator peak RSS (MiB)", lambda r: f"{r.hwm_mib:.0f}")
    if any(r.rss_later_mib is not None for r in results):
        row(
            "operator RSS --memory-wait later (MiB)",
            lambda r: "-" if r.rss_later_mib is None else f"{r.rss_later_mib:.0f}",
        )
    row("cloud calls per Image", lambda r: per_image(sum(r.window.cloud.values()), r.images))
    row("watch events per Image", lambda r: per_image(r.watch_events, r.images))
    if op is not None and floor is not None:
        op_cpu, floor_cpu = op.window.cpu["operator"], floor.window.cpu["operator"]
        op_server, floor_server = (server_cpu(r.window, net=True) for r in (op, floor))
        lines += [
            "",
            f"wall ratio image-operator / floor: {op.wall / floor.wall:.2f}",
            f"operator CPU ratio: {op_cpu / max(floor_cpu, 1e-9):.2f}",
            f"kube-apiserver + etcd CPU ratio (net of idle): "
            f"{op_server / max(floor_server, 1e-9):.2f}",
        ]
    if op is not None and op.restart:
        storm = op.restart
        lines += [
            "",
            f"restart (kill -9 with {op.images} Ready): {storm['cloud_calls']} cloud calls, "
            f"the last {storm['last_call_after_s']} s after the kill; idle after "
            f"{storm['idle_after_s']} s (window {storm['window_s']} s); "
            f"{storm['api_writes']} API writes; {storm['ready_after']} Ready after; "
            f"restarted operator CPU {storm['operator_cpu_s']} s",
        ]
        if storm["cloud_routes"]:
            lines.append(f"  cloud calls by route: {storm['cloud_routes']}")
        if storm["api_writes_by_kind"]:
            lines.append(f"  API writes: {storm['api_writes_by_kind']}")
    print("\n".join(lines))
    return {
        "date": datetime.date.today().isoformat(),
        "argv": sys.argv[1:],
        "runs": [
            {
                "kind": r.kind,
                "images": r.images,
                "wall_s": round(r.wall, 2),
                "apply_s": round(r.apply_seconds, 2),
                "window_s": round(r.window.seconds, 1),
                "writes": {" ".join(k): v for k, v in r.window.writes().items()},
                "requests": {" ".join(k): v for k, v in r.window.requests.items()},
                "cpu_s": {k: round(v, 2) for k, v in r.window.cpu.items()},
                "idle_cpu_s": {k: round(v, 2) for k, v in r.window.idle_cpu.items()},
                "cloud": dict(r.window.cloud),
                "rss_mib": round(r.rss_mib, 1),
                "hwm_mib": round(r.hwm_mib, 1),
                "rss_later_mib": r.rss_later_mib,
                "watch_events": r.watch_events,
                "restart": r.restart,
            }
            for r in results
        ],
    }


# --- main -------------------------------------------------------------------------------------


def control_plane_binaries(version: str) -> Path:
    """kube-apiserver, etcd and kubectl of Kubernetes `version` (KUBEBUILDER_ASSETS wins):
    the cached build of hack/build-control-plane.sh, which builds it first on a cold cache.
    While another process holds that build's lock, say so instead of waiting behind it."""
    cache = Path.home() / ".cache" / "image-operator" / "control-plane"
    for lock in cache.glob(f"k8s-v{version}-*/.build.lock"):
        if os.environ.get("KUBEBUILDER_ASSETS") or (lock.parent / "kube-apiserver").exists():
            continue
        with lock.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SystemExit(
                    f"the control plane is being built in {lock.parent}; run again after"
                ) from None
            fcntl.flock(handle, fcntl.LOCK_UN)
    return resolve_binaries(ROOT, version)


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="image-operator-bench-"))
    try:
        yield work
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--images", type=int, default=200, help="Images per operator")
    parser.add_argument(
        "--kubernetes",
        default=os.environ.get("K8S_VERSION", "1.36.3"),
        help="Kubernetes release of the control plane (default $K8S_VERSION, else 1.36.3)",
    )
    parser.add_argument(
        "--memory-only",
        type=int,
        metavar="N",
        help="only image-operator: N Images to Ready, then its RSS (no floor, no restart)",
    )
    parser.add_argument(
        "--memory-wait",
        type=float,
        default=30.0,
        help="with --memory-only: seconds after all Ready before the RSS is read again",
    )
    parser.add_argument(
        "--rate-limit",
        default="1000:1000",
        metavar="RPS[:BURST]",
        help="the ImageProvider's spec.rateLimit (the operator's client-side limit on cloud "
        "calls); default the schema's maximum rate, so the limiter is not what is measured",
    )
    parser.add_argument(
        "--poll-interval", type=int, default=10, help="the ImageProvider's pollIntervalSeconds"
    )
    parser.add_argument(
        "--restart-window",
        type=float,
        default=120.0,
        help="longest wait for the restarted operator to go idle, in seconds",
    )
    parser.add_argument(
        "--idle",
        type=float,
        default=20.0,
        help="seconds without a cloud call (and the operator under 2 %% of a core) that count "
        "as idle after the restart",
    )
    parser.add_argument("--settle", type=float, default=3.0, help="quiet seconds around windows")
    parser.add_argument("--timeout", type=float, default=1800.0, help="limit per run to Ready")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor operator")
    parser.add_argument("--no-restart", action="store_true", help="skip the restart storm")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="py-spy record (raw, 50 Hz, GIL holder only) of image-operator while its Images "
        "go Ready; bench/profile_summary.py FILE reads it",
    )
    parser.add_argument(
        "--tracemalloc",
        metavar="FILE",
        help="run image-operator under tracemalloc and write where its memory was allocated "
        "(by line and by file) with all Ready; slows it down: not for the other figures",
    )
    parser.add_argument(
        "--shards",
        type=int,
        metavar="K",
        help="only image-operator, as K shards (one process each, the API server's "
        "shardSelector): N Images to Ready, and per shard what its watch was sent and what it "
        "created against the UIDs it owns",
    )
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON too")
    parser.add_argument(
        "--pairs",
        type=int,
        default=1,
        help="floor / image-operator pairs for the wall ratio (one pair's ratio moves by ±0.2 "
        "on 2 cores): the first pair gives every figure, the others only their wall times, "
        "in alternating order; prints the median",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    args = parser.parse_args()
    count = args.memory_only or args.images

    bin_dir = control_plane_binaries(args.kubernetes)
    results: list[RunResult] = []
    ratios: list[float] = []
    with workspace(args.keep) as work:
        cluster = LocalCluster(bin_dir, work / "control-plane")
        with cluster:
            apply_manifests(
                cluster.kubeconfig_path,
                sorted((ROOT / "crds").glob("*.yaml")),
                kubectl=find_kubectl(bin_dir),
            )
            bench = Bench(args, work, cluster)
            try:
                bench.start_emulator()
                bench.run_kubectl("api-resources")  # fills the discovery cache, outside windows
                if args.shards:
                    say(f"{args.shards} shards: {count} Images")
                    sharded = bench.sharded(count, args.shards)
                    print(json.dumps(sharded, indent=2))
                    if args.json:
                        Path(args.json).write_text(json.dumps(sharded, indent=2) + "\n")
                    return
                if not (args.memory_only or args.no_floor):
                    say(f"floor: {count} Images")
                    floor = bench.start_operator("floor", "bench-floor")
                    results.append(bench.create_all("floor", "bench-floor", floor, count))
                    floor.stop()
                say(f"image-operator: {count} Images")
                operator = bench.start_operator("image-operator", "bench-operator")
                profiler = bench.profile(operator)
                result = bench.create_all("image-operator", "bench-operator", operator, count)
                if profiler is not None:
                    profiler.send_signal(signal.SIGINT)
                    profiler.wait(60)
                if not (args.memory_only or args.no_restart):
                    say(f"restart storm: kill -9 with {count} Ready")
                    _, result.restart = bench.restart_storm(operator, "bench-operator")
                results.append(result)
                if floor_result := next((r for r in results if r.kind == "floor"), None):
                    ratios.append(result.wall / floor_result.wall)
                    ratios += bench.more_pairs(count, args.pairs - 1)
            except BaseException:
                for process in bench.children:
                    if process.alive() or process.log_path.exists():
                        print(f"--- {process.name} (log tail)\n{process.tail()}", file=sys.stderr)
                raise
            finally:
                bench.close()
    # Others' work on the machine skews wall times (not much the CPU per process): say how busy.
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{datetime.date.today().isoformat()}: bench/scale.py {' '.join(sys.argv[1:])}")
    print(f"load average at the end: {load} ({os.cpu_count()} CPUs)")
    figures = report(results)
    if len(ratios) > 1:
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        print(
            f"wall ratio over {len(ratios)} pairs (order alternated after the first): median "
            f"{statistics.median(ratios):.2f}, range {spread}, each "
            + " ".join(f"{r:.2f}" for r in ratios)
        )
        figures["wall_ratios"] = ratios
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
