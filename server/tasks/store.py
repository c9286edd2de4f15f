"""SQL for the approvals inbox: human tasks and their decisions.

Writes are synchronous SQLAlchemy Core functions of the connection the engine's writer
hands in (``engine.journal.run``), so a decision, the task's new state and the answer
to the node's wait commit in one transaction with the engine's own bookkeeping. Reads
for the API are async, on the read-only session.

A task's *effective* status joins its execution: a task still ``open`` whose execution
has ended (cancelled, failed, completed without it) shows as ``cancelled`` — nobody is
waiting for it any more — without a write on the engine's cancel path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    Text,
    and_,
    case,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.models import ExecutionRow, HumanTaskRow, NodeRunRow, TaskDecisionRow, UserRow

tasks = cast(Table, HumanTaskRow.__table__)
decisions = cast(Table, TaskDecisionRow.__table__)
executions = cast(Table, ExecutionRow.__table__)
users = cast(Table, UserRow.__table__)
node_runs = cast(Table, NodeRunRow.__table__)

Row = dict[str, Any]
#: Execution statuses in which a task can still be decided.
LIVE_EXECUTION = ("pending", "running", "suspended")
STATUSES = ("open", "completed", "cancelled", "expired")


def effective_status() -> ColumnElement[Any]:
    return case(
        (
            and_(tasks.c.status == "open", executions.c.status.not_in(LIVE_EXECUTION)),
            "cancelled",
        ),
        else_=tasks.c.status,
    )


def _joined() -> Select[Any]:
    """A task with what the inbox shows of its execution."""
    return select(
        tasks,
        executions.c.workflow_id,
        executions.c.workflow_version,
        executions.c.owner.label("execution_owner"),
        executions.c.triggered_by.label("execution_triggered_by"),
        executions.c.status.label("execution_status"),
        effective_status().label("effective_status"),
    ).join(executions, executions.c.id == tasks.c.execution_id)


# --- the writer's side (sync, inside the engine's transaction) ---------------------------


def latest_for_key(conn: Connection, execution_id: str, node_id: str, key: str) -> Row | None:
    """The newest task opened by the node run with idempotency key ``key``."""
    found = (
        conn.execute(
            select(tasks)
            .where(
                tasks.c.execution_id == execution_id,
                tasks.c.node_id == node_id,
                tasks.c.idempotency_key == key,
            )
            .order_by(tasks.c.created_at.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return dict(found) if found else None


def open_for_node(conn: Connection, execution_id: str, node_id: str) -> list[Row]:
    rows = conn.execute(
        select(tasks).where(
            tasks.c.execution_id == execution_id,
            tasks.c.node_id == node_id,
            tasks.c.status == "open",
        )
    )
    return [dict(r) for r in rows.mappings()]


def insert_task(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(tasks).values(dict(values)))


def load(conn: Connection, task_id: str, *, lock: bool = False) -> Row | None:
    """The task joined with its execution; ``lock`` takes the row lock (PostgreSQL)."""
    query = _joined().where(tasks.c.id == task_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update(of=tasks)
    found = conn.execute(query).mappings().first()
    return dict(found) if found else None


def compare_and_set(
    conn: Connection, task_id: str, row_version: int, values: Mapping[str, Any]
) -> bool:
    """Update the task only if nobody changed it since ``row_version`` was read."""
    result = conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.row_version == row_version)
        .values({**values, "row_version": row_version + 1})
    )
    return bool(result.rowcount)


def decisions_of(conn: Connection, task_id: str) -> list[Row]:
    rows = conn.execute(
        select(decisions).where(decisions.c.task_id == task_id).order_by(decisions.c.at)
    )
    return [dict(r) for r in rows.mappings()]


def node_status(conn: Connection, execution_id: str, node_id: str) -> str | None:
    """The status of the node's current run (``None``: it has none)."""
    found = conn.execute(
        select(node_runs.c.status)
        .where(
            node_runs.c.execution_id == execution_id,
            node_runs.c.node_id == node_id,
            node_runs.c.kind == "node",
            node_runs.c.superseded.is_(False),
        )
        .order_by(node_runs.c.generation.desc(), node_runs.c.attempt.desc())
        .limit(1)
    ).scalar()
    return str(found) if found is not None else None


def insert_decision(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(decisions).values(dict(values)))


# --- the API's side (async, read-only) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """What ``GET /api/v1/tasks`` asks for; ``None`` = no condition."""

    status: str | None = None
    assignee: str | None = None
    role: str | None = None
    #: (name, roles): tasks assigned to or claimed by name, or offered to one of roles.
    mine: tuple[str, frozenset[str]] | None = None
    execution_id: str | None = None
    limit: int = 50
    offset: int = 0
    #: ``"created"``: newest opened first; ``"completed"``: most recently decided first
    #: (the dashboard's history of decisions).
    newest: Literal["created", "completed"] = "created"


def _has_role(role: str) -> ColumnElement[bool]:
    """``candidate_roles`` (a JSON list) contains ``role`` — by text, on both backends.

    Role names are letters, digits and ``_ . @ + : -`` (``server.identity.NAME``), which
    JSON writes unescaped, so the quoted name appears verbatim in the stored text.
    """
    escaped = role.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sql_cast(tasks.c.candidate_roles, Text).like(f'%"{escaped}"%', escape="\\")


def _filtered(query: Select[Any], where: TaskFilter) -> Select[Any]:
    if where.status is not None:
        query = query.where(effective_status() == where.status)
    if where.assignee is not None:
        query = query.where(tasks.c.assignee == where.assignee)
    if where.role is not None:
        query = query.where(_has_role(where.role))
    if where.mine is not None:
        name, roles = where.mine
        query = query.where(
            or_(
                tasks.c.assignee == name,
                tasks.c.claimed_by == name,
                *(_has_role(role) for role in sorted(roles)),
            )
        )
    if where.execution_id is not None:
        query = query.where(tasks.c.execution_id == where.execution_id)
    return query


async def search(session: AsyncSession, where: TaskFilter) -> tuple[list[Row], int]:
    """One page of tasks, newest first (by ``where.newest``), and the number of all
    matches."""
    total = (
        await session.execute(
            _filtered(
                select(func.count())
                .select_from(tasks)
                .join(executions, executions.c.id == tasks.c.execution_id),
                where,
            )
        )
    ).scalar_one()
    order = (
        (tasks.c.completed_at.desc().nulls_last(), tasks.c.id)
        if where.newest == "completed"
        else (tasks.c.created_at.desc(), tasks.c.id)
    )
    rows = await session.execute(
        _filtered(_joined(), where).order_by(*order).limit(where.limit).offset(where.offset)
    )
    return [dict(r) for r in rows.mappings()], int(total)


async def get(session: AsyncSession, task_id: str) -> tuple[Row, list[Row]] | None:
    """A task joined with its execution, and its decisions (oldest first)."""
    found = (await session.execute(_joined().where(tasks.c.id == task_id))).mappings().first()
    if found is None:
        return None
    rows = await session.execute(
        select(decisions).where(decisions.c.task_id == task_id).order_by(decisions.c.at)
    )
    return dict(found), [dict(r) for r in rows.mappings()]


async def user_email(session: AsyncSession, username: str) -> str | None:
    """The e-mail address of an enabled user, if they have one."""
    found = await session.scalar(
        select(users.c.email).where(users.c.username == username, users.c.disabled.is_(False))
    )
    return str(found) if found else None


def at_iso(value: datetime | None) -> str | None:
    """UTC ISO-8601 with ``Z``, as elsewhere in the API."""
    return value.isoformat().replace("+00:00", "Z") if value else None


def history_entry(action: str, actor: str | None, at: datetime, **data: Any) -> Row:
    return {"action": action, "actor": actor, "at": at_iso(at), **data}


def decision_rows(rows: Sequence[Row]) -> list[Row]:
    """Decisions as the API shows them."""
    return [
        {
            "decided_by": r["decided_by"],
            "outcome": r["outcome"],
            "comment": r["comment"],
            "data": r["data"],
            "at": at_iso(r["at"]),
        }
        for r in rows
    ]
