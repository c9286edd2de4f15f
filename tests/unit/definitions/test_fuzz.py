"""No input, however hostile, makes validation raise."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.definitions.context import ValidationContext
from server.definitions.validation import DefinitionValidation, validate_definition
from tests.unit.definitions.conftest import base

CONTEXT = ValidationContext(connections=frozenset({"db"}), smtp_accounts=frozenset({"default"}))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=30,
)
interesting_strings = st.sampled_from(
    ["${", "${x}", "${nodes.a.output}", "${item}", "$.a[", "* * *", "5x", "a", "b", "", "~/"]
)
field_values = json_values | interesting_strings


def _validate_without_safety_net(doc: object) -> None:
    """The run itself, without the catch-all of validate_definition: bugs must surface."""
    DefinitionValidation(doc, CONTEXT).run()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(json_values)
def test_random_json_never_raises(doc: Any) -> None:
    _validate_without_safety_net(doc)


node_types = st.sampled_from(
    [
        "task",
        "api",
        "transform",
        "decision",
        "human_task",
        "timer",
        "loop",
        "parallel",
        "database",
        "email",
        "webhook",
        "sub_workflow",
        "nope",
        5,
    ]
)
config_keys = st.sampled_from(
    [
        "script",
        "handler",
        "url",
        "rules",
        "decision_rules",
        "condition",
        "to",
        "email_to",
        "custom",
        "body",
        "items",
        "iterations",
        "while",
        "branches",
        "query",
        "connection",
        "duration",
        "schedule",
        "until",
        "timezone",
        "transform_type",
        "expression",
        "mapping",
        "form",
        "on_timeout",
        "due_date",
        "mode",
        "workflow_id",
        "output_mapping",
        "wait_for",
    ]
)
nodes = st.fixed_dictionaries(
    {"id": st.sampled_from(["a", "b", "c", 1]), "type": node_types},
    optional={
        "config": st.dictionaries(config_keys, field_values, max_size=5),
        "join": field_values,
        "timeout": field_values,
        "retry_policy": field_values,
        "compensate": field_values,
        "output_key": field_values,
    },
)
edges = st.fixed_dictionaries(
    {
        "from_node": st.sampled_from(["a", "b", "c", 1, None]),
        "to_node": st.sampled_from(["a", "b", "c", [], None]),
    },
    optional={"condition": field_values, "id": field_values, "on_error": field_values},
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(nodes, max_size=5),
    st.lists(edges, max_size=6),
    st.dictionaries(
        st.sampled_from(["variables", "triggers", "config", "output", "id"]), field_values
    ),
)
def test_definition_shaped_input_never_raises(
    node_list: list[Any], edge_list: list[Any], extra: dict[str, Any]
) -> None:
    _validate_without_safety_net({"name": "fuzz", "nodes": node_list, "edges": edge_list, **extra})


def test_deeply_nested_json_is_reported_not_raised() -> None:
    doc: Any = base()
    deep: Any = {}
    for _ in range(5000):
        deep = {"a": deep}
    doc["metadata"] = deep
    report = validate_definition(doc)
    assert not report.valid
    assert "nested more than" in report.errors[0].message


def test_non_json_values_are_reported() -> None:
    report = validate_definition({"name": "x", "nodes": [{1, 2}]})
    assert report.errors[0].path == "/nodes/0"
    assert validate_definition({1: "x"}).errors[0].message.startswith("object keys")
    assert validate_definition(float("nan")).errors
