"""What a cron trigger does about fires it missed (SPEC §2 triggers, ``misfire``).

A fire is *missed* when it came due while no server process ran the trigger (all of
them were down, or the trigger was just picked up by a process starting), or when the
process running it was stalled for longer than the grace period (a suspended laptop).
The trigger's policy decides which missed fires still start an execution:

* ``run_once`` (default): one catch-up execution, for the newest missed fire;
* ``skip``: none — the schedule simply carries on;
* ``run_all``: every missed fire, but at most ``max_catch_up`` of them (the newest),
  started oldest first, so a long outage cannot unleash thousands of executions.

Missed fires are walked backwards from the end of the gap, so even a one-second cron
after a week of downtime costs at most ``max_catch_up`` steps.
"""

from __future__ import annotations

from datetime import datetime
from itertools import islice, takewhile
from typing import Literal

from server.triggers.cron import CronSchedule

Policy = Literal["run_once", "skip", "run_all"]


def catch_up(
    schedule: CronSchedule, since: datetime, until: datetime, policy: Policy, cap: int
) -> list[datetime]:
    """The missed fires (after ``since``, at or before ``until``) to start, oldest first."""
    if policy == "skip" or until <= since:
        return []
    wanted = 1 if policy == "run_once" else max(cap, 1)
    newest_first = takewhile(lambda fire: fire > since, schedule.iter_until(until))
    return sorted(islice(newest_first, wanted))
