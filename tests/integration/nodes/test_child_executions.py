"""``loop``, ``parallel`` (with branches) and ``sub_workflow``: child executions for real,
on SQLite and PostgreSQL, through the REST API."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from tests.integration.engine.conftest import (
    TERMINAL,
    Client,
    engine_client,
    expr,
    get_execution,
    latest,
    node,
    run,
    start,
    timer,
    upload,
    wait_for_status,
    wait_until,
    workflow,
)


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    async with engine_client(database_url) as test_client:
        yield test_client


def loop(node_id: str, body: list[dict[str, Any]], edges: list[dict[str, Any]] = (), **config: Any):  # type: ignore[assignment]
    return node(node_id, "loop", {**config, "body": {"nodes": body, "edges": list(edges)}})


def body_expr(node_id: str, expression: str, output_key: str) -> dict[str, Any]:
    return expr(node_id, expression, output_key=output_key)


def peak_overlap(children: list[dict[str, Any]]) -> int:
    """The most child executions that were running at the same moment."""
    moments = []
    for child in children:
        moments.append((datetime.fromisoformat(child["started_at"]), 1))
        moments.append((datetime.fromisoformat(child["completed_at"]), -1))
    running = peak = 0
    for _, step in sorted(moments, key=lambda m: (m[0], m[1])):
        running += step
        peak = max(peak, running)
    return peak


# --- loop -----------------------------------------------------------------------------


async def test_loop_over_items_collects_each_iteration_in_order(client: Client) -> None:
    document = workflow(
        [
            loop(
                "each",
                [body_expr("double", "{'value': item * 2, 'at': index, 'base': base}", "doubled")],
                items="${numbers}",
                concurrency=2,
                collect="doubled.result",
            ),
            expr("total", "sum([r['value'] for r in ${nodes.each.output.results}])"),
        ],
        [{"from_node": "each", "to_node": "total"}],
        variables={
            "numbers": {"name": "numbers", "type": "array", "required": True},
            "base": {"name": "base", "type": "integer", "default_value": 100},
        },
    )
    execution = await run(client, document, input={"numbers": [3, 1, 4, 1, 5]})
    assert execution["status"] == "completed", execution
    output = latest(execution)["each"]["output"]
    assert output["iterations"] == 5
    assert output["failed"] == 0
    assert [r["value"] for r in output["results"]] == [6, 2, 8, 2, 10]
    assert [r["at"] for r in output["results"]] == [0, 1, 2, 3, 4]
    assert all(r["base"] == 100 for r in output["results"])  # the parent's variables
    assert latest(execution)["total"]["output"]["result"] == 28
    children = execution["child_executions"]
    assert len(children) == 5
    assert {c["node_id"] for c in children} == {"each"}
    assert all(c["status"] == "completed" for c in children)
    assert peak_overlap(children) <= 2
    child = await get_execution(client, children[0]["id"])
    assert child["parent_execution"] == execution["id"]
    assert child["parent_node"] == "each"


async def test_a_loop_of_1000_items_completes(client: Client) -> None:
    document = workflow(
        [
            loop(
                "each",
                [body_expr("square", "item * item", "sq")],
                items="${numbers}",
                concurrency=20,
                collect="sq.result",
            )
        ],
        variables={"numbers": {"name": "numbers", "type": "array", "required": True}},
    )
    execution = await run(client, document, input={"numbers": list(range(1000))}, timeout=180)
    assert execution["status"] == "completed", execution["error"]
    output = latest(execution)["each"]["output"]
    assert output["iterations"] == 1000
    assert output["results"] == [i * i for i in range(1000)]


async def test_loop_iterations_and_while(client: Client) -> None:
    counted = await run(
        client,
        workflow(
            [loop("n", [body_expr("b", "index * 10", "v")], iterations=3, collect="v.result")]
        ),
    )
    assert latest(counted)["n"]["output"]["results"] == [0, 10, 20]

    document = workflow(
        [
            loop(
                "grow",
                [body_expr("b", "index + 1", "v")],
                **{"while": "len(results) == 0 or last < 4", "collect": "v.result"},
            )
        ],
        id="while-wf",
    )
    grown = await run(client, document)
    assert grown["status"] == "completed", grown
    assert latest(grown)["grow"]["output"]["results"] == [1, 2, 3, 4]

    runaway = workflow(
        [loop("forever", [body_expr("b", "1", "v")], **{"while": "true", "max_iterations": 3})],
        id="runaway",
    )
    failed = await run(client, runaway)
    assert failed["status"] == "failed"
    assert "max_iterations" in latest(failed)["forever"]["error"]["message"]


async def test_fail_fast_stops_the_loop_and_cancels_the_running_iterations(
    client: Client,
) -> None:
    body = [
        node(
            "pick",
            "decision",
            {"condition": "item == 'bad'"},
        ),
        expr("boom", "1 / 0"),
        timer("slow", "30s"),
    ]
    edges = [
        {"from_node": "pick", "to_node": "boom", "condition": "true"},
        {"from_node": "pick", "to_node": "slow", "condition": "false"},
    ]
    document = workflow([loop("each", body, edges, items=["ok", "bad", "ok2"], concurrency=3)])
    execution = await run(client, document, timeout=30)
    assert execution["status"] == "failed"
    assert "iteration 1" in latest(execution)["each"]["error"]["message"]
    statuses = {c["index"]: c["status"] for c in execution["child_executions"]}
    assert statuses[1] == "failed"
    for index in (0, 2):  # the timers were cancelled, not left waiting 30 s
        child = await wait_for_status(
            client, execution["child_executions"][index]["id"], TERMINAL, timeout=10
        )
        assert child["status"] == "cancelled"


async def test_without_fail_fast_the_loop_counts_failures(client: Client) -> None:
    document = workflow(
        [
            loop(
                "each",
                [body_expr("inv", "1 / item", "v")],
                items=[1, 0, 2],
                fail_fast=False,
                collect="v.result",
            )
        ]
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution
    output = latest(execution)["each"]["output"]
    assert output["failed"] == 1
    assert output["results"] == [1.0, None, 0.5]


# --- parallel -------------------------------------------------------------------------


def branch(branch_id: str, *nodes: dict[str, Any]) -> dict[str, Any]:
    ids = [n["id"] for n in nodes]
    edges = [{"from_node": a, "to_node": b} for a, b in itertools.pairwise(ids)]
    return {"id": branch_id, "nodes": list(nodes), "edges": edges}


async def test_parallel_honours_max_parallel(client: Client) -> None:
    branches = [
        branch(f"b{i}", timer("pause", "0.3s"), body_expr("say", f"'branch {i}'", "said"))
        for i in range(5)
    ]
    document = workflow([node("fan", "parallel", {"branches": branches, "max_parallel": 2})])
    execution = await run(client, document, timeout=30)
    assert execution["status"] == "completed", execution
    output = latest(execution)["fan"]["output"]
    assert sorted(output["branches"]) == [f"b{i}" for i in range(5)]
    assert output["branches"]["b3"]["said"]["result"] == "branch 3"
    children = execution["child_executions"]
    assert len(children) == 5
    assert peak_overlap(children) == 2  # never more than 2, and 2 did run together


async def test_parallel_wait_for_any_and_n(client: Client) -> None:
    quick = branch("quick", body_expr("q", "'first'", "answer"))
    slow = [branch(f"slow{i}", timer("wait", "30s")) for i in range(2)]
    document = workflow([node("race", "parallel", {"branches": [*slow, quick], "wait_for": "any"})])
    execution = await run(client, document, timeout=20)
    assert execution["status"] == "completed", execution
    assert list(latest(execution)["race"]["output"]["branches"]) == ["quick"]
    for child in execution["child_executions"]:
        if child["label"] != "quick":
            ended = await wait_for_status(client, child["id"], TERMINAL, timeout=10)
            assert ended["status"] == "cancelled"

    two = [branch(f"fast{i}", body_expr("f", str(i), "v")) for i in range(2)]
    document = workflow(
        [node("two", "parallel", {"branches": [*two, *slow], "wait_for": 2})], id="two-of-four"
    )
    execution = await run(client, document, timeout=20)
    assert execution["status"] == "completed", execution
    assert sorted(latest(execution)["two"]["output"]["branches"]) == ["fast0", "fast1"]


async def test_a_failing_branch_fails_the_node(client: Client) -> None:
    document = workflow(
        [
            node(
                "fan",
                "parallel",
                {
                    "branches": [
                        branch("ok", body_expr("a", "1", "v")),
                        branch("bad", expr("b", "1 / 0")),
                    ]
                },
            )
        ]
    )
    execution = await run(client, document)
    assert execution["status"] == "failed"
    assert "branch 'bad' failed" in latest(execution)["fan"]["error"]["message"]


async def test_parallel_gateway_starts_all_its_edges_after_the_join(client: Client) -> None:
    document = workflow(
        [
            expr("a", "1", output_key="a"),
            expr("b", "2", output_key="b"),
            node("gate", "parallel", {}),
            expr("c", "${a.result} + ${b.result}", output_key="c"),
            expr("d", "${a.result} * 10", output_key="d"),
        ],
        [
            {"from_node": "a", "to_node": "gate"},
            {"from_node": "b", "to_node": "gate"},
            {"from_node": "gate", "to_node": "c"},
            {"from_node": "gate", "to_node": "d"},
        ],
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution
    assert latest(execution)["c"]["output"]["result"] == 3
    assert latest(execution)["d"]["output"]["result"] == 10


# --- sub_workflow -----------------------------------------------------------------------


CHILD = workflow(
    [expr("greet", "'hello ' + who", output_key="greeting")],
    id="child",
    variables={"who": {"name": "who", "type": "string", "required": True}},
    output={"text": "${greeting.result}", "shouted": "${greeting.result|none}"},
)


async def test_sub_workflow_maps_input_and_output(client: Client) -> None:
    await upload(client, CHILD)
    parent = workflow(
        [
            node(
                "call",
                "sub_workflow",
                {
                    "workflow_id": "child",
                    "input_mapping": {"who": "person.name"},
                    "output_mapping": {"message": "text"},
                },
            ),
            expr("after", "${message} + '!'"),
        ],
        [{"from_node": "call", "to_node": "after"}],
        id="parent",
        variables={"person": {"name": "person", "type": "object", "required": True}},
    )
    execution = await run(client, parent, input={"person": {"name": "Ada"}})
    assert execution["status"] == "completed", execution
    assert latest(execution)["call"]["output"] == {"message": "hello Ada"}
    assert latest(execution)["after"]["output"]["result"] == "hello Ada!"
    (child_entry,) = execution["child_executions"]
    child = await get_execution(client, child_entry["id"])
    assert child["parent_execution"] == execution["id"]
    assert child["input"] == {"who": "Ada"}


async def test_a_failed_child_fails_the_node_and_cancelling_the_parent_cancels_the_child(
    client: Client,
) -> None:
    await upload(client, CHILD)
    bad = workflow(
        [node("call", "sub_workflow", {"workflow_id": "child", "input_mapping": {"who": 42}})],
        id="bad-input",
    )
    execution = await run(client, bad)
    assert execution["status"] == "failed"
    assert "who" in latest(execution)["call"]["error"]["message"]

    await upload(client, workflow([timer("nap", "1h")], id="sleeper"))
    parent = workflow([node("call", "sub_workflow", {"workflow_id": "sleeper"})], id="waits")
    await upload(client, parent)
    started = await start(client, "waits")
    waiting = await wait_until(
        client,
        started["id"],
        lambda e: bool(e["child_executions"]),
        what="a child execution",
    )
    child_id = waiting["child_executions"][0]["id"]
    await wait_for_status(client, child_id, "running")
    response = await client.post(f"/api/v1/workflows/executions/{started['id']}/cancel")
    assert response.status_code == 200, response.text
    child = await wait_for_status(client, child_id, TERMINAL, timeout=10)
    assert child["status"] == "cancelled"


async def test_loop_and_parallel_can_run_stored_workflows(client: Client) -> None:
    await upload(
        client,
        workflow(
            [expr("label", "'#' + str(index) + ':' + item", output_key="label")],
            id="labeller",  # gets item and index as its input when a loop runs it
            output={"text": "${label.result}"},
        ),
    )
    document = workflow(
        [
            node(
                "each",
                "loop",
                {"items": ["a", "b"], "workflow_id": "labeller", "collect": "text"},
            ),
            node(
                "both",
                "parallel",
                {
                    "branches": [
                        {
                            "id": "first",
                            "workflow_id": "labeller",
                            "input": {"item": "${nodes.each.output.results[0]}", "index": 7},
                        },
                        branch("inline", body_expr("x", "'inline'", "v")),
                    ]
                },
            ),
        ],
        [{"from_node": "each", "to_node": "both"}],
        id="uses-stored",
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution
    assert latest(execution)["each"]["output"]["results"] == ["#0:a", "#1:b"]
    branches = latest(execution)["both"]["output"]["branches"]
    assert branches["first"] == {"text": "#7:#0:a"}
    assert branches["inline"]["v"]["result"] == "inline"


async def test_a_workflow_that_calls_itself_stops_at_the_depth_limit(client: Client) -> None:
    document = workflow(
        [node("again", "sub_workflow", {"workflow_id": "ouroboros"})], id="ouroboros"
    )
    execution = await run(client, document, timeout=60)
    assert execution["status"] == "failed"
    # the innermost child failed at the limit, and each parent failed with its child
    depth = 0
    current = execution
    while current["child_executions"]:
        depth += 1
        current = await get_execution(client, current["child_executions"][0]["id"])
    assert depth == 10  # limits.max_depth
    assert "nest 11 deep" in latest(current)["again"]["error"]["message"]
