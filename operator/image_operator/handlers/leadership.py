"""`imageops_leader`: whether this replica is the active kopf peer.

kopf keeps its pause (another live replica has a higher priority) in a toggle it hands to no
handler; the one public trace of a change is the INFO line its peering engine logs when it
pauses or resumes. A log handler on that logger follows those lines (tests/unit/test_metrics_
leadership.py drives kopf's own peering code to keep the wording pinned). When the replica
pauses, the per-object gauges are emptied: a stand-by watches nothing, and kopf lists every
object again when it resumes.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from image_operator import metrics
from image_operator.handlers.context import context

PEERING_LOGGER = "kopf._core.engines.peering"
_PAUSING = ("Pausing operations in favour of", "Pausing all operators, including self")
_RESUMING = "Resuming operations after the pause"


_shard = ["0"]  # this replica's shard (settings.shard_index): one active replica per shard


def set_leading(leading: bool) -> None:
    metrics.LEADER.labels(_shard[0]).set(1 if leading else 0)
    if not leading:
        metrics.OBJECT_STATES.clear()
        metrics.clear_in_flight()


class PeeringWatch(logging.Handler):
    """Turns kopf's pause and resume lines into `imageops_leader`."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith(_PAUSING):
            set_leading(False)
        elif message.startswith(_RESUMING):
            set_leading(True)


def follow(settings: kopf.OperatorSettings, shard: int = 0) -> None:
    """Start from kopf's own initial state (a mandatory peering starts paused until the first
    look at the peers resumes it; a standalone run never pauses) and follow its changes."""
    _shard[0] = str(shard)
    set_leading(settings.peering.standalone or not settings.peering.mandatory)
    logger = logging.getLogger(PEERING_LOGGER)
    if not any(isinstance(handler, PeeringWatch) for handler in logger.handlers):
        logger.addHandler(PeeringWatch())
    # The lines are INFO: at a quieter logLevel they would never reach a handler. The cost is
    # at most two lines per change of the active replica in the log.
    if not logger.isEnabledFor(logging.INFO):
        logger.setLevel(logging.INFO)


@kopf.on.startup()
def follow_leadership(settings: kopf.OperatorSettings, **_: Any) -> None:
    follow(settings, context().settings.shard_index)
