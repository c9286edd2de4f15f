"""Seed-format aliases (rules, to, custom) and every duration form."""

from __future__ import annotations

from typing import Any

import pytest

from server.definitions import parse_definition
from tests.unit.definitions.conftest import base, check


def test_rules_alias_is_accepted_and_mapped() -> None:
    doc = base()
    doc["nodes"][1]["config"] = {"rules": doc["nodes"][1]["config"]["decision_rules"]}
    assert check(doc).valid
    node = parse_definition(doc).graph.node("check")
    assert "rules" not in node.config
    assert node.config["decision_rules"][0]["next_node"] == "store"


def test_rules_alias_pointer_points_at_the_alias() -> None:
    doc = base()
    doc["nodes"][1]["config"] = {"rules": [{"condition": "x >", "output": "big"}]}
    report = check(doc)
    assert [p.path for p in report.errors] == ["/nodes/1/config/rules/0/condition"]


def test_to_alias_is_accepted_and_mapped() -> None:
    doc = base()
    config = doc["nodes"][3]["config"]
    config["to"] = config.pop("email_to")
    assert check(doc).valid
    assert parse_definition(doc).graph.node("mail").config["email_to"] == "a@example.com"


@pytest.mark.parametrize(
    ("node", "config"),
    [
        (1, {"decision_rules": [], "rules": []}),
        (3, {"email_to": "a@example.com", "to": "b@example.com", "body": "x"}),
    ],
)
def test_alias_and_canonical_together_is_an_error(node: int, config: dict[str, Any]) -> None:
    doc = base()
    doc["nodes"][node]["config"] = config
    report = check(doc)
    assert any(
        "they mean the same" in p.message and p.path.startswith(f"/nodes/{node}/config/")
        for p in report.errors
    ), report.errors


def _human_task(custom: dict[str, Any], **config: Any) -> dict[str, Any]:
    doc = base()
    doc["nodes"].append(
        {
            "id": "review",
            "name": "Review",
            "type": "human_task",
            "config": {**config, "custom": custom},
        }
    )
    doc["edges"].append({"from_node": "mail", "to_node": "review"})
    return doc


def test_custom_settings_are_merged_into_the_effective_config() -> None:
    doc = _human_task({"assignee": "bob", "due_date": "3 days", "description": "Please"})
    report = check(doc)
    assert report.valid, report.errors
    assert report.warnings == []
    node = parse_definition(doc).graph.node("review")
    assert node.config == {"assignee": "bob", "due_date": "3 days", "description": "Please"}


def test_config_keys_win_over_custom_with_a_warning() -> None:
    doc = _human_task({"assignee": "bob"}, assignee="alice")
    report = check(doc)
    assert report.valid
    assert parse_definition(doc).graph.node("review").config["assignee"] == "alice"
    assert [w.path for w in report.warnings] == ["/nodes/4/config/custom/assignee"]


def test_pointer_of_a_bad_custom_key_is_where_it_really_is() -> None:
    report = check(_human_task({"assignee": "bob", "due_date": "soon"}))
    assert [p.path for p in report.errors] == ["/nodes/4/config/custom/due_date"]
    assert "'soon' is not a duration" in report.errors[0].message


def test_custom_type_errors_come_from_the_schema() -> None:
    report = check(_human_task({"assignee": 5}))
    assert [p.path for p in report.errors] == ["/nodes/4/config/custom/assignee"]
    assert "must be a string" in report.errors[0].message


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30.0),
        (1.5, 1.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("3d", 259200.0),
        ("1w", 604800.0),
        ("3 days", 259200.0),
        ("2 hours", 7200.0),
        ("1 hour 30 minutes", 5400.0),
        ("500ms", 0.5),
        ("PT30S", 30.0),
        ("P1DT2H", 93600.0),
        ("45", 45.0),
    ],
)
def test_every_duration_form_is_accepted(value: object, seconds: float) -> None:
    doc = base()
    doc["nodes"][0]["timeout"] = value
    assert check(doc).valid
    assert parse_definition(doc).graph.node("start").timeout == seconds


@pytest.mark.parametrize("value", ["soon", "5 parsecs", "", "-5s", -1, True, [], "P", "1h x"])
def test_invalid_durations_name_the_field(value: object) -> None:
    doc = base()
    doc["nodes"][0]["timeout"] = value
    doc["config"] = {"timeout": value}
    doc["nodes"][0]["retry_policy"] = {"delay": value, "max_delay": value}
    report = check(doc)
    paths = {p.path for p in report.errors}
    assert paths == {
        "/nodes/0/timeout",
        "/config/timeout",
        "/nodes/0/retry_policy/delay",
        "/nodes/0/retry_policy/max_delay",
    }, report.errors


def test_huge_integer_duration_is_an_error_not_a_crash() -> None:
    doc = base()
    doc["nodes"][0]["timeout"] = 10**400
    assert [p.path for p in check(doc).errors] == ["/nodes/0/timeout"]
