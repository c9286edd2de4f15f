"""``${path}`` templates: parsing, resolving, rendering and their error messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from server.errors import ExpressionError
from server.expressions import (
    Reference,
    find_references,
    format_path,
    parse_path,
    render,
    resolve_path,
)

# -- parsing ----------------------------------------------------------------------------


def test_parse_path_splits_keys_hyphens_and_indices() -> None:
    assert parse_path("nodes.fetch-data.output.items[0].id") == (
        "nodes", "fetch-data", "output", "items", 0, "id",
    )  # fmt: skip


def test_parse_path_reads_quoted_keys_and_negative_indices() -> None:
    assert parse_path("""a["b c"]['d.e'][-1]""") == ("a", "b c", "d.e", -1)


def test_parse_path_keeps_digit_segments_as_keys() -> None:
    assert parse_path("a.0.b") == ("a", "0", "b")


@pytest.mark.parametrize(
    ("path", "position"),
    [("a..b", 2), ("a.b c", 4), ("a[x]", 2), ("a[0", 3), ("[0].a", 0), ("a.", 2), ("a!", 1)],
)
def test_parse_path_rejects_malformed_paths_with_position(path: str, position: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_path(path)
    assert caught.value.position == position


def test_format_path_round_trips() -> None:
    path = ("nodes", "fetch-data", "items", 0, "odd key")
    assert format_path(path) == 'nodes.fetch-data.items[0]["odd key"]'
    assert parse_path(format_path(path)) == path


# -- finding references -----------------------------------------------------------------


def test_find_references_reports_path_default_and_span() -> None:
    text = "Hi ${ input.name|friend }, order ${order.id}"
    first, second = find_references(text)
    assert first == Reference(" input.name|friend ", ("input", "name"), "friend", 3, 25)
    assert text[first.start : first.end] == "${ input.name|friend }"
    assert first.root == "input"
    assert second.path == ("order", "id")
    assert second.default is None
    assert text[second.start : second.end] == "${order.id}"


def test_find_references_allows_braces_in_default() -> None:
    (ref,) = find_references('${x|{"a": {"b": 1}}} tail')
    assert ref.default == '{"a": {"b": 1}}'
    assert ref.end == len('${x|{"a": {"b": 1}}}')


def test_find_references_skips_escaped_and_lone_dollars() -> None:
    assert find_references("cost $5, literal $${x}") == []


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("abc ${name", 4, "unclosed"),
        ("x ${a.b|default", 2, "unclosed"),
        ("${}", 0, "empty"),
        ("ok ${  }", 3, "empty"),
        ("${a..b}", 4, "expected a key"),
        ("${a b}", 4, "unexpected"),
        ("${|5}", 0, "empty"),
    ],
)
def test_find_references_rejects_malformed_templates(text: str, position: int, words: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        find_references(text)
    assert caught.value.position == position
    assert words in caught.value.reason
    assert caught.value.expression == text


# -- resolving --------------------------------------------------------------------------


def test_resolve_path_walks_objects_and_lists(scope: dict[str, Any]) -> None:
    path = ("nodes", "fetch-data", "output", "items", 0, "id")
    assert resolve_path(scope, path, "x") == "x-1"
    assert resolve_path(scope, ("items", "1", "price"), "x") == 10
    assert resolve_path(scope, ("items", -1, "id"), "x") == 3


def test_unknown_path_names_path_segment_and_known_names(scope: dict[str, Any]) -> None:
    with pytest.raises(ExpressionError) as caught:
        resolve_path(scope, ("nodes", "fetch", "output"), "nodes.fetch.output")
    message = caught.value.reason
    assert "'nodes.fetch.output'" in message
    assert "'fetch' is not in nodes" in message
    assert "known: approve, fetch-data" in message


def test_unknown_top_level_name_lists_scope_names(scope: dict[str, Any]) -> None:
    with pytest.raises(ExpressionError) as caught:
        resolve_path(scope, ("missing",), "missing")
    assert "is not in the scope" in caught.value.reason
    assert "amount" in caught.value.reason
    assert "status" in caught.value.reason


def test_known_names_list_is_capped() -> None:
    big = {f"k{i:03}": i for i in range(50)}
    with pytest.raises(ExpressionError) as caught:
        resolve_path(big, ("nope",), "nope")
    assert "k019" in caught.value.reason
    assert "k020" not in caught.value.reason
    assert "(and 30 more)" in caught.value.reason


def test_index_out_of_range_and_wrong_type_are_explained(scope: dict[str, Any]) -> None:
    with pytest.raises(ExpressionError, match=r"has no item \[7\] \(it has 3 items\)"):
        resolve_path(scope, ("items", 7), "items[7]")
    with pytest.raises(ExpressionError, match="amount is a number, so it has no 'x'"):
        resolve_path(scope, ("amount", "x"), "amount.x")


# -- rendering --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${amount}", 150),
        ("${flags.fast}", True),
        ("${nothing}", None),
        ("${order.tags}", ["a", "b"]),
        ("${ order.customer }", {"email": "ada@example.com"}),
        ("${nodes.fetch-data.output.items[0].id}", "x-1"),
    ],
)
def test_single_reference_keeps_json_type(
    scope: dict[str, Any], template: str, expected: Any
) -> None:
    result = render(template, scope)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("total: ${amount}", "total: 150"),
        ("fast=${flags.fast}", "fast=true"),
        ("[${nothing}]", "[]"),
        ("tags=${order.tags}", 'tags=["a","b"]'),
        ("c=${order.customer}", 'c={"email":"ada@example.com"}'),
        ("${name} <${order.customer.email}>", "Ada Lovelace <ada@example.com>"),
        (" ${amount}", " 150"),
    ],
)
def test_references_inside_text_become_text(
    scope: dict[str, Any], template: str, expected: str
) -> None:
    assert render(template, scope) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${missing|5}", 5),
        ("${missing|true}", True),
        ("${missing|null}", None),
        ("${missing|[1, 2]}", [1, 2]),
        ("${missing|hello world}", "hello world"),
        ("${missing|}", ""),
        ("${nothing|fallback}", "fallback"),
        ("${amount|0}", 150),
        ("n=${missing|5}", "n=5"),
        ("${input.nope|{}}", {}),
    ],
)
def test_defaults_apply_when_path_missing(
    scope: dict[str, Any], template: str, expected: Any
) -> None:
    result = render(template, scope)
    assert result == expected
    assert type(result) is type(expected)


def test_render_walks_nested_structures_without_touching_input(scope: dict[str, Any]) -> None:
    config = {"url": "https://x/${input.customer_id}", "body": {"ids": ["${items[0].id}", 7]}}
    before = copy.deepcopy(config)
    assert render(config, scope) == {"url": "https://x/42", "body": {"ids": [1, 7]}}
    assert config == before


def test_render_returns_copies_not_scope_objects(scope: dict[str, Any]) -> None:
    tags = render("${order.tags}", scope)
    tags.append("mutated")
    assert scope["order"]["tags"] == ["a", "b"]


def test_escaped_dollar_brace_is_literal(scope: dict[str, Any]) -> None:
    assert render("echo $${HOME} costs $5: ${amount}", scope) == "echo ${HOME} costs $5: 150"


def test_render_unknown_path_fails_with_position_and_known_names(scope: dict[str, Any]) -> None:
    with pytest.raises(ExpressionError) as caught:
        render({"a": "see ${nodes.fetch.output}"}, scope)
    error = caught.value
    assert error.position == 4
    assert error.expression == "see ${nodes.fetch.output}"
    assert "known: approve, fetch-data" in error.reason


def test_render_leaves_non_strings_and_plain_strings_alone(scope: dict[str, Any]) -> None:
    assert render([1, 2.5, None, True, "plain $ text"], scope) == [
        1,
        2.5,
        None,
        True,
        "plain $ text",
    ]
