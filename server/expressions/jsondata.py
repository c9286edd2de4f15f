"""Plain JSON data: naming its types, turning it into text, measuring and copying it.

Templates and expressions only ever handle JSON-like values (str, int, float, bool,
None, list, dict; tuples appear inside an evaluation and leave it as lists). Measuring
before serialising matters: an expression can build a list that holds the same big list
many times, which costs nothing to build but would take minutes to print.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from server.errors import ExpressionError

SCALARS = (str, int, float, bool, type(None))
_CHECK_EVERY = 16_384  # values copied between deadline checks


def type_name(value: object) -> str:
    """The JSON name of a value's type, for messages people read."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def to_text(value: Any, *, max_chars: int | None = None) -> str:
    """Text for splicing a value into a string: lists and objects as compact JSON,
    ``None`` as ``""``, booleans as ``true``/``false``.

    With ``max_chars``, refuse (before doing the work) a value whose text would be
    longer.
    """
    if isinstance(value, str):
        text = value
    elif value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = str(value)
    else:
        if max_chars is not None:
            size = text_size(value, max_chars)
            if size > max_chars:
                raise ExpressionError(
                    f"the text of this {type_name(value)} would be longer than "
                    f"{max_chars:,} characters"
                )
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise ExpressionError(f"the value is not JSON data ({exc})") from None
    if max_chars is not None and len(text) > max_chars:
        raise ExpressionError(f"the text would be longer than {max_chars:,} characters")
    return text


def text_size(value: Any, limit: int) -> int:
    """An estimate (from below) of the length of ``value`` as JSON text.

    Stops walking as soon as the estimate passes ``limit``, so the cost is bounded by
    the limit, not by the value.
    """
    size = 0
    stack = [value]
    while stack and size <= limit:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item) + 2
        elif isinstance(item, list | tuple):
            size += len(item) + 1
            stack.extend(item)
        elif isinstance(item, Mapping):
            size += 2 * len(item) + 1
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, int) and not isinstance(item, bool):
            size += max(1, item.bit_length() * 3 // 10)
        else:
            size += 4
    return size


def weight(value: Any, limit: int) -> int:
    """How many list items and object entries ``value`` holds at every depth.

    Stops counting once past ``limit``. Repeating a list multiplies its weight, not just
    its length: ``[[1] * 100_000] * 100_000`` is short but heavy.
    """
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, list | tuple):
            total += len(item)
            stack.extend(x for x in item if not isinstance(x, SCALARS))
        elif isinstance(item, Mapping):
            total += len(item)
            stack.extend(x for x in item.values() if not isinstance(x, SCALARS))
    return total


class CopyBudgetExceeded(Exception):
    """The value has more than the allowed number of values to copy (not a user error:
    the caller copies it elsewhere, off the event loop)."""


def copy_json(value: Any, *, deadline: float | None = None, budget: int | None = None) -> Any:
    """A fresh copy of JSON-like data: tuples become lists, anything else is refused.

    The copy never shares a list or object with the input, so a caller can change it
    freely. With a ``deadline`` (a ``time.monotonic()`` value) a huge value fails with a
    clear reason instead of running on. With a ``budget``, a value with more containers
    and elements than that raises :class:`CopyBudgetExceeded` (the event loop copies
    small values itself and hands big ones to a thread).
    """
    copied, next_check = 0, _CHECK_EVERY
    limit = budget if budget is not None else -1

    def copy(item: Any) -> Any:
        nonlocal copied, next_check
        if isinstance(item, SCALARS):
            return item
        copied += 1 + (len(item) if isinstance(item, list | tuple | Mapping) else 0)
        if copied > limit >= 0:
            raise CopyBudgetExceeded
        if deadline is not None and copied >= next_check:
            next_check = copied + _CHECK_EVERY
            if time.monotonic() > deadline:
                raise ExpressionError("the result is too large to copy within the time limit")
        if isinstance(item, list | tuple):
            return [copy(x) for x in item]
        if isinstance(item, Mapping):
            out: dict[str, Any] = {}
            for key, val in item.items():
                if not isinstance(key, str):
                    if not isinstance(key, SCALARS):
                        raise ExpressionError(f"an object key cannot be a {type_name(key)}")
                    key = json.dumps(key)  # as JSON does: 1 -> "1", None -> "null"
                out[key] = copy(val)
            return out
        raise ExpressionError(f"a {type_name(item)} is not JSON data")

    try:
        return copy(value)
    except RecursionError:
        raise ExpressionError("the value is nested too deeply") from None
