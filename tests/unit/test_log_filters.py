"""The operator's log keeps one line per transition a user can see: kopf's routine per-pass
lines are DEBUG (handlers/status.py QuietRoutine), failures keep their level."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from image_operator.handlers.status import QuietRoutine


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def objects_log() -> Iterator[tuple[logging.Logger, _Capture]]:
    logger = logging.getLogger("kopf.objects.test-filters")
    capture = _Capture()
    quiet = QuietRoutine()
    logger.addHandler(capture)
    logger.addFilter(quiet)
    logger.propagate = False
    try:
        yield logger, capture
    finally:
        logger.removeFilter(quiet)
        logger.removeHandler(capture)
        logger.setLevel(logging.NOTSET)


ROUTINE = [
    "Handler 'reconcile_image' succeeded.",
    "Handler 'install.<locals>.claim_object' succeeded.",
    "Creation is processed: 1 succeeded; 0 failed.",
    "Updating is processed: 1 succeeded; 0 failed.",
]
KEPT = [
    "Ready: image 'vm-web' is available in argon provider 'argon'",
    "Ready: probe succeeded: argon namespace 'default': 3 images",
]


def test_kopfs_routine_lines_are_dropped_at_info(
    objects_log: tuple[logging.Logger, _Capture],
) -> None:
    logger, capture = objects_log
    logger.setLevel(logging.INFO)
    for message in ROUTINE + KEPT:
        logger.info(message)
    logger.warning("Handler 'reconcile_image' failed with an exception. Will retry.")
    assert [r.getMessage() for r in capture.records] == [
        *KEPT,
        "Handler 'reconcile_image' failed with an exception. Will retry.",
    ]
    assert [r.levelname for r in capture.records] == ["INFO", "INFO", "WARNING"]


def test_kopfs_routine_lines_are_kept_as_debug_when_verbose(
    objects_log: tuple[logging.Logger, _Capture],
) -> None:
    logger, capture = objects_log
    logger.setLevel(logging.DEBUG)
    for message in ROUTINE:
        logger.info(message)
    assert [r.getMessage() for r in capture.records] == ROUTINE
    assert {r.levelname for r in capture.records} == {"DEBUG"}


def test_a_polling_requeue_is_printed_as_debug(
    objects_log: tuple[logging.Logger, _Capture],
) -> None:
    logger, capture = objects_log
    logger.setLevel(logging.INFO)
    logger.error("Handler 'reconcile_image' failed temporarily: requeue in 5s (Creating)")
    assert [r.levelname for r in capture.records] == ["DEBUG"]
