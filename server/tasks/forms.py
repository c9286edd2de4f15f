"""Checking what a person submits against a task's ``form``.

A form is a list of fields ``{name, label, type, options, required}`` (types ``text``,
``textarea``, ``number``, ``boolean``, ``select``, ``date``). Submitted ``data`` is
checked field by field and every problem is reported at once, as ``/data/<field>``
pointers. Values are also normalised, so that what lands in the execution's scope has
the field's JSON type whatever the client sent: HTML forms post text, so a number field
accepts ``"12.5"``, a boolean accepts ``"true"``/``"on"``/``"false"``/``"off"``, and a
date is an ISO ``YYYY-MM-DD`` string. Declared fields that were not sent are ``null``
in the result; keys that are not fields are refused (they would land in the scope
unannounced). A task without a form accepts any JSON object.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from server.errors import Problem

TRUE_TEXT = frozenset({"true", "on", "yes", "1"})
FALSE_TEXT = frozenset({"false", "off", "no", "0"})
TEXT_LIMIT = 100_000


def pointer(name: str) -> str:
    return "/data/" + name.replace("~", "~0").replace("/", "~1")


def option_values(field: Mapping[str, Any]) -> list[Any]:
    """A select field's allowed values (options are values or ``{value, label}``)."""
    options = field.get("options")
    if not isinstance(options, list):
        return []
    return [o.get("value") if isinstance(o, dict) else o for o in options]


def check_data(form: Sequence[Any], data: object) -> tuple[dict[str, Any], list[Problem]]:
    """``data`` normalised against ``form``, and the problems found (empty: valid)."""
    if not isinstance(data, dict):
        return {}, [Problem("/data", "must be an object of form field values")]
    fields = [f for f in form if isinstance(f, dict) and isinstance(f.get("name"), str)]
    if not fields:
        return dict(data), []
    known = {f["name"] for f in fields}
    problems = [
        Problem(
            pointer(key), f"not a field of this task's form (fields: {', '.join(sorted(known))})"
        )
        for key in data
        if key not in known
    ]
    result: dict[str, Any] = {}
    for field in fields:
        name = field["name"]
        value = data.get(name)
        if value is None or value == "":
            if field.get("required"):
                problems.append(Problem(pointer(name), f"{_label(field)} is required"))
            result[name] = None
            continue
        converted, message = _convert(field, value)
        if message is not None:
            problems.append(Problem(pointer(name), message))
        result[name] = converted
    return result, problems


def _label(field: Mapping[str, Any]) -> str:
    label = field.get("label")
    return f"{label!r}" if isinstance(label, str) and label else "this field"


def _convert(field: Mapping[str, Any], value: Any) -> tuple[Any, str | None]:
    kind = field.get("type") or "text"
    if kind in ("text", "textarea"):
        if not isinstance(value, str):
            return value, "must be text"
        if len(value) > TEXT_LIMIT:
            return value, f"must be at most {TEXT_LIMIT:,} characters"
        return value, None
    if kind == "number":
        return _number(value)
    if kind == "boolean":
        return _boolean(value)
    if kind == "date":
        return _date(value)
    if kind == "select":
        allowed = option_values(field)
        if any(v == value and isinstance(v, bool) == isinstance(value, bool) for v in allowed):
            return value, None
        shown = ", ".join(repr(v) for v in allowed)
        return value, f"{value!r} is not one of the options ({shown})"
    return value, f"unknown field type {kind!r}"


def _number(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bool):
        return value, "must be a number"
    if isinstance(value, int | float):
        number: int | float = value
    elif isinstance(value, str):
        try:
            number = int(value) if value.strip().lstrip("+-").isdigit() else float(value)
        except ValueError:
            return value, f"{value[:50]!r} is not a number"
    else:
        return value, "must be a number"
    if isinstance(number, float) and not math.isfinite(number):
        return value, "must be a finite number"
    return number, None


def _boolean(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bool):
        return value, None
    if isinstance(value, str) and value.strip().lower() in TRUE_TEXT | FALSE_TEXT:
        return value.strip().lower() in TRUE_TEXT, None
    return value, "must be true or false"


def _date(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()).isoformat(), None
        except ValueError:
            pass
    return value, "must be a date written YYYY-MM-DD"
