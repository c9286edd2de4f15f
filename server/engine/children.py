"""Child executions: what ``loop``, ``parallel`` (with branches) and ``sub_workflow``
nodes start and wait for (``services["children"]``).

A child is an ordinary execution linked to its parent node (``parent_execution_id``,
``parent_node_id``), so it is durable, visible and controllable like any other. Its
idempotency key is ``<parent node's key>~<attempt>~<index>``: starting the same child
twice (a parent node re-run after a crash) finds the first one, while a new attempt of
the parent node starts fresh children.

A child runs either another stored workflow (``workflow_id`` + ``version``) or an inline
body of the parent's definition (``{nodes, edges}``); an inline body runs as a workflow
of its own, pinned to the parent's version, and sees the parent's variables plus what
the parent passes (``item`` and ``index`` in a loop).

When a child ends, its last commit marks the parent node's ``children`` wait answered
and wakes the parent (``Runner.commit``); the parent node then looks at its children
again (``states``) and starts more, or finishes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from processors.runtime import ChildState, NodeContext
from server.store import runs as store

if TYPE_CHECKING:
    from server.engine.service import ExecutionService


class Children:
    def __init__(self, executions: ExecutionService) -> None:
        self.executions = executions

    @staticmethod
    def key_prefix(ctx: NodeContext) -> str:
        return f"{ctx.idempotency_key}~{ctx.attempt}~"

    async def start(
        self,
        ctx: NodeContext,
        index: int,
        *,
        input: Mapping[str, Any],
        workflow_id: str | None = None,
        version: str | None = None,
        body: Mapping[str, Any] | None = None,
        body_key: str | None = None,
        label: str | None = None,
    ) -> str:
        """Start child ``index`` of this node attempt (or find it); its execution id.

        Exactly one of ``workflow_id`` and ``body`` (with ``body_key``, where the body
        sits in the parent node's config, e.g. ``"body"`` or ``"branches/extract"``).
        """
        return await self.executions.start_child(
            parent_execution_id=ctx.execution_id,
            parent_node_id=ctx.node_id,
            key=f"{self.key_prefix(ctx)}{index}",
            index=index,
            label=label,
            input=input,
            workflow_id=workflow_id,
            version=version,
            body=body,
            body_key=body_key,
        )

    async def states(self, ctx: NodeContext) -> list[ChildState]:
        """The children of this node attempt, by index."""
        prefix = self.key_prefix(ctx)
        rows = await self.executions.engine.journal.run(
            lambda c: store.child_rows(c, ctx.execution_id, ctx.node_id, prefix)
        )
        found = []
        for row in rows:
            meta = row["context_metadata"] or {}
            found.append(
                ChildState(
                    id=row["id"],
                    index=int(meta.get("index", 0)),
                    label=meta.get("label"),
                    status=row["status"],
                    output=row["output"],
                    error=row["error"],
                )
            )
        return sorted(found, key=lambda child: child.index)

    async def cancel(self, ids: Iterable[str], *, reason: str) -> None:
        """Cancel children that are still going (``fail_fast``, ``wait_for: any``)."""
        for execution_id in ids:
            await self.executions.cancel_quietly(execution_id, actor=f"system:{reason}")
