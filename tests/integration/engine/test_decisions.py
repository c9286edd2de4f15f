"""Routing after a decision (SPEC §5 Edges): labels, next_node, true/false, the default."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.engine.conftest import (
    Client,
    completed,
    decision,
    edge,
    event_types,
    expr,
    node_runs,
    run,
    script,
    statuses,
    workflow,
)

SIZE_RULES = [
    {"condition": "amount > 100", "output": "big"},
    {"condition": "amount > 10", "output": "medium"},
]


async def skipped(client: Client, execution_id: str) -> set[str]:
    """Nodes the engine skipped by dead-path elimination (their node.skipped events)."""
    return {n for kind, n in await event_types(client, execution_id) if kind == "node.skipped"}


@pytest.mark.parametrize(
    ("amount", "chosen", "matched_rule"),
    [(500, "on-big", 0), (50, "on-medium", 1), (5, "on-anything-else", None)],
)
async def test_rule_labels_pick_the_edge_whose_condition_is_the_label(
    client: Client, amount: int, chosen: str, matched_rule: int | None
) -> None:
    document = workflow(
        [
            decision("size", decision_rules=SIZE_RULES),
            expr("on-big", "'big'"),
            expr("on-medium", "'medium'"),
            expr("on-anything-else", "'small'"),  # no rule true → the unconditional edge
        ],
        [
            edge("size", "on-big", "big"),
            edge("size", "on-medium", "medium"),
            edge("size", "on-anything-else"),
        ],
    )
    execution = await run(client, document, input={"amount": amount})
    assert execution["status"] == "completed", execution["error"]
    assert completed(execution) == {"size", chosen}
    assert skipped_ids(document) - {chosen} == await skipped(client, execution["id"])
    (size,) = node_runs(execution, "size")
    assert size["output"]["matched_rule"] == matched_rule


def skipped_ids(document: dict[str, Any]) -> set[str]:
    return {n["id"] for n in document["nodes"]} - {"size"}


@pytest.mark.parametrize(("code", "chosen"), [(1, "one"), (2, "two")])
async def test_next_node_of_the_matched_rule_picks_the_edge_to_it(
    client: Client, code: int, chosen: str
) -> None:
    document = workflow(
        [
            decision(
                "route",
                rules=[
                    {"condition": "code == 1", "next_node": "one"},
                    {"condition": "code == 2", "next_node": "two"},
                ],
            ),
            expr("one", "1"),
            expr("two", "2"),
        ],
        [edge("route", "one"), edge("route", "two")],
    )
    execution = await run(client, document, input={"code": code})
    assert execution["status"] == "completed", execution["error"]
    assert completed(execution) == {"route", chosen}
    assert await skipped(client, execution["id"]) == {"one", "two"} - {chosen}


@pytest.mark.parametrize(("flag", "chosen"), [(True, "yes"), (False, "no")])
async def test_a_single_condition_gives_the_labels_true_and_false(
    client: Client, flag: bool, chosen: str
) -> None:
    document = workflow(
        [decision("check", condition="flag"), expr("yes", "1"), expr("no", "0")],
        [edge("check", "yes", "true"), edge("check", "no", "false")],
    )
    execution = await run(client, document, input={"flag": flag})
    assert execution["status"] == "completed", execution["error"]
    assert completed(execution) == {"check", chosen}
    (check,) = node_runs(execution, "check")
    assert check["output"]["decision"] == str(flag).lower()
    assert check["branch"] == str(flag).lower()


async def test_the_default_label_is_taken_when_no_rule_is_true(client: Client) -> None:
    document = workflow(
        [
            decision("size", decision_rules=SIZE_RULES, default="tiny"),
            expr("on-tiny", "'tiny'"),
            expr("unconditional", "'fallback'"),
            expr("on-big", "'big'"),
        ],
        [
            edge("size", "on-tiny", "tiny"),
            edge("size", "unconditional"),
            edge("size", "on-big", "big"),
        ],
    )
    execution = await run(client, document, input={"amount": 1})
    assert execution["status"] == "completed", execution["error"]
    assert completed(execution) == {"size", "on-tiny"}
    assert await skipped(client, execution["id"]) == {"unconditional", "on-big"}


async def test_no_rule_true_and_no_unconditional_edge_fails_showing_the_rules(
    client: Client,
) -> None:
    document = workflow(
        [decision("size", decision_rules=SIZE_RULES), expr("on-big", "1")],
        [edge("size", "on-big", "big")],
    )
    execution = await run(client, document, input={"amount": 3})
    assert execution["status"] == "failed"
    assert execution["error"]["node_id"] == "size"
    assert "amount > 100" in execution["error"]["message"]
    assert "amount = 3" in execution["error"]["message"]


def approval(first: str, second: str) -> dict[str, Any]:
    """The seed's document approval with scripted reviews instead of human tasks."""
    return workflow(
        [
            script("initial-review", f"status = '{first}'", output_key="initial"),
            decision(
                "check-initial",
                decision_rules=[
                    {
                        "condition": "${nodes.initial-review.output.status} == 'approved'",
                        "output": "approved",
                        "next_node": "final-approval",
                    },
                    {"condition": "true", "output": "rejected", "next_node": "notify-rejected"},
                ],
            ),
            script("final-approval", f"status = '{second}'", output_key="final"),
            decision(
                "check-final",
                rules=[
                    {
                        "condition": "${nodes.final-approval.output.status} == 'approved'",
                        "output": "approved",
                        "next_node": "notify-approved",
                    }
                ],
                default="rejected",
            ),
            script("notify-approved", "sent = 'approved'"),
            script("notify-rejected", "sent = 'rejected'"),
        ],
        [
            edge("initial-review", "check-initial"),
            edge("check-initial", "final-approval", "approved"),
            edge("check-initial", "notify-rejected", "rejected"),
            edge("final-approval", "check-final"),
            edge("check-final", "notify-approved", "approved"),
            edge("check-final", "notify-rejected", "rejected"),
        ],
    )


@pytest.mark.parametrize(
    ("first", "second", "ran", "dead"),
    [
        (
            "approved",
            "approved",
            {"final-approval", "check-final", "notify-approved"},
            {"notify-rejected"},
        ),
        (
            "approved",
            "rejected",
            {"final-approval", "check-final", "notify-rejected"},
            {"notify-approved"},
        ),
        # the join "all" notify-rejected runs although its edge from check-final was
        # skipped (dead-path elimination through final-approval and check-final)
        (
            "rejected",
            "approved",
            {"notify-rejected"},
            {"final-approval", "check-final", "notify-approved"},
        ),
        (
            "rejected",
            "rejected",
            {"notify-rejected"},
            {"final-approval", "check-final", "notify-approved"},
        ),
    ],
)
async def test_approval_shape_runs_the_shared_notify_join_exactly_once(
    client: Client, first: str, second: str, ran: set[str], dead: set[str]
) -> None:
    execution = await run(client, approval(first, second))
    assert execution["status"] == "completed", execution["error"]
    assert completed(execution) == {"initial-review", "check-initial"} | ran
    assert await skipped(client, execution["id"]) == dead
    assert set(statuses(execution)).isdisjoint(dead)  # skipped nodes never ran
    for node_id in ran:
        assert len(node_runs(execution, node_id)) == 1, node_id
    notify = "notify-approved" if "notify-approved" in ran else "notify-rejected"
    assert execution["output"]["sent"] == notify.removeprefix("notify-")
