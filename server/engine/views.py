"""The execution JSON of SPEC §5 (seed-compatible field names), built from stored rows.

Reads only; the scope shown as ``context.variables`` is rebuilt from the stored node
results the same way the runner builds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.definitions.cache import ParsedDefinitions, body_document
from server.definitions.model import Definition
from server.engine.routing import Routing
from server.engine.scope import Scope
from server.engine.service import PRIORITY_NAMES
from server.errors import NotFound
from server.store import executions as store
from server.store.database import Database
from server.store.models import ExecutionEventRow, ExecutionRow, NodeRunRow, WaitRow, utcnow

#: Parsed definitions for the views (each version is parsed once per process).
_PARSED = ParsedDefinitions()


async def execution_json(database: Database, execution_id: str) -> dict[str, Any]:
    async with database.reader() as session:
        row = await store.get(session, execution_id)
        if row is None:
            raise NotFound(f"no execution with id {execution_id!r}")
        runs = await store.node_runs(session, execution_id)
        waits = await store.open_waits(session, execution_id)
        document = {}
        if row.definition_pk not in _PARSED and not (row.context_metadata or {}).get("body"):
            document = await store.definition_document(session, row.definition_pk)
        reported_skips = await store.skipped_node_ids(session, execution_id)
        children = await store.children(session, execution_id)
    definition = _PARSED.for_execution(row.definition_pk, document, row.context_metadata)
    body = _execution(row, runs, waits, definition, reported_skips)
    body["parent_node"] = row.parent_node_id
    body["child_executions"] = [_child(child) for child in children]
    return body


@dataclass(frozen=True, slots=True)
class ExecutionView:
    """What the dashboard's execution page shows, read in one go: the execution JSON
    (``child_executions`` holds only the first ``children_limit`` children), how many
    children there are in all, and the document its graph is drawn from."""

    execution: dict[str, Any]
    children_total: int
    document: dict[str, Any]


async def execution_view(
    database: Database, execution_id: str, *, children_limit: int = 50
) -> ExecutionView:
    """Like :func:`execution_json`, for a page polled every second: the execution row
    and its definition are read once, and the children are a short list of summaries
    (their input, output and variables stay in the database) with their count."""
    async with database.reader() as session:
        row = await store.get(session, execution_id)
        if row is None:
            raise NotFound(f"no execution with id {execution_id!r}")
        runs = await store.node_runs(session, execution_id)
        waits = await store.open_waits(session, execution_id)
        metadata = row.context_metadata or {}
        if isinstance(metadata.get("body"), Mapping):
            document = body_document(metadata["body"], str(metadata.get("body_key")))
        else:
            document = await store.definition_document(session, row.definition_pk)
        reported_skips = await store.skipped_node_ids(session, execution_id)
        children, children_total = await store.child_summaries(
            session, execution_id, limit=children_limit
        )
    definition = _PARSED.for_execution(row.definition_pk, document, row.context_metadata)
    body = _execution(row, runs, waits, definition, reported_skips)
    body["parent_node"] = row.parent_node_id
    body["child_executions"] = [_child(child) for child in children]
    return ExecutionView(body, children_total, document)


def _child(row: ExecutionRow) -> dict[str, Any]:
    meta = row.context_metadata or {}
    return {
        "id": row.id,
        "node_id": row.parent_node_id,
        "index": meta.get("index"),
        "label": meta.get("label"),
        "workflow_id": row.workflow_id,
        "status": row.status,
        "started_at": _iso(row.started_at),
        "completed_at": _iso(row.completed_at),
    }


def summary_json(row: ExecutionRow) -> dict[str, Any]:
    """The short form used in lists."""
    return {
        "id": row.id,
        "workflow_id": row.workflow_id,
        "workflow_version": row.workflow_version,
        "status": row.status,
        "priority": PRIORITY_NAMES.get(row.priority, str(row.priority)),
        "owner": row.owner,
        "triggered_by": row.triggered_by,
        "parent_execution": row.parent_execution_id,
        "restarted_from": row.restarted_from,
        "current_node": row.current_node,
        "error": row.error,
        "created_at": _iso(row.created_at),
        "started_at": _iso(row.started_at),
        "completed_at": _iso(row.completed_at),
        "updated_at": _iso(row.updated_at),
    }


def event_json(event: ExecutionEventRow) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "node_id": event.node_id,
        "actor": event.actor,
        "data": event.data,
        "at": _iso(event.at),
    }


def _execution(
    row: ExecutionRow,
    runs: Sequence[NodeRunRow],
    waits: Sequence[WaitRow],
    definition: Definition,
    reported_skips: set[str],
) -> dict[str, Any]:
    scope = Scope(definition, row.input or {}, row.overrides or {}, {"id": row.id})
    current = [r for r in runs if not r.superseded and r.kind == "node"]
    for run in sorted(
        (r for r in current if r.seq is not None and r.status in ("completed", "skipped")),
        key=lambda r: r.seq or 0,
    ):
        scope.merge(
            run.node_id,
            run.output or {},
            status=run.status,
            started_at=run.started_at,
            completed_at=run.completed_at,
            attempts=run.attempt,
        )
    checkpoints = [
        {"node_id": r.node_id, "seq": r.seq, "status": r.status, "at": _iso(r.completed_at)}
        for r in sorted((r for r in current if r.seq is not None), key=lambda r: r.seq or 0)
    ]
    executed = [_node_run(r) for r in runs] + [
        _skipped_node(node_id)
        for node_id in _skipped_nodes(definition, current)
        if node_id in reported_skips
    ]
    body = summary_json(row)
    body.update(
        input=row.input,
        output=row.output,
        errors=row.errors or [],
        current_node=_current_node(row, current),
        context={
            "variables": scope.public_variables(),
            "metadata": {
                key: value
                for key, value in (row.context_metadata or {}).items()
                if key not in ("body", "inherited")  # an inline body's own definition
            },
            "trace": [
                {
                    "node_id": r.node_id,
                    "status": r.status,
                    "attempt": r.attempt,
                    "at": _iso(r.completed_at or r.started_at),
                }
                for r in runs
            ],
            "checkpoints": checkpoints,
        },
        executed_nodes=executed,
        waiting_on=_waiting_on(row, current, waits),
    )
    return body


def _skipped_nodes(definition: Definition, runs: Sequence[NodeRunRow]) -> list[str]:
    """Nodes that replaying the stored routing finds skipped (and that did not run).

    Only those the engine also reported skipped are shown: replay alone would mark the
    nodes after a failure that stopped the execution, which were never reached.
    """
    routing = Routing(definition.graph)
    routing.start()
    for run in sorted((r for r in runs if r.seq is not None), key=lambda r: r.seq or 0):
        routing.resolve(run.node_id, run.taken_edges or [])
    ran = {r.node_id for r in runs}
    return [
        node.id for node in definition.nodes if node.id in routing.skipped and node.id not in ran
    ]


def _skipped_node(node_id: str) -> dict[str, Any]:
    return {
        "node_id": node_id, "status": "skipped", "kind": "node", "attempt": 0, "generation": 0,
        "superseded": False, "input": None, "output": None, "error": None, "branch": None,
        "started_at": None, "completed_at": None, "duration": None, "retry_count": 0, "logs": [],
    }  # fmt: skip


def _current_node(row: ExecutionRow, runs: Sequence[NodeRunRow]) -> str | None:
    active = [r.node_id for r in runs if r.status in ("running", "waiting")]
    return active[0] if active else row.current_node


def _node_run(run: NodeRunRow) -> dict[str, Any]:
    duration = None
    if run.started_at and run.completed_at:
        duration = round((run.completed_at - run.started_at).total_seconds(), 6)
    return {
        "node_id": run.node_id,
        "status": run.status,
        "kind": run.kind,
        "attempt": run.attempt,
        "generation": run.generation,
        "superseded": run.superseded,
        "input": run.input,
        "output": run.output,
        "error": run.error,
        "branch": run.branch,
        "started_at": _iso(run.started_at),
        "completed_at": _iso(run.completed_at),
        "duration": duration,
        "retry_count": run.attempt - 1,
        "logs": run.logs or [],
    }


def _waiting_on(
    row: ExecutionRow, runs: Sequence[NodeRunRow], waits: Sequence[WaitRow]
) -> list[dict[str, Any]]:
    """What the execution waits for. A wait's ``data`` is the processor's own and may
    hold secret values (a webhook's signing secrets, rendered): only the two fields
    named here are ever shown, never the data itself."""
    items: list[dict[str, Any]] = []
    if row.status == "pending" and row.not_before:
        items.append({"node_id": None, "kind": "delay", "until": _iso(row.not_before)})
    for wait in waits:
        items.append(
            {
                "node_id": wait.node_id,
                "kind": wait.kind,
                "until": _iso(wait.due_at),
                "task_id": wait.task_id or (wait.data or {}).get("task_id"),
                "callback_url": (wait.data or {}).get("callback_url"),
            }
        )
    now = utcnow()
    for run in runs:
        if run.status == "ready" and run.attempt > 1 and run.ready_at and run.ready_at > now:
            items.append({"node_id": run.node_id, "kind": "retry", "until": _iso(run.ready_at)})
    return items


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
