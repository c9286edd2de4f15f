"""Every problem is reported in one pass."""

from __future__ import annotations

from tests.unit.definitions.conftest import base, check


def test_six_different_problems_give_six_errors() -> None:
    doc = base()
    del doc["name"]  # 1 missing name
    doc["nodes"][0]["type"] = "taks"  # 2 unknown type
    doc["nodes"][2]["config"]["query"] = "SELECT ${x}"  # 3 template in SQL
    doc["nodes"][3]["timeout"] = "forever"  # 4 bad duration
    doc["edges"][2]["to_node"] = "mial"  # 5 unknown node
    doc["variables"]["count"]["default_value"] = "one"  # 6 wrong default type
    report = check(doc)
    assert sorted(p.path for p in report.errors) == [
        "/edges/2/to_node",
        "/name",
        "/nodes/0/type",
        "/nodes/2/config/query",
        "/nodes/3/timeout",
        "/variables/count/default_value",
    ], report.errors


def test_report_shape() -> None:
    doc = base()
    del doc["name"]
    doc["colour"] = "red"
    result = check(doc).as_dict()
    assert result["valid"] is False
    assert result["errors"] == [
        {"path": "/name", "message": "required field 'name' is missing — add a human-readable name"}
    ]
    assert result["warnings"][0]["path"] == "/colour"
