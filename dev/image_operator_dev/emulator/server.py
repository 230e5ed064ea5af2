"""Serving the vendors: one aiohttp application per vendor, each on its own loopback port.

Every application gets the same middleware stack, outermost first:

    access log → statistics → errors in the vendor's format → faults → vendor middlewares

and the same admin routes under /_emulator/. Statistics and faults skip the admin routes so
that a test can inspect and reconfigure the emulator while it misbehaves on purpose.

Entry points: `Emulator` (asyncio), `EmulatorThread` (for synchronous tests), `run` (blocking,
prints the ready line) and `main` (the `image-operator emulator` command line).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self, TextIO

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import ValidationError

from image_operator_dev.emulator.aliyun import AliyunService
from image_operator_dev.emulator.argon import ArgonService
from image_operator_dev.emulator.clock import Clock, system_clock
from image_operator_dev.emulator.compshare import CompShareService
from image_operator_dev.emulator.config import (
    ConfigError,
    EmulatorConfig,
    FaultSettings,
    load_config,
)
from image_operator_dev.emulator.faults import FaultInjector, FaultKind, RequestStats
from image_operator_dev.emulator.store import Store
from image_operator_dev.emulator.ucloudstack import UCloudStackService
from image_operator_dev.emulator.vendor import (
    ADMIN_PREFIX,
    MAX_BODY_BYTES,
    MUTATING_METHODS,
    ErrorKind,
    VendorError,
    VendorService,
    is_admin_path,
    json_response,
    read_json_body,
)

logger = logging.getLogger("image_operator_dev.emulator")

VendorFactory = Callable[[EmulatorConfig, Store, Clock], VendorService]

VENDORS: dict[str, VendorFactory] = {
    "argon": lambda config, store, clock: ArgonService(config.argon, store, clock),
    "aliyun": lambda config, store, clock: AliyunService(config.aliyun, store, clock),
    "compshare": lambda config, store, clock: CompShareService(config.compshare, store, clock),
    "ucloudstack": lambda config, store, clock: UCloudStackService(
        config.ucloudstack, store, clock, data_dir=config.state_dir
    ),
}
"""Vendor name (= config section) → how to build its service. New vendors register here."""

# How long stop() lets in-flight requests (e.g. a response held by latency_after_commit)
# finish before they are cancelled; an emulator has nothing worth a longer wait.
SHUTDOWN_TIMEOUT_SECONDS = 1.0


@dataclass
class _VendorRuntime:
    service: VendorService
    faults: FaultInjector
    stats: RequestStats = field(default_factory=RequestStats)
    runner: web.AppRunner | None = None
    url: str = ""

    def stats_snapshot(self) -> dict[str, object]:
        """The request counts plus the store's decoded-document count. That count belongs to
        the store all vendors share and is never reset: callers compare two snapshots."""
        return {**self.stats.snapshot(), "store": {"decoded": self.service.store.decoded}}


# --- middlewares ---------------------------------------------------------------------------


def _access_log_middleware(vendor: str) -> Middleware:
    log = logging.getLogger(f"image_operator_dev.emulator.{vendor}")

    @web.middleware
    async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
        # One line per request. Only method and path: never headers (Authorization) nor the
        # query string or body.
        started = time.perf_counter()
        status = "cancelled"
        try:
            response = await handler(request)
            status = str(response.status)
            return response
        except web.HTTPException as exc:
            status = str(exc.status)
            raise
        except Exception:
            status = "500"
            raise
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            log.info("%s %s %s %.1fms", request.method, request.path, status, elapsed_ms)

    return access_log


def _stats_middleware(runtime: _VendorRuntime) -> Middleware:
    @web.middleware
    async def stats(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_admin_path(request.path):
            return await handler(request)
        response = await handler(request)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "(unmatched)"
        runtime.stats.record(request.method, route, response.status)
        return response

    return stats


def _errors_middleware(runtime: _VendorRuntime) -> Middleware:
    service = runtime.service

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Whatever goes wrong on a vendor route is answered in that vendor's own format, as
        # the real service would, so clients never see aiohttp's plain-text errors.
        if is_admin_path(request.path):
            return await handler(request)
        try:
            return await handler(request)
        except VendorError as exc:
            return service.error_response(exc.kind, exc.message)
        except web.HTTPNotFound:
            message = f"the server could not find the requested resource ({request.path})"
            return service.error_response(ErrorKind.NOT_FOUND, message)
        except web.HTTPMethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.allowed_methods))
            message = f"{request.method} is not supported on {request.path}; allowed: {allowed}"
            return service.error_response(ErrorKind.METHOD_NOT_ALLOWED, message)
        except web.HTTPRequestEntityTooLarge:
            message = f"the request body is larger than the {MAX_BODY_BYTES} bytes accepted"
            return service.error_response(ErrorKind.TOO_LARGE, message)
        except web.HTTPException as exc:
            kind = ErrorKind.INTERNAL if exc.status >= 500 else ErrorKind.BAD_REQUEST
            return service.error_response(kind, exc.reason)
        except Exception as exc:
            logger.exception(
                "%s: unhandled error on %s %s", service.name, request.method, request.path
            )
            message = f"internal error in the emulator ({type(exc).__name__})"
            return service.error_response(ErrorKind.INTERNAL, message)

    return errors


def _faults_middleware(runtime: _VendorRuntime) -> Middleware:
    service, stats = runtime.service, runtime.stats

    @web.middleware
    async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_admin_path(request.path):
            return await handler(request)
        # The settings in force when the request arrived govern all of it, even if a test
        # replaces them while the request is delayed.
        settings = runtime.faults.settings
        if settings.latency_seconds > 0:
            stats.record_fault(FaultKind.LATENCY)
            await asyncio.sleep(settings.latency_seconds)
        decision = runtime.faults.decide()
        if decision.throttle:
            stats.record_fault(FaultKind.THROTTLE)
            message = "too many requests; retry after the time in the Retry-After header"
            return service.error_response(
                ErrorKind.THROTTLED, message, retry_after=settings.retry_after_seconds
            )
        if decision.error:
            stats.record_fault(FaultKind.ERROR)
            message = "the service is temporarily unavailable (fault injected by the emulator)"
            return service.error_response(ErrorKind.UNAVAILABLE, message)
        response = await handler(request)
        if (
            settings.latency_after_commit_seconds > 0
            and request.method in MUTATING_METHODS
            and 200 <= response.status < 300
        ):
            # The handler has committed its change; only the answer is late.
            stats.record_fault(FaultKind.LATENCY_AFTER_COMMIT)
            await asyncio.sleep(settings.latency_after_commit_seconds)
        return response

    return faults


# --- admin routes --------------------------------------------------------------------------


def _add_admin_routes(app: web.Application, runtime: _VendorRuntime) -> None:
    vendor = runtime.service.name

    async def healthz(_: web.Request) -> web.Response:
        return json_response({"status": "ok", "vendor": vendor})

    async def get_state(_: web.Request) -> web.Response:
        return json_response({"vendor": vendor, **runtime.service.dump_state()})

    async def clear_state(_: web.Request) -> web.Response:
        return json_response({"vendor": vendor, "deleted": runtime.service.clear_state()})

    async def get_faults(_: web.Request) -> web.Response:
        return json_response(runtime.faults.settings.model_dump(mode="json"))

    async def put_faults(request: web.Request) -> web.Response:
        try:
            settings = FaultSettings.model_validate(await read_json_body(request))
        except VendorError as exc:
            return json_response({"error": exc.message}, status=400)
        except ValidationError as exc:
            errors = json.loads(exc.json(include_url=False, include_input=False))
            return json_response({"error": "invalid fault settings", "details": errors}, status=422)
        runtime.faults.replace(settings)
        logger.info("%s: faults replaced: %s", vendor, settings.model_dump_json())
        return json_response(settings.model_dump(mode="json"))

    async def get_stats(_: web.Request) -> web.Response:
        return json_response({"vendor": vendor, **runtime.stats_snapshot()})

    async def reset_stats(_: web.Request) -> web.Response:
        runtime.stats.reset()
        return json_response({"vendor": vendor, **runtime.stats_snapshot()})

    app.router.add_get(ADMIN_PREFIX + "healthz", healthz, allow_head=False)
    app.router.add_get(ADMIN_PREFIX + "state", get_state, allow_head=False)
    app.router.add_delete(ADMIN_PREFIX + "state", clear_state)
    app.router.add_get(ADMIN_PREFIX + "faults", get_faults, allow_head=False)
    app.router.add_put(ADMIN_PREFIX + "faults", put_faults)
    app.router.add_get(ADMIN_PREFIX + "stats", get_stats, allow_head=False)
    app.router.add_delete(ADMIN_PREFIX + "stats", reset_stats)


# --- the emulator --------------------------------------------------------------------------


def _bind(host: str, port: int, *, allow_non_loopback: bool) -> socket.socket:
    """A listening-ready socket; binding it ourselves tells us the port when `port` is 0."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    if not allow_non_loopback and not ipaddress.ip_address(address[0]).is_loopback:
        # The config check covers literal addresses; this covers names that resolve elsewhere.
        msg = f"{host!r} resolves to {address[0]}, which is not a loopback address"
        raise OSError(msg)
    sock = socket.socket(family, kind, proto)
    try:
        # Lets a restarted emulator take its fixed port back while old connections linger.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class Emulator:
    """All enabled vendors of one config, served until `stop()`."""

    def __init__(self, config: EmulatorConfig, *, clock: Clock = system_clock) -> None:
        self.config = config
        self.clock = clock
        self._store: Store | None = None
        self._vendors: dict[str, _VendorRuntime] = {}

    @property
    def urls(self) -> dict[str, str]:
        """Base URL of each running vendor, e.g. {"argon": "http://127.0.0.1:41234"}."""
        return {name: runtime.url for name, runtime in self._vendors.items()}

    def url(self, vendor: str) -> str:
        return self._runtime(vendor).url

    def service(self, vendor: str) -> VendorService:
        return self._runtime(vendor).service

    def set_faults(self, vendor: str, faults: FaultSettings) -> None:
        """Same as PUT /_emulator/faults; call it from the emulator's event loop."""
        self._runtime(vendor).faults.replace(faults)

    def stats(self, vendor: str) -> dict[str, object]:
        return self._runtime(vendor).stats_snapshot()

    def _runtime(self, vendor: str) -> _VendorRuntime:
        try:
            return self._vendors[vendor]
        except KeyError:
            msg = f"vendor {vendor!r} is not running; running: {sorted(self._vendors)}"
            raise KeyError(msg) from None

    async def start(self) -> dict[str, str]:
        """Open the state and start listening; returns the vendors' base URLs."""
        if self._store is not None:
            msg = "the emulator is already running"
            raise RuntimeError(msg)
        self._store = Store(self.config.state_dir)
        try:
            for name, settings in self.config.vendors().items():
                service = VENDORS[name](self.config, self._store, self.clock)
                runtime = _VendorRuntime(service=service, faults=FaultInjector(settings.faults))
                self._vendors[name] = runtime
                await self._serve(runtime, settings.port)
        except BaseException:
            await self.stop()
            raise
        logger.info("emulator ready: %s", self.urls)
        return self.urls

    async def _serve(self, runtime: _VendorRuntime, port: int) -> None:
        app = web.Application(
            middlewares=[
                _access_log_middleware(runtime.service.name),
                _stats_middleware(runtime),
                _errors_middleware(runtime),
                _faults_middleware(runtime),
                *runtime.service.middlewares(),
            ],
            client_max_size=MAX_BODY_BYTES,
        )
        runtime.service.add_routes(app)
        _add_admin_routes(app, runtime)
        # access_log=None: our middleware logs instead, without aiohttp's header fields.
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS
        )
        await runner.setup()
        runtime.runner = runner
        sock = _bind(self.config.host, port, allow_non_loopback=self.config.allow_non_loopback)
        runtime.url = _url(sock)
        await web.SockSite(runner, sock).start()

    async def stop(self) -> None:
        """Stop listening and close the state; safe to call twice."""
        for runtime in self._vendors.values():
            if runtime.runner is not None:
                await runtime.runner.cleanup()
                runtime.runner = None
        self._vendors.clear()
        if self._store is not None:
            self._store.close()
            self._store = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class EmulatorThread:
    """The emulator on its own event loop in a background thread, for synchronous tests.

    with EmulatorThread(config) as emulator:
        httpx.get(emulator.url("argon") + "/_emulator/healthz")
    """

    def __init__(
        self, config: EmulatorConfig, *, clock: Clock = system_clock, timeout: float = 30.0
    ) -> None:
        self.emulator = Emulator(config, clock=clock)
        self._timeout = timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def urls(self) -> dict[str, str]:
        return self.emulator.urls

    def url(self, vendor: str) -> str:
        return self.emulator.url(vendor)

    def start(self) -> dict[str, str]:
        """Start serving; returns once every vendor listens (or raises why it could not)."""
        if self._thread is not None:
            msg = "the emulator thread is already running"
            raise RuntimeError(msg)
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="image-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._timeout):
            msg = f"the emulator did not start within {self._timeout} seconds"
            raise TimeoutError(msg)
        if self._error is not None:
            self._thread.join(self._timeout)
            self._thread = None
            raise self._error
        return self.urls

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            try:
                loop.run_until_complete(self.emulator.start())
            except BaseException as exc:
                self._error = exc
                return
            finally:
                self._ready.set()
            loop.run_forever()
            loop.run_until_complete(self.emulator.stop())
            # Requests still held (e.g. by latency_after_commit) past the shutdown timeout
            # are cancelled and awaited here, as asyncio.run would, so the loop closes clean.
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    def call(self, function: Callable[[Emulator], None]) -> None:
        """Run `function(emulator)` on the emulator's loop (e.g. to change faults) and wait."""
        loop = self._loop
        if loop is None or self._thread is None:
            msg = "the emulator thread is not running"
            raise RuntimeError(msg)

        async def invoke() -> None:
            function(self.emulator)

        asyncio.run_coroutine_threadsafe(invoke(), loop).result(self._timeout)

    def set_faults(self, vendor: str, faults: FaultSettings) -> None:
        self.call(lambda emulator: emulator.set_faults(vendor, faults))

    def stop(self) -> None:
        """Stop serving and wait for the thread; safe to call twice."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(self._timeout + SHUTDOWN_TIMEOUT_SECONDS)
        if thread.is_alive():
            msg = "the emulator thread did not stop in time"
            raise TimeoutError(msg)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- command line --------------------------------------------------------------------------


async def _serve_until_signalled(config: EmulatorConfig, out: TextIO) -> None:
    emulator = Emulator(config)
    await emulator.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stopping.set)
    try:
        # The one line a supervisor (a test fixture, the demo script) waits for.
        ready = {"event": "ready", "vendors": emulator.urls}
        print(json.dumps(ready, separators=(",", ":")), file=out, flush=True)
        await stopping.wait()
        logger.info("emulator stopping")
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await emulator.stop()
    print(json.dumps({"event": "stopped"}, separators=(",", ":")), file=out, flush=True)


def run(config: EmulatorConfig, *, out: TextIO | None = None) -> int:
    """Serve until SIGTERM or SIGINT; prints {"event":"ready",...} to `out` (stdout) first."""
    asyncio.run(_serve_until_signalled(config, out if out is not None else sys.stdout))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="image-operator emulator",
        description="Serve the bundled cloud emulator (Argon image API) on loopback.",
    )
    parser.add_argument("--config", type=Path, help="YAML config file (defaults if omitted)")
    parser.add_argument("--state-dir", type=Path, help="directory of the persistent state")
    parser.add_argument("--argon-port", type=int, help="port of the Argon API (0 = any free)")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level of the request log on stderr (default INFO)",
    )
    return parser


def load_cli_config(
    config_file: Path | None, *, state_dir: Path | None = None, argon_port: int | None = None
) -> EmulatorConfig:
    """The config file (or defaults) with command-line overrides applied and re-validated."""
    config = load_config(config_file) if config_file is not None else EmulatorConfig()
    data = config.model_dump()
    if state_dir is not None:
        data["state_dir"] = state_dir
    if argon_port is not None:
        data["argon"]["port"] = argon_port
    try:
        return EmulatorConfig.model_validate(data)
    except ValidationError as exc:
        msg = f"invalid emulator settings: {exc}"
        raise ConfigError(msg) from exc


def main(argv: list[str] | None = None) -> int:
    """`image-operator emulator [--config FILE] [--state-dir DIR] [--argon-port PORT]`."""
    args = build_parser().parse_args(argv)
    try:
        config = load_cli_config(args.config, state_dir=args.state_dir, argon_port=args.argon_port)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # stdout carries only the ready/stopped lines; the request log goes to stderr.
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return run(config)
    except OSError as exc:
        print(f"error: cannot start the emulator: {exc}", file=sys.stderr)
        return 1
