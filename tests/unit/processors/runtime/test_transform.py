"""transform at run time: json_path, expression, mapping, template, and JSONPath bounds."""

from __future__ import annotations

from typing import Any

import pytest

from processors.runtime import Completed, Failed
from processors.transform import (
    MAX_PATTERN_LENGTH,
    MAX_SEARCHED_LENGTH,
    TransformProcessor,
    prepare_jsonpath,
    runtime_problem,
)
from tests.unit.definitions.conftest import base, check
from tests.unit.processors.runtime.conftest import Harness

TRANSFORM = TransformProcessor()

SCOPE: dict[str, Any] = {
    "data": {"items": [{"id": 1, "amount": 50}, {"id": 2, "amount": 150}], "owner": "ada"},
    "orders": [
        {"id": "a", "amount": 120, "ref": "INV-001"},
        {"id": "b", "amount": 80, "ref": "PO-17"},
        {"id": "c", "amount": 300, "ref": "INV-002"},
    ],
    "name": "Ada",
    "count": 3,
}


async def run(harness: Harness, config: dict[str, Any], scope: Any = SCOPE) -> Any:
    return await TRANSFORM.run(config, harness.ctx(scope))


def result_of(outcome: Any) -> Any:
    assert isinstance(outcome, Completed), outcome
    return outcome.output["result"]


def test_declares_its_unrendered_keys() -> None:
    assert TransformProcessor.unrendered_keys == {"expression", "mapping"}
    assert TransformProcessor.routes_by_label is False


# -- json_path -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.data.owner", "ada"),
        ("$.data.items[1].amount", 150),
        ("$.data.items[-1].id", 2),
        ("$.data", SCOPE["data"]),
        ("$['name']", "Ada"),
        ("$.orders.`len`", 3),
    ],
)
async def test_a_definite_path_gives_the_value_itself(
    harness: Harness, path: str, expected: Any
) -> None:
    outcome = await run(harness, {"transform_type": "json_path", "expression": path})
    assert result_of(outcome) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.orders[*].id", ["a", "b", "c"]),
        ("$.data.items[0:1].id", [1]),
        ("$..amount", [50, 150, 120, 80, 300]),
        ("$.orders[0,2].id", ["a", "c"]),
        ("$.orders[?(@.amount > 100)].id", ["a", "c"]),
        ("$.orders[?(@.amount > 1000)].id", []),
        ("$.orders[0].id[*]", []),
    ],
)
async def test_any_other_path_gives_the_list_of_matches(
    harness: Harness, path: str, expected: Any
) -> None:
    outcome = await run(harness, {"transform_type": "json_path", "expression": path})
    assert sorted(result_of(outcome)) == sorted(expected)


async def test_first_gives_the_first_match_or_null(harness: Harness) -> None:
    config = {"transform_type": "json_path", "first": True}
    found = await run(harness, {**config, "expression": "$.orders[?(@.amount > 100)].id"})
    none = await run(harness, {**config, "expression": "$.orders[?(@.amount > 1000)].id"})
    missing = await run(harness, {**config, "expression": "$.data.nothing"})
    assert (result_of(found), result_of(none), result_of(missing)) == ("a", None, None)


async def test_source_replaces_the_scope(harness: Harness) -> None:
    config = {
        "transform_type": "json_path",
        "source": SCOPE["orders"],  # what the engine rendered ${orders} to
        "expression": "$[?(@.amount >= 100)]",
    }
    outcome = await run(harness, config)
    assert [order["id"] for order in result_of(outcome)] == ["a", "c"]


async def test_a_null_source_is_still_the_source(harness: Harness) -> None:
    outcome = await run(harness, {"transform_type": "json_path", "source": None, "expression": "$"})
    assert result_of(outcome) is None


async def test_matches_are_copies_not_the_scope_itself(harness: Harness) -> None:
    scope = {"data": {"items": [1, 2]}}
    outcome = await run(harness, {"transform_type": "json_path", "expression": "$.data"}, scope)
    result = result_of(outcome)
    result["items"].append(3)
    assert scope == {"data": {"items": [1, 2]}}


async def test_a_definite_path_that_matches_nothing_fails_and_says_how_to_get_null(
    harness: Harness,
) -> None:
    outcome = await run(harness, {"transform_type": "json_path", "expression": "$.data.nothing"})
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False
    assert "transform 'expression'" in outcome.error
    assert "matched nothing" in outcome.error
    assert "first: true" in outcome.error
    assert "$.data.nothing" in outcome.error


async def test_an_invalid_path_fails_naming_it(harness: Harness) -> None:
    outcome = await run(harness, {"transform_type": "json_path", "expression": "$.orders[?("})
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False
    assert "invalid JSONPath" in outcome.error
    assert "$.orders[?(" in outcome.error


async def test_regex_filter_uses_jsonpath_ng_semantics(harness: Harness) -> None:
    path = "$.orders[?(@.ref =~ '^INV-[0-9]+$')].id"
    outcome = await run(harness, {"transform_type": "json_path", "expression": path})
    assert result_of(outcome) == ["a", "c"]
    plain = "$.orders[?(@.ref =~ 'PO')].id"  # no regex syntax: a substring test
    outcome = await run(harness, {"transform_type": "json_path", "expression": plain})
    assert result_of(outcome) == ["b"]
    non_string = "$.orders[?(@.amount =~ '1')].id"  # only strings are searched
    outcome = await run(harness, {"transform_type": "json_path", "expression": non_string})
    assert result_of(outcome) == []


async def test_a_runaway_regex_filter_is_stopped(harness: Harness) -> None:
    scope = {"rows": [{"text": "a" * 40 + "!"}]}
    path = "$.rows[?(@.text =~ '^(a+)+$')]"
    outcome = await run(harness, {"transform_type": "json_path", "expression": path}, scope)
    assert isinstance(outcome, Failed)
    assert "took longer" in outcome.error
    assert path in outcome.error


async def test_a_regex_filter_refuses_too_long_strings(harness: Harness) -> None:
    scope = {"rows": [{"text": "x" * (MAX_SEARCHED_LENGTH + 1)}]}
    path = "$.rows[?(@.text =~ 'x+y')]"
    outcome = await run(harness, {"transform_type": "json_path", "expression": path}, scope)
    assert isinstance(outcome, Failed)
    assert f"{MAX_SEARCHED_LENGTH:,}" in outcome.error
    assert "=~" in outcome.error


async def test_a_too_long_regex_pattern_is_refused(harness: Harness) -> None:
    path = "$.orders[?(@.ref =~ '" + "a" * (MAX_PATTERN_LENGTH + 1) + "')]"
    outcome = await run(harness, {"transform_type": "json_path", "expression": path})
    assert isinstance(outcome, Failed)
    assert f"the =~ pattern is {MAX_PATTERN_LENGTH + 1:,} characters" in outcome.error


async def test_an_invalid_regex_pattern_is_refused(harness: Harness) -> None:
    path = "$.orders[?(@.ref =~ '(unclosed')]"
    outcome = await run(harness, {"transform_type": "json_path", "expression": path})
    assert isinstance(outcome, Failed)
    assert "invalid regular expression" in outcome.error


async def test_regex_substitution_is_refused(harness: Harness) -> None:
    path = "$.name.`sub(/(a+)+$/, b)`"
    outcome = await run(harness, {"transform_type": "json_path", "expression": path})
    assert isinstance(outcome, Failed)
    assert "`sub(/…/, …)` is not supported" in outcome.error


async def test_arithmetic_cannot_build_huge_strings(harness: Harness) -> None:
    small = await run(harness, {"transform_type": "json_path", "expression": "$.name * 2"})
    assert result_of(small) == "AdaAda"
    path = "$.name * 100000000"
    outcome = await run(harness, {"transform_type": "json_path", "expression": path})
    assert isinstance(outcome, Failed)
    assert "over the limit" in outcome.error


def test_parsed_paths_are_cached() -> None:
    assert prepare_jsonpath("$.orders[*].id") is prepare_jsonpath("$.orders[*].id")
    assert prepare_jsonpath.cache_info().maxsize is not None


def test_runtime_problem_reports_refusals_but_not_parse_errors() -> None:
    assert runtime_problem("$.a.`sub(/x/, y)`") is not None
    assert runtime_problem("$[[[") is None  # the validator's JSONPath check reports it
    assert runtime_problem("$.orders[?(@.ref =~ 'INV')]") is None


@pytest.mark.parametrize(
    ("config", "pointer"),
    [
        ({"transform_type": "json_path", "expression": "$.x.`sub(/a/, b)`"}, "expression"),
        (
            {"transform_type": "mapping", "mapping": {"n": "$.x[?(@ =~ '" + "a" * 1001 + "')]"}},
            "mapping/n",
        ),
    ],
)
def test_the_validator_reports_paths_the_run_time_refuses(
    config: dict[str, Any], pointer: str
) -> None:
    doc = base()
    doc["nodes"].append({"id": "t", "name": "T", "type": "transform", "config": config})
    doc["edges"].append({"from_node": "mail", "to_node": "t"})
    errors = check(doc).errors
    assert [problem.path for problem in errors] == [f"/nodes/4/config/{pointer}"]


# -- expression, mapping, template ---------------------------------------------------------


async def test_expression_is_evaluated(harness: Harness) -> None:
    config = {"transform_type": "expression", "expression": "sum([o['amount'] for o in orders])"}
    assert result_of(await run(harness, config)) == 500


async def test_expression_may_use_references(harness: Harness) -> None:
    config = {"transform_type": "expression", "expression": "${data.items[0].amount} * count"}
    assert result_of(await run(harness, config)) == 150


async def test_a_failing_expression_names_the_key_and_the_reason(harness: Harness) -> None:
    outcome = await run(harness, {"transform_type": "expression", "expression": "count / 0"})
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False
    assert outcome.error.startswith("transform 'expression': ")
    assert "division by zero" in outcome.error
    assert "count / 0" in outcome.error


async def test_mapping_uses_jsonpath_and_expressions(harness: Harness) -> None:
    config = {
        "transform_type": "mapping",
        "mapping": {
            "owner": "$.data.owner",
            "ids": "$.orders[*].id",
            "total": "sum([o['amount'] for o in orders])",
            "greeting": "'Hello ' + ${name}",
        },
    }
    outcome = await run(harness, config)
    assert isinstance(outcome, Completed)
    assert outcome.output == {
        "owner": "ada",
        "ids": ["a", "b", "c"],
        "total": 500,
        "greeting": "Hello Ada",
    }


async def test_mapping_paths_apply_to_source(harness: Harness) -> None:
    config = {
        "transform_type": "mapping",
        "source": {"branches": {"database": [1, 2], "api": 200}},
        "mapping": {"rows": "$.branches.database", "status": "$.branches.api"},
    }
    outcome = await run(harness, config)
    assert isinstance(outcome, Completed)
    assert outcome.output == {"rows": [1, 2], "status": 200}


async def test_a_failing_mapping_entry_names_it(harness: Harness) -> None:
    config = {"transform_type": "mapping", "mapping": {"ok": "count", "bad": "missing + 1"}}
    outcome = await run(harness, config)
    assert isinstance(outcome, Failed)
    assert outcome.error.startswith("transform mapping 'bad': ")
    assert "unknown name 'missing'" in outcome.error


async def test_template_is_the_rendered_text(harness: Harness) -> None:
    # The engine has rendered "Hello ${name}" before run; $${ escapes are not re-read.
    config = {"transform_type": "template", "template": "Hello Ada, ${literal}"}
    assert result_of(await run(harness, config)) == "Hello Ada, ${literal}"


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"transform_type": "unknown"}, "transform_type 'unknown' is not one of"),
        ({}, "transform_type None is not one of"),
        ({"transform_type": "json_path"}, "needs a JSONPath string"),
        ({"transform_type": "expression", "expression": 5}, "needs a string"),
        ({"transform_type": "mapping", "mapping": ["a"]}, "expected an object"),
        ({"transform_type": "mapping", "mapping": {"a": 1}}, "mapping 'a'"),
        ({"transform_type": "template"}, "needs 'template'"),
    ],
)
async def test_unusable_config_fails_without_retry(
    harness: Harness, config: dict[str, Any], fragment: str
) -> None:
    outcome = await run(harness, config)
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False
    assert fragment in outcome.error
