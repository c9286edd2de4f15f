"""One broken definition per validation rule: the exact pointer and the key message."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.definitions.conftest import Mutation, base, check


def _set(path: list[str | int], value: object) -> Mutation:
    def mutate(doc: dict[str, Any]) -> object:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return doc

    return mutate


def _delete(path: list[str | int]) -> Mutation:
    def mutate(doc: dict[str, Any]) -> object:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        return doc

    return mutate


def _add_node(node: dict[str, Any], *edges: dict[str, Any]) -> Mutation:
    def mutate(doc: dict[str, Any]) -> object:
        doc["nodes"].append(node)
        doc["edges"].extend(edges)
        return doc

    return mutate


def _edge(source: str, target: str, **extra: object) -> dict[str, Any]:
    return {"from_node": source, "to_node": target, **extra}


ERRORS: list[tuple[str, Mutation, str, str]] = [
    ("not an object", lambda d: [d], "", "is a JSON object"),
    ("missing name", _delete(["name"]), "/name", "required field 'name' is missing"),
    ("bad id", _set(["id"], "Bad Id"), "/id", "lowercase letters"),
    ("reserved id", _set(["id"], "health"), "/id", "reserved word"),
    ("bad version", _set(["version"], "1.0"), "/version", "semantic version"),
    ("bad status", _set(["status"], "actve"), "/status", 'did you mean "active"'),
    ("empty nodes", _set(["nodes"], []), "/nodes", "must not be empty"),
    (
        "variable type",
        _set(["variables", "count", "type"], "int"),
        "/variables/count/type",
        "not one of: string, integer",
    ),
    (
        "variable default",
        _set(["variables", "count", "default_value"], "one"),
        "/variables/count/default_value",
        "not of type integer",
    ),
    (
        "reserved variable",
        _set(["variables", "nodes"], {"type": "any"}),
        "/variables/nodes",
        "reserved scope name",
    ),
    (
        "node without id",
        _delete(["nodes", 3, "id"]),
        "/nodes/3/id",
        "required field 'id' is missing",
    ),
    (
        "duplicate node id",
        _set(["nodes", 3, "id"], "store"),
        "/nodes/3/id",
        'node id "store" is already used by /nodes/2',
    ),
    (
        "unknown type",
        _set(["nodes", 0, "type"], "tsk"),
        "/nodes/0/type",
        "unknown node type 'tsk'; known types: api, database",
    ),
    ("config not object", _set(["nodes", 0, "config"], []), "/nodes/0/config", "must be an object"),
    (
        "edge unknown node",
        _set(["edges", 0, "to_node"], "chek"),
        "/edges/0/to_node",
        'edge "e1" names unknown node "chek"; known nodes: check, mail, start, store '
        '(did you mean "check"?)',
    ),
    (
        "duplicate edge id",
        _set(["edges", 1, "id"], "e1"),
        "/edges/1/id",
        'edge id "e1" is already used by /edges/0',
    ),
    (
        "on_error not boolean",
        _set(["edges", 2, "on_error"], "yes"),
        "/edges/2/on_error",
        "must be true or false",
    ),
    (
        "priority not integer",
        _set(["edges", 2, "priority"], 1.5),
        "/edges/2/priority",
        "must be an integer",
    ),
    (
        "join too large",
        _set(["nodes", 3, "join"], 2),
        "/nodes/3/join",
        "join 2 can never be satisfied",
    ),
    ("join bad value", _set(["nodes", 3, "join"], "most"), "/nodes/3/join", "'most'"),
    (
        "cycle",
        lambda d: d["edges"].append(_edge("mail", "check")) or d,
        "/edges/3",
        "cycle check → store → mail → check",
    ),
    (
        "no start node",
        lambda d: d["edges"].append(_edge("mail", "start")) or d,
        "/nodes",
        "there is no start node",
    ),
    (
        "unreachable",
        lambda d: _add_node(
            {"id": "b", "type": "timer", "name": "B", "config": {"duration": 1}}, _edge("b", "a")
        )(
            _add_node(
                {"id": "a", "type": "timer", "name": "A", "config": {"duration": 1}},
                _edge("a", "b"),
            )(d)
        ),
        "/nodes/4",
        'node "a" can never run: no path leads to it from a start node',
    ),
    (
        "next_node without edge",
        _set(["nodes", 1, "config", "decision_rules", 0, "next_node"], "mail"),
        "/nodes/1/config/decision_rules/0/next_node",
        'next_node "mail" has no edge from this',
    ),
    (
        "next_node unknown",
        _set(["nodes", 1, "config", "decision_rules", 0, "next_node"], "stor"),
        "/nodes/1/config/decision_rules/0/next_node",
        'did you mean "store"',
    ),
    (
        "bad rule expression",
        _set(["nodes", 1, "config", "decision_rules", 0, "condition"], "x >"),
        "/nodes/1/config/decision_rules/0/condition",
        "invalid expression 'x >'",
    ),
    (
        "unknown function",
        _set(["nodes", 1, "config", "decision_rules", 0, "condition"], "lenght(x) > 1"),
        "/nodes/1/config/decision_rules/0/condition",
        "unknown function 'lenght'",
    ),
    (
        "bad edge condition",
        _set(["edges", 2, "condition"], "x ==="),
        "/edges/2/condition",
        "invalid expression",
    ),
    (
        "malformed template",
        _set(["nodes", 3, "config", "body"], "x=${x"),
        "/nodes/3/config/body",
        "malformed template",
    ),
    (
        "unknown node reference",
        _set(["nodes", 3, "config", "body"], "${nodes.strt.output}"),
        "/nodes/3/config/body",
        'names unknown node "strt"',
    ),
    (
        "bad node field",
        _set(["nodes", 3, "config", "body"], "${nodes.start.result}"),
        "/nodes/3/config/body",
        "has no field 'result'",
    ),
    (
        "bad execution field",
        _set(["nodes", 3, "config", "body"], "${execution.name}"),
        "/nodes/3/config/body",
        "an execution has no field 'name'",
    ),
    (
        "sql template",
        _set(["nodes", 2, "config", "query"], "SELECT * FROM t WHERE id = ${x}"),
        "/nodes/2/config/query",
        "values must not be formatted into SQL",
    ),
    (
        "unknown connection",
        _set(["nodes", 2, "config", "connection"], "demo"),
        "/nodes/2/config/connection",
        'connection "demo" is not configured; configured: demo_db',
    ),
    (
        "unknown smtp account",
        _set(["nodes", 3, "config", "account"], "mailer"),
        "/nodes/3/config/account",
        'SMTP account "mailer" is not configured',
    ),
    ("missing query", _delete(["nodes", 2, "config", "query"]), "/nodes/2/config", "needs 'query'"),
    (
        "bad node timeout",
        _set(["nodes", 0, "timeout"], "soon"),
        "/nodes/0/timeout",
        "'soon' is not a duration",
    ),
    (
        "bad workflow timeout",
        _set(["config"], {"timeout": "3 fortnights"}),
        "/config/timeout",
        "unknown unit 'fortnights'",
    ),
    (
        "bad retry delay",
        _set(["nodes", 0, "retry_policy"], {"max_attempts": 2, "delay": "x"}),
        "/nodes/0/retry_policy/delay",
        "not a duration",
    ),
    (
        "bad retry backoff",
        _set(["nodes", 0, "retry_policy"], {"backoff": "exponentail"}),
        "/nodes/0/retry_policy/backoff",
        'did you mean "exponential"',
    ),
    (
        "bad retry attempts",
        _set(["nodes", 0, "retry_policy"], {"max_attempts": 0}),
        "/nodes/0/retry_policy/max_attempts",
        "must be ≥ 1",
    ),
    (
        "bad jitter",
        _set(["nodes", 0, "retry_policy"], {"jitter": 2}),
        "/nodes/0/retry_policy/jitter",
        "must be ≤ 1",
    ),
    (
        "bad on_failure",
        _set(["config"], {"error_handling": {"on_failure": "ignore"}}),
        "/config/error_handling/on_failure",
        "not one of: stop, continue, retry",
    ),
    (
        "bad priority",
        _set(["config"], {"priority": "urgent"}),
        "/config/priority",
        "not one of: low, medium, high, critical",
    ),
    (
        "trigger type",
        _set(["triggers"], [{"id": "t", "type": "email"}]),
        "/triggers/0/type",
        "not one of: cron, webhook",
    ),
    (
        "cron fields",
        _set(["triggers"], [{"id": "t", "type": "cron", "schedule": "* * *"}]),
        "/triggers/0/schedule",
        "has 3 fields",
    ),
    (
        "cron seven fields",
        _set(["triggers"], [{"id": "t", "type": "cron", "schedule": "0 0 9 * * 1 2030"}]),
        "/triggers/0/schedule",
        "has 7 fields",
    ),
    (
        "cron value",
        _set(["triggers"], [{"id": "t", "type": "cron", "schedule": "61 * * * *"}]),
        "/triggers/0/schedule",
        "invalid cron '61 * * * *'",
    ),
    (
        "cron missing",
        _set(["triggers"], [{"id": "t", "type": "cron"}]),
        "/triggers/0/schedule",
        "required field 'schedule'",
    ),
    (
        "timezone",
        _set(
            ["triggers"],
            [{"id": "t", "type": "cron", "schedule": "0 9 * * 1", "timezone": "Europe/Berln"}],
        ),
        "/triggers/0/timezone",
        'did you mean "Europe/Berlin"',
    ),
    (
        "webhook path",
        _set(["triggers"], [{"id": "t", "type": "webhook", "path": "/x y"}]),
        "/triggers/0/path",
        "hook path",
    ),
    (
        "trigger id twice",
        _set(
            ["triggers"],
            [
                {"id": "t", "type": "webhook", "path": "a"},
                {"id": "t", "type": "webhook", "path": "b"},
            ],
        ),
        "/triggers/1/id",
        "trigger id 't' is already used by /triggers/0",
    ),
    (
        "webhook path twice",
        _set(
            ["triggers"],
            [
                {"id": "a", "type": "webhook", "path": "p"},
                {"id": "b", "type": "webhook", "path": "p"},
            ],
        ),
        "/triggers/1/path",
        "webhook path 'p' is already used",
    ),
    (
        "output_key reserved",
        _set(["nodes", 0, "output_key"], "input"),
        "/nodes/0/output_key",
        "reserved scope name",
    ),
    (
        "compensate type",
        _set(["nodes", 2, "compensate"], {"type": "sql", "config": {}}),
        "/nodes/2/compensate/type",
        "unknown node type 'sql'",
    ),
    (
        "compensate config",
        _set(
            ["nodes", 2, "compensate"],
            {
                "type": "database",
                "config": {"connection": "demo_db", "query": "DELETE FROM t WHERE id = ${x}"},
            },
        ),
        "/nodes/2/compensate/config/query",
        "values must not be formatted into SQL",
    ),
    (
        "task without work",
        _set(["nodes", 0, "config"], {}),
        "/nodes/0/config",
        "a task needs one of 'handler', 'script', 'command'",
    ),
    (
        "bad jsonpath",
        _add_node(
            {
                "id": "t",
                "name": "T",
                "type": "transform",
                "config": {"transform_type": "json_path", "expression": "$["},
            },
            _edge("mail", "t"),
        ),
        "/nodes/4/config/expression",
        "invalid JSONPath '$['",
    ),
    (
        "timer two kinds",
        _add_node(
            {
                "id": "t",
                "name": "T",
                "type": "timer",
                "config": {"duration": "5s", "schedule": "* * * * *"},
            },
            _edge("mail", "t"),
        ),
        "/nodes/4/config/schedule",
        "takes only one of",
    ),
    (
        "timer cron",
        _add_node(
            {"id": "t", "name": "T", "type": "timer", "config": {"schedule": "*/5 * * *"}},
            _edge("mail", "t"),
        ),
        "/nodes/4/config/schedule",
        "has 4 fields",
    ),
    (
        "human task on_timeout",
        _add_node(
            {
                "id": "h",
                "name": "H",
                "type": "human_task",
                "config": {"assignee": "bob", "due_date": "1d", "on_timeout": "approve"},
            },
            _edge("mail", "h"),
        ),
        "/nodes/4/config/on_timeout",
        "'approve' is not one of: fail, escalate, approved",
    ),
    (
        "api url",
        _add_node(
            {"id": "h", "name": "H", "type": "api", "config": {"url": "ftp://x"}},
            _edge("mail", "h"),
        ),
        "/nodes/4/config/url",
        "not an http(s) URL",
    ),
    (
        "parallel wait_for",
        _add_node(
            {
                "id": "p",
                "name": "P",
                "type": "parallel",
                "config": {"wait_for": 3, "branches": [{"id": "b", "workflow_id": "other"}]},
            },
            _edge("mail", "p"),
        ),
        "/nodes/4/config/wait_for",
        "wait_for 3 can never be met",
    ),
    (
        "loop needs source",
        _add_node(
            {"id": "l", "name": "L", "type": "loop", "config": {"workflow_id": "other"}},
            _edge("mail", "l"),
        ),
        "/nodes/4/config",
        "a loop needs one of 'items', 'iterations', 'while'",
    ),
    (
        "loop body node type",
        _add_node(
            {
                "id": "l",
                "name": "L",
                "type": "loop",
                "config": {"iterations": 2, "body": {"nodes": [{"id": "x", "type": "nope"}]}},
            },
            _edge("mail", "l"),
        ),
        "/nodes/4/config/body/nodes/0/type",
        "unknown node type 'nope'",
    ),
    (
        "loop body edge",
        _add_node(
            {
                "id": "l",
                "name": "L",
                "type": "loop",
                "config": {
                    "iterations": 2,
                    "body": {
                        "nodes": [
                            {"id": "x", "name": "X", "type": "timer", "config": {"duration": 1}}
                        ],
                        "edges": [{"from_node": "x", "to_node": "y"}],
                    },
                },
            },
            _edge("mail", "l"),
        ),
        "/nodes/4/config/body/edges/0/to_node",
        'names unknown node "y"',
    ),
    (
        "email header newline",
        _set(["nodes", 3, "config", "subject"], "a\nBcc: x"),
        "/nodes/3/config/subject",
        "line break",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [pytest.param(m, p, f, id=name) for name, m, p, f in ERRORS],
)
def test_each_rule_reports_an_error_at_the_exact_pointer(
    mutate: Mutation, path: str, fragment: str
) -> None:
    report = check(mutate(base()))
    assert not report.valid
    matching = [p for p in report.errors if p.path == path]
    assert matching, f"no error at {path!r}; got {report.errors}"
    assert any(fragment in p.message for p in matching), matching


WARNINGS: list[tuple[str, Mutation, str, str]] = [
    ("unknown top-level field", _set(["colour"], "red"), "/colour", "unknown top-level field"),
    (
        "unknown node field",
        _set(["nodes", 0, "colour"], "red"),
        "/nodes/0/colour",
        "unknown node field 'colour'",
    ),
    (
        "unknown edge field",
        _set(["edges", 0, "weight"], 1),
        "/edges/0/weight",
        "unknown edge field 'weight'",
    ),
    (
        "unknown config key",
        _set(["nodes", 2, "config", "qeury"], "x"),
        "/nodes/2/config/qeury",
        'did you mean "query"',
    ),
    ("missing node name", _delete(["nodes", 0, "name"]), "/nodes/0", "has no name"),
    (
        "undeclared name",
        _set(["nodes", 3, "config", "body"], "${customer}"),
        "/nodes/3/config/body",
        "'customer' is not a declared variable",
    ),
    (
        "decision label",
        _set(["edges", 1, "condition"], "small"),
        "/edges/1/condition",
        "none of its labels",
    ),
    (
        # a workflow run as a loop's workflow_id body gets item and index as its input
        "item outside loop",
        _set(["nodes", 3, "config", "body"], "${item.id}"),
        "/nodes/3/config/body",
        "'item' exists only inside a loop body",
    ),
    (
        "variable name differs",
        _set(["variables", "count", "name"], "counter"),
        "/variables/count/name",
        "differs from the key",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [pytest.param(m, p, f, id=name) for name, m, p, f in WARNINGS],
)
def test_warnings_keep_the_definition_valid(mutate: Mutation, path: str, fragment: str) -> None:
    doc = mutate(base())
    if fragment == "none of its labels":  # the edge must not be a rule's next_node
        assert isinstance(doc, dict)
        doc["nodes"][1]["config"]["decision_rules"][0]["next_node"] = "check"
        doc["nodes"][1]["config"]["decision_rules"] = [{"condition": "x > 1", "output": "big"}]
    report = check(doc)
    assert report.valid, report.errors
    matching = [p for p in report.warnings if p.path == path]
    assert matching, f"no warning at {path!r}; got {report.warnings}"
    assert any(fragment in p.message for p in matching), matching


def test_base_definition_is_valid_without_warnings() -> None:
    report = check(base())
    assert report.valid, report.errors
    assert report.warnings == []


def test_open_output_silences_unknown_name_warnings() -> None:
    doc = base()
    doc["nodes"][0]["config"] = {"handler": "compute"}  # a handler may return any name
    doc["nodes"][3]["config"]["body"] = "${customer}"
    report = check(doc)
    assert report.valid
    assert not [w for w in report.warnings if "customer" in w.message]


def test_names_assigned_by_a_script_are_known_later() -> None:
    doc = base()
    doc["nodes"][0]["config"]["script"] = "x = count + 1\nb = x + 1\nconsole.log('b is', b)"
    doc["nodes"][3]["config"]["body"] = "${b}"
    report = check(doc)
    assert report.valid
    assert report.warnings == []


def test_loop_body_may_use_item_and_index_and_outer_names() -> None:
    doc = base()
    doc["nodes"].append(
        {
            "id": "each",
            "name": "Each",
            "type": "loop",
            "config": {
                "items": "${nodes.store.output.rows}",
                "body": {
                    "nodes": [
                        {
                            "id": "show",
                            "name": "Show",
                            "type": "task",
                            "config": {"script": "label = str(index) + ': ' + str(item) + str(x)"},
                        }
                    ]
                },
            },
        }
    )
    doc["edges"].append({"from_node": "mail", "to_node": "each"})
    report = check(doc)
    assert report.valid, report.errors


def test_unknown_names_are_not_checked_without_configured_names() -> None:
    from server.definitions import validate_definition

    doc = base()
    doc["nodes"][2]["config"]["connection"] = "anything"
    assert validate_definition(doc).valid


def test_json_pointer_escapes_tilde_and_slash() -> None:
    doc = base()
    doc["nodes"][2]["config"]["params"] = {"a/b~c": "${nodes.nope.output}"}
    report = check(doc)
    assert [p.path for p in report.errors] == ["/nodes/2/config/params/a~1b~0c"]


def test_nesting_deeper_than_the_limit_is_an_error() -> None:
    body: dict[str, Any] = {
        "nodes": [{"id": "leaf", "name": "Leaf", "type": "timer", "config": {"duration": 1}}]
    }
    for level in range(12):
        body = {
            "nodes": [
                {
                    "id": f"l{level}",
                    "name": "L",
                    "type": "loop",
                    "config": {"iterations": 1, "body": body},
                }
            ]
        }
    doc = {"name": "deep", **body}
    report = check(doc)
    assert not report.valid
    assert any(
        "nested more than 10 levels" in p.message and "limits.max_depth" in p.message
        for p in report.errors
    )


def test_too_many_nodes_names_the_limit_and_setting() -> None:
    from server.definitions import DefinitionLimits, ValidationContext, validate_definition

    doc = base()
    report = validate_definition(doc, ValidationContext(limits=DefinitionLimits(max_nodes=3)))
    assert [p.path for p in report.errors] == ["/nodes"]
    assert "the limit is 3 (setting limits.max_nodes)" in report.errors[0].message


def test_too_long_expression_names_the_limit() -> None:
    doc = base()
    doc["nodes"][1]["config"]["decision_rules"][0]["condition"] = "x > 1" + " and x > 1" * 1200
    report = check(doc)
    assert any("limits.max_expression_length" in p.message for p in report.errors)
