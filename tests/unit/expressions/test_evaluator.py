"""Expressions: what they may say, what they mean, and how their errors read."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import ExpressionError
from server.expressions import ExpressionInfo, check_expression, evaluate, evaluate_async


def fails(expression: str, scope: dict[str, Any] | None = None) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        evaluate(expression, scope or {})
    assert caught.value.expression == expression
    return caught.value


# -- meaning ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("status == 'approved' and amount > 100", True),
        ("amount > 100 and status != 'approved'", False),
        ("len(items) > 0", True),
        ("order['total'] + 1", 61),
        ("order.total * 2", 120),
        ("order.customer.email", "ada@example.com"),
        ("items[1].price", 10),
        ("items[-1]['id']", 3),
        ("order.tags[0:1]", ["a"]),
        ("'yes' if flags.fast else 'no'", "yes"),
        ("amount // 7, amount % 7", [21, 3]),
        ("2 ** 10 + (1 << 3)", 1032),
        ("[i.price for i in items if i.price > 15]", [30, 20]),
        ("{str(i.id): i.price for i in items}", {"1": 30, "2": 10, "3": 20}),
        ("sum(i.price for i in items)", 60),
        ("any(i.price > 25 for i in items)", True),
        ("[a + b for a, b in [[1, 2], [3, 4]]]", [3, 7]),
        ("'Hi ' + name", "Hi Ada Lovelace"),
        ("f'{name} owes {order.total}'", "Ada Lovelace owes 60"),
        ("{'a': [1, (2, 3)]}", {"a": [1, [2, 3]]}),
        ("nothing is None", True),
        ("true and not false", True),
        ("null", None),
        ("'b' in order.tags", True),
    ],
)
def test_expression_values(scope: dict[str, Any], expression: str, expected: Any) -> None:
    assert evaluate(expression, scope) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("status == 'approved' AND amount > 100", True),
        ("amount < 100 OR status == 'approved'", True),
        ("NOT flags.fast", False),
        ("NOT (amount > 100) OR len(items) == 0", False),
        ("amount > 100\n  AND status == 'approved'", True),
    ],
)
def test_uppercase_boolean_aliases(scope: dict[str, Any], expression: str, expected: bool) -> None:
    assert evaluate(expression, scope) is expected


def test_aliases_are_not_rewritten_inside_strings_or_longer_words() -> None:
    scope = {"ANDROID": 1, "word": "AND"}
    assert evaluate("word == 'AND' AND ANDROID == 1", scope) is True
    assert evaluate('"x OR y NOT z"', {}) == "x OR y NOT z"
    assert evaluate("{'AND': 1}.AND", {}) == 1


def test_references_inside_expressions(scope: dict[str, Any]) -> None:
    assert evaluate("${nodes.fetch-data.output.count} + 1", scope) == 2
    assert evaluate("${nodes.fetch-data.output.items[0].id} == 'x-1'", scope) is True
    assert evaluate("${nodes.approve.output.approved} AND amount > 1", scope) is True
    assert evaluate("${missing|10} * 2", scope) == 20
    assert evaluate("${missing|none yet}", scope) == "none yet"
    assert evaluate("'${amount}'", scope) == "${amount}"  # literal inside a string


def test_reference_values_are_never_parsed_as_code() -> None:
    assert evaluate("${text} + '!'", {"text": "__import__('os').system('true')"}) == (
        "__import__('os').system('true')!"
    )


def test_result_is_a_copy_that_shares_nothing_with_the_scope(scope: dict[str, Any]) -> None:
    tags = evaluate("order.tags", scope)
    tags.append("z")
    assert scope["order"]["tags"] == ["a", "b"]


def test_extra_functions_are_callable(scope: dict[str, Any]) -> None:
    logged: list[Any] = []
    extra = {"log": logged.append}
    assert evaluate("log(name)", scope, extra_functions=extra) is None
    assert logged == ["Ada Lovelace"]
    assert check_expression("log(1)", extra_functions=extra) == ExpressionInfo(
        frozenset(), frozenset({"log"})
    )


async def test_evaluate_async_returns_value(scope: dict[str, Any]) -> None:
    assert await evaluate_async("amount + 1", scope) == 151


async def test_evaluate_async_raises_expression_errors(scope: dict[str, Any]) -> None:
    with pytest.raises(ExpressionError, match="division by zero"):
        await evaluate_async("amount / 0", scope)


# -- static checks ----------------------------------------------------------------------


def test_check_expression_reports_names_and_functions() -> None:
    info = check_expression(
        "len(items) > 0 and ${nodes.a.output.x} == limit and any(x > 1 for x in xs)"
    )
    assert info.names == frozenset({"items", "nodes", "limit", "xs"})
    assert info.functions == frozenset({"len", "any"})


def test_check_expression_does_not_evaluate() -> None:
    assert check_expression("1 / 0").names == frozenset()


def test_unknown_function_is_rejected_with_the_known_list() -> None:
    with pytest.raises(ExpressionError) as caught:
        check_expression("amount > 1 and fetch(url)")
    assert caught.value.position == 15
    assert "unknown function 'fetch'" in caught.value.reason
    assert "known functions: abs, all, any, bool" in caught.value.reason
    assert "upper, values" in caught.value.reason


@pytest.mark.parametrize(
    ("expression", "position", "words"),
    [
        ("amount >", 8, "syntax error"),
        ("1 +* 2", 3, "syntax error"),
        ("a AND\n  b ===", 12, "syntax error"),
        ("x = 1", 0, "only a single expression"),
        ("import os", 0, "only a single expression"),
        ("a; b", 1, "only a single expression"),
        (
            "name.upper()",
            0,
            "methods cannot be called (.upper(…)); only library functions can; use upper",
        ),
        ("x._secret", 0, "attributes starting with '_'"),
        ("_hidden + 1", 0, "names starting with '_'"),
        ("(a := 1)", 1, ":= is not supported"),
        ("x in {1, 2}", 5, "sets are not supported"),
        ("len(*xs)", 4, "'*' unpacking"),
        ("get(**kw)", 6, "'**' unpacking"),
        ("{**a}", 3, "'**' unpacking"),
        ("f'{x:>10}'", 0, "format specifications"),
        ("b'x'", 0, "bytes literals"),
        ("2j", 0, "complex numbers"),
        ("   ", None, "empty"),
    ],
)
def test_check_expression_rejections_have_positions(
    expression: str, position: int | None, words: str
) -> None:
    with pytest.raises(ExpressionError) as caught:
        check_expression(expression)
    assert words in caught.value.reason
    assert caught.value.position == position


def test_positions_are_in_the_original_text_despite_rewriting() -> None:
    # ${…} becomes a longer placeholder and AND becomes 'and' before parsing.
    with pytest.raises(ExpressionError) as caught:
        check_expression("${nodes.fetch-data.output.count} AND bad(1)")
    assert caught.value.position == len("${nodes.fetch-data.output.count} AND ")
    with pytest.raises(ExpressionError) as caught:
        check_expression("'é' + ünknown(1)")
    assert caught.value.position == 6


def test_expression_length_is_limited() -> None:
    with pytest.raises(ExpressionError, match="limit is 10,000"):
        check_expression("1 + " * 2_600 + "1")
    assert check_expression("1 + 1", max_length=5).names == frozenset()
    with pytest.raises(ExpressionError, match="limit is 4"):
        check_expression("1 + 1", max_length=4)


# -- runtime errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "position", "words"),
    [
        ("amount + 1 / 0", 9, "division by zero"),
        ("name + 1", 0, "can only concatenate str"),
        ("items[7]", 0, "index 7 is out of range: 'items' has 3 items"),
        ("order['nope']", 0, "'order' has no key 'nope'; known: customer, tags, total"),
        ("order.nope", 0, "'order' has no key 'nope'; known: customer, tags, total"),
        ("name.first", 0, "'name' is a string, so it has no key 'first'"),
        ("nothing.x", 0, "'nothing' is null"),
        ("amount[0]", 0, "only lists, strings and objects can be indexed"),
        ("items['a']", 0, "index must be a whole number"),
        ("unknown_var > 1", 0, "unknown name 'unknown_var'; known names: amount, flags, input"),
        ("len + 1", 0, "len is a function: call it as len(…)"),
        ("[x for x in amount]", 12, "cannot loop over a number"),
        ("1 + ${nodes.nope.x}", 4, "'nope' is not in nodes; known: approve, fetch-data"),
        ("'%s' % name", 0, "'%' does not format strings"),
    ],
)
def test_runtime_errors_are_expression_errors_with_position(
    scope: dict[str, Any], expression: str, position: int, words: str
) -> None:
    error = fails(expression, scope)
    assert words in error.reason
    assert error.position == position


def test_errors_keep_the_original_exception_as_cause() -> None:
    error = fails("1 / 0")
    assert isinstance(error.__cause__, ZeroDivisionError)


def test_scope_objects_that_are_not_json_are_refused() -> None:
    error = fails("thing", {"thing": object()})
    assert "not JSON data" in error.reason
    error = fails("f", {"f": print})
    assert "not JSON data" in error.reason
