"""``timer``: wait durably for a duration, until a time, or until a cron schedule fires.

At run time (every key rendered by the engine; there are no unrendered keys) the timer
computes when it fires:

* ``duration`` — seconds or a duration string (:func:`server.durations.parse_duration`)
  after ``ctx.now()``;
* ``until`` — an ISO-8601 timestamp (``Z`` allowed; one without an offset is UTC);
* ``schedule`` — the next fire time strictly after ``ctx.now()`` of a cron string with
  5 fields, or 6 with seconds first, in ``timezone`` (an IANA name, default UTC).

``run`` answers ``Waiting("timer", until=…, data={"started_at": …})`` — the engine
stores the wait, so it survives restarts — or ``Completed`` at once when that time is
not in the future. ``resume`` answers ``{waited_seconds, fired_at}`` from the wait's
creation and resolution times. Timestamps in outputs are UTC ISO-8601 with
milliseconds and ``Z``. A config the timer cannot use fails the node, not retryable.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from processors.base import (
    DURATION_SCHEMA,
    TEMPLATE_STRING,
    ConfigCheck,
    JSONSchema,
    Processor,
    require_one_of,
)
from processors.runtime import Completed, Failed, NodeContext, Outcome, Waiting, WaitResolution
from server.durations import DurationError, parse_duration


class TimerConfigError(ValueError):
    """The timer's config does not say a usable time; the message says why."""


class TimerProcessor(Processor):
    """Waits; the wait is a stored timer, so it survives restarts."""

    type_name: ClassVar[str] = "timer"
    pure: ClassVar[bool] = True
    description: ClassVar[str] = (
        "Waits durably: a duration, until a timestamp, or until a cron schedule's next fire."
    )
    config_schema: ClassVar[JSONSchema] = {
        "type": "object",
        "properties": {
            "duration": {**DURATION_SCHEMA, "description": "how long to wait"},
            "until": {
                **TEMPLATE_STRING,
                "description": "ISO-8601 timestamp (or a template giving one) to wait for",
            },
            "schedule": {
                "type": "string",
                "description": "cron (5 fields, or 6 with seconds first): wait for its next fire",
            },
            "timezone": {"type": "string", "description": "IANA zone of `schedule` (default UTC)"},
        },
    }

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        kind = require_one_of(config, ("duration", "until", "schedule"), check, what="a timer")
        if kind == "duration":
            check.duration("duration", config["duration"])
        elif kind == "until":
            until = config["until"]
            if isinstance(until, str) and "${" not in until and not _is_timestamp(until):
                check.error(
                    "until",
                    f"{until!r} is not an ISO-8601 timestamp; write e.g. 2030-01-31T09:00:00Z",
                )
            check.template("until", until)
        elif kind == "schedule":
            check.cron("schedule", config["schedule"])
        if "timezone" in config and isinstance(config["timezone"], str):
            check.timezone("timezone", config["timezone"])

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        return frozenset({"waited_seconds", "fired_at"})

    async def run(self, config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
        now = _aware(ctx.now())
        try:
            until = fire_time(config, now)
        except TimerConfigError as exc:
            return Failed(str(exc), retryable=False)
        if until <= now:
            return Completed({"waited_seconds": 0.0, "fired_at": iso(now)})
        return Waiting("timer", until=until, data={"started_at": iso(now)})

    async def resume(
        self, config: Mapping[str, Any], ctx: NodeContext, wait: WaitResolution
    ) -> Outcome:
        resolved = _aware(wait.resolved_at)
        waited = (resolved - _aware(wait.created_at)).total_seconds()
        return Completed({"waited_seconds": round(waited, 3), "fired_at": iso(resolved)})


def fire_time(config: Mapping[str, Any], now: datetime) -> datetime:
    """When the timer fires (aware, UTC); :class:`TimerConfigError` when it cannot say."""
    if config.get("duration") is not None:
        try:
            seconds = parse_duration(config["duration"])
            return now + timedelta(seconds=seconds)
        except (DurationError, OverflowError) as exc:
            raise TimerConfigError(f"timer 'duration': {exc}") from None
    if config.get("until") is not None:
        return parse_timestamp(config["until"])
    if config.get("schedule") is not None:
        return next_fire(config["schedule"], config.get("timezone"), now)
    raise TimerConfigError("a timer needs one of 'duration', 'until', 'schedule'; none is set")


def parse_timestamp(value: object) -> datetime:
    """An ISO-8601 timestamp as an aware UTC datetime (no offset = UTC)."""
    if not isinstance(value, str):
        raise TimerConfigError(
            f"timer 'until': expected an ISO-8601 timestamp string, not {value!r}"
        )
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise TimerConfigError(
            f"timer 'until': {value!r} is not an ISO-8601 timestamp; write e.g. "
            "2030-01-31T09:00:00Z"
        ) from None
    return _aware(moment)


def next_fire(schedule: object, timezone: object, now: datetime) -> datetime:
    """The first fire time of cron ``schedule`` in ``timezone`` strictly after ``now``."""
    if not isinstance(schedule, str):
        raise TimerConfigError(f"timer 'schedule': expected a cron string, not {schedule!r}")
    zone_name = "UTC" if timezone is None else timezone
    if not isinstance(zone_name, str):
        raise TimerConfigError(f"timer 'timezone': expected an IANA name, not {timezone!r}")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimerConfigError(
            f"timer 'timezone': unknown time zone {zone_name!r}; use an IANA name such as "
            '"UTC" or "Europe/Berlin"'
        ) from None
    fields = schedule.split()
    if len(fields) not in (5, 6):
        raise TimerConfigError(
            f"timer 'schedule': {schedule!r} has {len(fields)} fields; a cron string has 5 "
            "(minute hour day month weekday), or 6 with seconds first"
        )
    try:
        cron = croniter(schedule, now.astimezone(zone), second_at_beginning=len(fields) == 6)
        fire: datetime = cron.get_next(datetime)
    except Exception as exc:  # croniter's errors are all about the user's cron string
        raise TimerConfigError(f"timer 'schedule' {schedule!r}: {exc}") from None
    return fire.astimezone(UTC)


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and ``Z``."""
    return _aware(moment).astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _aware(moment: datetime) -> datetime:
    """``moment`` with a time zone (a naive one is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _is_timestamp(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True
