"""``task``: run work — a registered Python handler, a script of expressions, or a command.

``handler`` calls a Python callable registered by name (``processors.handlers``) with
the rendered ``args``; a sync one runs in a worker thread.

``command`` runs a program without a shell through ``services["commands"]``
(:class:`processors.commands.CommandRunner`), only if the operator enabled commands and
allow-listed the program. ``command`` is the program (a string) or the program and its
first arguments (a list); ``args`` (a list) are appended; ``env`` adds variables to a
minimal environment; ``timeout`` (default ``[tasks] command_timeout``) kills the program
with its process group. The output is ``{exit_code, stdout, stderr}``, stdout parsed as
JSON when it is JSON (unless ``parse_json`` is false). A non-zero exit fails the node
(retryable, so a ``retry_policy`` applies) with the exit code and the end of stderr, and
the whole output in the failure's details; a refused or unusable command fails it
without retry.

A script is a string (split into lines) or a list of strings; blank lines and
``#``/``//`` comments are skipped, and each other line, in order, is one of:

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

from processors.base import (
    DURATION_SCHEMA,
    ConfigCheck,
    JSONSchema,
    Processor,
    rel,
    require_one_of,
)
from processors.commands import (
    DISABLED_MESSAGE,
    STDERR_TAIL,
    CommandRefused,
    CommandRunner,
    check_env_name,
    describe_exit,
)
from processors.handlers import HandlerContext, HandlerFailed, Handlers
from processors.runtime import Completed, Failed, NodeContext, Outcome
from server.durations import DurationError, parse_duration
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


#: Config keys used only by the command form.
COMMAND_ONLY_KEYS = ("env", "timeout", "parse_json")


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
                "minLength": 1,
                "minItems": 1,
                "items": {"type": "string"},
                "description": (
                    "program (absolute path or a name on the server's PATH), or a list of the "
                    "program and its first arguments; run without a shell, if allow-listed"
                ),
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
            "timeout": {
                **DURATION_SCHEMA,
                "description": "how long a command may run (default [tasks] command_timeout)",
            },
            "parse_json": {
                "type": "boolean",
                "description": "parse a command's stdout as JSON when it is JSON (default true)",
            },
        },
    }

    unrendered_keys: ClassVar[frozenset[str]] = frozenset({"script"})

    def is_pure(self, config: Mapping[str, Any]) -> bool:
        """A script only computes (its logs are the node's own); a handler or a command
        may act outside the execution."""
        return config.get("script") is not None and not (
            config.get("handler") or config.get("command")
        )

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        kind = require_one_of(config, ("handler", "script", "command"), check, what="a task")
        if kind == "script":
            self._check_script(config["script"], check)
        if kind == "command":
            self._check_command(config, check)
        elif kind is not None:
            for key in COMMAND_ONLY_KEYS:
                if config.get(key) is not None:
                    check.warning(key, f"'{key}' applies only to a 'command'; it is ignored here")
        for key in ("args", "env", "command"):
            if key in config:
                check.template(key, config[key])

    def _check_command(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        command = config["command"]
        program = command[0] if isinstance(command, list) and command else command
        pointer = rel("command", 0) if isinstance(command, list) else "command"
        if isinstance(command, list) and not command:
            check.error("command", "the command list is empty; its first element is the program")
        args = config.get("args")
        if args is not None and not isinstance(args, list):
            check.error(
                "args", "a command's 'args' is a list of arguments (an object is for handlers)"
            )
        env = config.get("env")
        if isinstance(env, dict):
            for name in env:
                problem = check_env_name(str(name))
                if problem is not None:
                    check.error(rel("env", str(name)), problem)
        if config.get("timeout") is not None:
            seconds = check.duration("timeout", config["timeout"])
            if seconds is not None and seconds <= 0:
                check.error("timeout", "a command's timeout must be more than 0 seconds")
        if not isinstance(program, str) or not program or "${" in program:
            return  # a templated program is known only when the node runs
        if isinstance(command, str) and any(c.isspace() for c in program) and "/" not in program:
            check.warning(
                "command",
                "a string command is one program name, never split at spaces; to pass "
                'arguments write a list such as ["echo", "hello"]',
            )
        policy = check.context.commands
        refusal = policy.refusal(program) if policy is not None else None
        if refusal is not None:
            check.warning(pointer, f"{refusal}; until then the node fails when it runs")

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
            return await run_command(config, ctx)
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


class CommandConfigError(ValueError):
    """A command's config cannot be run (after rendering); the message says why."""


async def run_command(config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
    """Run the command through ``services["commands"]``; ``{exit_code, stdout, stderr}``."""
    runner = ctx.services.get("commands")
    if not isinstance(runner, CommandRunner):
        return Failed(DISABLED_MESSAGE, retryable=False)
    try:
        argv = command_argv(config.get("command"), config.get("args"))
        env = command_env(config.get("env"))
        timeout = command_timeout(config.get("timeout"))
    except CommandConfigError as error:
        return Failed(str(error), retryable=False)
    env.update(
        FLOWYARD_EXECUTION_ID=ctx.execution_id,
        FLOWYARD_WORKFLOW_ID=ctx.workflow_id,
        FLOWYARD_NODE_ID=ctx.node_id,
        FLOWYARD_ATTEMPT=str(ctx.attempt),
        FLOWYARD_IDEMPOTENCY_KEY=ctx.idempotency_key,
    )
    try:
        result = await runner.run(argv, env=env, time_limit=timeout)
    except CommandRefused as refused:
        return Failed(refused.message, retryable=False)
    ended = describe_exit(result)
    ctx.log(f"{result.program} {ended} ({result.seconds:.3f}s)")
    for name, captured in (("stdout", result.stdout), ("stderr", result.stderr)):
        if captured.truncated:
            ctx.log(
                f"{name} truncated: kept the first {len(captured.data):,} of "
                f"{captured.total:,} bytes ([tasks] max_output_bytes)"
            )
    stdout_text, stderr_text = _text(result.stdout.data), _text(result.stderr.data)
    parse = config.get("parse_json") is not False and not result.stdout.truncated
    stdout = await _maybe_json(stdout_text) if parse else stdout_text
    output = {"exit_code": result.exit_code, "stdout": stdout, "stderr": stderr_text}
    if result.timed_out:
        return Failed(
            f"command {result.program} {ended}; raise the task's 'timeout' (default [tasks] "
            "command_timeout) if it needs longer",
            retryable=True,
            details=output,
        )
    if result.exit_code != 0:
        tail = stderr_text[-STDERR_TAIL:].strip()
        if len(stderr_text) > STDERR_TAIL:
            tail = f"…{tail}"
        return Failed(
            f"command {result.program} {ended}" + (f": {tail}" if tail else ""),
            retryable=True,
            details=output,
        )
    return Completed(output)


def command_argv(command: object, args: object) -> list[str]:
    """The argv of a rendered ``command`` (+ ``args``): program first, all text."""
    parts = list(command) if isinstance(command, list) else [command]
    if args is not None:
        if not isinstance(args, list):
            raise CommandConfigError(
                "a command's 'args' is a list of arguments (an object is for handlers)"
            )
        parts += args
    if not parts or not isinstance(parts[0], str) or not parts[0]:
        raise CommandConfigError(
            "a command needs a program: a non-empty string, or a list whose first element is one"
        )
    return [_argument_text(value, f"argument {index}") for index, value in enumerate(parts)]


def command_env(env: object) -> dict[str, str]:
    """The node's extra environment variables, checked and as text."""
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise CommandConfigError("a command's 'env' is an object of NAME: value")
    found = {}
    for name, value in env.items():
        problem = check_env_name(str(name))
        if problem is not None:
            raise CommandConfigError(f"env: {problem}")
        found[str(name)] = _argument_text(value, f"env {name}")
    return found


def command_timeout(value: object) -> float | None:
    """The task's own ``timeout`` in seconds (``None``: the server's default)."""
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except DurationError as error:
        raise CommandConfigError(f"timeout: {error}") from None
    if seconds <= 0:
        raise CommandConfigError("timeout: a command's timeout must be more than 0 seconds")
    return seconds


def _argument_text(value: object, what: str) -> str:
    """Text for argv/env: strings as they are, numbers and booleans as JSON text."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:
        kind = "null" if value is None else type(value).__name__
        raise CommandConfigError(
            f"{what} of the command is {kind}; arguments and environment values are text "
            "(numbers and booleans are converted)"
        )
    if "\x00" in text:
        raise CommandConfigError(f"{what} of the command contains a NUL character")
    return text


def _text(data: bytes) -> str:
    """A stream as text (UTF-8, undecodable bytes replaced), final line breaks removed."""
    return data.decode("utf-8", errors="replace").rstrip("\r\n")


#: Larger stdout is parsed in a worker thread.
PARSE_INLINE_BYTES = 64 * 1024


async def _maybe_json(text: str) -> Any:
    """``text`` parsed as JSON when it is (strict JSON: no NaN or Infinity), else itself."""
    stripped = text.strip()
    if not stripped or stripped[0] not in '{["-0123456789tfn':
        return text
    if len(stripped) > PARSE_INLINE_BYTES:
        return await asyncio.to_thread(_parse_json, stripped, text)
    return _parse_json(stripped, text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON data")


def _parse_json(stripped: str, text: str) -> Any:
    try:
        return json.loads(stripped, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return text


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
