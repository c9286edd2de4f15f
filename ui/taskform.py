"""A human task's form on the task page: the inputs to draw, and what a POST sent.

A task's ``form`` is a list of fields ``{name, label, type, options, required}``
(``docs/nodes/human_task.md``). The page draws each as a labelled input of its type —
text, textarea, number, date, a select with an empty first choice, and booleans as a
Yes/No radio pair (so that "not answered" stays distinguishable from "no", which a
lone checkbox cannot say). Inputs are named ``data.<field name>`` so they cannot clash
with the page's own fields (``outcome``, ``comment``, ``csrf_token``).

What a browser posts is text. :func:`parse` turns it into the ``data`` object the
service checks (``server.tasks.forms.check_data``, which also converts numbers, dates
and booleans) — only a select's choice is mapped back to its option's JSON value here,
because only the page knows which option the text stands for. It also keeps what was
typed, so a page refused with 422 shows it again. :func:`problems_by_field` sorts the
service's problems (``/data/<field>`` pointers) to the fields they belong to.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from server.errors import Problem

#: Prefix of the inputs' names: ``data.amount`` is the field ``amount``.
INPUT_PREFIX = "data."
DATA_POINTER = "/data/"


@dataclass(frozen=True, slots=True)
class Option:
    """One choice of a select field: ``text`` is what the browser posts."""

    text: str
    label: str
    value: Any


@dataclass(frozen=True, slots=True)
class Field:
    """One input of the task page."""

    name: str
    input_name: str
    input_id: str
    label: str
    type: str
    required: bool
    options: tuple[Option, ...]
    #: the field's ``default`` as form text ("" when it has none)
    default: str


def as_text(value: Any) -> str:
    """A JSON value as a form posts it: strings as they are, others as JSON (``12``,
    ``true``), nothing as ``""``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def fields(form: Sequence[Any] | None) -> list[Field]:
    """The inputs of a task's ``form`` (entries that are not named fields are left out,
    as the service ignores them too)."""
    found = []
    for index, spec in enumerate(form or []):
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            continue
        name = spec["name"]
        label = spec.get("label")
        kind = spec.get("type") or "text"
        found.append(
            Field(
                name=name,
                input_name=INPUT_PREFIX + name,
                input_id=f"field-{index}",
                label=label if isinstance(label, str) and label else name,
                type=kind if isinstance(kind, str) else "text",
                required=spec.get("required") is True,
                options=tuple(_options(spec.get("options"))),
                default=as_text(spec.get("default")),
            )
        )
    return found


def _options(options: Any) -> Iterable[Option]:
    if not isinstance(options, list):
        return
    for option in options:
        value = option.get("value") if isinstance(option, Mapping) else option
        label = option.get("label") if isinstance(option, Mapping) else None
        text = as_text(value)
        yield Option(text, label if isinstance(label, str) and label else text, value)


def parse(
    inputs: Sequence[Field], submitted: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``data`` to decide with, and what was typed (field name → text).

    An empty input is ``None`` (the service then applies ``required``); a select's text
    becomes its option's value (text that matches no option is passed on as it is, for
    the service to refuse).
    """
    data: dict[str, Any] = {}
    typed: dict[str, str] = {}
    for field in inputs:
        raw = submitted.get(field.input_name)
        text = raw if isinstance(raw, str) else ""
        typed[field.name] = text
        if text == "":
            data[field.name] = None
        elif field.type == "select":
            chosen = next((o for o in field.options if o.text == text), None)
            data[field.name] = chosen.value if chosen is not None else text
        else:
            data[field.name] = text
    return data, typed


def field_name(path: str) -> str | None:
    """The field a ``/data/<name>`` pointer names (``None`` for any other pointer)."""
    if not path.startswith(DATA_POINTER) or len(path) == len(DATA_POINTER):
        return None
    return path[len(DATA_POINTER) :].replace("~1", "/").replace("~0", "~")


def problems_by_field(
    problems: Iterable[Problem], inputs: Sequence[Field]
) -> tuple[dict[str, list[str]], list[Problem]]:
    """The messages of each field, and the problems that belong to no field (the
    outcome, the comment, the data as a whole)."""
    known = {f.name for f in inputs}
    by_field: dict[str, list[str]] = {}
    rest: list[Problem] = []
    for problem in problems:
        name = field_name(problem.path)
        if name is not None and name in known:
            by_field.setdefault(name, []).append(problem.message)
        else:
            rest.append(problem)
    return by_field, rest
