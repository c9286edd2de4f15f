"""The bounds every expression runs under, and the deadline of the one running now.

Expressions come from workflow definitions, so their authors can write runaway code on
purpose or by accident. :class:`ExpressionLimits` names every bound in one place; the
evaluator and the function library both read the current deadline through
:func:`time_left`, so a slow library call (a regular expression) stops when the
expression's time is up rather than after its own, longer, timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

ALLOCATION_FACTOR = 10
"""All strings (and all collections) one evaluation builds may add up to this many times
``max_string`` characters (``max_collection`` items): enough for real work, not for a
memory bomb made of many values that are each just under the limit."""


@dataclass(frozen=True, slots=True)
class ExpressionLimits:
    """Bounds for one evaluation; the defaults are the ones in SPEC §8."""

    max_length: int = 10_000
    """Characters of expression text."""
    max_string: int = 1_000_000
    """Characters in any string the expression builds."""
    max_collection: int = 100_000
    """Items in any list or object the expression builds."""
    max_int_bits: int = 10_000
    """Bits in any integer the expression computes (about 3,000 decimal digits)."""
    timeout_seconds: float = 1.0
    """Wall-clock time for one evaluation."""


DEFAULT_LIMITS = ExpressionLimits()

_DEADLINE: ContextVar[float | None] = ContextVar("flowyard_expression_deadline", default=None)


@contextmanager
def deadline_after(seconds: float) -> Iterator[float]:
    """Set the deadline (a ``time.monotonic()`` value) for the code run inside the block."""
    at = time.monotonic() + seconds
    token = _DEADLINE.set(at)
    try:
        yield at
    finally:
        _DEADLINE.reset(token)


def time_left() -> float | None:
    """Seconds until the current evaluation's deadline, or None outside an evaluation."""
    at = _DEADLINE.get()
    return None if at is None else at - time.monotonic()
