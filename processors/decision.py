"""``decision``: pick a branch by ordered rules or a single condition."""

from __future__ import annotations

from collections.abc import Mapping
from difflib import get_close_matches
from typing import Any, ClassVar

from processors.base import ConfigCheck, JSONSchema, Processor, rel

RULE_SCHEMA: JSONSchema = {
    "type": "object",
    "required": ["condition"],
    "properties": {
        "condition": {"type": "string", "description": "expression; the first true rule wins"},
        "output": {"type": "string", "description": "branch label when this rule matches"},
        "next_node": {
            "type": "string",
            "description": "node to continue with (needs an edge from this decision)",
        },
    },
}


def branch_labels(config: Mapping[str, Any]) -> frozenset[str]:
    """Labels a decision can produce: rule outputs, ``true``/``false``, and ``default``."""
    labels = {"true", "false"}
    rules = config.get("decision_rules")
    if isinstance(rules, list):
        labels.update(
            rule["output"]
            for rule in rules
            if isinstance(rule, dict) and isinstance(rule.get("output"), str)
        )
    if isinstance(config.get("default"), str):
        labels.add(config["default"])
    return frozenset(labels)


class DecisionProcessor(Processor):
    """Evaluates rules in order and routes along the matching branch."""

    type_name: ClassVar[str] = "decision"
    description: ClassVar[str] = (
        "Chooses a branch: the first true rule's output (or true/false for one condition)."
    )
    config_aliases: ClassVar[Mapping[str, str]] = {"rules": "decision_rules"}
    config_schema: ClassVar[JSONSchema] = {
        "type": "object",
        "properties": {
            "decision_rules": {
                "type": "array",
                "items": RULE_SCHEMA,
                "description": "ordered {condition, output, next_node} rules (alias: rules)",
            },
            "condition": {
                "type": "string",
                "description": 'single expression; branch label "true" or "false"',
            },
            "default": {
                "type": "string",
                "description": "branch label used when no rule is true",
            },
        },
    }

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        rules = config.get("decision_rules")
        has_rules = isinstance(rules, list) and bool(rules)
        if not has_rules and config.get("condition") is None:
            check.error("", "a decision needs 'decision_rules' (or 'rules') or a 'condition'")
        elif has_rules and config.get("condition") is not None:
            check.error("condition", "give either 'decision_rules' or 'condition', not both")
        if "condition" in config:
            check.expression("condition", config["condition"])
        if isinstance(rules, list):
            for index, rule in enumerate(rules):
                if isinstance(rule, dict):
                    self._check_rule(index, rule, check)

    def _check_rule(self, index: int, rule: Mapping[str, Any], check: ConfigCheck) -> None:
        if "condition" in rule:
            check.expression(rel("decision_rules", index, "condition"), rule["condition"])
        target = rule.get("next_node")
        if not isinstance(target, str):
            return
        pointer = rel("decision_rules", index, "next_node")
        node_id = check.node.get("id")
        if target not in check.graph_node_ids:
            known = sorted(check.graph_node_ids)
            hint = get_close_matches(target, known, n=1)
            suggestion = f' (did you mean "{hint[0]}"?)' if hint else ""
            check.error(
                pointer,
                f'next_node "{target}" is not a node of this workflow; '
                f"known nodes: {', '.join(known)}{suggestion}",
            )
        elif not any(edge.get("to_node") == target for edge in check.outgoing_edges):
            check.error(
                pointer,
                f'next_node "{target}" has no edge from this decision; add an edge '
                f'{{"from_node": "{node_id}", "to_node": "{target}"}}',
            )

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        return frozenset({"decision", "matched_rule"})
