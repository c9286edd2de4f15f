"""The global audit log: who did what to which object, and when (SPEC §8).

Rows are written for sign-ins (successful and failed), user and API key changes,
definition changes (the registry writes those in its own transactions), control
actions on executions and task decisions. A row holds ids, names and small facts —
never passwords, keys, tokens or payloads.

:meth:`AuditLog.add` composes a row into the caller's transaction (so a change and its
audit row commit together); :meth:`AuditLog.record` writes one row on its own (for
events that change nothing else, such as a failed sign-in).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.database import Database
from server.store.models import AuditRow, utcnow

#: Column widths of ``audit_log``: longer values are cut, never refused (an audit write
#: must not fail because a caller sent a 10,000-character username).
WIDTHS = {"actor": 200, "action": 60, "target_type": 40, "target_id": 200, "remote_addr": 64}


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """``GET /api/v1/audit`` filters (``target`` is a target id, ``at_to`` is exclusive)."""

    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target: str | None = None
    at_from: datetime | None = None
    at_to: datetime | None = None
    limit: int = 50
    offset: int = 0


def _cut(value: str | None, column: str) -> str | None:
    return None if value is None else value[: WIDTHS[column]]


def audit_row(
    action: str,
    *,
    actor: str | None,
    target_type: str | None = None,
    target_id: str | None = None,
    data: Mapping[str, Any] | None = None,
    remote_addr: str | None = None,
) -> AuditRow:
    """An unsaved audit row with every text cut to its column's width."""
    return AuditRow(
        at=utcnow(),
        actor=_cut(actor, "actor"),
        action=action[: WIDTHS["action"]],
        target_type=_cut(target_type, "target_type"),
        target_id=_cut(target_id, "target_id"),
        data=dict(data or {}),
        remote_addr=_cut(remote_addr, "remote_addr"),
    )


def row_json(row: AuditRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "actor": row.actor,
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "data": row.data,
        "remote_addr": row.remote_addr,
    }


class AuditLog:
    """Write and search the ``audit_log`` table."""

    def __init__(self, database: Database) -> None:
        self._database = database

    @staticmethod
    def add(
        session: AsyncSession,
        action: str,
        *,
        actor: str | None,
        target_type: str | None = None,
        target_id: str | None = None,
        data: Mapping[str, Any] | None = None,
        remote_addr: str | None = None,
    ) -> None:
        """Add a row to the caller's transaction (it commits or rolls back with it)."""
        session.add(
            audit_row(
                action,
                actor=actor,
                target_type=target_type,
                target_id=target_id,
                data=data,
                remote_addr=remote_addr,
            )
        )

    async def record(
        self,
        action: str,
        *,
        actor: str | None,
        target_type: str | None = None,
        target_id: str | None = None,
        data: Mapping[str, Any] | None = None,
        remote_addr: str | None = None,
    ) -> None:
        """Write one row in its own transaction.

        ``action`` is a stable dotted name such as ``login.succeeded``,
        ``login.failed``, ``api_key.created`` or ``execution.cancel``.
        """
        async with self._database.session() as session, session.begin():
            self.add(
                session,
                action,
                actor=actor,
                target_type=target_type,
                target_id=target_id,
                data=data,
                remote_addr=remote_addr,
            )

    async def search(self, where: AuditFilter) -> dict[str, Any]:
        """One page of rows, newest first, and the number of all matches."""
        async with self._database.reader() as session:
            total = (
                await session.execute(_filtered(select(func.count()).select_from(AuditRow), where))
            ).scalar_one()
            rows = await session.execute(
                _filtered(select(AuditRow), where)
                .order_by(AuditRow.id.desc())
                .limit(where.limit)
                .offset(where.offset)
            )
            entries = [row_json(row) for row in rows.scalars()]
        return {
            "entries": entries,
            "total": int(total),
            "limit": where.limit,
            "offset": where.offset,
        }


def _filtered(query: Select[Any], where: AuditFilter) -> Select[Any]:
    if where.actor is not None:
        query = query.where(AuditRow.actor == where.actor)
    if where.action is not None:
        # "user" matches user.created, user.disabled…; "user.created" only itself.
        if "." in where.action:
            query = query.where(AuditRow.action == where.action)
        else:
            query = query.where(AuditRow.action.startswith(f"{where.action}.", autoescape=True))
    if where.target_type is not None:
        query = query.where(AuditRow.target_type == where.target_type)
    if where.target is not None:
        query = query.where(AuditRow.target_id == where.target)
    if where.at_from is not None:
        query = query.where(AuditRow.at >= where.at_from)
    if where.at_to is not None:
        query = query.where(AuditRow.at < where.at_to)
    return query
