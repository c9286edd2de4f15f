"""Which expressions may run inline on the event loop, and that they agree with the thread."""

from __future__ import annotations

import pytest

from server.expressions import evaluate, evaluate_async
from server.expressions.evaluator import runs_in_bounded_time

SCOPE = {"x": 2, "status": "approved", "amount": 150, "items": [1, 2, 3], "a": {"b": {"c": "x"}}}


@pytest.mark.parametrize(
    "text",
    ["x + 1", "status == 'approved' AND amount > 100", "len(items) > 0", "not x",
     "a.b.c == 'x'", "${a.b.c} == 'x'", "amount / 2 - 1", "round(amount / 7, 2)",
     "x", "get(a, 'b')", "{'n': x + 1, 'tag': status}", "[x, amount]"],
)  # fmt: skip
def test_bounded_expressions_run_inline(text: str) -> None:
    assert runs_in_bounded_time(text)


@pytest.mark.parametrize(
    "text",
    [
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


async def test_a_big_result_is_copied_off_the_event_loop() -> None:
    """A bounded expression whose result is too big to copy inline gives the same value
    (evaluated again in a worker thread) and shares nothing with the scope."""
    from server.expressions.evaluator import INLINE_COPY_BUDGET
    from server.expressions.jsondata import CopyBudgetExceeded

    big = {"rows": [{"i": i} for i in range(INLINE_COPY_BUDGET)]}
    with pytest.raises(CopyBudgetExceeded):
        evaluate("rows", big, copy_budget=INLINE_COPY_BUDGET)
    result = await evaluate_async("{'all': rows}", big)
    assert result == {"all": big["rows"]}
    assert result["all"] is not big["rows"]
    assert result["all"][0] is not big["rows"][0]
