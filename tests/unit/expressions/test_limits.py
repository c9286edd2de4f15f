"""Runaway expressions stop, quickly, with a reason — and never stall the event loop.

Durations are only asserted to show that evaluation *terminates* (< 5 s); the real
bounds are the operand checks, budgets and deadline, not the wall clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from server.errors import ExpressionError
from server.expressions import ExpressionLimits, evaluate, evaluate_async

TERMINATES_WITHIN = 5.0
XS = list(range(100_000))


@pytest.fixture
def stopwatch() -> Iterator[None]:
    started = time.monotonic()
    yield
    assert time.monotonic() - started < TERMINATES_WITHIN


@pytest.mark.usefixtures("stopwatch")
@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("(9**3999999)*(9**3999999)", "9 ** 3999999 would be a number of more than 10,000 bits"),
        ("9**9**9", "9 ** 387420489 would be a number"),
        ("2**20000", "over the limit"),
        ("2**9000 * 2**9000", "would be a number of more than 10,000 bits"),
        ("1 << 10**6", "1 << 1000000 would be a number"),
        ("'a'*10**9", "repeating a string of 1 characters 1,000,000,000 times"),
        ("10**9*'a'", "repeating a string"),
        ("[1]*10**9", "repeating a list of 1 items 1,000,000,000 times"),
        ("[[1]*100000]*100000", "repeating a list of 1 items 100,000 times"),
        ("[xs]*50", "repeating a list"),
        ("'a'*999999 + 'a'*999999", "joined string would be over 1,000,000"),
        ("xs + xs", "joined list would be over 100,000"),
        ("f'{s}{s}'", "f-string would be longer than 1,000,000"),
        ("[[1]*99999 for i in [1]*100]", "builds too many items in total"),
        ("[1 for a in xs for b in xs]", "ran more than 100,000 steps"),
        ("str([xs for x in [1]*1000])", "would be longer than 1,000,000 characters"),
        ("[xs for x in [1]*10000]", "too large to copy within the time limit"),
        ("-" * 5000 + "1", "nested too deeply"),
        ("(" * 300 + "1" + ")" * 300, "too many nested parentheses"),
        ("matches(t, '(a+)+$')", "regular expression took longer than"),
        ("matches(u, '.*.*=.*')", "regular expression took longer than"),
    ],
)
def test_runaway_expression_fails_fast(expression: str, words: str) -> None:
    scope: dict[str, Any] = {"xs": XS, "s": "x" * 600_000, "t": "a" * 40 + "b", "u": "x" * 20_000}
    with pytest.raises(ExpressionError) as caught:
        evaluate(expression, scope)
    assert words in caught.value.reason


@pytest.mark.usefixtures("stopwatch")
def test_deadline_stops_a_long_evaluation() -> None:
    limits = ExpressionLimits(max_collection=10**8, timeout_seconds=0.2)
    with pytest.raises(ExpressionError, match=r"evaluation took longer than 0\.2s"):
        evaluate("len([1 for a in xs for b in xs])", {"xs": list(range(5_000))}, limits=limits)


def test_limits_are_configurable() -> None:
    small = ExpressionLimits(max_string=10, max_collection=3, max_int_bits=16)
    assert evaluate("'a' * 10", {}, limits=small) == "a" * 10
    with pytest.raises(ExpressionError, match="over the limit of 10 characters"):
        evaluate("'a' * 11", {}, limits=small)
    with pytest.raises(ExpressionError, match="limit of 3 items"):
        evaluate("[1] * 4", {}, limits=small)
    with pytest.raises(ExpressionError, match="more than 16 bits"):
        evaluate("2 ** 17", {}, limits=small)


async def test_catastrophic_regex_does_not_stall_the_event_loop() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        with pytest.raises(ExpressionError, match="regular expression took longer"):
            await evaluate_async("matches(t, '(a+)+$')", {"t": "a" * 40 + "b"})
    finally:
        task.cancel()
    elapsed = time.monotonic() - started
    assert elapsed < TERMINATES_WITHIN
    # The loop kept ticking while the regex ran (a GIL-holding regex would freeze it).
    assert ticks >= elapsed / 0.02 / 4


async def test_evaluate_async_gives_up_waiting_at_the_deadline() -> None:
    # A library call that ignores the deadline: the thread runs on, the caller does not wait.
    limits = ExpressionLimits(timeout_seconds=0.1)
    started = time.monotonic()
    with pytest.raises(ExpressionError, match=r"evaluation took longer than 0\.1s"):
        await evaluate_async(
            "slow()", {}, limits=limits, extra_functions={"slow": lambda: time.sleep(1.5)}
        )
    assert time.monotonic() - started < 1.4


def test_regex_helper_recovers_after_a_timeout() -> None:
    with pytest.raises(ExpressionError):
        evaluate("matches(t, '(a+)+$')", {"t": "a" * 40 + "b"})
    assert evaluate("matches('order-17', '[0-9]+$')", {}) is True
