"""The function library expressions may call (SPEC §3), and nothing else.

Every function takes and returns plain JSON data, checks its argument types itself and
says what it expected, and bounds the work it does: a definition author must not be able
to reach an object, a module or unbounded CPU through a call. ``str`` and ``join`` turn
values into text exactly as templates do (``true``, ``""`` for null, compact JSON).
Dates are ISO-8601 strings in UTC, written like JavaScript's ``toISOString()``
(``2024-05-01T12:00:00.000Z``) so that they also compare correctly as strings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TypeVar

from server.errors import ExpressionError
from server.expressions import regex_guard
from server.expressions.jsondata import to_text, type_name
from server.expressions.limits import time_left

MAX_TEXT_LENGTH = 1_000_000
"""The longest string ``str`` and ``join`` build."""
MAX_PATTERN_LENGTH = regex_guard.MAX_PATTERN_LENGTH
MAX_MATCH_INPUT_LENGTH = regex_guard.MAX_INPUT_LENGTH
MAX_DATE_TEXT_LENGTH = 200
"""The longest date string or date format accepted (strptime builds a regex from it)."""

_F = TypeVar("_F", bound=Callable[..., Any])
_FUNCTIONS: dict[str, Callable[..., Any]] = {}
_DOCS: dict[str, str] = {}


def _library(name: str, doc: str) -> Callable[[_F], _F]:
    def register(function: _F) -> _F:
        _FUNCTIONS[name] = function
        _DOCS[name] = doc
        return function

    return register


def _expect(name: str, value: Any, kinds: tuple[type, ...], wanted: str) -> None:
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ExpressionError(f"{name}() expects {wanted}, got {type_name(value)}")


_MAX_ROUND_DIGITS = 400
_NUMERIC = (int, float, bool)
_LIST = (list, tuple)


@_library(
    "len", "len(value): the number of characters in a string, items in a list or keys in an object"
)
def _len(value: Any) -> int:
    _expect("len", value, (str, list, tuple, dict), "a string, list or object")
    return len(value)


@_library(
    "str", 'str(value): the value as text (true/false, "" for null, JSON for lists and objects)'
)
def _str(value: Any) -> str:
    return to_text(value, max_chars=MAX_TEXT_LENGTH)


@_library("int", "int(value): a whole number from a number, boolean or numeric string")
def _int(value: Any) -> int:
    _expect("int", value, (str, int, float, bool), "a number or numeric string")
    try:
        return int(value)
    except (ValueError, OverflowError) as exc:
        raise ExpressionError(f"int() cannot convert {_short(value)}: {exc}") from None


@_library("float", "float(value): a decimal number from a number, boolean or numeric string")
def _float(value: Any) -> float:
    _expect("float", value, (str, int, float, bool), "a number or numeric string")
    try:
        return float(value)
    except (ValueError, OverflowError) as exc:
        raise ExpressionError(f"float() cannot convert {_short(value)}: {exc}") from None


@_library("bool", 'bool(value): false for false, 0, "", null, [] and {}; true otherwise')
def _bool(value: Any) -> bool:
    return bool(value)


@_library("round", "round(number, digits=0): rounded to that many decimal places")
def _round(value: Any, digits: Any = None) -> int | float:
    _expect("round", value, _NUMERIC, "a number")
    if digits is None:
        if isinstance(value, float) and not math.isfinite(value):
            raise ExpressionError(f"round() cannot round {value}")
        whole: int = round(value)
        return whole
    _expect("round", digits, (int,), "a whole number of digits")
    if abs(digits) > _MAX_ROUND_DIGITS:
        raise ExpressionError(f"round() takes at most {_MAX_ROUND_DIGITS} digits")
    rounded: int | float = round(value, digits)
    return rounded


@_library("abs", "abs(number): the number without its sign")
def _abs(value: Any) -> int | float:
    _expect("abs", value, _NUMERIC, "a number")
    result: int | float = abs(value)
    return result


def _values_of(name: str, args: tuple[Any, ...]) -> list[Any]:
    items = list(args[0]) if len(args) == 1 and isinstance(args[0], _LIST) else list(args)
    if not items:
        raise ExpressionError(f"{name}() needs at least one value")
    return items


@_library("min", "min(list) or min(a, b, ...): the smallest value")
def _min(*args: Any) -> Any:
    return min(_values_of("min", args))


@_library("max", "max(list) or max(a, b, ...): the largest value")
def _max(*args: Any) -> Any:
    return max(_values_of("max", args))


@_library("sum", "sum(list): the total of a list of numbers")
def _sum(items: Any) -> int | float:
    _expect("sum", items, _LIST, "a list of numbers")
    for item in items:
        _expect("sum", item, _NUMERIC, "a list of numbers")
    total: int | float = sum(items)
    return total


@_library(
    "sorted",
    "sorted(list, key=None, reverse=false): sorted copy; key names the field to sort objects by",
)
def _sorted(items: Any, key: Any = None, reverse: Any = False) -> list[Any]:
    _expect("sorted", items, _LIST, "a list")
    if key is None:
        return sorted(items, reverse=bool(reverse))
    _expect("sorted", key, (str,), "key to be a field name")
    for item in items:
        if not isinstance(item, dict) or key not in item:
            raise ExpressionError(
                f"sorted(key={key!r}) needs a list of objects that all have {key!r}"
            )
    return sorted(items, key=lambda item: item[key], reverse=bool(reverse))


@_library("any", "any(list): true when at least one item is true")
def _any(items: Any) -> bool:
    _expect("any", items, _LIST, "a list")
    return any(items)


@_library("all", "all(list): true when every item is true (and for an empty list)")
def _all(items: Any) -> bool:
    _expect("all", items, _LIST, "a list")
    return all(items)


@_library("lower", "lower(text): the text in lower case")
def _lower(text: Any) -> str:
    _expect("lower", text, (str,), "a string")
    return str(text.lower())


@_library("upper", "upper(text): the text in upper case")
def _upper(text: Any) -> str:
    _expect("upper", text, (str,), "a string")
    return str(text.upper())


@_library("strip", "strip(text, chars=whitespace): the text without those characters at either end")
def _strip(text: Any, chars: Any = None) -> str:
    _expect("strip", text, (str,), "a string")
    if chars is not None:
        _expect("strip", chars, (str,), "chars to be a string")
    return str(text.strip(chars))


@_library(
    "split", "split(text, separator=whitespace, limit=-1): the text cut into a list of strings"
)
def _split(text: Any, separator: Any = None, limit: Any = -1) -> list[str]:
    _expect("split", text, (str,), "a string")
    if separator is not None:
        _expect("split", separator, (str,), "separator to be a string")
        if not separator:
            raise ExpressionError("split() separator must not be empty")
    _expect("split", limit, (int,), "limit to be a whole number")
    return list(text.split(separator, limit))


@_library("join", 'join(list, separator=""): the items as text, joined with the separator')
def _join(items: Any, separator: Any = "") -> str:
    _expect("join", items, _LIST, "a list")
    _expect("join", separator, (str,), "separator to be a string")
    if items and len(separator) * (len(items) - 1) > MAX_TEXT_LENGTH:
        raise ExpressionError(f"join() would build more than {MAX_TEXT_LENGTH:,} characters")
    parts = []
    size = len(separator) * max(len(items) - 1, 0)
    for item in items:
        part = to_text(item, max_chars=MAX_TEXT_LENGTH)
        size += len(part)
        if size > MAX_TEXT_LENGTH:
            raise ExpressionError(f"join() would build more than {MAX_TEXT_LENGTH:,} characters")
        parts.append(part)
    return str(separator).join(parts)


@_library(
    "contains",
    "contains(container, value): substring of a string, item of a list or key of an object",
)
def _contains(container: Any, value: Any) -> bool:
    _expect("contains", container, (str, list, tuple, dict), "a string, list or object")
    if isinstance(container, str):
        _expect("contains", value, (str,), "a string to look for in a string")
    elif isinstance(container, dict) and not isinstance(value, str):
        return False
    return value in container


def _affixes(name: str, value: Any) -> str | tuple[str, ...]:
    if isinstance(value, _LIST):
        for item in value:
            _expect(name, item, (str,), "a string or a list of strings to look for")
        return tuple(value)
    _expect(name, value, (str,), "a string or a list of strings to look for")
    return str(value)


@_library(
    "startswith",
    "startswith(text, prefix): whether the text starts with the prefix (or one of a list)",
)
def _startswith(text: Any, prefix: Any) -> bool:
    _expect("startswith", text, (str,), "a string")
    return bool(text.startswith(_affixes("startswith", prefix)))


@_library(
    "endswith", "endswith(text, suffix): whether the text ends with the suffix (or one of a list)"
)
def _endswith(text: Any, suffix: Any) -> bool:
    _expect("endswith", text, (str,), "a string")
    return bool(text.endswith(_affixes("endswith", suffix)))


@_library(
    "matches",
    "matches(text, pattern): whether the regular expression occurs in the text "
    f"(pattern ≤ {MAX_PATTERN_LENGTH:,}, text ≤ {MAX_MATCH_INPUT_LENGTH:,} characters)",
)
def _matches(text: Any, pattern: Any) -> bool:
    _expect("matches", text, (str,), "a string to search")
    _expect("matches", pattern, (str,), "a pattern string")
    left = time_left()
    timeout = (
        regex_guard.SEARCH_TIMEOUT_SECONDS
        if left is None
        else min(left, regex_guard.SEARCH_TIMEOUT_SECONDS)
    )
    return regex_guard.search(pattern, text, timeout=timeout)


def _iso(moment: datetime) -> str:
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(name: str, text: Any, fmt: Any = None) -> datetime:
    _expect(name, text, (str,), "an ISO-8601 date string")
    if len(text) > MAX_DATE_TEXT_LENGTH:
        raise ExpressionError(f"{name}() got a date string longer than {MAX_DATE_TEXT_LENGTH}")
    try:
        if fmt is None:
            return datetime.fromisoformat(text.strip())
        _expect(name, fmt, (str,), "format to be a string such as '%d/%m/%Y'")
        if len(fmt) > MAX_DATE_TEXT_LENGTH:
            raise ExpressionError(f"{name}() got a format longer than {MAX_DATE_TEXT_LENGTH}")
        return datetime.strptime(text, fmt)  # naive means UTC
    except ValueError as exc:
        raise ExpressionError(f"{name}() cannot read {text!r} as a date: {exc}") from None


@_library("now", "now(): the current time in UTC, e.g. 2024-05-01T12:00:00.000Z")
def _now() -> str:
    return _iso(datetime.now(UTC))


@_library("today", "today(): the current date in UTC, e.g. 2024-05-01")
def _today() -> str:
    return datetime.now(UTC).date().isoformat()


@_library(
    "parse_date", "parse_date(text, format=ISO-8601): the date/time as an ISO-8601 UTC string"
)
def _parse_date(text: Any, fmt: Any = None) -> str:
    return _iso(_parse("parse_date", text, fmt))


@_library(
    "format_date",
    "format_date(text, format): an ISO-8601 date/time written with a strftime format "
    "such as '%d %B %Y'",
)
def _format_date(text: Any, fmt: Any) -> str:
    moment = _parse("format_date", text)
    _expect("format_date", fmt, (str,), "a format string such as '%d %B %Y'")
    if len(fmt) > MAX_DATE_TEXT_LENGTH:
        raise ExpressionError(f"format_date() got a format longer than {MAX_DATE_TEXT_LENGTH}")
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime(fmt)


@_library("keys", "keys(object): the object's keys as a list")
def _keys(obj: Any) -> list[str]:
    _expect("keys", obj, (dict,), "an object")
    return list(obj.keys())


@_library("values", "values(object): the object's values as a list")
def _values(obj: Any) -> list[Any]:
    _expect("values", obj, (dict,), "an object")
    return list(obj.values())


@_library(
    "get",
    "get(container, key, default=null): the value at a key of an object or index of a "
    "list, or the default",
)
def _get(container: Any, key: Any, default: Any = None) -> Any:
    if isinstance(container, dict):
        return container.get(key, default) if isinstance(key, str) else default
    if isinstance(container, _LIST):
        if (
            isinstance(key, int)
            and not isinstance(key, bool)
            and -len(container) <= key < len(container)
        ):
            return container[key]
        return default
    if container is None:
        return default
    raise ExpressionError(f"get() expects an object or a list, got {type_name(container)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


FUNCTIONS: Mapping[str, Callable[..., Any]] = MappingProxyType(_FUNCTIONS)
"""Every function an expression may call, by the name it is called with."""
FUNCTION_DOCS: Mapping[str, str] = MappingProxyType(_DOCS)
"""One line per function: its signature and what it returns."""

__all__ = ["FUNCTIONS", "FUNCTION_DOCS", "MAX_MATCH_INPUT_LENGTH", "MAX_PATTERN_LENGTH"]
