"""``parallel``: run branches concurrently, or act as a fan-out/join gateway.

With ``branches``, each branch is a child execution (an inline ``{id, nodes, edges}``
or ``{id, workflow_id}``), at most ``max_parallel`` at once; the node waits for
``wait_for`` of them: ``"all"`` (default), ``"any"`` (the first to complete; the others
are cancelled) or a number. A failed branch fails the node at once with ``fail_fast``
(default true; the others are cancelled), else when ``wait_for`` can no longer be met.
The output is ``{branches: {id: output}, failed: {id: error}}``.

Without ``branches`` (the seed's ETL shape) the node is a gateway: the engine's join
rules start it once its incoming edges are resolved, and it completes at once, so every
outgoing edge starts together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

from processors.base import (
    DURATION_SCHEMA,
    EDGES_REF,
    NODES_REF,
    ConfigCheck,
    JSONSchema,
    Processor,
    rel,
)
from processors.runtime import (
    ChildState,
    Completed,
    Failed,
    NodeContext,
    Outcome,
    Waiting,
    WaitResolution,
    wait_for_children,
)
from server.durations import parse_duration
from server.expressions import render

BRANCH_SCHEMA: JSONSchema = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "description": "branch name in the output"},
        "nodes": NODES_REF,
        "edges": EDGES_REF,
        "workflow_id": {"type": "string", "description": "run this workflow as the branch"},
        "version": {"type": "string"},
    },
}


class ParallelProcessor(Processor):
    """Runs branches as child executions, or joins and fans out its own edges."""

    type_name: ClassVar[str] = "parallel"
    #: branch bodies are rendered in the children, not here
    unrendered_keys: ClassVar[frozenset[str]] = frozenset({"branches"})
    description: ClassVar[str] = (
        "Runs branches concurrently and waits for all/any/n; without branches, a gateway."
    )
    config_schema: ClassVar[JSONSchema] = {
        "type": "object",
        "properties": {
            "branches": {
                "type": "array",
                "items": BRANCH_SCHEMA,
                "description": "{id, nodes, edges} or {id, workflow_id}; omit for a gateway",
            },
            "max_parallel": {
                "type": "integer",
                "minimum": 1,
                "description": "branches (or outgoing edges) started at once",
            },
            "wait_for": {
                "oneOf": [{"enum": ["all", "any"]}, {"type": "integer", "minimum": 1}],
                "description": '"all" (default), "any", or a number of branches',
            },
            "fail_fast": {"type": "boolean", "description": "stop at the first failed branch"},
            "timeout": {**DURATION_SCHEMA, "description": "how long to wait for the branches"},
        },
    }

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        if "timeout" in config:
            check.duration("timeout", config["timeout"])
        branches = config.get("branches")
        if not isinstance(branches, list):
            return
        if not branches:
            check.error("branches", "'branches' is empty; add branches or remove the key")
        seen: set[str] = set()
        for index, branch in enumerate(branches):
            if not isinstance(branch, dict):
                continue
            branch_id = branch.get("id")
            if isinstance(branch_id, str):
                if branch_id in seen:
                    check.error(
                        rel("branches", index, "id"), f"branch id {branch_id!r} is used twice"
                    )
                seen.add(branch_id)
            inline, external = (
                branch.get("nodes") is not None,
                branch.get("workflow_id") is not None,
            )
            if inline and external:
                check.error(
                    rel("branches", index), "a branch has 'nodes' or 'workflow_id', not both"
                )
            elif not inline and not external:
                check.error(
                    rel("branches", index), "a branch needs 'nodes' (and 'edges') or 'workflow_id'"
                )
            elif inline:
                check.subgraph(rel("branches", index), branch)
        wait_for = config.get("wait_for")
        if (
            isinstance(wait_for, int)
            and not isinstance(wait_for, bool)
            and wait_for > len(branches)
        ):
            check.error(
                "wait_for",
                f"wait_for {wait_for} can never be met: there are only {len(branches)} branches",
            )

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        return frozenset({"branches"})

    def is_pure(self, config: Mapping[str, Any]) -> bool:
        """A gateway only routes; branches start other executions."""
        return not config.get("branches")

    async def run(self, config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
        if not config.get("branches"):
            return Completed({})
        return await self._step(config, ctx, None, poked=False)

    async def resume(
        self, config: Mapping[str, Any], ctx: NodeContext, wait: WaitResolution
    ) -> Outcome:
        if wait.wait_data.get("deadline") and ctx.now().timestamp() >= float(
            wait.wait_data["deadline"]
        ):
            children = ctx.services["children"]
            states = await children.states(ctx)
            await children.cancel([c.id for c in states if not c.finished], reason="timeout")
            return Failed(f"the branches did not finish within {config.get('timeout')}")
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
        branches: Sequence[Mapping[str, Any]] = config["branches"]
        states = {child.index: child for child in await children.states(ctx)}
        done = [c for c in states.values() if c.status == "completed"]
        failed = [c for c in states.values() if c.finished and c.status != "completed"]
        running = [c for c in states.values() if not c.finished]
        total = len(branches)
        needed = _needed(config.get("wait_for"), total)
        fail_fast = config.get("fail_fast", True) is not False
        if len(done) >= needed:
            await children.cancel([c.id for c in running], reason="wait_for")
            return Completed(_output(branches, done, failed))
        if failed and (fail_fast or total - len(failed) < needed):
            await children.cancel([c.id for c in running], reason="fail_fast")
            first = failed[0]
            name = branches[first.index].get("id")
            message = (first.error or {}).get("message") or first.status
            return Failed(
                f"branch {name!r} {first.status}: {message}",
                retryable=False,
                details={"branch": name, "execution_id": first.id},
            )
        limit = max(int(config.get("max_parallel") or total), 1)
        for index, branch in enumerate(branches):
            if len(running) >= limit:
                break
            if index in states:
                continue
            execution_id = await children.start(
                ctx,
                index,
                input=(
                    render(dict(branch.get("input") or {}), ctx.scope)
                    if branch.get("workflow_id") is not None
                    else {"branch": branch.get("id")}
                ),
                workflow_id=branch.get("workflow_id"),
                version=branch.get("version"),
                body=branch if branch.get("workflow_id") is None else None,
                body_key=f"branches/{branch.get('id')}",
                label=str(branch.get("id")),
            )
            child = ChildState(execution_id, index, str(branch.get("id")), "running")
            states[index] = child
            running.append(child)
        return _wait(config, ctx, state, poked=poked)


def _needed(wait_for: object, total: int) -> int:
    if wait_for == "any":
        return 1
    if isinstance(wait_for, int) and not isinstance(wait_for, bool):
        return min(max(wait_for, 1), total)
    return total


def _output(
    branches: Sequence[Mapping[str, Any]], done: list[ChildState], failed: list[ChildState]
) -> dict[str, Any]:
    def name(child: ChildState) -> str:
        return str(branches[child.index].get("id"))

    return {
        "branches": {name(c): dict(c.output or {}) for c in sorted(done, key=lambda c: c.index)},
        "failed": {name(c): dict(c.error or {"message": c.status}) for c in failed},
    }


def _wait(
    config: Mapping[str, Any], ctx: NodeContext, state: Mapping[str, Any] | None, *, poked: bool
) -> Waiting:
    """Wait for the branches, until the ``timeout`` if there is one."""
    now = ctx.now()
    deadline = (state or {}).get("deadline")
    if deadline is None and config.get("timeout") is not None:
        deadline = now.timestamp() + parse_duration(config["timeout"])
    until = None
    if deadline is not None:
        until = now + timedelta(seconds=max(float(deadline) - now.timestamp(), 0))
    return wait_for_children(ctx, state, poked=poked, until=until, deadline=deadline)
