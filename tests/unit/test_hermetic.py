"""The unit tier's guard (tests/unit/conftest.py) really closes the network and processes."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess

import pytest

from tests.unit.conftest import NotHermetic


def test_no_connection() -> None:
    with pytest.raises(NotHermetic, match="resolve a host name"):
        socket.create_connection(("example.com", 443), timeout=1)
    with socket.socket() as sock, pytest.raises(NotHermetic, match="open a connection"):
        sock.connect(("127.0.0.1", 9))


def test_no_listening_port() -> None:
    with socket.socket() as sock, pytest.raises(NotHermetic, match="bind a port"):
        sock.bind(("127.0.0.1", 0))


def test_no_process() -> None:
    with pytest.raises(NotHermetic, match="start a process"):
        subprocess.run(["true"], check=False)
    with pytest.raises(NotHermetic, match="start a process"):
        os.system("true")

    async def spawn() -> None:
        await asyncio.create_subprocess_exec("true")

    with pytest.raises(NotHermetic, match="start a process"):
        asyncio.run(spawn())


def test_asyncio_and_local_socket_pairs_still_work() -> None:
    left, right = socket.socketpair()  # what an asyncio event loop wakes itself up with
    with left, right:
        left.sendall(b"ok")
        assert right.recv(2) == b"ok"
    assert asyncio.run(asyncio.sleep(0, result="ok")) == "ok"
