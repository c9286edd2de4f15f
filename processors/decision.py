"""``decision``: pick a branch by ordered rules or a single condition.

At run time the rules' conditions are evaluated in order with ``ctx.evaluate``; the
first true one wins. Its branch label is its ``output``, else its ``next_node``, else
its index as text; the output is ``{decision: label, matched_rule: index}`` and the
outcome carries the label and the rule's ``next_node`` for the engine to route on. A
single ``condition`` gives the label ``"true"`` (``matched_rule`` 0) or ``"false"``
(``None``). When no rule is true: the ``default`` label if there is one; else the
node's unconditional edges (``branch=None``, which the engine routes to them); else the
node fails, showing each rule, what it gave and the values of the names it reads.

``decision_rules`` and ``condition`` are unrendered keys (they are expressions;
``${…}`` inside them is read by the evaluator). An expression that fails to evaluate
fails the node (never a silent ``false``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from difflib import get_close_matches
from typing import Any, ClassVar

from processors.base import ConfigCheck, JSONSchema, Processor, rel
from processors.runtime import Completed, Failed, NodeContext, Outcome
from server.errors import ExpressionError
from server.expressions import check_expression, find_references, format_path, resolve_path
from server.expressions.templates import Path

#: Characters of a value shown in the "no rule is true" message.
SHOWN_VALUE_CHARS = 200
_MISSING = "<missing>"
_NEVER_SHOWN_ROOT = "secrets"

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
    pure: ClassVar[bool] = True
    description: ClassVar[str] = (
        "Chooses a branch: the first true rule's output (or true/false for one condition)."
    )
    config_aliases: ClassVar[Mapping[str, str]] = {"rules": "decision_rules"}
    unrendered_keys: ClassVar[frozenset[str]] = frozenset({"decision_rules", "condition"})
    routes_by_label: ClassVar[bool] = True
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

    async def run(self, config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
        rules = config.get("decision_rules")
        if isinstance(rules, list) and rules:
            return await self._run_rules(rules, config, ctx)
        condition = config.get("condition")
        if condition is None:
            return Failed(
                "a decision needs 'decision_rules' (or 'rules') or a 'condition'", retryable=False
            )
        if not isinstance(condition, str):
            return Failed(
                "the decision's 'condition' must be an expression string", retryable=False
            )
        try:
            value = await ctx.evaluate(condition)
        except ExpressionError as exc:
            return Failed(f"decision condition: {exc}", retryable=False)
        label = "true" if value else "false"
        return Completed({"decision": label, "matched_rule": 0 if value else None}, branch=label)

    async def _run_rules(
        self, rules: Sequence[Any], config: Mapping[str, Any], ctx: NodeContext
    ) -> Outcome:
        seen: list[tuple[int, str, Any]] = []
        for index, rule in enumerate(rules):
            condition = rule.get("condition") if isinstance(rule, Mapping) else None
            if not isinstance(condition, str):
                return Failed(
                    f"decision rule {index} needs a 'condition' expression string",
                    retryable=False,
                )
            try:
                value = await ctx.evaluate(condition)
            except ExpressionError as exc:
                return Failed(f"decision rule {index} condition: {exc}", retryable=False)
            if value:
                label = rule_label(rule, index)
                next_node = rule.get("next_node")
                return Completed(
                    {"decision": label, "matched_rule": index},
                    branch=label,
                    next_node=next_node if isinstance(next_node, str) else None,
                )
            seen.append((index, condition, value))
        default = config.get("default")
        if isinstance(default, str) and default:
            return Completed({"decision": default, "matched_rule": None}, branch=default)
        if any(edge.condition is None and not edge.on_error for edge in ctx.outgoing_edges):
            return Completed({"decision": None, "matched_rule": None}, branch=None)
        return _no_rule_true(seen, ctx.scope)


def rule_label(rule: Mapping[str, Any], index: int) -> str:
    """A matched rule's branch label: its ``output``, else its ``next_node``, else its index."""
    for key in ("output", "next_node"):
        value = rule.get(key)
        if isinstance(value, str) and value:
            return value
    return str(index)


def _no_rule_true(seen: Sequence[tuple[int, str, Any]], scope: Mapping[str, Any]) -> Failed:
    lines = [
        "no decision rule is true, and the decision has no 'default' label and no edge "
        'without a condition to fall back on; add a "default" or an unconditional edge. '
        "The rules saw:"
    ]
    details = []
    for index, condition, value in seen:
        values = seen_values(condition, scope)
        shown = ", ".join(f"{name} = {text}" for name, text in values.items())
        lines.append(
            f"  rule {index}: {condition} → {_show(value)}" + (f" ({shown})" if shown else "")
        )
        details.append(
            {"rule": index, "condition": condition, "result": _show(value), "values": values}
        )
    return Failed("\n".join(lines), retryable=False, details={"rules": details})


def seen_values(condition: str, scope: Mapping[str, Any]) -> dict[str, str]:
    """The names (and ``${…}`` references) ``condition`` reads, each with its value in
    ``scope`` as short text (``<missing>`` when absent; secrets are never shown)."""
    try:
        names = check_expression(condition).names
        references = find_references(condition)
    except ExpressionError:
        return {}
    values: dict[str, str] = {}
    for ref in references:
        values["${" + ref.raw + "}"] = _lookup(scope, ref.path)
    roots = {ref.root for ref in references}
    for name in sorted(names - roots):
        values[name] = _lookup(scope, (name,))
    return values


def _lookup(scope: Mapping[str, Any], path: Path) -> str:
    if path and path[0] == _NEVER_SHOWN_ROOT:
        return "***"
    try:
        value = resolve_path(scope, path, format_path(path))
    except ExpressionError:
        return _MISSING
    return _show(value)


def _show(value: Any) -> str:
    """Short JSON text of a value (truncated to :data:`SHOWN_VALUE_CHARS`)."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    if len(text) > SHOWN_VALUE_CHARS:
        return text[:SHOWN_VALUE_CHARS] + "…"
    return text
