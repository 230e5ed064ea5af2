"""The unit tier's promise, enforced: no network and no subprocess in any tests/unit test.

Each unit test runs with the ways out of the process closed: opening an IP connection, binding
an IP port or resolving a name fails, and so does starting a process (subprocess, asyncio's
subprocesses, os.system, fork, posix_spawn). A test that needs one belongs in another tier.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest


class NotHermetic(AssertionError):
    """A unit test tried to reach the network or to start a process."""


def _refuse(what: str) -> Any:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise NotHermetic(
            f"unit tests may not {what}: move the test to tests/contract, tests/peers or "
            "tests/integration (see tests/conftest.py TIERS)"
        )

    return refuse


def _ip_only(method: Any, what: str) -> Any:
    def guarded(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _refuse(what)()
        return method(self, *args, **kwargs)

    return guarded


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(
            socket.socket, name, _ip_only(getattr(socket.socket, name), "open a connection")
        )
    monkeypatch.setattr(socket.socket, "bind", _ip_only(socket.socket.bind, "bind a port"))
    monkeypatch.setattr(socket, "getaddrinfo", _refuse("resolve a host name"))
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse("start a process"))
    for name in ("system", "fork", "forkpty", "posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _refuse("start a process"))
    yield
