"""SQL for ``trigger_fires``: one row per cron fire, claimed exactly once.

The row's unique key (workflow, trigger, scheduled time) is the claim: an ``INSERT … ON
CONFLICT DO NOTHING`` inserts for exactly one process, whichever of several processes
(or a restarted one) tries the same fire, and only that process starts the execution.
Writes run on the engine's writer (synchronous Core on the connection it hands in);
reads for the API use an async session.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.models import TriggerFireRow, new_id

fires = cast(Table, TriggerFireRow.__table__)
UNIQUE_KEY = ("workflow_id", "trigger_id", "scheduled_for")
#: ``executions.idempotency_key`` holds at most this many characters.
MAX_KEY_LENGTH = 255
#: The longest error message kept with a fire.
MAX_ERROR_LENGTH = 2000


def start_key(kind: str, *parts: str) -> str:
    """The idempotency key of the execution a trigger starts, unique per fire.

    ``cron:<workflow>:<trigger>:<scheduled time>`` (or ``hook:…:<webhook-id>``) when it
    fits the column, else the same prefix with a SHA-256 of the parts: a second start of
    the same fire — a repair pass, a redelivered webhook — finds the first execution.
    """
    readable = ":".join((kind, *parts))
    if len(readable) <= MAX_KEY_LENGTH:
        return readable
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return f"{kind}:sha256:{digest}"


def claim(
    conn: Connection,
    *,
    workflow_id: str,
    trigger_id: str,
    scheduled_for: datetime,
    kind: str,
    now: datetime,
) -> str | None:
    """Record the fire; its id, or ``None`` when some process recorded it first."""
    values = {
        "id": new_id(),
        "workflow_id": workflow_id,
        "trigger_id": trigger_id,
        "scheduled_for": scheduled_for,
        "kind": kind,
        "fired_at": now,
    }
    dialect_insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = (
        dialect_insert(fires)
        .values(values)
        .on_conflict_do_nothing(index_elements=list(UNIQUE_KEY))
        .returning(fires.c.id)  # a row only when inserted (rowcount is -1 on psycopg)
    )
    inserted: str | None = conn.execute(statement).scalar_one_or_none()
    return inserted


def record_start(conn: Connection, fire_id: str, execution_id: str) -> None:
    conn.execute(update(fires).where(fires.c.id == fire_id).values(execution_id=execution_id))


def record_error(conn: Connection, fire_id: str, message: str) -> None:
    conn.execute(
        update(fires)
        .where(fires.c.id == fire_id, fires.c.execution_id.is_(None))
        .values(error=message[:MAX_ERROR_LENGTH])
    )


def unstarted(conn: Connection, claimed_before: datetime, limit: int = 100) -> list[dict[str, Any]]:
    """Fires claimed before ``claimed_before`` that never recorded an execution or error
    (their process died between the claim and the start)."""
    query = (
        select(fires)
        .where(
            fires.c.execution_id.is_(None),
            fires.c.error.is_(None),
            fires.c.fired_at < claimed_before,
        )
        .order_by(fires.c.fired_at)
        .limit(limit)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


async def last_scheduled(
    session: AsyncSession, workflow_id: str, trigger_id: str
) -> datetime | None:
    """The scheduled time of the newest recorded fire of one trigger."""
    query = select(func.max(fires.c.scheduled_for)).where(
        fires.c.workflow_id == workflow_id, fires.c.trigger_id == trigger_id
    )
    found: datetime | None = (await session.execute(query)).scalar_one_or_none()
    return found


async def recent(
    session: AsyncSession, workflow_id: str, trigger_id: str, limit: int
) -> list[dict[str, Any]]:
    """The newest ``limit`` fires of one trigger, newest first."""
    query = (
        select(fires)
        .where(fires.c.workflow_id == workflow_id, fires.c.trigger_id == trigger_id)
        .order_by(fires.c.scheduled_for.desc())
        .limit(limit)
    )
    return [dict(row) for row in (await session.execute(query)).mappings()]
