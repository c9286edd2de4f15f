"""SQL for workflow definitions and their versions.

Functions take the caller's session, so a service composes several of them (and an
audit row) in one transaction. Nothing here validates a definition: that is the
registry service's job, before anything reaches this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.models import (
    AuditRow,
    ExecutionRow,
    WorkflowRow,
    WorkflowTagRow,
    WorkflowVersionRow,
    utcnow,
)

ACTIVE_EXECUTION_STATUSES = ("pending", "running", "suspended")
SORTABLE = {
    "name": WorkflowRow.name,
    "id": WorkflowRow.workflow_id,
    "status": WorkflowRow.status,
    "category": WorkflowRow.category,
    "owner": WorkflowRow.owner,
    "created_at": WorkflowRow.created_at,
    "updated_at": WorkflowRow.updated_at,
}


@dataclass(frozen=True, slots=True)
class WorkflowFilter:
    status: str | None = None
    category: str | None = None
    owner: str | None = None
    tag: str | None = None
    search: str | None = None
    sort_by: str = "updated_at"
    sort_order: Literal["asc", "desc"] = "desc"
    limit: int = 50
    offset: int = 0


async def find_workflow(session: AsyncSession, workflow_id: str) -> WorkflowRow | None:
    """The live (not deleted) workflow with this id."""
    result = await session.execute(
        select(WorkflowRow).where(
            WorkflowRow.workflow_id == workflow_id, WorkflowRow.deleted_at.is_(None)
        )
    )
    return result.scalar_one_or_none()


async def find_version(
    session: AsyncSession, workflow: WorkflowRow, version: str
) -> WorkflowVersionRow | None:
    result = await session.execute(
        select(WorkflowVersionRow).where(
            WorkflowVersionRow.workflow_pk == workflow.pk, WorkflowVersionRow.version == version
        )
    )
    return result.scalar_one_or_none()


async def newest_version(
    session: AsyncSession, workflow: WorkflowRow, *, status: str | None = None
) -> WorkflowVersionRow | None:
    query = select(WorkflowVersionRow).where(WorkflowVersionRow.workflow_pk == workflow.pk)
    if status is not None:
        query = query.where(WorkflowVersionRow.status == status)
    query = query.order_by(WorkflowVersionRow.version_key.desc()).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


async def list_versions(
    session: AsyncSession, workflow: WorkflowRow
) -> Sequence[WorkflowVersionRow]:
    result = await session.execute(
        select(WorkflowVersionRow)
        .where(WorkflowVersionRow.workflow_pk == workflow.pk)
        .order_by(WorkflowVersionRow.version_key)
    )
    return result.scalars().all()


def add_workflow(session: AsyncSession, document: dict[str, Any], actor: str | None) -> WorkflowRow:
    row = WorkflowRow(
        workflow_id=document["id"],
        created_by=actor,
        **_summary_columns(document),
        latest_version=document["version"],
        version_count=0,
    )
    session.add(row)
    return row


def add_version(
    session: AsyncSession,
    workflow: WorkflowRow,
    document: dict[str, Any],
    *,
    version_key: str,
    content_hash: str,
    actor: str | None,
) -> WorkflowVersionRow:
    row = WorkflowVersionRow(
        workflow_pk=workflow.pk,
        workflow_id=workflow.workflow_id,
        version=document["version"],
        version_key=version_key,
        status=document["status"],
        document=document,
        content_hash=content_hash,
        created_by=actor,
    )
    session.add(row)
    workflow.version_count += 1
    return row


async def refresh_summary(session: AsyncSession, workflow: WorkflowRow) -> None:
    """Point the workflow row (and its tags) at its newest version."""
    await session.flush()
    newest = await newest_version(session, workflow)
    if newest is None:  # pragma: no cover - a workflow always has a version
        return
    for name, value in _summary_columns(newest.document | {"status": newest.status}).items():
        setattr(workflow, name, value)
    workflow.latest_version = newest.version
    workflow.updated_at = utcnow()
    await session.execute(delete(WorkflowTagRow).where(WorkflowTagRow.workflow_pk == workflow.pk))
    session.add_all(WorkflowTagRow(workflow_pk=workflow.pk, tag=t) for t in set(workflow.tags))


def _summary_columns(document: dict[str, Any]) -> dict[str, Any]:
    tags = document.get("tags")
    return {
        "name": str(document.get("name", ""))[:500],
        "description": str(document.get("description") or ""),
        "status": document["status"],
        "category": _text_or_none(document.get("category")),
        "owner": _text_or_none(document.get("owner")),
        "tags": [str(t)[:200] for t in tags if isinstance(t, str)]
        if isinstance(tags, list)
        else [],
    }


def _text_or_none(value: Any) -> str | None:
    return str(value)[:200] if isinstance(value, str) and value else None


async def search_workflows(
    session: AsyncSession, query: WorkflowFilter
) -> tuple[Sequence[WorkflowRow], int]:
    """One page of live workflows matching the filter, and the count of all matches."""
    filtered = _filtered(select(WorkflowRow), query)
    total = (
        await session.execute(select(func.count()).select_from(filtered.subquery()))
    ).scalar_one()
    column = SORTABLE[query.sort_by]
    order = column.asc() if query.sort_order == "asc" else column.desc()
    page = filtered.order_by(order, WorkflowRow.workflow_id.asc())
    rows = (await session.execute(page.limit(query.limit).offset(query.offset))).scalars().all()
    return rows, total


def _filtered(statement: Select[Any], query: WorkflowFilter) -> Select[Any]:
    statement = statement.where(WorkflowRow.deleted_at.is_(None))
    if query.status:
        statement = statement.where(WorkflowRow.status == query.status)
    if query.category:
        statement = statement.where(WorkflowRow.category == query.category)
    if query.owner:
        statement = statement.where(WorkflowRow.owner == query.owner)
    if query.tag:
        statement = statement.where(
            select(WorkflowTagRow.tag)
            .where(WorkflowTagRow.workflow_pk == WorkflowRow.pk, WorkflowTagRow.tag == query.tag)
            .exists()
        )
    if query.search:
        pattern = "%" + _escape_like(query.search.lower()) + "%"
        statement = statement.where(
            or_(
                func.lower(WorkflowRow.workflow_id).like(pattern, escape="\\"),
                func.lower(WorkflowRow.name).like(pattern, escape="\\"),
                func.lower(WorkflowRow.description).like(pattern, escape="\\"),
            )
        )
    return statement


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def versions_for(
    session: AsyncSession, workflows: Sequence[WorkflowRow]
) -> dict[str, WorkflowVersionRow]:
    """The newest version row of each workflow, by workflow pk, in one query."""
    if not workflows:
        return {}
    wanted = {(w.pk, w.latest_version) for w in workflows}
    result = await session.execute(
        select(WorkflowVersionRow).where(
            WorkflowVersionRow.workflow_pk.in_([w.pk for w in workflows])
        )
    )
    return {
        row.workflow_pk: row for row in result.scalars() if (row.workflow_pk, row.version) in wanted
    }


async def count_active_executions(session: AsyncSession, workflow_id: str) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(ExecutionRow)
        .where(
            ExecutionRow.workflow_id == workflow_id,
            ExecutionRow.status.in_(ACTIVE_EXECUTION_STATUSES),
        )
    )
    return int(result.scalar_one())


def mark_deleted(workflow: WorkflowRow, at: datetime) -> None:
    workflow.deleted_at = at
    workflow.updated_at = at


def audit(
    session: AsyncSession,
    *,
    actor: str | None,
    action: str,
    target_id: str,
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditRow(
            actor=actor, action=action, target_type="workflow", target_id=target_id, data=data or {}
        )
    )
