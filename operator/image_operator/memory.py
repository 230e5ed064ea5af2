"""Giving memory freed after a burst back to the system.

When thousands of objects arrive at once (a `kubectl apply` of 10,000 Images, a restart that
lists them all), the operator holds, for a while, TLS buffers of dozens of API connections and
the bodies queued in kopf's per-object workers. Once they are freed, glibc's allocator keeps
the pages for reuse: the resident size stays at the burst's peak and follows the largest
number of objects ever in flight, not the number the operator holds (issue 14: 310 MiB with
10,000 Ready while the live heap was under half of it). `malloc_trim(0)` hands the free pages
back (`madvise(MADV_DONTNEED)` on every free run of pages, not only the top of the heap).

It is called from a thread of its own every `interval` seconds: a call costs a walk of the
allocator's free lists (about a millisecond at a few hundred MiB), and a period keeps it
independent of what caused the burst. Where the C library has no `malloc_trim` (musl, macOS)
nothing is started.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

Trim = Callable[[], bool]


def libc_trim() -> Trim | None:
    """glibc's `malloc_trim(0)` as a callable answering whether memory was released, or None
    where the C library has none."""
    # The symbols the interpreter is linked with: glibc's on glibc systems, without running
    # ldconfig as ctypes.util.find_library would.
    function = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if function is None:
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int

    def trim() -> bool:
        return bool(function(0))

    return trim


# /proc/self/statm counts pages; where there is no sysconf there is no /proc either.
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_mib() -> float | None:
    """This process's resident size in MiB (Linux), None where /proc is not there."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * _PAGE_SIZE / 2**20


class Trimmer:
    """Calls `trim` every `interval` seconds on a daemon thread until `stop`."""

    def __init__(self, trim: Trim, interval: float) -> None:
        self._trim = trim
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-trim", daemon=True)
        self.calls = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stopping.wait(self._interval):
            self.trim_once()

    def trim_once(self) -> None:
        # The resident size is read (twice, from /proc) for the debug line only.
        before = resident_mib() if log.isEnabledFor(logging.DEBUG) else None
        released = self._trim()
        self.calls += 1
        if released and before is not None and (after := resident_mib()) is not None:
            log.debug("returned %.1f MiB of freed memory to the system", before - after)


def start_trimmer(interval: float, trim: Trim | None = None) -> Trimmer | None:
    """A started `Trimmer` calling `trim` (by default glibc's `malloc_trim`) every `interval`
    seconds; None when `interval` is 0 or there is nothing to call."""
    if interval <= 0:
        return None
    trim = trim or libc_trim()
    if trim is None:
        return None
    trimmer = Trimmer(trim, interval)
    trimmer.start()
    return trimmer
