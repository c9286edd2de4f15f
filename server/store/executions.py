"""Read queries for executions, their node runs, waits and events (API and dashboard)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import load_only

from server.store.models import (
    ExecutionEventRow,
    ExecutionRow,
    NodeRunRow,
    WaitRow,
    WorkflowVersionRow,
)

SORTABLE = {
    "created_at": ExecutionRow.created_at,
    "started_at": ExecutionRow.started_at,
    "completed_at": ExecutionRow.completed_at,
    "updated_at": ExecutionRow.updated_at,
    "priority": ExecutionRow.priority,
    "status": ExecutionRow.status,
}


@dataclass(frozen=True, slots=True)
class ExecutionFilter:
    status: str | None = None
    workflow_id: str | None = None
    owner: str | None = None
    priority: int | None = None
    started_from: datetime | None = None
    started_to: datetime | None = None
    sort_by: str = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    limit: int = 50
    offset: int = 0


async def recent(session: AsyncSession, limit: int) -> tuple[Sequence[ExecutionRow], int]:
    return await search(session, ExecutionFilter(limit=limit))


async def search(
    session: AsyncSession, query: ExecutionFilter
) -> tuple[Sequence[ExecutionRow], int]:
    statement = _filtered(select(ExecutionRow), query)
    total = (
        await session.execute(select(func.count()).select_from(statement.subquery()))
    ).scalar_one()
    column = SORTABLE[query.sort_by]
    order = column.asc() if query.sort_order == "asc" else column.desc()
    rows = await session.execute(
        statement.order_by(order, ExecutionRow.id).limit(query.limit).offset(query.offset)
    )
    return rows.scalars().all(), int(total)


#: The columns a list row shows (``summary_json``): the big JSON ones stay in the database.
SUMMARY_COLUMNS = (
    ExecutionRow.workflow_id,
    ExecutionRow.workflow_version,
    ExecutionRow.status,
    ExecutionRow.priority,
    ExecutionRow.owner,
    ExecutionRow.triggered_by,
    ExecutionRow.parent_execution_id,
    ExecutionRow.restarted_from,
    ExecutionRow.current_node,
    ExecutionRow.error,
    ExecutionRow.created_at,
    ExecutionRow.started_at,
    ExecutionRow.completed_at,
    ExecutionRow.updated_at,
)


async def search_summaries(
    session: AsyncSession, query: ExecutionFilter
) -> tuple[Sequence[ExecutionRow], int]:
    """Like :func:`search`, loading only :data:`SUMMARY_COLUMNS` (the dashboard's list:
    an execution's input, output and variables may be megabytes, and a page shows none
    of them). Touching another column raises instead of querying once per row."""
    statement = _filtered(select(ExecutionRow), query)
    total = (
        await session.execute(select(func.count()).select_from(statement.subquery()))
    ).scalar_one()
    column = SORTABLE[query.sort_by]
    order = column.asc() if query.sort_order == "asc" else column.desc()
    rows = await session.execute(
        statement.options(load_only(*SUMMARY_COLUMNS, raiseload=True))
        .order_by(order, ExecutionRow.id)
        .limit(query.limit)
        .offset(query.offset)
    )
    return rows.scalars().all(), int(total)


def _filtered(statement: Select[Any], query: ExecutionFilter) -> Select[Any]:
    if query.status:
        statement = statement.where(ExecutionRow.status == query.status)
    if query.workflow_id:
        statement = statement.where(ExecutionRow.workflow_id == query.workflow_id)
    if query.owner:
        statement = statement.where(ExecutionRow.owner == query.owner)
    if query.priority is not None:
        statement = statement.where(ExecutionRow.priority == query.priority)
    if query.started_from:
        statement = statement.where(ExecutionRow.started_at >= query.started_from)
    if query.started_to:
        statement = statement.where(ExecutionRow.started_at < query.started_to)
    return statement


async def get(session: AsyncSession, execution_id: str) -> ExecutionRow | None:
    return await session.get(ExecutionRow, execution_id)


async def node_runs(session: AsyncSession, execution_id: str) -> Sequence[NodeRunRow]:
    rows = await session.execute(
        select(NodeRunRow)
        .where(NodeRunRow.execution_id == execution_id)
        .order_by(
            NodeRunRow.started_at.nulls_last(), NodeRunRow.seq.nulls_last(), NodeRunRow.attempt
        )
    )
    return rows.scalars().all()


async def children(
    session: AsyncSession, execution_id: str, limit: int = 1000
) -> Sequence[ExecutionRow]:
    """The child executions started by this execution's nodes, oldest first."""
    rows = await session.execute(
        select(ExecutionRow)
        .where(ExecutionRow.parent_execution_id == execution_id)
        .order_by(ExecutionRow.created_at)
        .limit(limit)
    )
    return rows.scalars().all()


#: The columns a child execution's row shows (``server.engine.views._child``).
CHILD_COLUMNS = (
    ExecutionRow.workflow_id,
    ExecutionRow.status,
    ExecutionRow.parent_node_id,
    ExecutionRow.context_metadata,
    ExecutionRow.created_at,
    ExecutionRow.started_at,
    ExecutionRow.completed_at,
)


async def child_summaries(
    session: AsyncSession, execution_id: str, *, limit: int
) -> tuple[Sequence[ExecutionRow], int]:
    """The first ``limit`` child executions (oldest first), loading only
    :data:`CHILD_COLUMNS` — a loop may start thousands, each with its own input, output
    and variables — and how many there are in all."""
    mine = ExecutionRow.parent_execution_id == execution_id
    total = await session.scalar(select(func.count()).select_from(ExecutionRow).where(mine))
    rows = await session.execute(
        select(ExecutionRow)
        .where(mine)
        .options(load_only(*CHILD_COLUMNS, raiseload=True))
        .order_by(ExecutionRow.created_at, ExecutionRow.id)
        .limit(limit)
    )
    return rows.scalars().all(), int(total or 0)


async def open_waits(session: AsyncSession, execution_id: str) -> Sequence[WaitRow]:
    rows = await session.execute(
        select(WaitRow).where(WaitRow.execution_id == execution_id, WaitRow.resolved_at.is_(None))
    )
    return rows.scalars().all()


async def definition_document(session: AsyncSession, version_pk: str) -> dict[str, Any]:
    document = await session.scalar(
        select(WorkflowVersionRow.document).where(WorkflowVersionRow.pk == version_pk)
    )
    return dict(document or {})


async def events(
    session: AsyncSession, execution_id: str, *, after: int, limit: int
) -> tuple[Sequence[ExecutionEventRow], int]:
    base = select(ExecutionEventRow).where(ExecutionEventRow.execution_id == execution_id)
    total = (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    rows = await session.execute(
        base.where(ExecutionEventRow.id > after).order_by(ExecutionEventRow.id).limit(limit)
    )
    return rows.scalars().all(), int(total)


async def counts_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(ExecutionRow.status, func.count()).group_by(ExecutionRow.status)
    )
    return {status: int(count) for status, count in rows}


async def recent_durations(session: AsyncSession, limit: int = 1000) -> list[float]:
    """Run times (seconds) of the most recently completed executions."""
    rows = await session.execute(
        select(ExecutionRow.started_at, ExecutionRow.completed_at)
        .where(ExecutionRow.status == "completed", ExecutionRow.started_at.is_not(None))
        .order_by(ExecutionRow.completed_at.desc())
        .limit(limit)
    )
    return [(done - began).total_seconds() for began, done in rows if began and done]


async def started_per_minute(session: AsyncSession, now: datetime, minutes: int) -> list[int]:
    """How many executions started in each of the last ``minutes`` minutes (oldest
    first; the last bucket is the minute up to ``now``), in one indexed range scan."""
    edges = [now - timedelta(minutes=minutes - i) for i in range(minutes + 1)]
    column = ExecutionRow.started_at
    buckets = [
        func.coalesce(func.sum(case((and_(column >= lo, column < hi), 1), else_=0)), 0)
        for lo, hi in itertools.pairwise(edges)
    ]
    row = (await session.execute(select(*buckets).where(column >= edges[0], column < now))).one()
    return [int(count) for count in row]


async def node_runs_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(NodeRunRow.status, func.count()).group_by(NodeRunRow.status)
    )
    return {status: int(count) for status, count in rows}


async def waiting_executions(session: AsyncSession) -> int:
    count = await session.scalar(
        select(func.count(func.distinct(WaitRow.execution_id))).where(WaitRow.resolved_at.is_(None))
    )
    return int(count or 0)


async def skipped_node_ids(session: AsyncSession, execution_id: str) -> set[str]:
    """Nodes the engine reported as skipped (dead-path elimination) at some point."""
    rows = await session.execute(
        select(ExecutionEventRow.node_id)
        .where(
            ExecutionEventRow.execution_id == execution_id, ExecutionEventRow.type == "node.skipped"
        )
        .distinct()
    )
    return {node_id for (node_id,) in rows if node_id}
