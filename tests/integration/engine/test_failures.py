"""Conditional edges, on_error edges and error_handling (SPEC §5)."""

from __future__ import annotations

import pytest

from tests.integration.engine.conftest import (
    Client,
    chain,
    completed,
    edge,
    event_types,
    expr,
    node_runs,
    run,
    script,
    skipped_entries,
    statuses,
    timer,
    workflow,
)


async def skipped(client: Client, execution_id: str) -> set[str]:
    return {n for kind, n in await event_types(client, execution_id) if kind == "node.skipped"}


@pytest.mark.parametrize(("n", "chosen"), [(9, {"high", "always"}), (2, {"low", "always"})])
async def test_edge_conditions_after_a_non_decision_node_are_expressions(
    client: Client, n: int, chosen: set[str]
) -> None:
    document = workflow(
        [script("measure", "m = n * 2"), expr("high", "1"), expr("low", "0"), expr("always", "2")],
        [
            edge("measure", "high", "m > 10"),
            edge("measure", "low", "m <= 10 and ${nodes.measure.output.m} >= 0"),
            edge("measure", "always"),
        ],
    )
    execution = await run(client, document, input={"n": n})
    assert execution["status"] == "completed", execution["error"]
    assert completed(execution) == {"measure"} | chosen
    assert await skipped(client, execution["id"]) == {"high", "low"} - chosen


@pytest.mark.parametrize(
    "failing",
    [
        script("work", "ok = 1", "x = 1 / 0"),
        expr("work", "int('not a number')"),
    ],
    ids=["script-division-by-zero", "transform-bad-value"],
)
async def test_on_error_edge_routes_a_failure_to_its_handler(client: Client, failing: dict) -> None:
    document = workflow(
        [failing, expr("next", "'normal path'"), script("handler", "handled = true")],
        [edge("work", "next"), edge("work", "handler", on_error=True)],
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    assert statuses(execution) == {"work": "failed", "handler": "completed"}
    assert await skipped(client, execution["id"]) == {"next"}
    assert execution["errors"] == []
    assert execution["error"] is None
    (work,) = node_runs(execution, "work")
    assert work["error"]["message"]


async def test_on_error_edge_is_skipped_when_the_node_succeeds(client: Client) -> None:
    document = workflow(
        [script("work", "ok = 1"), expr("next", "1"), script("handler", "handled = true")],
        [edge("work", "next"), edge("work", "handler", on_error=True)],
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    assert completed(execution) == {"work", "next"}
    assert await skipped(client, execution["id"]) == {"handler"}


async def test_skipped_nodes_are_listed_and_unreached_nodes_are_not(client: Client) -> None:
    # continue: the failed node's downstream is skipped (dead-path elimination) and listed;
    # stop: nothing after the failure was reached, so nothing is listed as skipped.
    nodes = [script("boom", "x = 1 / 0"), expr("after", "1"), expr("other", "2")]
    for mode, expected in (("continue", {"after"}), ("stop", set())):
        document = workflow(
            nodes, chain("boom", "after"), config={"error_handling": {"on_failure": mode}}
        )
        document["id"] = f"wf-{mode}"
        execution = await run(client, document)
        assert skipped_entries(execution) == expected, mode
        assert all(
            r["started_at"] is None for r in execution["executed_nodes"] if r["attempt"] == 0
        )


async def test_stop_fails_the_execution_at_the_first_failure(client: Client) -> None:
    document = workflow(
        [script("boom", "x = 1 / 0"), expr("after", "1"), timer("slow", 30)],
        chain("boom", "after"),
        config={"error_handling": {"on_failure": "stop"}},
    )
    execution = await run(client, document)
    assert execution["status"] == "failed"
    assert execution["error"]["node_id"] == "boom"
    assert "division" in execution["error"]["message"].lower()
    assert statuses(execution) == {"boom": "failed", "slow": "cancelled"}
    assert execution["waiting_on"] == []
    assert execution["completed_at"] is not None


async def test_retry_mode_retries_even_failures_a_processor_calls_final(client: Client) -> None:
    # A script error is not retryable on its own; on_failure "retry" retries it anyway.
    document = workflow(
        [script("boom", "x = 1 / 0")],
        [],
        config={"max_retries": 2, "error_handling": {"on_failure": "retry"}},
    )
    execution = await run(client, document)
    assert execution["status"] == "failed"
    assert [r["attempt"] for r in node_runs(execution, "boom")] == [1, 2, 3]


async def test_stop_does_not_retry_a_final_failure(client: Client) -> None:
    document = workflow(
        [script("boom", "x = 1 / 0")],
        [],
        config={"max_retries": 2, "error_handling": {"on_failure": "stop"}},
    )
    execution = await run(client, document)
    assert [r["attempt"] for r in node_runs(execution, "boom")] == [1]


async def test_continue_skips_the_failed_branch_and_completes_with_errors(
    client: Client,
) -> None:
    document = workflow(
        [script("boom", "x = 1 / 0"), expr("after-boom", "1"), script("fine", "fine = true")],
        chain("boom", "after-boom"),
        config={"error_handling": {"on_failure": "continue"}},
    )
    execution = await run(client, document)
    assert execution["status"] == "completed"
    assert statuses(execution) == {"boom": "failed", "fine": "completed"}
    assert await skipped(client, execution["id"]) == {"after-boom"}
    (error,) = execution["errors"]
    assert error["node_id"] == "boom"
    assert "division" in error["error"].lower()
    assert error["at"]
    assert execution["output"]["fine"] is True


async def test_continue_fails_the_execution_once_max_errors_is_reached(client: Client) -> None:
    document = workflow(
        [script("one", "x = 1 / 0"), script("two", "y = 1 / 0"), timer("slow", 30)],
        config={"error_handling": {"on_failure": "continue", "max_errors": 2}},
    )
    execution = await run(client, document)
    assert execution["status"] == "failed"
    assert execution["error"]["reason"] == "max_errors"
    assert "max_errors" in execution["error"]["message"]
    assert {e["node_id"] for e in execution["errors"]} == {"one", "two"}
    assert statuses(execution)["slow"] == "cancelled"


async def test_continue_below_max_errors_completes(client: Client) -> None:
    document = workflow(
        [script("one", "x = 1 / 0"), script("two", "y = 1")],
        config={"error_handling": {"on_failure": "continue", "max_errors": 2}},
    )
    execution = await run(client, document)
    assert execution["status"] == "completed"
    assert [e["node_id"] for e in execution["errors"]] == ["one"]


@pytest.mark.parametrize(
    ("expression", "reason"),
    [("'a' + '\\x00' + 'b'", "NUL character"), ("float('nan')", "cannot be stored as JSON")],
)
async def test_an_output_that_cannot_be_stored_fails_the_node_once(
    client: Client, expression: str, reason: str
) -> None:
    """Storing it would fail the commit, and the node would run again forever."""
    execution = await run(
        client, workflow([expr("bad", expression), expr("after", "1")], chain("bad", "after"))
    )
    assert execution["status"] == "failed", execution
    (bad,) = node_runs(execution, "bad")
    assert reason in bad["error"]["message"]
    assert "after" not in statuses(execution)
