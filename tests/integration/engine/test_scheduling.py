"""Who runs first and how much at once (SPEC §5 Start options: priority; Concurrency)."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import combinations
from typing import Any

from tests.integration.engine.conftest import (
    TERMINAL,
    Client,
    engine_client,
    node_runs,
    run,
    script,
    slow_script,
    start,
    statuses,
    upload,
    wait_for_status,
    wait_until,
    workflow,
)

#: Occupies a worker for a second (until the regex guard gives up on a runaway
#: pattern) while leaving the event loop and the GIL free to take the starts below.
HOLD = script("hold", "w = matches('" + "a" * 40 + "!', '^(a+)+$')")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def intervals(execution: dict[str, Any]) -> list[tuple[datetime, datetime]]:
    return [(at(r["started_at"]), at(r["completed_at"])) for r in node_runs(execution)]


def overlapping(spans: list[tuple[datetime, datetime]]) -> bool:
    return any(a[0] < b[1] and b[0] < a[1] for a, b in combinations(spans, 2))


async def test_ready_nodes_of_a_critical_execution_are_dispatched_before_low_ones(
    database_url: str,
) -> None:
    async with engine_client(database_url, **{"server.max_workers": 1}) as client:
        await upload(client, workflow([HOLD], id="blocker"))
        await upload(client, workflow([script("work", "done = true")], id="job"))
        blocker = await start(client, "blocker")
        await wait_until(
            client,
            blocker["id"],
            lambda e: statuses(e).get("hold") == "running",
            what="the only worker is busy",
        )
        lows = [(await start(client, "job", priority="low"))["id"] for _ in range(6)]
        critical = (await start(client, "job", priority="critical"))["id"]
        queued_by = datetime.now(UTC)  # every start above has enqueued its node by now

        held = await wait_for_status(client, blocker["id"], TERMINAL)
        (hold,) = node_runs(held, "hold")
        # the premise: the worker was still busy when the critical start was queued
        assert at(hold["completed_at"]) > queued_by

        def first_start(execution_id: str) -> Any:
            return wait_for_status(client, execution_id, "completed")

        (critical_run,) = node_runs(await first_start(critical), "work")
        low_starts = [at(node_runs(await first_start(i), "work")[0]["started_at"]) for i in lows]
        assert at(critical_run["started_at"]) < min(low_starts)
        assert low_starts == sorted(low_starts)  # same priority: first come, first served


async def test_concurrency_one_never_runs_two_nodes_of_an_execution_at_once(
    client: Client,
) -> None:
    document = workflow(
        [slow_script(node_id, lines=2) for node_id in ("a", "b", "c")],
        config={"concurrency": 1},
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    spans = intervals(execution)
    assert len(spans) == 3
    assert not overlapping(spans)


async def test_without_a_concurrency_limit_parallel_nodes_overlap(client: Client) -> None:
    # The counterpart of the test above: the same nodes do overlap when nothing limits them.
    document = workflow([slow_script(node_id, lines=2) for node_id in ("a", "b", "c")])
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    assert overlapping(intervals(execution))
