"""The workflow pages' form handling (``ui.forms``): the run form built from declared
variables and converted back, uploaded JSON, and validation problems grouped by node."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import Problem
from ui.forms import (
    convert,
    group_problems,
    input_errors,
    parse_definition_text,
    parse_run_form,
    run_fields,
)

VARIABLES: dict[str, Any] = {
    "amount": {"type": "number", "required": True, "description": "how much"},
    "count": {"type": "integer", "default_value": 3},
    "name": {"type": "string", "default_value": "acme"},
    "rush": {"type": "boolean", "default_value": False},
    "options": {"type": "object", "default_value": {"a": 1}},
    "items": {"type": "array"},
    "extra": {"type": "any"},
    "region": {"type": "string", "enum": ["eu", "us"], "default_value": "eu"},
    "level": {"type": "integer", "enum": [1, 2, 3]},
}


def test_fields_follow_the_types_with_defaults_and_required_marked() -> None:
    fields = {f.name: f for f in run_fields(VARIABLES)}
    assert [f.name for f in run_fields(VARIABLES)] == list(VARIABLES)
    assert (fields["amount"].widget, fields["amount"].step, fields["amount"].required) == (
        "number",
        "any",
        True,
    )
    assert fields["amount"].description == "how much"
    assert (fields["count"].widget, fields["count"].step, fields["count"].value) == (
        "number",
        "1",
        "3",
    )
    assert (fields["name"].widget, fields["name"].value) == ("text", "acme")
    assert fields["rush"].widget == "select"
    assert fields["rush"].value == "false"
    assert fields["options"].widget == "json"
    assert fields["options"].value == '{\n  "a": 1\n}'
    assert fields["items"].value == ""
    assert fields["region"].widget == "select"
    assert fields["region"].choices == (('"eu"', "eu"), ('"us"', "us"))
    assert fields["region"].value == '"eu"'
    assert fields["level"].choices == (("1", "1"), ("2", "2"), ("3", "3"))
    assert all(f.field_name == f"var.{f.name}" for f in fields.values())


def test_a_re_rendered_form_keeps_what_was_typed_and_shows_errors() -> None:
    fields = {
        f.name: f
        for f in run_fields(
            VARIABLES, {"var.amount": "lots", "var.name": ""}, {"amount": "not a number"}
        )
    }
    assert fields["amount"].value == "lots"
    assert fields["amount"].error == "not a number"
    assert fields["name"].value == ""  # emptied on purpose: not refilled with the default
    assert fields["count"].value == "3"  # not posted: the default
    assert fields["count"].error is None


def test_the_posted_form_becomes_typed_input() -> None:
    parsed = parse_run_form(
        VARIABLES,
        {
            "var.amount": "12.5",
            "var.count": " 7 ",
            "var.name": "  spaced  ",
            "var.rush": "true",
            "var.options": '{"b": [1, 2]}',
            "var.items": "[]",
            "var.extra": "plain words",
            "var.region": '"us"',
            "var.level": "2",
            "csrf_token": "ignored",
            "var.undeclared": "ignored too",
        },
    )
    assert parsed.errors == {}
    assert parsed.input == {
        "amount": 12.5,
        "count": 7,
        "name": "  spaced  ",
        "rush": True,
        "options": {"b": [1, 2]},
        "items": [],
        "extra": "plain words",
        "region": "us",
        "level": 2,
    }


def test_empty_fields_are_left_out_so_defaults_apply() -> None:
    parsed = parse_run_form(VARIABLES, {"var.amount": "1", "var.count": "", "var.rush": ""})
    assert parsed.input == {"amount": 1}
    assert parsed.errors == {}


def test_every_problem_is_reported_at_once_by_variable() -> None:
    parsed = parse_run_form(
        VARIABLES,
        {
            "var.amount": "",
            "var.count": "2.5",
            "var.rush": "maybe",
            "var.options": "[1]",
            "var.items": "[1,",
            "var.region": '"mars"',
        },
    )
    assert set(parsed.errors) == {"amount", "count", "rush", "options", "items", "region"}
    assert parsed.errors["amount"] == "required: give it a number value"
    assert parsed.errors["count"] == "'2.5' is not a whole number"
    assert parsed.errors["items"] == "not valid JSON: Expecting value at line 1, column 4"
    assert "JSON object" in parsed.errors["options"]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("42", "number", 42),
        ("-0.5", "number", -0.5),
        ("1e3", "number", 1000.0),
        ("0", "boolean", False),
        ("yes", "boolean", True),
        ("{}", "object", {}),
        ("null", "any", None),
        ("[1", "any", "[1"),
        (" x ", "string", " x "),
    ],
)
def test_convert(text: str, kind: str, value: Any) -> None:
    assert convert(text, kind) == value


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "12abc"])
def test_numbers_must_be_finite_numbers(text: str) -> None:
    with pytest.raises(ValueError, match="number"):
        convert(text, "number")


def test_definition_text_errors_say_line_and_column() -> None:
    assert parse_definition_text('\ufeff{"id": "x"}') == {"id": "x"}
    with pytest.raises(ValueError, match="line 2, column 8"):
        parse_definition_text('{"a": 1,\n  "b": }')
    with pytest.raises(ValueError, match="empty"):
        parse_definition_text("  \n")
    with pytest.raises(ValueError, match="nested too deeply"):
        parse_definition_text("[" * 100_000 + "]" * 100_000)


def test_problems_are_grouped_by_node_with_the_workflow_first() -> None:
    document = {
        "nodes": [
            {"id": "start", "name": "Start", "type": "task"},
            {"id": "fetch", "name": "Fetch orders", "type": "api"},
            {"type": "email"},
            "not a node",
        ],
    }
    problems = [
        Problem("/nodes/1/config/url", "required"),
        Problem("/name", "required"),
        Problem("/nodes/1/timeout", "not a duration"),
        Problem("/nodes/2/id", "required"),
        Problem("/edges/0/to_node", "unknown node 'x'"),
        Problem("/nodes/3", "must be an object"),
        Problem("/nodes/1/config/headers/a~1b", "bad header"),
        Problem("", "the document"),
    ]
    groups = group_problems(document, problems)
    assert [g.title for g in groups] == [
        "Workflow",
        "Node fetch",
        "Node #3 (no id)",
        "Node #4 (no id)",
    ]
    workflow, fetch, nameless, odd = groups
    assert [(p.where, p.message) for p in workflow.problems] == [
        ("/name", "required"),
        ("/edges/0/to_node", "unknown node 'x'"),
        ("(the document)", "the document"),
    ]
    assert (fetch.node_id, fetch.node_name, fetch.node_type) == ("fetch", "Fetch orders", "api")
    assert [p.where for p in fetch.problems] == ["config/url", "timeout", "config/headers/a/b"]
    assert (nameless.node_id, nameless.node_type) == ("#3", "email")
    assert odd.node_type is None
    assert group_problems("not an object", [Problem("/nodes/0/id", "x")])[0].title == (
        "Node #1 (no id)"
    )


def test_engine_input_problems_are_mapped_to_their_variables() -> None:
    by_name, other = input_errors(
        [
            Problem("/input/amount", "must be of type number, got string"),
            Problem("/input/amount", "second"),
            Problem("/input/a/b", "slash in a name"),
            Problem("/priority", "one of: low, medium"),
            Problem("", "whole thing"),
        ]
    )
    assert by_name == {
        "amount": "must be of type number, got string; second",
        "a/b": "slash in a name",
    }
    assert other == ["/priority: one of: low, medium", "whole thing"]
