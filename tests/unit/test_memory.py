"""Memory freed after a burst is given back (memory.py): the trim runs on its period, stops
when asked, and calls glibc's malloc_trim where there is one."""

from __future__ import annotations

import ctypes
import threading
import time

import pytest

from image_operator.memory import Trimmer, libc_trim, resident_mib, start_trimmer


def test_the_trim_runs_every_interval_until_stopped() -> None:
    calls = threading.Semaphore(0)

    def trim() -> bool:
        calls.release()
        return True

    trimmer = start_trimmer(0.01, trim)
    assert trimmer is not None
    for _ in range(3):  # three periods pass, each one trimming
        assert calls.acquire(timeout=5)
    trimmer.stop()
    done = trimmer.calls
    assert done >= 3
    time.sleep(0.05)  # five periods: a trimmer still running would have called again
    assert trimmer.calls == done


def test_an_interval_of_zero_starts_nothing() -> None:
    assert start_trimmer(0, lambda: True) is None


def test_a_trim_reports_its_call() -> None:
    trimmer = Trimmer(lambda: False, interval=3600)
    trimmer.trim_once()
    assert trimmer.calls == 1


@pytest.mark.skipif(libc_trim() is None, reason="a C library without malloc_trim (not glibc)")
def test_glibc_malloc_trim_is_found_and_releases_freed_memory() -> None:
    trim = libc_trim()
    assert trim is not None
    # 64 MiB in 4 KiB blocks (below glibc's mmap threshold, so on the heap), freed but the
    # last, which pins the top of the heap: only malloc_trim's madvise gives the rest back.
    blocks = [ctypes.create_string_buffer(4000) for _ in range(16384)]
    for block in blocks:
        ctypes.memset(block, 1, 4000)
    keep = blocks[-1]
    del blocks
    before = resident_mib()
    trim()
    after = resident_mib()
    assert keep.raw[:1] == b"\x01"
    assert before is not None and after is not None
    assert before - after > 16
