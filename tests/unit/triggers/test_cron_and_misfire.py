"""Fire times and misfire plans: pure computations on real croniter schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.errors import InvalidInput
from server.triggers.cron import CronSchedule, CronWake
from server.triggers.misfire import catch_up

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)  # a Monday, 09:00 UTC
EVERY_SECOND = CronSchedule("* * * * * *")


def seconds(*offsets: int) -> list[datetime]:
    return [T0 + timedelta(seconds=s) for s in offsets]


def test_fires_are_strictly_after_and_at_or_before_their_bounds() -> None:
    assert EVERY_SECOND.after(T0) == T0 + timedelta(seconds=1)
    assert list(EVERY_SECOND.between(T0, T0 + timedelta(seconds=3))) == seconds(1, 2, 3)
    newest = EVERY_SECOND.iter_until(T0)
    assert [next(newest), next(newest)] == seconds(0, -1)
    assert EVERY_SECOND.next_times(T0 + timedelta(milliseconds=500), 3) == seconds(1, 2, 3)


def test_a_five_field_schedule_in_a_time_zone_follows_daylight_saving() -> None:
    berlin = CronSchedule("30 2 * * *", "Europe/Berlin")
    # 2030-03-31: clocks jump from 02:00 to 03:00 in Berlin; croniter moves the fire on
    fires = berlin.next_times(datetime(2030, 3, 29, 12, tzinfo=UTC), 3)
    assert fires[0] == datetime(2030, 3, 30, 1, 30, tzinfo=UTC)  # 02:30 CET
    assert fires[2] == datetime(2030, 4, 1, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert all(fire.tzinfo == UTC for fire in fires)


def test_a_schedule_that_never_fires_answers_none() -> None:
    never = CronSchedule("0 0 30 2 *")  # February 30th
    assert never.after(T0) is None
    assert never.next_times(T0, 5) == []


@pytest.mark.parametrize(
    ("expression", "zone"),
    [("* * *", "UTC"), ("61 * * * *", "UTC"), ("0 9 * * 1", "Mars/Olympus")],
)
def test_a_bad_schedule_is_refused(expression: str, zone: str) -> None:
    with pytest.raises(InvalidInput):
        CronSchedule(expression, zone)


def test_the_apscheduler_trigger_wakes_at_the_schedules_times() -> None:
    wake = CronWake(EVERY_SECOND)
    assert wake.get_next_fire_time(None, T0) == T0  # a fire exactly now is not skipped
    assert wake.get_next_fire_time(T0, T0) == T0 + timedelta(seconds=1)


def test_skip_starts_no_missed_fire() -> None:
    assert catch_up(EVERY_SECOND, T0, T0 + timedelta(seconds=10), "skip", 10) == []


def test_run_once_starts_only_the_newest_missed_fire() -> None:
    end = T0 + timedelta(seconds=10, milliseconds=400)
    assert catch_up(EVERY_SECOND, T0, end, "run_once", 10) == seconds(10)


def test_run_all_starts_every_missed_fire_up_to_the_cap_oldest_first() -> None:
    end = T0 + timedelta(seconds=5)
    assert catch_up(EVERY_SECOND, T0, end, "run_all", 10) == seconds(1, 2, 3, 4, 5)
    assert catch_up(EVERY_SECOND, T0, end, "run_all", 2) == seconds(4, 5)


def test_nothing_is_missed_without_a_fire_in_the_gap() -> None:
    weekly = CronSchedule("0 9 * * 1")
    assert catch_up(weekly, T0, T0 + timedelta(days=6), "run_all", 10) == []
    assert catch_up(weekly, T0, T0, "run_once", 10) == []
    assert catch_up(weekly, T0, T0 + timedelta(days=7), "run_once", 10) == [T0 + timedelta(days=7)]


def test_a_week_of_downtime_of_a_one_second_cron_is_planned_without_walking_it() -> None:
    # backwards from the end of the gap: at most `cap` steps, whatever the gap
    end = T0 + timedelta(days=7)
    assert catch_up(EVERY_SECOND, T0, end, "run_all", 3) == [
        end - timedelta(seconds=2),
        end - timedelta(seconds=1),
        end,
    ]
