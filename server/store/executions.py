"""SQL for executions (the engine issue grows this module)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.models import ExecutionRow


async def recent(session: AsyncSession, limit: int) -> tuple[Sequence[ExecutionRow], int]:
    total = (await session.execute(select(func.count()).select_from(ExecutionRow))).scalar_one()
    rows = await session.execute(
        select(ExecutionRow).order_by(ExecutionRow.created_at.desc()).limit(limit)
    )
    return rows.scalars().all(), int(total)
