"""Which nodes may be pipelined (their successors start before their result commits):
only those that act on nothing outside their execution."""

from __future__ import annotations

from typing import Any

import pytest

from processors.registry import default_registry

PURE: list[tuple[str, dict[str, Any]]] = [
    ("transform", {"transform_type": "expression", "expression": "1"}),
    ("decision", {"condition": "true"}),
    ("timer", {"duration": "1s"}),
    ("task", {"script": ["x = 1"]}),
    ("parallel", {}),  # a gateway only routes
]
NOT_PURE: list[tuple[str, dict[str, Any]]] = [
    ("task", {"handler": "charge-card"}),
    ("task", {"command": "/bin/echo"}),
    ("api", {"url": "http://127.0.0.1/"}),
    ("webhook", {"url": "http://127.0.0.1/"}),
    ("email", {"to": "a@example.org", "subject": "s", "body": "b"}),
    ("database", {"connection": "db", "query": "DELETE FROM t"}),
    ("human_task", {"title": "t"}),
    ("loop", {"iterations": 2}),
    ("parallel", {"branches": [{"id": "b", "workflow_id": "other"}]}),
    ("sub_workflow", {"workflow_id": "child"}),
]


@pytest.mark.parametrize(("type_name", "config"), PURE)
def test_computing_nodes_are_pure(type_name: str, config: dict[str, Any]) -> None:
    assert default_registry().get(type_name).is_pure(config)


@pytest.mark.parametrize(("type_name", "config"), NOT_PURE)
def test_nodes_with_outside_effects_are_not(type_name: str, config: dict[str, Any]) -> None:
    assert not default_registry().get(type_name).is_pure(config)
