"""The typed model: defaults, generated edge ids, effective configs, normalisation."""

from __future__ import annotations

import uuid

from server.definitions import (
    Definition,
    RetryPolicy,
    normalize_document,
    parse_definition,
    parse_graph,
)
from tests.unit.definitions.conftest import base


def test_parse_fills_defaults() -> None:
    doc = base()
    definition = parse_definition(doc)
    assert isinstance(definition, Definition)
    assert (definition.version, definition.status) == ("1.0.0", "active")
    assert definition.config.error_handling.on_failure == "stop"
    assert definition.variables["count"].type == "integer"
    assert definition.raw is doc
    start = definition.graph.node("start")
    assert (start.join, start.timeout, start.retry_policy, start.name) == (
        "all",
        None,
        None,
        "Start",
    )


def test_edge_ids_are_generated_deterministically_with_suffixes() -> None:
    graph = parse_graph(
        {
            "nodes": [],
            "edges": [
                {"from_node": "a", "to_node": "b"},
                {"from_node": "a", "to_node": "b", "on_error": True},
                {"id": "a->b#3", "from_node": "a", "to_node": "b"},
                {"from_node": "a", "to_node": "b"},
            ],
        }
    )
    assert [e.id for e in graph.edges] == ["a->b", "a->b#2", "a->b#3", "a->b#4"]
    assert graph.edges[1].on_error is True


def test_retry_policy_and_durations_in_seconds() -> None:
    doc = base()
    doc["nodes"][0]["timeout"] = "1h30m"
    doc["nodes"][0]["retry_policy"] = {
        "max_attempts": 3,
        "delay": "2s",
        "backoff": "linear",
        "max_delay": "1m",
        "jitter": 0.5,
    }
    doc["nodes"][0]["join"] = "any"
    doc["config"] = {
        "timeout": "7d",
        "priority": "high",
        "error_handling": {"on_failure": "continue", "max_errors": 5},
    }
    definition = parse_definition(doc)
    start = definition.graph.node("start")
    assert start.timeout == 5400
    assert start.retry_policy == RetryPolicy(3, 2.0, "linear", 60.0, 0.5)
    assert start.join == "any"
    assert definition.config.timeout == 7 * 86400
    assert definition.config.error_handling.max_errors == 5


def test_type_aliases_resolve_to_the_canonical_type() -> None:
    from processors.registry import default_registry
    from processors.task import TaskProcessor

    registry = default_registry()
    registry.register(
        type("Legacy", (TaskProcessor,), {"type_name": "script_task"})(), aliases=["script"]
    )
    graph = parse_graph({"nodes": [{"id": "a", "type": "script", "config": {}}]}, registry)
    assert graph.nodes[0].type == "script_task"


def test_normalize_fills_id_version_status_and_keeps_unknown_fields() -> None:
    doc = {"name": "x", "nodes": [], "colour": "red"}
    normalized = normalize_document(doc)
    assert uuid.UUID(normalized["id"])
    assert (normalized["version"], normalized["status"]) == ("1.0.0", "active")
    assert normalized["colour"] == "red"
    assert "id" not in doc  # the input is not changed


def test_normalize_keeps_given_values() -> None:
    doc = {"id": "w", "name": "x", "version": "2.0.0", "status": "draft", "nodes": []}
    assert normalize_document(doc) == doc
