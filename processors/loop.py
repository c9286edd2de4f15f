"""``loop``: run a body once per item, a number of times, or while a condition holds.

Each iteration is a child execution (``services["children"]``) with ``item`` and
``index`` in its input — the inline ``body`` of this node, or the workflow
``workflow_id``. At most ``concurrency`` iterations run at once; the node waits for them
as data (a ``children`` wait) and looks again each time one ends.

The list of ``items`` is evaluated when the loop starts and again whenever it looks
(it is not stored); the loop fails if it has changed meanwhile. ``while`` runs one
iteration at a time: before each, the condition is evaluated with ``index`` (the next
iteration's), ``results`` (so far) and ``last`` (the previous iteration's result); the
loop fails if it is still true after ``max_iterations``.

Every loop is bounded by the server's ``limits.max_loop_iterations``
(``services["limits"]``): a list of ``items`` or an ``iterations`` count over it fails
the node before any iteration starts (and before a list of that size is built), and a
``while`` loop stops there even when its ``max_iterations`` is larger.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from processors.base import GRAPH_REF, ConfigCheck, JSONSchema, Processor, require_one_of
from processors.runtime import (
    ChildState,
    Completed,
    Failed,
    NodeContext,
    Outcome,
    WaitResolution,
    wait_for_children,
)
from server.config import LimitsSettings
from server.errors import ExpressionError
from server.expressions import parse_path, resolve_path

LOOP_NAMES = ("item", "index")
DEFAULT_MAX_ITERATIONS = 1000
#: The server's limits when the node runs without ``services["limits"]`` (the defaults).
DEFAULT_LIMITS = LimitsSettings()
LIMIT_SETTING = "limits.max_loop_iterations"


def is_single_reference(text: str) -> bool:
    """Whether ``text`` is exactly one ``${…}`` (a template keeping its JSON type)."""
    return text.startswith("${") and text.endswith("}") and text.count("${") == 1


class LoopProcessor(Processor):
    """Runs its body as one child execution per iteration, with ``item`` and ``index``."""

    type_name: ClassVar[str] = "loop"
    #: the body is rendered per iteration (in the child), ``items``/``while`` evaluated here
    unrendered_keys: ClassVar[frozenset[str]] = frozenset({"items", "while", "body", "collect"})
    description: ClassVar[str] = (
        "Runs a body (inline nodes or another workflow) per item, n times, or while true."
    )
    config_schema: ClassVar[JSONSchema] = {
        "type": "object",
        "properties": {
            "items": {
                "type": ["string", "array"],
                "description": "list to iterate: ${path}, an expression, or a literal list",
            },
            "iterations": {
                "type": ["integer", "string"],
                "minimum": 0,
                "description": "run the body this many times (number or ${path})",
            },
            "while": {"type": "string", "description": "expression; loop while it is true"},
            "max_iterations": {
                "type": "integer",
                "minimum": 1,
                "description": "upper bound on iterations (default 1000)",
            },
            "body": {**GRAPH_REF, "description": "inline {nodes, edges} run per iteration"},
            "workflow_id": {"type": "string", "description": "workflow run per iteration"},
            "version": {"type": "string", "description": "version of workflow_id (default newest)"},
            "concurrency": {
                "type": "integer",
                "minimum": 1,
                "description": "iterations run at once (default 1)",
            },
            "collect": {
                "type": "string",
                "description": "path in each iteration's scope to gather into results",
            },
            "fail_fast": {
                "type": "boolean",
                "description": "stop at the first failed iteration (default true)",
            },
        },
    }

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        kind = require_one_of(config, ("items", "iterations", "while"), check, what="a loop")
        if kind == "items" and isinstance(config["items"], str):
            items = config["items"]
            if is_single_reference(items):
                check.template("items", items)
            else:
                check.expression("items", items)
        elif kind == "iterations" and isinstance(config["iterations"], str):
            check.template("iterations", config["iterations"])
        elif kind == "while":
            check.expression("while", config["while"], local_names=LOOP_NAMES)
        body_kind = require_one_of(config, ("body", "workflow_id"), check, what="a loop")
        if body_kind == "body":
            check.subgraph("body", config["body"], loop_body=True)

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        return frozenset({"results", "iterations", "failed"})

    async def run(self, config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
        return await self._step(config, ctx, None, poked=False)

    async def resume(
        self, config: Mapping[str, Any], ctx: NodeContext, wait: WaitResolution
    ) -> Outcome:
        return await self._step(config, ctx, wait.wait_data, poked=bool(wait.data))

    async def _step(
        self,
        config: Mapping[str, Any],
        ctx: NodeContext,
        state: Mapping[str, Any] | None,
        *,
        poked: bool,
    ) -> Outcome:
        children = ctx.services.get("children")
        if children is None:
            return Failed("child executions are not available in this server", retryable=False)
        limit = _iteration_limit(ctx)
        try:
            items = await _items(config, ctx, limit)
        except (ExpressionError, ValueError) as error:
            message = error.message if isinstance(error, ExpressionError) else str(error)
            return Failed(f"loop: {message}", retryable=False)
        fingerprint = _fingerprint(items)
        if state is not None and state.get("items") != fingerprint:
            return Failed(
                "loop: the list of items changed while the loop ran; give the loop a list "
                "that stays the same (e.g. an input variable or an earlier node's output)",
                retryable=False,
            )
        states = await children.states(ctx)  # on a first run too: it may be a re-run
        collect = config.get("collect")
        results = [_collected(child, collect) for child in states]
        failed = [child for child in states if child.finished and child.status != "completed"]
        running = [child for child in states if not child.finished]
        fail_fast = config.get("fail_fast", True) is not False
        if failed and fail_fast:
            await children.cancel([child.id for child in running], reason="fail_fast")
            first = failed[0]
            return Failed(
                f"loop iteration {first.index} {first.status}: {_message(first)}",
                retryable=False,
                details={"iteration": first.index, "execution_id": first.id},
            )
        concurrency = max(int(config.get("concurrency") or 1), 1)
        started = len(states)
        if items is None:  # while
            concurrency = 1
        total = len(items) if items is not None else None
        while len(running) < concurrency and (total is None or started < total):
            if items is None:
                if await _while_done(config, ctx, started, results):
                    break
                maximum = int(config.get("max_iterations") or DEFAULT_MAX_ITERATIONS)
                if started >= min(maximum, limit):
                    return Failed(_while_message(started, maximum, limit), retryable=False)
                item: Any = None
            else:
                item = items[started]
            child = await _start(children, config, ctx, started, item)
            running.append(child)
            started += 1
        if not running:
            return Completed(
                {
                    "results": results,
                    "iterations": started,
                    "failed": len(failed),
                }
            )
        return wait_for_children(ctx, state, poked=poked, items=fingerprint)


async def _while_done(
    config: Mapping[str, Any], ctx: NodeContext, index: int, results: Sequence[Any]
) -> bool:
    """Whether the ``while`` condition stops the loop before iteration ``index``."""
    names = {
        "index": index,
        "results": list(results),
        "last": results[-1] if results else None,
    }
    return not await ctx.evaluate(str(config["while"]), extra_names=names)


def _iteration_limit(ctx: NodeContext) -> int:
    """This server's ``limits.max_loop_iterations``."""
    limits = ctx.services.get("limits", DEFAULT_LIMITS)
    return int(getattr(limits, "max_loop_iterations", DEFAULT_LIMITS.max_loop_iterations))


def _over_limit(what: str, limit: int) -> ValueError:
    return ValueError(
        f"{what}, more than the {limit:,} iterations a loop may run (setting "
        f"{LIMIT_SETTING}); split the work into smaller loops or ask the operator to raise it"
    )


def _while_message(started: int, maximum: int, limit: int) -> str:
    if maximum <= limit:
        return (
            f"loop: 'while' is still true after max_iterations ({started}); raise "
            "max_iterations or change the condition"
        )
    return (
        f"loop: 'while' is still true after {started:,} iterations, the limit per loop "
        f"(setting {LIMIT_SETTING}; max_iterations {maximum:,} is above it); change the "
        "condition or ask the operator to raise the limit"
    )


async def _items(config: Mapping[str, Any], ctx: NodeContext, limit: int) -> list[Any] | None:
    """The list to iterate (``None`` for ``while``), at most ``limit`` long."""
    if config.get("items") is not None:
        raw = config["items"]
        items = await ctx.evaluate(raw) if isinstance(raw, str) else raw
        if not isinstance(items, list):
            raise ValueError(f"'items' must give a list, not {type(items).__name__}")
        if len(items) > limit:
            raise _over_limit(f"'items' has {len(items):,} elements", limit)
        return items
    if config.get("iterations") is not None:
        count = config["iterations"]
        if isinstance(count, str):
            count = await ctx.evaluate(count)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"'iterations' must be a whole number ≥ 0, not {count!r}")
        if count > limit:
            raise _over_limit(f"'iterations' is {count:,}", limit)
        return list(range(count))
    return None


def _fingerprint(items: list[Any] | None) -> str | None:
    if items is None:
        return None
    text = json.dumps(items, sort_keys=True, separators=(",", ":"), default=str)
    return f"{len(items)}:{hashlib.sha256(text.encode()).hexdigest()[:32]}"


async def _start(
    children: Any, config: Mapping[str, Any], ctx: NodeContext, index: int, item: Any
) -> ChildState:
    execution_id = await children.start(
        ctx,
        index,
        input={"item": item, "index": index},
        workflow_id=config.get("workflow_id"),
        version=config.get("version"),
        body=config.get("body") if config.get("workflow_id") is None else None,
        body_key="body",
    )
    return ChildState(execution_id, index, None, "running")


def _collected(child: ChildState, collect: object) -> Any:
    if child.status != "completed":
        return None
    output = child.output or {}
    if not isinstance(collect, str) or not collect:
        return output
    try:
        return resolve_path(output, parse_path(collect), collect)
    except ExpressionError:
        return None


def _message(child: ChildState) -> str:
    error = child.error or {}
    return str(error.get("message") or child.status)
