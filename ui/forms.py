"""What the workflow pages' forms send, turned into what the services take — and back.

* The **run form** is generated from a definition's declared ``variables`` (SPEC §2):
  :func:`run_fields` describes one input per variable (its widget follows the type,
  defaults pre-filled, required marked) and :func:`parse_run_form` converts what was
  typed into the execution's ``input``, with a message per field that could not be
  converted, so the page can show it next to the field and keep what was typed.
* An **uploaded definition** is JSON text: :func:`parse_definition_text` reports a parse
  error with its line and column; :func:`group_problems` sorts validation problems by
  the node they are about (``/nodes/2/config/url`` → node ``fetch``), so a person sees
  "Node fetch (api): config/url: …" instead of a bare pointer.

Conventions of the run form (where SPEC §2 is silent):

* every variable's field is named ``var.<variable name>``; an empty field is left out of
  the input, so the variable's ``default_value`` applies (a required one without a
  default is reported at once, with the other fields' problems);
* ``boolean`` is a select (not set / true / false) — a checkbox cannot say "not set";
* a variable may list its allowed values in ``enum``: the field is then a select;
* ``object``, ``array`` and ``any`` take JSON in a textarea; for ``any``, text that is not
  JSON is taken as a string.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.api.body import parse_json_text
from server.errors import Problem

#: The prefix of the run form's variable fields (keeps them apart from csrf_token etc.).
FIELD_PREFIX = "var."
JSON_TYPES = frozenset({"object", "array", "any"})


def form_text(form: Mapping[str, Any], name: str, limit: int) -> str:
    """A form field's text, cut at ``limit`` characters; ``""`` when it is missing or a
    file (the services check the real limits: this only bounds what a page keeps)."""
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True)
class RunField:
    """One input of the run form."""

    name: str
    field_name: str
    type: str
    widget: str  # text | number | select | json
    required: bool
    description: str | None
    value: str
    choices: tuple[tuple[str, str], ...] = ()  # (submitted value, shown text)
    step: str | None = None  # for number inputs: "1" for integers, "any" otherwise
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RunForm:
    """The converted input, and a message per variable that could not be converted."""

    input: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)


def run_fields(
    variables: object,
    submitted: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> list[RunField]:
    """The run form's fields for ``variables`` (the definition's ``variables`` object).

    ``submitted`` (the posted form) replaces the defaults, so a re-rendered form keeps
    what was typed; ``errors`` (variable name → message) puts a message on its field.
    """
    fields = []
    for name, spec in _variables(variables):
        kind = _type(spec)
        field_name = FIELD_PREFIX + name
        default = spec.get("default_value")
        typed = submitted.get(field_name) if submitted is not None else None
        value = typed if typed is not None else _shown(default, kind)
        choices: tuple[tuple[str, str], ...] = ()
        enum = spec.get("enum")
        step = None
        if isinstance(enum, list) and enum:
            widget = "select"
            choices = tuple((_json(item), _label(item)) for item in enum)
            if typed is None:
                value = _json(default) if default is not None else ""
        elif kind == "boolean":
            widget = "select"
            choices = (("true", "true"), ("false", "false"))
        elif kind in ("integer", "number"):
            widget, step = "number", "1" if kind == "integer" else "any"
        elif kind in JSON_TYPES:
            widget = "json"
        else:
            widget = "text"
        description = spec.get("description")
        fields.append(
            RunField(
                name=name,
                field_name=field_name,
                type=kind,
                widget=widget,
                required=spec.get("required") is True,
                description=description if isinstance(description, str) else None,
                value=value,
                choices=choices,
                step=step,
                error=(errors or {}).get(name),
            )
        )
    return fields


def parse_run_form(variables: object, form: Mapping[str, str]) -> RunForm:
    """The execution input from a posted run form; every conversion problem at once."""
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, spec in _variables(variables):
        text = form.get(FIELD_PREFIX + name)
        kind = _type(spec)
        if text is None or text.strip() == "":
            if spec.get("required") is True and spec.get("default_value") is None:
                errors[name] = f"required: give it a {kind} value"
            continue
        enum = spec.get("enum")
        try:
            if isinstance(enum, list) and enum:
                data[name] = _choice(text, enum)
            else:
                data[name] = convert(text, kind)
        except ValueError as problem:
            errors[name] = str(problem)
    return RunForm(data, errors)


def convert(text: str, kind: str) -> Any:
    """``text`` typed into a field for a variable of type ``kind``; ValueError says why not."""
    if kind == "string":
        return text
    stripped = text.strip()
    if kind == "integer":
        try:
            return int(stripped)
        except ValueError:
            raise ValueError(f"{stripped!r} is not a whole number") from None
    if kind == "number":
        try:
            return int(stripped)
        except ValueError:
            pass
        try:
            number = float(stripped)
        except ValueError:
            raise ValueError(f"{stripped!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{stripped!r} is not a finite number")
        return number
    if kind == "boolean":
        lowered = stripped.lower()
        if lowered in ("true", "on", "yes", "1"):
            return True
        if lowered in ("false", "off", "no", "0"):
            return False
        raise ValueError(f"{stripped!r} is not true or false")
    if kind in ("object", "array"):
        value = parse_json(stripped)
        wanted = dict if kind == "object" else list
        if not isinstance(value, wanted):
            example = "{…}" if kind == "object" else "[…]"
            raise ValueError(f"must be a JSON {kind} ({example})")
        return value
    # "any" and unknown types: JSON when it is JSON, else the text itself.
    try:
        return parse_json(stripped)
    except ValueError:
        return text


def parse_json(text: str) -> Any:
    """JSON ``text``; ValueError naming the problem and where it is (line, column).

    The API's parser (:func:`server.api.body.parse_json_text`): NaN, Infinity, absurd
    nesting and over-long numbers are refused here exactly as the API refuses them.
    """
    return parse_json_text(text)


def parse_definition_text(text: str) -> Any:
    """An uploaded or pasted definition; ValueError with line and column when not JSON."""
    if not text.strip():
        raise ValueError("the definition is empty: choose a JSON file or paste the JSON")
    return parse_json(text.lstrip("\ufeff"))


def input_errors(problems: Sequence[Problem]) -> tuple[dict[str, str], list[str]]:
    """The engine's input problems (``/input/<name>``) by variable, and the others."""
    by_name: dict[str, str] = {}
    other: list[str] = []
    for problem in problems:
        if problem.path.startswith("/input/") and len(problem.path) > len("/input/"):
            name = problem.path[len("/input/") :]  # the engine does not escape names
            by_name[name] = (
                f"{by_name[name]}; {problem.message}" if name in by_name else problem.message
            )
        else:
            other.append(f"{problem.path}: {problem.message}" if problem.path else problem.message)
    return by_name, other


# -- validation problems by node ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProblemLine:
    """One problem: where inside its node (or the workflow) and what."""

    where: str
    message: str


@dataclass(frozen=True, slots=True)
class ProblemGroup:
    """The problems of one node (``node_id`` set) or of the workflow itself."""

    title: str
    node_id: str | None
    node_name: str | None
    node_type: str | None
    problems: tuple[ProblemLine, ...]


def group_problems(document: object, problems: Sequence[Problem]) -> list[ProblemGroup]:
    """Problems grouped by the top-level node they are in, in node order; the rest
    (workflow fields, edges, triggers…) first, under "Workflow"."""
    nodes = document.get("nodes") if isinstance(document, Mapping) else None
    nodes = nodes if isinstance(nodes, list) else []
    workflow: list[ProblemLine] = []
    by_node: dict[int, list[ProblemLine]] = {}
    for problem in problems:
        parts = problem.path.split("/")
        if len(parts) >= 3 and parts[1] == "nodes" and parts[2].isdigit():
            index = int(parts[2])
            inner = "/".join(_unescape(part) for part in parts[3:])
            by_node.setdefault(index, []).append(ProblemLine(inner, problem.message))
        else:
            workflow.append(ProblemLine(problem.path or "(the document)", problem.message))
    groups = []
    if workflow:
        groups.append(ProblemGroup("Workflow", None, None, None, tuple(workflow)))
    for index in sorted(by_node):
        raw = nodes[index] if index < len(nodes) else None
        node = raw if isinstance(raw, Mapping) else {}
        node_id = node.get("id") if isinstance(node.get("id"), str) and node.get("id") else None
        name = node.get("name") if isinstance(node.get("name"), str) else None
        kind = node.get("type") if isinstance(node.get("type"), str) else None
        title = f"Node {node_id}" if node_id else f"Node #{index + 1} (no id)"
        groups.append(
            ProblemGroup(title, node_id or f"#{index + 1}", name, kind, tuple(by_node[index]))
        )
    return groups


# -- helpers -------------------------------------------------------------------------------


def _variables(raw: object) -> list[tuple[str, Mapping[str, Any]]]:
    if not isinstance(raw, Mapping):
        return []
    return [(str(name), spec if isinstance(spec, Mapping) else {}) for name, spec in raw.items()]


def _type(spec: Mapping[str, Any]) -> str:
    kind = spec.get("type")
    return kind if isinstance(kind, str) else "any"


def _shown(value: Any, kind: str) -> str:
    """A default value as the text its field shows."""
    if value is None:
        return ""
    if kind == "boolean" and isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and kind not in JSON_TYPES:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and kind not in JSON_TYPES:
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _label(value: Any) -> str:
    return value if isinstance(value, str) else _json(value)


def _choice(text: str, allowed: list[Any]) -> Any:
    for item in allowed:
        if _json(item) == text:
            return item
    raise ValueError("choose one of the listed values")


def _unescape(part: str) -> str:
    """A JSON pointer segment as text (RFC 6901: ``~1`` is ``/``, ``~0`` is ``~``)."""
    return part.replace("~1", "/").replace("~0", "~")
