"""Retries, timeouts and saga rollback (SPEC §5)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from tests.integration.engine.conftest import (
    Client,
    chain,
    engine_client,
    event_types,
    events,
    expr,
    node,
    node_runs,
    run,
    script,
    slow_script,
    start,
    statuses,
    timer,
    upload,
    wait_for_status,
    wait_until,
    workflow,
)

#: A line that is quick but (having a comprehension) is evaluated in a worker thread.
QUICK_THREADED_LINE = "w = len([0 for i in split('a b')])"
FIXED_RETRIES = {"max_attempts": 3, "delay": 0.05, "backoff": "fixed"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_retry_policy_runs_a_failing_node_max_attempts_times(client: Client) -> None:
    document = workflow(
        [slow_script("flaky", timeout="0.1s", retry_policy=FIXED_RETRIES), expr("after", "1")],
        chain("flaky", "after"),
    )
    execution = await run(client, document)
    assert execution["status"] == "failed"
    runs = node_runs(execution, "flaky")
    assert [(r["attempt"], r["retry_count"], r["status"]) for r in runs] == [
        (1, 0, "failed"),
        (2, 1, "failed"),
        (3, 2, "failed"),
    ]
    assert all("timed out" in r["error"]["message"] for r in runs)
    for earlier, later in itertools.pairwise(runs):  # the delay is a minimum
        gap = at(later["started_at"]) - at(earlier["completed_at"])
        assert gap >= timedelta(seconds=0.05)
    page = await events(client, execution["id"], limit=1000)
    scheduled = [e for e in page["events"] if e["type"] == "node.retry_scheduled"]
    assert [(e["node_id"], e["data"]["attempt"]) for e in scheduled] == [("flaky", 1), ("flaky", 2)]
    assert {e["data"]["delay_seconds"] for e in scheduled} == {0.05}
    assert [e["node_id"] for e in page["events"] if e["type"] == "node.failed"] == ["flaky"]
    assert "after" not in statuses(execution)


async def test_a_node_that_fails_then_succeeds_is_retried_until_it_completes(
    client: Client,
) -> None:
    policy = {"max_attempts": 20, "delay": 0.3, "backoff": "fixed"}
    document = workflow(
        [slow_script("flaky", until="ready_at", timeout="0.15s", retry_policy=policy)],
        output={"attempts": "${nodes.flaky.attempts}"},
    )
    await upload(client, document)
    # Slow (and so timed out) until `ready_at`, quick afterwards.
    ready_at = datetime.now(UTC) + timedelta(seconds=1)
    started = await start(client, input={"ready_at": ready_at.isoformat()})
    waiting = await wait_until(
        client,
        started["id"],
        lambda e: any(w["kind"] == "retry" for w in e["waiting_on"]),
        what="a retry wait",
    )
    (retry_wait,) = waiting["waiting_on"]
    assert retry_wait["node_id"] == "flaky"
    assert waiting["status"] == "running"
    execution = await wait_for_status(client, started["id"], ("completed", "failed"))
    assert execution["status"] == "completed", execution["error"]
    runs = node_runs(execution, "flaky")
    assert at(runs[0]["started_at"]) < ready_at  # the precondition: it was slow at first
    assert [r["status"] for r in runs] == ["failed"] * (len(runs) - 1) + ["completed"]
    assert all("timed out" in r["error"]["message"] for r in runs[:-1])
    assert execution["output"] == {"attempts": len(runs)}
    assert len(runs) >= 2


async def test_default_retries_come_from_config_max_retries(client: Client) -> None:
    document = workflow([slow_script("flaky", timeout="0.1s")], config={"max_retries": 1})
    execution = await run(client, document)
    assert execution["status"] == "failed"
    assert [r["attempt"] for r in node_runs(execution, "flaky")] == [1, 2]
    page = await events(client, execution["id"])
    (scheduled,) = [e for e in page["events"] if e["type"] == "node.retry_scheduled"]
    assert scheduled["data"]["delay_seconds"] == 1.0  # exponential from 1 s


async def test_a_node_failure_that_cannot_succeed_is_not_retried(client: Client) -> None:
    document = workflow([script("broken", "x = 1 / 0", retry_policy=FIXED_RETRIES)])
    execution = await run(client, document)
    assert execution["status"] == "failed"
    assert len(node_runs(execution, "broken")) == 1


async def test_node_timeout_fails_the_node_as_timed_out(client: Client) -> None:
    execution = await run(client, workflow([slow_script("slow", timeout="0.2s")]))
    assert execution["status"] == "failed"
    assert execution["error"]["node_id"] == "slow"
    assert "timed out after" in execution["error"]["message"]
    (slow,) = node_runs(execution, "slow")
    assert slow["status"] == "failed"


async def test_node_timeout_holds_however_the_processor_reacts_to_it(client: Client) -> None:
    # A processor may swallow the cancellation the timeout sends it (a thread finishing
    # at that very moment); the node must fail at its timeout all the same.
    names = [f"busy-{i}" for i in range(16)]
    document = workflow(
        # a thousand quick lines, each in a worker thread: the timeout nearly always meets
        # a line just finishing
        [script(name, *[QUICK_THREADED_LINE] * 1000, timeout="0.1s") for name in names],
        config={"error_handling": {"on_failure": "continue"}},
    )
    execution = await run(client, document)
    assert execution["status"] == "completed"
    assert statuses(execution) == dict.fromkeys(names, "failed")
    assert sorted(e["node_id"] for e in execution["errors"]) == sorted(names)
    assert all("timed out after 100ms" in e["error"] for e in execution["errors"])


async def test_workflow_timeout_fails_the_execution_with_reason_timeout(client: Client) -> None:
    document = workflow(
        [timer("long-wait", 5), expr("after", "1")],
        chain("long-wait", "after"),
        config={"timeout": "0.5s"},
    )
    execution = await run(client, document, timeout=4)
    assert execution["status"] == "failed"
    assert execution["error"]["reason"] == "timeout"
    assert "timed out after 500ms" in execution["error"]["message"]
    # on time (the engine wakes for the deadline), not seconds late
    assert at(execution["completed_at"]) - at(execution["started_at"]) < timedelta(seconds=2)
    assert statuses(execution) == {"long-wait": "cancelled"}
    assert execution["waiting_on"] == []


async def test_server_execution_timeout_is_the_default_limit(database_url: str) -> None:
    async with engine_client(database_url, **{"server.execution_timeout": "0.5s"}) as client:
        execution = await run(client, workflow([timer("long-wait", 5)]), timeout=4)
    assert execution["status"] == "failed"
    assert execution["error"]["reason"] == "timeout"
    assert at(execution["completed_at"]) - at(execution["started_at"]) < timedelta(seconds=2)


def undo(template: str) -> dict:
    return {"type": "transform", "config": {"transform_type": "template", "template": template}}


async def test_rollback_compensates_completed_nodes_in_reverse_completion_order(
    client: Client,
) -> None:
    document = workflow(
        [
            # listed out of order: compensation follows completion, not the list
            script("reserve", "reserved = 2", compensate=undo("release ${output.reserved}")),
            script("charge", "charged = 1", compensate=undo("refund ${output.charged}")),
            script("log-only", "noted = true"),  # nothing to compensate
            script("ship", "x = 1 / 0", compensate=undo("never")),
        ],
        chain("charge", "reserve", "log-only", "ship"),
        config={"error_handling": {"on_failure": "stop", "rollback": True}},
    )
    execution = await run(client, document)
    assert execution["status"] == "failed"
    assert execution["error"]["node_id"] == "ship"
    compensations = sorted(
        (r for r in execution["executed_nodes"] if r["kind"] == "compensation"),
        key=lambda r: r["started_at"],
    )
    assert [(r["node_id"], r["status"], r["output"]) for r in compensations] == [
        ("reserve", "completed", {"result": "release 2"}),
        ("charge", "completed", {"result": "refund 1"}),
    ]
    kinds = await event_types(client, execution["id"])
    assert [n for kind, n in kinds if kind == "node.compensated"] == ["reserve", "charge"]
    assert kinds[-1] == ("execution.failed", "ship")
    # the nodes' own runs are unchanged
    assert statuses(execution) == {
        "charge": "completed",
        "reserve": "completed",
        "log-only": "completed",
        "ship": "failed",
    }


async def test_a_failed_compensation_is_listed_in_errors(client: Client) -> None:
    bad = {"type": "task", "config": {"script": ["x = 1 / 0"]}}
    document = workflow(
        [
            script("charge", "charged = 1", compensate=undo("refund ${output.charged}")),
            script("reserve", "reserved = 1", compensate=bad),
            script("ship", "x = 1 / 0"),
        ],
        chain("charge", "reserve", "ship"),
        config={"error_handling": {"rollback": True}},
    )
    execution = await run(client, document)
    assert execution["status"] == "failed"
    (error,) = execution["errors"]
    assert error["node_id"] == "reserve"
    assert "compensation failed" in error["error"]
    kinds = await event_types(client, execution["id"])
    assert ("node.compensation_failed", "reserve") in kinds
    assert ("node.compensated", "charge") in kinds  # one failure does not stop the others


async def test_without_rollback_nothing_is_compensated(client: Client) -> None:
    document = workflow(
        [
            script("charge", "charged = 1", compensate=undo("refund")),
            node("ship", "transform", {"transform_type": "expression", "expression": "1 / 0"}),
        ],
        chain("charge", "ship"),
    )
    execution = await run(client, document)
    assert execution["status"] == "failed"
    assert [r for r in execution["executed_nodes"] if r["kind"] == "compensation"] == []
