"""Run-time limits (SPEC §8): a runaway expression, a loop over too many items, a scope
that grows past its size — each fails its node with a message naming the limit, and the
server goes on working (the next execution on the same single worker completes).

Nothing here measures time: the failures are the bounds themselves (operand checks,
iteration and size limits), so a test fails if one of them is missing — the node would
then hang, exhaust memory or complete.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.engine.conftest import (
    Client,
    chain,
    engine_client,
    expr,
    latest,
    node,
    run,
    script,
    wait_until,
    workflow,
)


@pytest.fixture
async def one_worker(database_url: str) -> AsyncIterator[Client]:
    """An app that runs one node at a time, with small loop and scope limits."""
    flags = {
        "server.max_workers": 1,
        "limits.max_loop_iterations": 5,
        "limits.max_scope_bytes": 4000,
    }
    async with engine_client(database_url, **flags) as test_client:
        yield test_client


def failure(execution: dict[str, Any], node_id: str) -> str:
    assert execution["status"] == "failed", execution
    run_ = latest(execution)[node_id]
    assert run_["status"] == "failed"
    message: str = run_["error"]["message"]
    return message


async def assert_worker_free(client: Client) -> None:
    """A following execution runs to completion on the same (single) worker."""
    after = await run(client, workflow([expr("ok", "6 * 7")], id="after"))
    assert after["status"] == "completed", after["error"]
    assert after["output"] == {"result": 42}


# --- runaway expressions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("9**9**9", "would be a number of more than 10,000 bits"),
        ("(9**3999999)*(9**3999999)", "would be a number of more than 10,000 bits"),
        ("'a' * 10**9", "repeating a string of 1 characters 1,000,000,000 times"),
        ("[1] * 10**9", "repeating a list of 1 items 1,000,000,000 times"),
        ("len([1 for a in xs for b in xs])", "ran more than 100,000 steps"),
    ],
)
async def test_a_runaway_expression_fails_its_node_and_frees_the_worker(
    one_worker: Client, expression: str, reason: str
) -> None:
    document = workflow(
        [script("data", "xs = split('a ' * 400)"), expr("boom", expression)],
        chain("data", "boom"),
        id="runaway",
    )
    execution = await run(one_worker, document)
    message = failure(execution, "boom")
    assert reason in message
    assert expression in message  # the expression is quoted in the error
    await assert_worker_free(one_worker)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("matches(text, 'b$')", "the limit is 100,000"),
        ("matches('abc', pattern)", "pattern is 1,001 characters"),
        ("matches(short, '(a+)+$')", "regular expression took longer than"),
    ],
)
async def test_a_regex_over_its_limits_fails_its_node_and_frees_the_worker(
    one_worker: Client, expression: str, reason: str
) -> None:
    inputs = {"text": "a" * 100_001, "pattern": "a" * 1001, "short": "a" * 40 + "b"}
    document = workflow([expr("search", expression)], id="regex")
    execution = await run(one_worker, document, input=inputs)
    assert reason in failure(execution, "search")
    await assert_worker_free(one_worker)


# --- loops ----------------------------------------------------------------------------------


def loop(node_id: str, **config: Any) -> dict[str, Any]:
    body = {"nodes": [expr("step", "index * 2", output_key="step")], "edges": []}
    return node(node_id, "loop", {**config, "body": body, "collect": "step.result"})


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"iterations": 6}, "'iterations' is 6, more than the 5 iterations a loop may run"),
        ({"iterations": 10**12}, "'iterations' is 1,000,000,000,000, more than the 5"),
        ({"items": "${xs}"}, "'items' has 6 elements, more than the 5 iterations"),
        ({"items": [1, 2, 3, 4, 5, 6]}, "'items' has 6 elements"),
    ],
)
async def test_a_loop_over_more_than_max_loop_iterations_fails_before_starting(
    one_worker: Client, config: dict[str, Any], words: str
) -> None:
    document = workflow([loop("each", **config)], id="too-many")
    execution = await run(one_worker, document, input={"xs": [1, 2, 3, 4, 5, 6]})
    message = failure(execution, "each")
    assert words in message
    assert "limits.max_loop_iterations" in message
    assert execution["child_executions"] == []  # not one iteration was started
    await assert_worker_free(one_worker)


async def test_a_while_loop_stops_at_the_limit_even_with_a_larger_max_iterations(
    one_worker: Client,
) -> None:
    document = workflow([loop("forever", **{"while": "true", "max_iterations": 100})])
    execution = await run(one_worker, document)
    message = failure(execution, "forever")
    assert "still true after 5 iterations" in message
    assert "limits.max_loop_iterations" in message
    assert len(execution["child_executions"]) == 5


async def test_a_loop_within_the_limit_runs(one_worker: Client) -> None:
    document = workflow([loop("each", iterations=5)])
    execution = await run(one_worker, document)
    assert execution["status"] == "completed", execution["error"]
    assert execution["output"]["results"] == [0, 2, 4, 6, 8]


# --- scope size -----------------------------------------------------------------------------


async def test_an_output_that_would_grow_the_scope_past_its_limit_fails_the_node(
    one_worker: Client,
) -> None:
    # each output is ~1,500 bytes as JSON: two fit in 4,000, the third does not
    document = workflow(
        [
            script("a", "a = 'x' * 1500"),
            script("b", "b = 'y' * 1500"),
            script("c", "c = 'z' * 1500"),
            expr("d", "1"),
        ],
        chain("a", "b", "c", "d"),
        id="growing",
    )
    execution = await run(one_worker, document)
    message = failure(execution, "c")
    assert "limits.max_scope_bytes" in message
    assert "over the limit of 4,000" in message
    assert {"a", "b"} <= {n for n, r in latest(execution).items() if r["status"] == "completed"}
    assert "d" not in latest(execution)
    await assert_worker_free(one_worker)


async def test_the_input_counts_towards_the_scope(one_worker: Client) -> None:
    document = workflow([script("a", "a = 'x' * 1500")], id="big-input")
    execution = await run(one_worker, document, input={"blob": "b" * 3000})
    assert "limits.max_scope_bytes" in failure(execution, "a")


async def test_a_rerun_node_replaces_its_share_of_the_scope(one_worker: Client) -> None:
    # b's new output replaces its old one: a + b stay at ~3,000 bytes of the 4,000, where
    # counting the old output too would make 4,500.
    document = workflow(
        [script("a", "a = 'x' * 1500"), script("b", "b = 'y' * 1500")],
        chain("a", "b"),
        id="rerun",
    )
    first = await run(one_worker, document)
    assert first["status"] == "completed", first["error"]
    response = await one_worker.post(
        f"/api/v1/workflows/executions/{first['id']}/rerun", json={"node_id": "b"}
    )
    assert response.status_code == 200, response.text
    again = await wait_until(
        one_worker,
        first["id"],
        lambda e: (
            e["status"] == "completed"
            and sum(1 for r in e["executed_nodes"] if r["node_id"] == "b") == 2
        ),
        what="the rerun to complete",
    )
    assert again["status"] == "completed", again["error"]
