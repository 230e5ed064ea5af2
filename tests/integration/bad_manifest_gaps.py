"""The bad-manifest corpus's known gaps: cases that do not behave as a bad manifest must, today.

Keyed by case name, grouped by cause. `seen` is the outcome `test_bad_manifests.py` observes,
and it asserts exactly that: when a fix changes the outcome, the test fails until the entry is
removed (or changed to what the fix gives, if that is still a gap). Outcome words:
refused / refused-unnamed (the message does not name the field), stalled:<Reason> /
stalled-unnamed:<Reason>, waiting:<Reason>, reconciling:<Reason> (work in flight, or waiting
without naming the field), not-ready:<Reason> (Ready=False and neither Reconciling nor Stalled),
ready, no-status, admitted (a change of an immutable field accepted); `+created` when the case
made a cloud object. `traceback` is a piece of the exception's message the gap writes to the
operator's log with a traceback (the test allows no other).
"""

from __future__ import annotations

from tests.integration.bad_manifest_cases import Gap

KNOWN_GAPS: dict[str, Gap] = {}


def _gaps(why: str, seen: dict[str, str], traceback: str | None = None) -> None:
    for name, outcome in seen.items():
        assert name not in KNOWN_GAPS, name
        KNOWN_GAPS[name] = Gap(outcome, why, traceback)


# No known gap today: every case is refused at admission, Stalled (or waiting) naming its
# field, or Ready at its limit. Record a new one with `_gaps(why, {case: outcome})`.
