"""The function library, called the way definitions call it: through expressions."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.errors import ExpressionError
from server.expressions import FUNCTION_DOCS, FUNCTIONS, evaluate
from server.expressions.functions import MAX_MATCH_INPUT_LENGTH, MAX_PATTERN_LENGTH

SPEC_FUNCTIONS = {
    "len", "str", "int", "float", "bool", "round", "abs", "min", "max", "sum", "sorted",
    "any", "all", "lower", "upper", "strip", "split", "join", "contains", "startswith",
    "endswith", "matches", "now", "today", "parse_date", "format_date", "keys", "values",
    "get",
}  # fmt: skip

DATA: dict[str, Any] = {
    "text": "  Hello World  ",
    "words": ["b", "a", "c"],
    "nums": [3, 1.5, 2],
    "people": [{"name": "Bo", "age": 40}, {"name": "Al", "age": 30}],
    "obj": {"x": 1, "y": None},
    "empty": [],
}


def run(expression: str) -> Any:
    return evaluate(expression, DATA)


def test_library_is_exactly_the_documented_set() -> None:
    assert set(FUNCTIONS) == SPEC_FUNCTIONS
    assert set(FUNCTION_DOCS) == SPEC_FUNCTIONS
    for name, doc in FUNCTION_DOCS.items():
        assert doc.startswith(f"{name}("), name
        assert "\n" not in doc


def test_functions_are_plain_callables_not_builtins() -> None:
    for function in FUNCTIONS.values():
        assert inspect.isfunction(function)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("len(words)", 3),
        ("len('héllo')", 5),
        ("len(obj)", 2),
        ("str(1.5)", "1.5"),
        ("str(true)", "true"),
        ("str(null)", ""),
        ("str(obj)", '{"x":1,"y":null}'),
        ("int('42')", 42),
        ("int(3.9)", 3),
        ("int(true)", 1),
        ("float('2.5')", 2.5),
        ("float(2)", 2.0),
        ("bool('')", False),
        ("bool(empty)", False),
        ("bool('false')", True),
        ("round(2.567, 2)", 2.57),
        ("round(2.5)", 2),
        ("abs(-4)", 4),
        ("min(nums)", 1.5),
        ("min(4, 2, 8)", 2),
        ("max(nums)", 3),
        ("max('a', 'b')", "b"),
        ("sum(nums)", 6.5),
        ("sum(empty)", 0),
        ("sorted(words)", ["a", "b", "c"]),
        ("sorted(nums, reverse=true)", [3, 2, 1.5]),
        ("[p.name for p in sorted(people, key='age')]", ["Al", "Bo"]),
        ("any([0, '', 1])", True),
        ("any(empty)", False),
        ("all([1, 'x'])", True),
        ("all(empty)", True),
        ("lower('ÀBC')", "àbc"),
        ("upper('abc')", "ABC"),
        ("strip(text)", "Hello World"),
        ("strip('xxhixx', 'x')", "hi"),
        ("split('a,b,,c', ',')", ["a", "b", "", "c"]),
        ("split(strip(text))", ["Hello", "World"]),
        ("split('a b c', ' ', 1)", ["a", "b c"]),
        ("join(words, '-')", "b-a-c"),
        ("join([1, true, null, 'x'], ',')", "1,true,,x"),
        ("join(words)", "bac"),
        ("contains('hello', 'ell')", True),
        ("contains(words, 'z')", False),
        ("contains(obj, 'x')", True),
        ("contains(obj, 1)", False),
        ("startswith('report.pdf', 'rep')", True),
        ("endswith('report.pdf', ['.doc', '.pdf'])", True),
        ("endswith('report.pdf', '.doc')", False),
        ("matches('order-123', '^order-[0-9]+$')", True),
        ("matches('ORDER', '(?i)order')", True),
        ("matches('abc', 'x')", False),
        ("matches('a.c', '.')", True),
        ("keys(obj)", ["x", "y"]),
        ("values(obj)", [1, None]),
        ("get(obj, 'x')", 1),
        ("get(obj, 'z', 5)", 5),
        ("get(obj, 'y', 5)", None),
        ("get(words, 1)", "a"),
        ("get(words, 9, 'none')", "none"),
        ("get(null, 'a', 0)", 0),
    ],
)
def test_function_results(expression: str, expected: Any) -> None:
    result = run(expression)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("parse_date('2024-05-01T14:30:00+02:00')", "2024-05-01T12:30:00.000Z"),
        ("parse_date('2024-05-01T12:30:00Z')", "2024-05-01T12:30:00.000Z"),
        ("parse_date('2024-05-01')", "2024-05-01T00:00:00.000Z"),
        ("parse_date('01/05/2024', '%d/%m/%Y')", "2024-05-01T00:00:00.000Z"),
        ("format_date('2024-05-01T12:30:00Z', '%d %B %Y %H:%M')", "01 May 2024 12:30"),
        ("format_date('2024-05-01T01:00:00+02:00', '%Y-%m-%d %H')", "2024-04-30 23"),
        ("parse_date('2024-05-01') < parse_date('2024-05-01T00:00:01Z')", True),
    ],
)
def test_date_functions(expression: str, expected: Any) -> None:
    assert run(expression) == expected


def test_now_and_today_are_utc_iso_strings() -> None:
    now = run("now()")
    parsed = datetime.fromisoformat(now)
    assert now.endswith("Z")
    assert abs(parsed - datetime.now(UTC)) < timedelta(minutes=1)
    assert run("today()") == datetime.now(UTC).date().isoformat()
    assert run("now() == parse_date(now())") is True


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("len(5)", "len() expects a string, list or object, got number"),
        ("lower(5)", "lower() expects a string, got number"),
        ("int('x1')", "int() cannot convert 'x1'"),
        ("int(null)", "int() expects a number or numeric string, got null"),
        ("min(empty)", "min() needs at least one value"),
        ("min(1, 'a')", "min(): '<' not supported"),
        ("sum(['a'])", "sum() expects a list of numbers, got string"),
        ("sorted(people, key='height')", "needs a list of objects that all have 'height'"),
        ("split('a', '')", "separator must not be empty"),
        ("contains('abc', 1)", "contains() expects a string to look for"),
        ("parse_date('yesterday')", "cannot read 'yesterday' as a date"),
        ("parse_date('1 May', '%d/%m')", "cannot read '1 May' as a date"),
        ("get(5, 'a')", "get() expects an object or a list, got number"),
        ("round(1.5, 10000)", "round() takes at most"),
        ("matches('a', '(')", "invalid regular expression"),
        ("len(words, 2)", "len(): too many positional arguments; usage: len(value)"),
        ("upper()", "upper(): missing a required argument: 'text'"),
    ],
)
def test_function_errors_explain_what_was_expected(expression: str, words: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        run(expression)
    assert words in caught.value.reason
    assert caught.value.expression == expression
    assert caught.value.position == 0


def test_matches_refuses_long_patterns_and_inputs() -> None:
    pattern = "a" * (MAX_PATTERN_LENGTH + 1)
    with pytest.raises(ExpressionError, match="pattern is 1,001 characters"):
        evaluate("matches('abc', p)", {"p": pattern})
    text = "a" * (MAX_MATCH_INPUT_LENGTH + 1)
    with pytest.raises(ExpressionError, match="the limit is 100,000"):
        evaluate("matches(t, 'a+')", {"t": text})


def test_join_refuses_output_over_the_limit() -> None:
    with pytest.raises(ExpressionError, match="join\\(\\) would build more than"):
        evaluate("join(parts, sep)", {"parts": ["a"] * 1000, "sep": "x" * 5000})
