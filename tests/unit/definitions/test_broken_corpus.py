"""The broken-definition corpus in tests/fixtures/broken: exactly the expected errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.definitions.conftest import check

BROKEN = Path(__file__).parents[2] / "fixtures" / "broken"

#: file → every expected error as (pointer, fragment of the message)
EXPECTED: dict[str, list[tuple[str, str]]] = {
    "graph-problems.json": [
        ("/edges/2", "cycle b → c → b"),
        ("/edges/3/id", 'edge id "ab" is already used by /edges/0'),
        ("/edges/5/from_node", 'names unknown node "x"'),
        ("/nodes/3/id", 'node id "b" is already used by /nodes/1'),
        ("/nodes/4/join", "join 3 can never be satisfied"),
    ],
    "nested-bodies.json": [
        ("/nodes/0/config/body/nodes/0/config/query", "values must not be formatted into SQL"),
        (
            "/nodes/0/config/body/nodes/1/config/branches/0/nodes/0/config/duration",
            "'soon' is not a duration",
        ),
        ("/nodes/0/config/body/nodes/1/config/branches/1", "'nodes' or 'workflow_id', not both"),
        ("/nodes/0/config/body/nodes/1/config/branches/1/id", "branch id 'one' is used twice"),
    ],
    "node-configs.json": [
        ("/nodes/0/config/expression", "invalid JSONPath"),
        ("/nodes/1/config/schedule", "has 4 fields"),
        ("/nodes/1/config/timezone", "unknown time zone 'Moon/Dark_Side'"),
        ("/nodes/2/config", "needs 'email_to' (or 'to')"),
        ("/nodes/2/config/account", 'SMTP account "nope" is not configured'),
        ("/nodes/3/config", "needs 'url'"),
        ("/nodes/4/config", "needs 'workflow_id'"),
    ],
    "not-an-object.json": [("", "is a JSON object")],
    "seed-pseudocode-expressions.json": [
        ("/nodes/1/config/rules/0/condition", "syntax error"),
        ("/nodes/1/config/rules/1/condition", "methods cannot be called"),
    ],
    "structure-types.json": [
        ("/config/concurrency", "must be ≥ 1"),
        ("/config/error_handling/on_failure", "not one of: stop, continue, retry"),
        ("/config/error_handling/rollback", "must be true or false"),
        ("/edges/0/to_node", "required field 'to_node' is missing"),
        ("/id", "workflow id: lowercase letters"),
        ("/name", "must not be empty"),
        ("/nodes/0/config/method", "'FETCH' is not one of: GET, POST"),
        ("/nodes/0/config/timeout", "must be a number or a string, not true"),
        ("/nodes/1/id", "required field 'id' is missing"),
        ("/nodes/2", "must be an object"),
        ("/status", "'live' is not one of"),
        ("/tags", "must be a list"),
        ("/triggers/0/id", "required field 'id' is missing"),
        ("/variables/9lives", "variable name"),
        ("/variables/9lives/type", "'text' is not one of"),
        ("/version", "semantic version"),
    ],
}


def test_every_corpus_file_has_expectations() -> None:
    assert sorted(p.name for p in BROKEN.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_reports_exactly_the_expected_errors(name: str) -> None:
    report = check(json.loads((BROKEN / name).read_text()))
    expected = EXPECTED[name]
    assert [p.path for p in report.errors] == [path for path, _ in expected], report.errors
    for problem, (_, fragment) in zip(report.errors, expected, strict=True):
        assert fragment in problem.message, problem
