"""The task page's form: inputs drawn from a task's ``form``, and what a POST sent."""

from __future__ import annotations

from server.errors import Problem
from server.tasks.forms import check_data, pointer
from ui.taskform import as_text, field_name, fields, parse, problems_by_field

FORM = [
    {"name": "amount", "label": "Amount", "type": "number", "required": True, "default": 10},
    {"name": "level", "type": "select", "options": [1, 2, {"value": True, "label": "All"}]},
    {"name": "ok", "label": "OK?", "type": "boolean"},
    {"name": "a/b~c"},
    "not a field",
    {"label": "no name"},
]


def test_fields_are_labelled_typed_and_keep_their_order() -> None:
    drawn = fields(FORM)
    assert [(f.name, f.label, f.type, f.required) for f in drawn] == [
        ("amount", "Amount", "number", True),
        ("level", "level", "select", False),
        ("ok", "OK?", "boolean", False),
        ("a/b~c", "a/b~c", "text", False),
    ]
    assert [f.input_name for f in drawn] == ["data.amount", "data.level", "data.ok", "data.a/b~c"]
    assert [f.input_id for f in drawn] == ["field-0", "field-1", "field-2", "field-3"]
    assert drawn[0].default == "10"
    assert [(o.text, o.label, o.value) for o in drawn[1].options] == [
        ("1", "1", 1),
        ("2", "2", 2),
        ("true", "All", True),
    ]
    assert fields(None) == []


def test_as_text_writes_values_as_a_form_posts_them() -> None:
    assert [as_text(v) for v in (None, "x", 3, 2.5, True, [1])] == [
        "",
        "x",
        "3",
        "2.5",
        "true",
        "[1]",
    ]


def test_parse_maps_selects_back_to_their_values_and_empty_inputs_to_none() -> None:
    drawn = fields(FORM)
    submitted = {"data.amount": "12.5", "data.level": "true", "data.ok": "", "other": "x"}
    data, typed = parse(drawn, submitted)
    assert data == {"amount": "12.5", "level": True, "ok": None, "a/b~c": None}
    assert typed == {"amount": "12.5", "level": "true", "ok": "", "a/b~c": ""}
    # The service then converts and checks it: what reaches the scope is typed JSON.
    checked, problems = check_data(FORM, data)
    assert problems == []
    assert checked == {"amount": 12.5, "level": True, "ok": None, "a/b~c": None}


def test_a_choice_that_is_no_option_is_passed_on_for_the_service_to_refuse() -> None:
    data, _ = parse(fields(FORM), {"data.amount": "1", "data.level": "7"})
    assert data["level"] == "7"
    _, problems = check_data(FORM, data)
    assert [p.path for p in problems] == ["/data/level"]


def test_problems_are_sorted_to_their_fields() -> None:
    drawn = fields(FORM)
    problems = [
        Problem("/data/amount", "'Amount' is required"),
        Problem(pointer("a/b~c"), "must be text"),
        Problem("/data/amount", "second"),
        Problem("/data/unknown", "not a field"),
        Problem("/outcome", "must be one of: a, b"),
        Problem("/data", "must be an object"),
    ]
    by_field, rest = problems_by_field(problems, drawn)
    assert by_field == {"amount": ["'Amount' is required", "second"], "a/b~c": ["must be text"]}
    assert [p.path for p in rest] == ["/data/unknown", "/outcome", "/data"]


def test_field_name_decodes_json_pointers() -> None:
    assert field_name("/data/a~1b~0c") == "a/b~c"
    assert field_name("/data/") is None
    assert field_name("/comment") is None
