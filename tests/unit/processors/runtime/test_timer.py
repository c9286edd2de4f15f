"""timer at run time: duration, until, cron schedules (5/6 fields, time zones), resume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processors.runtime import Completed, Failed, Waiting, WaitResolution
from processors.timer import TimerProcessor
from tests.unit.processors.runtime.conftest import NOW, Harness

TIMER = TimerProcessor()
STARTED = {"started_at": "2030-01-15T08:30:00.000Z"}


async def run(harness: Harness, config: dict[str, Any], now: datetime = NOW) -> Any:
    return await TIMER.run(config, harness.ctx({}, now=now))


def test_timer_keys_are_all_rendered() -> None:
    assert TimerProcessor.unrendered_keys == frozenset()
    assert TimerProcessor.routes_by_label is False


@pytest.mark.parametrize(
    ("duration", "seconds"), [(30, 30), (1.5, 1.5), ("5m", 300), ("1h30m", 5400), ("PT2S", 2)]
)
async def test_duration_waits_that_long(harness: Harness, duration: Any, seconds: float) -> None:
    outcome = await run(harness, {"duration": duration})
    assert outcome == Waiting("timer", until=NOW + timedelta(seconds=seconds), data=STARTED)


async def test_a_zero_duration_completes_at_once(harness: Harness) -> None:
    outcome = await run(harness, {"duration": 0})
    assert outcome == Completed({"waited_seconds": 0.0, "fired_at": "2030-01-15T08:30:00.000Z"})


@pytest.mark.parametrize(
    ("until", "expected"),
    [
        ("2030-01-15T09:00:00Z", datetime(2030, 1, 15, 9, tzinfo=UTC)),
        ("2030-01-15T09:00:00", datetime(2030, 1, 15, 9, tzinfo=UTC)),  # naive = UTC
        ("2030-01-15T12:00:00+02:00", datetime(2030, 1, 15, 10, tzinfo=UTC)),
        ("2030-01-16", datetime(2030, 1, 16, tzinfo=UTC)),
    ],
)
async def test_until_waits_for_the_timestamp(
    harness: Harness, until: str, expected: datetime
) -> None:
    outcome = await run(harness, {"until": until})
    assert outcome == Waiting("timer", until=expected, data=STARTED)


async def test_a_past_until_completes_at_once(harness: Harness) -> None:
    outcome = await run(harness, {"until": "2020-01-01T00:00:00Z"})
    assert outcome == Completed({"waited_seconds": 0.0, "fired_at": "2030-01-15T08:30:00.000Z"})


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"schedule": "0 9 * * *"}, datetime(2030, 1, 15, 9, tzinfo=UTC)),
        ({"schedule": "*/15 * * * *"}, datetime(2030, 1, 15, 8, 45, tzinfo=UTC)),
        ({"schedule": "30 * * * *"}, datetime(2030, 1, 15, 9, 30, tzinfo=UTC)),  # not now
        ({"schedule": "*/10 * * * * *"}, datetime(2030, 1, 15, 8, 30, 10, tzinfo=UTC)),
        ({"schedule": "45 0 9 * * *"}, datetime(2030, 1, 15, 9, 0, 45, tzinfo=UTC)),
        # 09:00 in Berlin (UTC+1 in January) has passed at 08:30 UTC: tomorrow's, at 08:00Z.
        (
            {"schedule": "0 9 * * *", "timezone": "Europe/Berlin"},
            datetime(2030, 1, 16, 8, tzinfo=UTC),
        ),
        (
            {"schedule": "0 9 * * *", "timezone": "America/New_York"},
            datetime(2030, 1, 15, 14, tzinfo=UTC),
        ),
        ({"schedule": "0 9 * * *", "timezone": None}, datetime(2030, 1, 15, 9, tzinfo=UTC)),
    ],
)
async def test_schedule_waits_for_the_next_fire_time(
    harness: Harness, config: dict[str, Any], expected: datetime
) -> None:
    outcome = await run(harness, config)
    assert outcome == Waiting("timer", until=expected, data=STARTED)


async def test_schedule_follows_daylight_saving_time(harness: Harness) -> None:
    summer = datetime(2030, 7, 1, 12, tzinfo=UTC)
    outcome = await run(harness, {"schedule": "0 9 * * *", "timezone": "Europe/Berlin"}, summer)
    assert isinstance(outcome, Waiting)
    assert outcome.until == datetime(2030, 7, 2, 7, tzinfo=UTC)  # UTC+2 in summer


async def test_a_naive_clock_is_taken_as_utc(harness: Harness) -> None:
    outcome = await run(harness, {"duration": 10}, NOW.replace(tzinfo=None))
    assert isinstance(outcome, Waiting)
    assert outcome.until == NOW + timedelta(seconds=10)


async def test_resume_reports_the_wait() -> None:
    wait = WaitResolution(
        kind="timer",
        created_at=NOW,
        due_at=NOW + timedelta(seconds=30),
        resolved_at=NOW + timedelta(seconds=30, microseconds=123_456),
        wait_data=STARTED,
    )
    outcome = await TIMER.resume({"duration": 30}, Harness().ctx(), wait)
    assert outcome == Completed({"waited_seconds": 30.123, "fired_at": "2030-01-15T08:30:30.123Z"})


async def test_resume_of_an_overdue_timer_counts_the_real_wait() -> None:
    resolved = datetime(2030, 1, 15, 10, 30, 0, tzinfo=UTC)  # server was down two hours
    wait = WaitResolution("timer", NOW, NOW + timedelta(seconds=5), resolved)
    outcome = await TIMER.resume({"duration": 5}, Harness().ctx(), wait)
    assert outcome == Completed({"waited_seconds": 7200.0, "fired_at": "2030-01-15T10:30:00.000Z"})


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({}, "needs one of 'duration', 'until', 'schedule'"),
        ({"duration": "soon"}, "timer 'duration': 'soon' is not a duration"),
        ({"duration": -1}, "timer 'duration'"),
        ({"duration": 10**15}, "timer 'duration'"),
        ({"until": "tomorrow"}, "timer 'until': 'tomorrow' is not an ISO-8601 timestamp"),
        ({"until": 5}, "timer 'until': expected an ISO-8601 timestamp string"),
        ({"schedule": "0 9 * *"}, "has 4 fields"),
        ({"schedule": "0 99 * * *"}, "timer 'schedule' '0 99 * * *'"),
        ({"schedule": "0 0 30 2 *"}, "timer 'schedule'"),  # never fires
        ({"schedule": "0 9 * * *", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"schedule": 5}, "expected a cron string"),
    ],
)
async def test_unusable_config_fails_without_retry(
    harness: Harness, config: dict[str, Any], fragment: str
) -> None:
    outcome = await run(harness, config)
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False
    assert fragment in outcome.error
