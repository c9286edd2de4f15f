"""Fire times of cron schedules, and the APScheduler trigger that wakes us at them.

Fire times come from croniter — the library that validates cron strings at definition
time and computes a ``timer`` node's ``schedule`` — so a schedule means the same thing
everywhere: 5 fields, or 6 with seconds first, in an IANA time zone (DST handled by
croniter). APScheduler only wakes the process at those times (:class:`CronWake`); which
fires are due is decided from the times themselves, never from when a wake-up happened
to run (see ``server.triggers.schedules``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from croniter import croniter

from server.errors import InvalidInput

#: ``iter_until`` includes a fire exactly at its bound: croniter's ``get_prev`` is strict.
_ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class CronSchedule:
    """A cron string in a time zone; every time it answers is an aware UTC datetime."""

    expression: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        fields = self.expression.split()
        if len(fields) not in (5, 6):
            raise InvalidInput(
                f"cron {self.expression!r} has {len(fields)} fields; write 5 (minute hour "
                "day month weekday) or 6 with seconds first"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(f"unknown time zone {self.timezone!r}") from None
        if not croniter.is_valid(self.expression, second_at_beginning=len(fields) == 6):
            raise InvalidInput(f"invalid cron {self.expression!r}")

    @property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _iterator(self, start: datetime) -> croniter:
        seconds = len(self.expression.split()) == 6
        return croniter(self.expression, start.astimezone(self._zone), second_at_beginning=seconds)

    def after(self, moment: datetime) -> datetime | None:
        """The first fire strictly after ``moment`` (``None``: it never fires again)."""
        return next(self.iter_after(moment), None)

    def iter_after(self, moment: datetime) -> Iterator[datetime]:
        """Fires strictly after ``moment``, in order (ends if the schedule never fires)."""
        iterator = self._iterator(moment)
        while True:
            try:
                fire: datetime = iterator.get_next(datetime)
            except Exception:  # croniter: no further date (e.g. Feb 30); nothing more
                return
            yield fire.astimezone(UTC)

    def iter_until(self, moment: datetime) -> Iterator[datetime]:
        """Fires at or before ``moment``, newest first."""
        iterator = self._iterator(moment + _ONE_MICROSECOND)
        while True:
            try:
                fire: datetime = iterator.get_prev(datetime)
            except Exception:  # croniter: no earlier date
                return
            yield fire.astimezone(UTC)

    def between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Fires strictly after ``start`` and at or before ``end``, oldest first."""
        for fire in self.iter_after(start):
            if fire > end:
                return
            yield fire

    def next_times(self, now: datetime, count: int) -> list[datetime]:
        """The next ``count`` fires after ``now``."""
        found = []
        for fire in self.iter_after(now):
            found.append(fire)
            if len(found) == count:
                break
        return found


class CronWake(BaseTrigger):  # type: ignore[misc]  # APScheduler is untyped
    """An APScheduler trigger firing at a :class:`CronSchedule`'s times."""

    __slots__ = ("schedule",)

    def __init__(self, schedule: CronSchedule) -> None:
        self.schedule = schedule

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        start = previous_fire_time if previous_fire_time is not None else now - _ONE_MICROSECOND
        return self.schedule.after(start)

    def __str__(self) -> str:
        return f"cron[{self.schedule.expression!r} {self.schedule.timezone}]"
