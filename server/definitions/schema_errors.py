"""Turn jsonschema errors into problems a person can act on.

jsonschema's own messages quote whole instances and schemas; these say which field,
what is allowed, and (for enums) which allowed value was probably meant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from jsonschema import ValidationError  # type: ignore[import-untyped]

from server.definitions.context import RESERVED_WORKFLOW_IDS
from server.definitions.pointers import Segment, describe, pointer, suggest
from server.errors import Problem

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "null",
}

#: Hints for missing required fields, by (kind of parent, field).
_REQUIRED_HINTS = {
    ("definition", "name"): "add a human-readable name",
    ("definition", "nodes"): 'add a "nodes" list with at least one node',
    ("node", "id"): "give every node a unique id",
    ("node", "type"): "set the node type",
    ("step", "type"): "say which node type the compensation runs",
    ("edge", "from_node"): "name the node the edge leaves",
    ("edge", "to_node"): "name the node the edge leads to",
    ("trigger", "id"): "give every trigger a unique id",
    ("trigger", "type"): 'set it to "cron" or "webhook"',
    ("trigger", "schedule"): 'a cron trigger needs a schedule such as "0 9 * * 1"',
    ("trigger", "path"): "a webhook trigger needs a path (POST /api/v1/hooks/<path>)",
    ("graph", "nodes"): "a body needs a non-empty nodes list",
    ("rule", "condition"): "each rule needs a condition expression",
    ("form", "name"): "each form field needs a name",
    ("branch", "id"): "each branch needs an id",
}


def translate(error: ValidationError, node_types: Sequence[str]) -> Problem:
    """One friendly problem for a jsonschema error."""
    path: list[Segment] = list(error.absolute_path)
    instance = error.instance
    kind = error.validator
    value: Any = error.validator_value
    if kind == "required":
        missing = _missing_field(error)
        hint = _REQUIRED_HINTS.get((_parent_kind(path), missing))
        suffix = f" — {hint}" if hint else ""
        return Problem(pointer(*path, missing), f"required field '{missing}' is missing{suffix}")
    if "propertyNames" in error.relative_schema_path and isinstance(instance, str):
        path.append(instance)
    where = pointer(*path)
    return Problem(where, _message(kind, value, instance, error.schema, path, node_types))


def _message(
    kind: object,
    value: Any,
    instance: Any,
    schema: Any,
    path: list[Segment],
    node_types: Sequence[str],
) -> str:
    description = schema.get("description") if isinstance(schema, dict) else None
    if kind == "type":
        return f"must be {_types(value)}, not {_type_of(instance)}{_hint(description)}"
    if kind == "enum":
        allowed = [v for v in value if v is not None]
        if path and path[-1] == "type" and _parent_kind(path[:-1]) in {"node", "step"}:
            return (
                f"unknown node type {describe(instance)}; known types: "
                f"{', '.join(node_types)}{_suggestion(instance, node_types)}"
            )
        names = ", ".join(str(v) for v in allowed)
        return f"{describe(instance)} is not one of: {names}{_suggestion(instance, allowed)}"
    if kind == "const":
        return f"must be {describe(value)}"
    if kind == "pattern":
        rule = description or f"must match {value}"
        return f"{describe(instance)} is not allowed here: {rule}"
    if kind == "not" and path == ["id"]:
        reserved = ", ".join(sorted(RESERVED_WORKFLOW_IDS))
        return (
            f"{describe(instance)} is a reserved word ({reserved} are fixed API routes); "
            "choose another id"
        )
    if kind in {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"}:
        sign = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}
        return f"must be {sign[str(kind)]} {value}, not {describe(instance)}"
    if kind == "minItems":
        return "must not be empty" if value == 1 else f"needs at least {value} items"
    if kind == "minLength":
        return "must not be empty" if value == 1 else f"needs at least {value} characters"
    if kind == "maxLength":
        return f"is longer than {value} characters"
    if kind == "uniqueItems":
        return "contains the same value twice; each value may appear once"
    if kind in {"oneOf", "anyOf"}:
        rule = description or "does not match any of the allowed forms"
        return f"{describe(instance)} is not allowed here: {rule}"
    return f"{describe(instance)} is not allowed here ({kind})"


def _missing_field(error: ValidationError) -> str:
    required: Iterable[Any] = error.validator_value or ()
    instance = error.instance if isinstance(error.instance, dict) else {}
    missing = [name for name in required if name not in instance]
    for name in missing:
        if repr(name) in error.message:
            return str(name)
    return str(missing[0]) if missing else "?"


def _parent_kind(path: Sequence[Segment]) -> str:
    """What the object at ``path`` is: definition, node, edge, trigger, rule, …"""
    if not path:
        return "definition"
    last = path[-1]
    before = path[-2] if len(path) >= 2 else None
    if last == "compensate":
        return "step"
    if last in {"body"}:
        return "graph"
    if isinstance(last, int):
        container = {
            "nodes": "node",
            "edges": "edge",
            "triggers": "trigger",
            "decision_rules": "rule",
            "rules": "rule",
            "form": "form",
            "branches": "branch",
        }
        return container.get(str(before), "item")
    return "object"


def _types(value: Any) -> str:
    names = [value] if isinstance(value, str) else [v for v in value if v != "null"]
    words = [_TYPE_WORDS.get(name, name) for name in names]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _type_of(instance: Any) -> str:
    if isinstance(instance, bool):
        return f"{describe(instance)} (a boolean)"
    if instance is None:
        return "null"
    if isinstance(instance, dict | list):
        return describe(instance)
    kind = "a string" if isinstance(instance, str) else "a number"
    return f"{describe(instance)} ({kind})"


def _hint(description: object) -> str:
    return f" ({description})" if isinstance(description, str) else ""


def _suggestion(instance: object, allowed: Sequence[Any]) -> str:
    if not isinstance(instance, str):
        return ""
    return suggest(instance, [v for v in allowed if isinstance(v, str)])
