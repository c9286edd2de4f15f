"""``task``: run work — a registered Python handler, a script of expressions, or a command."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from processors.base import ConfigCheck, JSONSchema, Processor, rel, require_one_of

#: ``name = expression`` (but not ``name == expression``).
_ASSIGNMENT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)\s*(.*?)\s*;?\s*$", re.DOTALL)
#: ``console.log(...)`` / ``log(...)``: the arguments are expressions written to the logs.
_LOG_CALL = re.compile(r"^\s*(?:console\.)?log\s*\((.*)\)\s*;?\s*$", re.DOTALL)
_COMMENT = ("#", "//")


def script_lines(script: object) -> list[tuple[int, str]]:
    """The (line index, text) pairs of a script given as a string or a list of lines.

    Blank lines and comments (``#``, ``//``) are dropped; the index is the line's position
    in the list form, or its 0-based line number in the string form.
    """
    if isinstance(script, str):
        raw = script.splitlines()
    elif isinstance(script, list):
        raw = [line if isinstance(line, str) else "" for line in script]
    else:
        return []
    lines = []
    for index, line in enumerate(raw):
        text = line.strip()
        if text and not text.startswith(_COMMENT):
            lines.append((index, text))
    return lines


def split_arguments(text: str) -> list[str]:
    """Split call arguments at top-level commas (outside brackets and quotes)."""
    parts, depth, quote, start = [], 0, "", 0
    for position, char in enumerate(text):
        if quote:
            if char == quote and text[position - 1] != "\\":
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:position])
            start = position + 1
    parts.append(text[start:])
    return [part.strip() for part in parts if part.strip()]


def assigned_names(script: object) -> frozenset[str]:
    """Names a script assigns (its output)."""
    names = set()
    for _, line in script_lines(script):
        match = _ASSIGNMENT.match(line)
        if match and not _LOG_CALL.match(line):
            names.add(match.group(1))
    return frozenset(names)


class TaskProcessor(Processor):
    """Runs a handler, a script or an allow-listed command."""

    type_name: ClassVar[str] = "task"
    description: ClassVar[str] = (
        "Runs work: a registered Python handler, a script of expressions, or a command."
    )
    config_schema: ClassVar[JSONSchema] = {
        "type": "object",
        "properties": {
            "handler": {
                "type": "string",
                "minLength": 1,
                "description": "name of a registered Python handler (sync or async callable)",
            },
            "script": {
                "type": ["string", "array"],
                "items": {"type": "string"},
                "description": (
                    "lines of `name = expression` or bare expressions, evaluated in order; "
                    "console.log(...)/log(...) write to the node's logs"
                ),
            },
            "command": {
                "type": ["string", "array"],
                "items": {"type": "string"},
                "description": "program (and arguments) run without a shell, if allow-listed",
            },
            "args": {
                "type": ["array", "object"],
                "description": "command arguments (list) or handler keyword arguments (object)",
            },
            "env": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "extra environment variables for a command",
            },
        },
    }

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        kind = require_one_of(config, ("handler", "script", "command"), check, what="a task")
        if kind == "script":
            self._check_script(config["script"], check)
        for key in ("args", "env", "command"):
            if key in config:
                check.template(key, config[key])

    def _check_script(self, script: object, check: ConfigCheck) -> None:
        if not script_lines(script):
            check.error("script", "the script has no statements; write `name = expression` lines")
            return
        assigned: set[str] = set()
        in_list = isinstance(script, list)
        for index, line in script_lines(script):
            pointer = rel("script", index) if in_list else "script"
            log = _LOG_CALL.match(line)
            assignment = _ASSIGNMENT.match(line)
            if log:
                for argument in split_arguments(log.group(1)):
                    check.expression(pointer, argument, local_names=assigned)
            elif assignment:
                check.expression(pointer, assignment.group(2), local_names=assigned)
                assigned.add(assignment.group(1))
            else:
                check.expression(pointer, line.rstrip(";"), local_names=assigned)

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        if config.get("script") is not None:
            return assigned_names(config["script"])
        if config.get("command") is not None:
            return frozenset({"exit_code", "stdout", "stderr"})
        return None  # a handler returns whatever dict it likes
