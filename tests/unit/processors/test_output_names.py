"""What each node type tells validation about the names its output introduces."""

from __future__ import annotations

from typing import Any

import pytest

from processors.registry import default_registry
from processors.task import assigned_names, split_arguments

REGISTRY = default_registry()


@pytest.mark.parametrize(
    ("type_name", "config", "names"),
    [
        ("task", {"script": "a = 1\nb == 2\nconsole.log(a)"}, {"a"}),
        ("task", {"handler": "x"}, None),
        ("task", {"command": ["ls"]}, {"exit_code", "stdout", "stderr"}),
        ("api", {"url": "http://x"}, {"status_code", "headers", "data"}),
        ("transform", {"transform_type": "mapping", "mapping": {"p": "$.a"}}, {"p"}),
        ("transform", {"transform_type": "expression", "expression": "1"}, {"result"}),
        ("decision", {"condition": "x"}, {"decision", "matched_rule"}),
        ("human_task", {}, None),
        (
            "human_task",
            {"form": [{"name": "notes"}]},
            {"status", "comment", "completed_by", "completed_at", "notes"},
        ),
        ("timer", {"duration": 1}, {"waited_seconds", "fired_at"}),
        ("loop", {"iterations": 1}, {"results", "iterations", "failed"}),
        ("parallel", {}, {"branches"}),
        ("database", {}, {"rows", "row_count", "truncated", "last_insert_id"}),
        ("database", {"fetch": "one"}, {"rows", "row", "row_count", "truncated", "last_insert_id"}),
        ("email", {}, {"message_id", "accepted"}),
        ("webhook", {"mode": "receive"}, {"payload", "headers", "received_at"}),
        ("webhook", {"url": "http://x"}, {"status_code", "data"}),
        ("sub_workflow", {"workflow_id": "w"}, None),
        ("sub_workflow", {"workflow_id": "w", "output_mapping": {"a": "b"}}, {"a"}),
    ],
)
def test_output_names(type_name: str, config: dict[str, Any], names: set[str] | None) -> None:
    result = REGISTRY.get(type_name).output_names(config)
    assert result == (None if names is None else frozenset(names))


def test_script_helpers() -> None:
    assert split_arguments("'a, b', f(1, 2), [3, 4]") == ["'a, b'", "f(1, 2)", "[3, 4]"]
    assert assigned_names(["x = 1", "# y = 2", "// z = 3", "", "w = x"]) == {"x", "w"}
