"""Which expressions may run inline on the event loop, and that they agree with the thread."""

from __future__ import annotations

import pytest

from server.expressions import evaluate, evaluate_async
from server.expressions.evaluator import runs_in_bounded_time

SCOPE = {"x": 2, "status": "approved", "amount": 150, "items": [1, 2, 3], "a": {"b": {"c": "x"}}}


@pytest.mark.parametrize(
    "text",
    ["x + 1", "status == 'approved' AND amount > 100", "len(items) > 0", "not x",
     "a.b.c == 'x'", "${a.b.c} == 'x'", "amount / 2 - 1", "round(amount / 7, 2)"],
)  # fmt: skip
def test_bounded_expressions_run_inline(text: str) -> None:
    assert runs_in_bounded_time(text)


@pytest.mark.parametrize(
    "text",
    [
        "x",  # a bare name can be a huge structure to copy
        "get(a, 'b')",  # so can what get() returns
        "x * 2",  # repetition of a string or list
        "9**9**9",
        "(9**3999999)*(9**3999999)",
        "'a' * 10**9",
        "[1] * 10**9",
        "sum(items) > 1",  # walks a collection
        "max(items) > 1",
        "matches(status, 'a+')",  # runs a regex
        "[i for i in items] == [1]",
        "f'{x}' == '2'",
        "1 << 100000",
        "sorted(items) == items",
        "not a valid (expression",
    ],
)
def test_unbounded_expressions_go_to_a_worker_thread(text: str) -> None:
    assert not runs_in_bounded_time(text)


@pytest.mark.parametrize(
    "text", ["x + 1", "status == 'approved' AND amount > 100", "len(items) > 2"]
)
async def test_inline_and_threaded_evaluation_agree(text: str) -> None:
    assert await evaluate_async(text, SCOPE) == evaluate(text, SCOPE)
