"""Cron math for `ImagePipeline.spec.schedule`: when is a run due, in the schedule's time zone.

Kept apart from the reconciler and free of clocks: callers pass `now`, so tests turn time by
hand. croniter reads five fields (minute resolution) or six, the sixth counting seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter


class ScheduleError(ValueError):
    """A schedule croniter or zoneinfo cannot read; the message names the field."""


@dataclass(frozen=True)
class Schedule:
    cron: str
    zone: ZoneInfo

    @classmethod
    def parse(cls, cron: str, time_zone: str) -> Schedule:
        try:
            zone = ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(
                f"spec.schedule.timeZone {time_zone!r} is not an IANA time zone name; "
                "use e.g. UTC, Europe/Berlin or Asia/Shanghai"
            ) from None
        fields = cron.split()
        if len(fields) not in (5, 6) or not croniter.is_valid(cron):
            raise ScheduleError(
                f"spec.schedule.cron {cron!r} is not a cron expression; give five fields "
                "(minute hour day-of-month month day-of-week, e.g. '0 3 * * 1') or six, the "
                "sixth counting seconds"
            )
        schedule = cls(cron, zone)
        try:
            # A valid expression may still never fire ('0 0 31 2 *': February has no 31st);
            # croniter then raises on every lookup, so judge it once, here.
            schedule.next_after(datetime(2000, 1, 1, tzinfo=UTC))
        except CroniterError:
            raise ScheduleError(
                f"spec.schedule.cron {cron!r} never fires (no date matches its day and month "
                "fields); give a schedule with a real date, e.g. '0 3 28 2 *'"
            ) from None
        return schedule

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after `moment`, in UTC."""
        local = moment.astimezone(self.zone)
        fire: datetime = croniter(self.cron, local).get_next(datetime)
        return fire.astimezone(UTC)

    def due(self, last: datetime, now: datetime) -> datetime | None:
        """The latest fire time in (last, now], or None: missed fire times collapse into one
        run, as a CronJob with concurrency does not queue every missed minute."""
        first = self.next_after(last)
        if first > now:
            return None
        latest = first
        # Walk forward at most a bounded number of steps; beyond that, croniter's own
        # reverse step from `now` gives the latest fire time directly.
        for _ in range(64):
            following = self.next_after(latest)
            if following > now:
                return latest
            latest = following
        prev: datetime = croniter(self.cron, now.astimezone(self.zone)).get_prev(datetime)
        return max(prev.astimezone(UTC), latest)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
