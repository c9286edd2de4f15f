"""``task``: run work — a registered Python handler, a script of expressions, or a command.

``handler`` calls a Python callable registered by name (``processors.handlers``) with
the rendered ``args``; a sync one runs in a worker thread. ``command`` fails (not
retryable) until the command runner arrives. A script is a string (split into lines) or
a list of strings; blank lines and ``#``/``//`` comments are skipped, and each other
line, in order, is one of:

* ``name = expression`` — evaluated (``ctx.evaluate``) with the scope plus the names
  assigned so far (a later assignment replaces an earlier one); ``==``, ``>=``, ``<=``
  and ``!=`` are comparisons, never assignments;
* ``console.log(a, b)`` / ``log(a, b)`` — each argument evaluated, the values joined by
  spaces (strings as they are, anything else as JSON) and written to ``ctx.log``;
* any other expression — evaluated and its value discarded.

The output is the dict of assigned names. A failing line fails the node (not retryable)
with its 1-based line number, its text and the reason. ``script`` is an unrendered key:
its ``${…}`` references are read by the evaluator, not pasted into the text.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from processors.base import ConfigCheck, JSONSchema, Processor, rel, require_one_of
from processors.handlers import HandlerContext, HandlerFailed, Handlers
from processors.runtime import Completed, Failed, NodeContext, Outcome
from server.errors import ExpressionError

#: ``name = expression`` (but not ``name == expression``).
_ASSIGNMENT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)\s*(.*?)\s*;?\s*$", re.DOTALL)
#: ``console.log(...)`` / ``log(...)``: the arguments are expressions written to the logs.
_LOG_CALL = re.compile(r"^\s*(?:console\.)?log\s*\((.*)\)\s*;?\s*$", re.DOTALL)
_COMMENT = ("#", "//")
#: A long script gives the event loop a turn after this many lines.
YIELD_EVERY = 50
#: Characters of one log line written by ``console.log``/``log``.
MAX_LOG_LINE = 10_000
NOT_AVAILABLE_YET = (
    "a task {kind} is not available yet: the task handler/command runner arrives with the "
    "processors issue; use a 'script' for now"
)


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

    unrendered_keys: ClassVar[frozenset[str]] = frozenset({"script"})

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

    async def run(self, config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
        if config.get("script") is not None:
            return await run_script(config["script"], ctx)
        if config.get("handler") is not None:
            return await run_handler(str(config["handler"]), config.get("args"), ctx)
        if config.get("command") is not None:
            return Failed(NOT_AVAILABLE_YET.format(kind="command"), retryable=False)
        return Failed("a task needs one of 'handler', 'script', 'command'", retryable=False)


async def run_handler(name: str, args: object, ctx: NodeContext) -> Outcome:
    """Call the handler ``name`` with ``args``; its dict is the output."""
    handlers = ctx.services.get("handlers")
    function = handlers.get(name) if isinstance(handlers, Handlers) else None
    if function is None:
        known = ", ".join(handlers.names()) if isinstance(handlers, Handlers) else ""
        return Failed(
            f"no task handler named {name!r} (known: {known or 'none'}); register it with "
            "@handler in a module listed in [tasks] handler_modules",
            retryable=False,
        )
    if args is not None and not isinstance(args, dict):
        return Failed("a handler's 'args' must be an object of keyword arguments", retryable=False)
    context = HandlerContext(ctx.execution_id, ctx.workflow_id, ctx.node_id, ctx.attempt,
                             ctx.idempotency_key, ctx.log)  # fmt: skip
    try:
        if inspect.iscoroutinefunction(function):
            result = await function(dict(args or {}), context)
        else:
            result = await asyncio.to_thread(function, dict(args or {}), context)
    except HandlerFailed as failure:
        return Failed(failure.message, retryable=failure.retryable)
    output = result if isinstance(result, dict) else {"result": result}
    try:
        json.dumps(output)
    except (TypeError, ValueError):
        return Failed(f"handler {name!r} returned something that is not JSON data", retryable=False)
    return Completed(output)


async def run_script(script: object, ctx: NodeContext) -> Outcome:
    """Run a script's lines in order; the output is the names it assigns."""
    if not isinstance(script, str | list):
        return Failed("a task 'script' is a string or a list of lines", retryable=False)
    lines = script_lines(script)
    if not lines:
        return Failed(
            "the script has no statements; write `name = expression` lines", retryable=False
        )
    assigned: dict[str, Any] = {}
    for count, (index, line) in enumerate(lines, 1):
        if count % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # cheap lines run inline: let the loop (and a timeout) in
        try:
            await _run_line(line, assigned, ctx)
        except ExpressionError as exc:
            return Failed(f"script line {index + 1} `{line}`: {exc}", retryable=False)
    return Completed(assigned)


async def _run_line(line: str, assigned: dict[str, Any], ctx: NodeContext) -> None:
    log = _LOG_CALL.match(line)
    if log:
        parts = [
            await ctx.evaluate(argument, extra_names=dict(assigned))
            for argument in split_arguments(log.group(1))
        ]
        ctx.log(_log_text(parts))
        return
    assignment = _ASSIGNMENT.match(line)
    if assignment:
        name, expression = assignment.groups()
        assigned[name] = await ctx.evaluate(expression, extra_names=dict(assigned))
        return
    await ctx.evaluate(line.rstrip(";"), extra_names=dict(assigned))


def _log_text(values: list[Any]) -> str:
    text = " ".join(
        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        for value in values
    )
    if len(text) > MAX_LOG_LINE:
        return f"{text[:MAX_LOG_LINE]}… ({len(text) - MAX_LOG_LINE:,} more characters)"
    return text
