"""decision at run time: ordered rules, a single condition, default, fall-through, failure."""

from __future__ import annotations

from typing import Any

import pytest

from processors.decision import DecisionProcessor, seen_values
from processors.runtime import Completed, Failed
from tests.unit.processors.runtime.conftest import Harness, edge

DECISION = DecisionProcessor()

RULES = [
    {"condition": "amount > 1000", "output": "big", "next_node": "review"},
    {"condition": "amount > 100", "next_node": "fast-track"},
    {"condition": "status == 'vip'"},
]


def test_routes_by_label_with_unrendered_expressions() -> None:
    assert DecisionProcessor.routes_by_label is True
    assert DecisionProcessor.unrendered_keys == {"decision_rules", "condition"}


@pytest.mark.parametrize(
    ("scope", "label", "index", "next_node"),
    [
        ({"amount": 5000, "status": "new"}, "big", 0, "review"),
        ({"amount": 500, "status": "new"}, "fast-track", 1, "fast-track"),  # label = next_node
        ({"amount": 5, "status": "vip"}, "2", 2, None),  # label = index
    ],
)
async def test_the_first_true_rule_wins(
    harness: Harness, scope: dict[str, Any], label: str, index: int, next_node: str | None
) -> None:
    outcome = await DECISION.run({"decision_rules": RULES}, harness.ctx(scope))
    assert outcome == Completed(
        {"decision": label, "matched_rule": index}, branch=label, next_node=next_node
    )


async def test_later_rules_are_not_evaluated_once_one_is_true(harness: Harness) -> None:
    rules = [{"condition": "true", "output": "yes"}, {"condition": "missing > 1"}]
    outcome = await DECISION.run({"decision_rules": rules}, harness.ctx({}))
    assert isinstance(outcome, Completed)
    assert outcome.branch == "yes"


async def test_conditions_may_use_references(harness: Harness) -> None:
    rules = [{"condition": "${nodes.review.output.status} == 'approved'", "output": "ok"}]
    scope = {"nodes": {"review": {"output": {"status": "approved"}}}}
    outcome = await DECISION.run({"decision_rules": rules}, harness.ctx(scope))
    assert isinstance(outcome, Completed)
    assert outcome.output == {"decision": "ok", "matched_rule": 0}


@pytest.mark.parametrize(("amount", "label", "matched"), [(150, "true", 0), (50, "false", None)])
async def test_a_single_condition_gives_true_or_false(
    harness: Harness, amount: int, label: str, matched: int | None
) -> None:
    outcome = await DECISION.run({"condition": "amount > 100"}, harness.ctx({"amount": amount}))
    assert outcome == Completed({"decision": label, "matched_rule": matched}, branch=label)


async def test_the_default_label_when_no_rule_is_true(harness: Harness) -> None:
    config = {"decision_rules": RULES, "default": "slow"}
    outcome = await DECISION.run(config, harness.ctx({"amount": 1, "status": "new"}))
    assert outcome == Completed({"decision": "slow", "matched_rule": None}, branch="slow")


async def test_no_rule_true_takes_the_unconditional_edges(harness: Harness) -> None:
    edges = [edge("review", "big"), edge("fallback"), edge("oops", on_error=True)]
    ctx = harness.ctx({"amount": 1, "status": "new"}, edges=edges)
    outcome = await DECISION.run({"decision_rules": RULES}, ctx)
    assert outcome == Completed({"decision": None, "matched_rule": None}, branch=None)


async def test_no_rule_true_and_nowhere_to_go_fails_showing_rules_and_values(
    harness: Harness,
) -> None:
    rules = [
        {"condition": "amount > limits['high']", "output": "big"},
        {"condition": "status == 'vip' and region in regions", "output": "vip"},
        {"condition": "len(${order.lines}) > 10", "output": "bulk"},
        {"condition": "note", "output": "noted"},
    ]
    scope = {
        "amount": 250,
        "limits": {"high": 1000},
        "status": "basic",  # so `region in regions` is never evaluated
        "region": "x" * 500,
        "order": {"lines": [1, 2]},
        "note": "",
    }
    edges = [edge("review", "big"), edge("oops", on_error=True)]  # none unconditional
    outcome = await DECISION.run({"decision_rules": rules}, harness.ctx(scope, edges=edges))
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False
    lines = outcome.error.splitlines()
    assert "no decision rule is true" in lines[0]
    assert '"default"' in lines[0]
    assert (
        lines[1]
        == "  rule 0: amount > limits['high'] → false (amount = 250, limits = {\"high\": 1000})"
    )
    assert lines[2].startswith("  rule 1: status == 'vip' and region in regions → false (")
    assert "regions = <missing>" in lines[2]
    assert 'status = "basic"' in lines[2]
    assert 'region = "' + "x" * 199 + "…" in lines[2]  # 200 characters, then cut
    assert lines[3] == "  rule 2: len(${order.lines}) > 10 → false (${order.lines} = [1, 2])"
    assert lines[4] == '  rule 3: note → "" (note = "")'
    assert outcome.details["rules"][0] == {
        "rule": 0,
        "condition": "amount > limits['high']",
        "result": "false",
        "values": {"amount": "250", "limits": '{"high": 1000}'},
    }


def test_secrets_are_never_shown() -> None:
    scope = {"secrets": {"token": "hunter2"}}
    shown = seen_values("${secrets.token} == 'x' or secrets['token'] == 'y'", scope)
    assert shown == {"${secrets.token}": "***"}
    assert "hunter2" not in str(seen_values("secrets == 1", scope))


async def test_a_failing_condition_fails_the_node_naming_the_rule(harness: Harness) -> None:
    rules = [{"condition": "amount > 1", "output": "a"}, {"condition": "nope > 1"}]
    outcome = await DECISION.run({"decision_rules": rules}, harness.ctx({"amount": 0}))
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False
    assert outcome.error.startswith("decision rule 1 condition: ")
    assert "unknown name 'nope'" in outcome.error


async def test_a_failing_single_condition_fails_the_node(harness: Harness) -> None:
    outcome = await DECISION.run({"condition": "1 / 0"}, harness.ctx({}))
    assert isinstance(outcome, Failed)
    assert outcome.error.startswith("decision condition: division by zero")


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({}, "needs 'decision_rules'"),
        ({"condition": 5}, "must be an expression string"),
        ({"decision_rules": [{"output": "x"}]}, "rule 0 needs a 'condition'"),
        ({"decision_rules": ["x"]}, "rule 0 needs a 'condition'"),
    ],
)
async def test_unusable_config_fails_without_retry(
    harness: Harness, config: dict[str, Any], fragment: str
) -> None:
    outcome = await DECISION.run(config, harness.ctx({}))
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False
    assert fragment in outcome.error
