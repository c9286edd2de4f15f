"""An execution's scope (SPEC §3): what templates and expressions can name.

The scope starts as the declared variables' defaults overlaid with the execution input
(and any input patches given with a rerun); each completed node's output is merged into
it, in completion order — shallowly, or under ``output_key``. Reserved names are rebuilt
on top of that, so an output can never shadow them: ``input``, ``nodes`` (each node's
output, status, times and attempts), ``execution`` and ``secrets``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from server.definitions.model import Definition, Variable
from server.errors import Problem

RESERVED = ("input", "nodes", "execution", "secrets")
JSON_TYPES: Mapping[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def check_input(definition: Definition, data: object) -> list[Problem]:
    """Every problem of ``data`` against the declared variables (types, required)."""
    if not isinstance(data, dict):
        return [Problem("/input", "the input must be a JSON object of variable values")]
    problems = []
    for name, variable in definition.variables.items():
        if name not in data:
            if variable.required and variable.default_value is None:
                problems.append(Problem(f"/input/{name}", _missing(variable)))
            continue
        problem = _type_problem(variable, data[name])
        if problem:
            problems.append(Problem(f"/input/{name}", problem))
    return problems


def _missing(variable: Variable) -> str:
    about = f" ({variable.description})" if variable.description else ""
    return f"required variable {variable.name!r}{about} is missing; give it a {variable.type} value"


def _type_problem(variable: Variable, value: Any) -> str | None:
    allowed = JSON_TYPES.get(variable.type)
    if allowed is None or (value is None and not variable.required):
        return None
    is_bool = isinstance(value, bool)
    if isinstance(value, allowed) and (variable.type == "boolean" or not is_bool):
        return None
    return f"must be of type {variable.type}, got {_json_type(value)}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(type(value), "value")


class Scope:
    """The live scope of one execution, grown node by node."""

    def __init__(
        self,
        definition: Definition,
        input_data: Mapping[str, Any],
        overrides: Mapping[str, Any],
        execution: Mapping[str, Any],
    ) -> None:
        self.variables: dict[str, Any] = {
            name: copy.deepcopy(v.default_value) for name, v in definition.variables.items()
        }
        self.variables.update(copy.deepcopy(dict(input_data)))
        self.variables.update(copy.deepcopy(dict(overrides)))
        self.input = copy.deepcopy(dict(input_data))
        self.nodes: dict[str, dict[str, Any]] = {}
        self.execution = dict(execution)
        self._output_keys = {node.id: node.output_key for node in definition.nodes}

    def merge(
        self,
        node_id: str,
        output: Mapping[str, Any],
        *,
        status: str,
        started_at: datetime | None,
        completed_at: datetime | None,
        attempts: int,
    ) -> None:
        key = self._output_keys.get(node_id)
        if key:
            self.variables[key] = copy.deepcopy(dict(output))
        else:
            self.variables.update(copy.deepcopy(dict(output)))
        self.nodes[node_id] = {
            "output": dict(output),
            "status": status,
            "started_at": _iso(started_at),
            "completed_at": _iso(completed_at),
            "attempts": attempts,
        }

    def view(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The mapping templates and expressions see (reserved names on top)."""
        names = {k: v for k, v in self.variables.items() if k not in RESERVED}
        names.update(input=self.input, nodes=self.nodes, execution=self.execution, secrets={})
        if extra:
            names.update(extra)
        return names

    def public_variables(self) -> dict[str, Any]:
        """The final scope without reserved names: an execution's default output."""
        return {k: v for k, v in self.variables.items() if k not in RESERVED}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
