"""task at run time: scripts (assignments, logs, bare expressions); commands and handlers
have their own test modules."""

from __future__ import annotations

from typing import Any

import pytest

from processors.runtime import Completed, Failed
from processors.task import MAX_LOG_LINE, TaskProcessor
from tests.unit.processors.runtime.conftest import Harness

TASK = TaskProcessor()
SCOPE: dict[str, Any] = {"amounts": [120.5, 30, 99.25], "customer": "Ada", "limit": 100}


async def run(harness: Harness, config: dict[str, Any], scope: Any = SCOPE) -> Any:
    return await TASK.run(config, harness.ctx(scope))


def test_the_script_is_an_unrendered_key() -> None:
    assert TaskProcessor.unrendered_keys == {"script"}
    assert TaskProcessor.routes_by_label is False


async def test_a_list_script_assigns_names_using_earlier_ones(harness: Harness) -> None:
    script = [
        "console.log('adding up', len(amounts), 'amounts')",
        "total = round(sum(amounts), 2)",
        "largest = max(amounts)",
        "is_large = total > 200",
        "log('total is', total)",
    ]
    outcome = await run(harness, {"script": script})
    assert outcome == Completed({"total": 249.75, "largest": 120.5, "is_large": True})
    assert harness.logs == ["adding up 3 amounts", "total is 249.75"]


async def test_a_string_script_with_comments_blank_lines_and_semicolons(
    harness: Harness,
) -> None:
    script = "# a comment\n\n// another\nx = 1;\n  y = x + 1  \nx = y * 10\n"
    outcome = await run(harness, {"script": script})
    assert outcome == Completed({"x": 20, "y": 2})


async def test_comparisons_are_not_assignments(harness: Harness) -> None:
    script = ["a = 1", "a == 2", "a >= 2", "a <= 0", "a != 1", "b = a == 1"]
    outcome = await run(harness, {"script": script})
    assert outcome == Completed({"a": 1, "b": True})


async def test_bare_expressions_are_evaluated_and_discarded(harness: Harness) -> None:
    outcome = await run(harness, {"script": ["limit + 1", "n = 2"]})
    assert outcome == Completed({"n": 2})
    failing = await run(harness, {"script": ["n = 2", "limit / 0"]})
    assert isinstance(failing, Failed)  # evaluated, not skipped


async def test_assignments_shadow_scope_names(harness: Harness) -> None:
    outcome = await run(harness, {"script": ["limit = limit * 2", "over = 150 > limit"]})
    assert outcome == Completed({"limit": 200, "over": False})


async def test_log_writes_values_as_json_and_strings_as_they_are(harness: Harness) -> None:
    script = "items = [1, 'a', None]\nconsole.log(customer, items, {'k': True}, None, 1.5)\nlog()"
    outcome = await run(harness, {"script": script})
    assert isinstance(outcome, Completed)
    assert harness.logs == ['Ada [1, "a", null] {"k": true} null 1.5', ""]


async def test_log_arguments_split_only_at_top_level_commas(harness: Harness) -> None:
    await run(harness, {"script": ["console.log('a, b', max(1, 2), [3, 4])"]})
    assert harness.logs == ["a, b 2 [3, 4]"]


async def test_a_huge_log_line_is_cut(harness: Harness) -> None:
    await run(harness, {"script": [f"log('x' * {MAX_LOG_LINE + 5})"]})
    assert harness.logs[0].endswith("x… (5 more characters)")
    assert len(harness.logs[0]) < MAX_LOG_LINE + 40


async def test_scripts_may_use_references(harness: Harness) -> None:
    scope = {"nodes": {"wait": {"output": {"waited_seconds": 2.5}}}}
    outcome = await run(harness, {"script": "w = ${nodes.wait.output.waited_seconds} + 1"}, scope)
    assert outcome == Completed({"w": 3.5})


@pytest.mark.parametrize(
    ("script", "number", "text"),
    [
        (["a = 1", "# comment", "b = a + missing"], 3, "b = a + missing"),
        ("a = 1\n\nb = a / 0", 3, "b = a / 0"),
        (["console.log(a)"], 1, "console.log(a)"),
        (["a = 1", "a.b = 2"], 2, "a.b = 2"),
    ],
)
async def test_an_error_names_the_line_number_and_text(
    harness: Harness, script: Any, number: int, text: str
) -> None:
    outcome = await run(harness, {"script": script})
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False
    assert outcome.error.startswith(f"script line {number} `{text}`: ")


async def test_names_assigned_so_far_are_visible_but_not_later_ones(harness: Harness) -> None:
    outcome = await run(harness, {"script": ["a = b", "b = 1"]})
    assert isinstance(outcome, Failed)
    assert "script line 1" in outcome.error
    assert "unknown name 'b'" in outcome.error


async def test_command_without_a_command_runner_is_disabled(harness: Harness) -> None:
    outcome = await run(harness, {"command": ["echo", "hi"]})  # no services["commands"]
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False
    assert "task commands are disabled on this server" in outcome.error


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({}, "needs one of 'handler', 'script', 'command'"),
        ({"script": "# only a comment\n"}, "no statements"),
        ({"script": 5}, "string or a list of lines"),
    ],
)
async def test_unusable_config_fails_without_retry(
    harness: Harness, config: dict[str, Any], fragment: str
) -> None:
    outcome = await run(harness, config)
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False
    assert fragment in outcome.error
