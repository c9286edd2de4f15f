"""Joins (SPEC §5): all / any / n, and dead-path elimination through them."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.integration.engine.conftest import (
    Client,
    chain,
    completed,
    decision,
    edge,
    event_types,
    expr,
    node_runs,
    run,
    script,
    skipped_entries,
    timer,
    workflow,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def skipped(client: Client, execution_id: str) -> set[str]:
    return {n for kind, n in await event_types(client, execution_id) if kind == "node.skipped"}


async def test_etl_shape_joins_two_parallel_chains_once_after_both(client: Client) -> None:
    document = workflow(
        [
            script("start-extract", "batch = 1"),
            script("extract-customers", "customers = [{'id': 1}, {'id': 2}]"),
            script("extract-orders", "orders = [{'amount': 5}, {'amount': 7}]"),
            timer("slow-orders", 0.2),  # one chain waits, the other does not
            script("transform-customers", "customer_count = len(customers)"),
            script("transform-orders", "revenue = sum([o['amount'] for o in orders])"),
            script("join-results", "summary = [customer_count, revenue]", join="all"),
            script("load-summary", "loaded = summary"),
        ],
        [
            edge("start-extract", "extract-customers"),
            edge("start-extract", "extract-orders"),
            *chain("extract-customers", "transform-customers", "join-results"),
            *chain("extract-orders", "slow-orders", "transform-orders", "join-results"),
            edge("join-results", "load-summary"),
        ],
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    assert execution["output"]["loaded"] == [2, 12]
    (join,) = node_runs(execution, "join-results")
    for before in ("transform-customers", "transform-orders"):
        (run_,) = node_runs(execution, before)
        assert at(run_["completed_at"]) <= at(join["started_at"])
    assert len(node_runs(execution, "load-summary")) == 1


async def test_a_join_whose_every_edge_is_skipped_is_skipped_with_its_downstream(
    client: Client,
) -> None:
    document = workflow(
        [
            decision("gate", condition="go"),
            expr("left", "1"),
            expr("right", "2"),
            expr("join", "3", join="all"),
            expr("after-join", "4"),
            expr("otherwise", "0"),
        ],
        [
            edge("gate", "left", "true"),
            edge("gate", "right", "true"),
            edge("gate", "otherwise", "false"),
            *chain("left", "join", "after-join"),
            edge("right", "join"),
        ],
    )
    execution = await run(client, document, input={"go": False})
    assert execution["status"] == "completed", execution["error"]
    assert completed(execution) == {"gate", "otherwise"}
    assert await skipped(client, execution["id"]) == {"left", "right", "join", "after-join"}
    # Only gate and otherwise ran; the skipped ones are listed as skipped, never as runs.
    assert {r["node_id"] for r in node_runs(execution)} == {"gate", "otherwise"}
    assert skipped_entries(execution) == {"left", "right", "join", "after-join"}


@pytest.mark.parametrize("policy", ["all", "any", 1])
async def test_every_join_policy_is_skipped_when_all_its_edges_are(
    client: Client, policy: str | int
) -> None:
    document = workflow(
        [
            script("a", "x = 1"),
            script("b", "y = 1"),
            expr("join", "1", join=policy),
            expr("tail", "2"),
        ],
        [edge("a", "join", "x > 5"), edge("b", "join", "y > 5"), edge("join", "tail")],
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    assert completed(execution) == {"a", "b"}
    assert await skipped(client, execution["id"]) == {"join", "tail"}


async def test_join_any_runs_at_the_first_taken_edge_and_only_once(client: Client) -> None:
    document = workflow(
        [
            expr("fast", "'fast'"),
            timer("slow", 0.3),
            script("first", "winner = result", join="any"),
        ],
        [edge("fast", "first"), edge("slow", "first")],
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    assert execution["output"]["winner"] == "fast"
    (first,) = node_runs(execution, "first")
    (slow,) = node_runs(execution, "slow")
    assert at(first["completed_at"]) < at(slow["completed_at"])  # it did not wait for slow


def three_into_join(join: int) -> dict:
    """a, b (fast) and c (after a timer) each have a conditional edge into ``join``."""
    return workflow(
        [
            script("a", "ran_a = 1"),
            script("b", "ran_b = 1"),
            timer("wait", 0.3),
            script("c", "ran_c = 1"),
            script("joined", "count = 2", join=join),
        ],
        [
            edge("a", "joined", "take_a"),
            edge("b", "joined", "take_b"),
            edge("wait", "c"),
            edge("c", "joined", "take_c"),
        ],
    )


async def test_join_n_runs_once_n_edges_were_taken_without_waiting_for_the_rest(
    client: Client,
) -> None:
    document = three_into_join(2)
    execution = await run(client, document, input={"take_a": True, "take_b": True, "take_c": True})
    assert execution["status"] == "completed", execution["error"]
    (joined,) = node_runs(execution, "joined")  # once, though all three edges were taken
    (c,) = node_runs(execution, "c")
    assert at(joined["started_at"]) < at(c["completed_at"])


@pytest.mark.parametrize(
    ("takes", "runs"),
    [((True, False, True), True), ((False, False, True), False), ((True, False, False), False)],
)
async def test_join_n_is_skipped_once_too_few_edges_are_left(
    client: Client, takes: tuple[bool, bool, bool], runs: bool
) -> None:
    document = three_into_join(2)
    take_a, take_b, take_c = takes
    execution = await run(
        client, document, input={"take_a": take_a, "take_b": take_b, "take_c": take_c}
    )
    assert execution["status"] == "completed", execution["error"]
    assert len(node_runs(execution, "joined")) == (1 if runs else 0)
    assert ("joined" in await skipped(client, execution["id"])) is not runs
