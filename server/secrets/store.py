"""The ``secrets`` table: a name, its Fernet ciphertext, and who changed it when.

Plain reads and writes on an async session; the caller owns the transaction. Nothing
here sees a plain value — encrypting and decrypting is the vault's job.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.models import SecretRow

secrets = cast(Table, SecretRow.__table__)
INFO_COLUMNS = (secrets.c.name, secrets.c.created_at, secrets.c.updated_at, secrets.c.updated_by)


async def ciphertexts(session: AsyncSession, names: Collection[str]) -> dict[str, bytes]:
    """The stored ciphertext of each of ``names`` that exists."""
    query = select(secrets.c.name, secrets.c.ciphertext).where(secrets.c.name.in_(list(names)))
    rows = (await session.execute(query)).all()
    return {name: bytes(ciphertext) for name, ciphertext in rows}


async def info(session: AsyncSession, name: str) -> dict[str, Any] | None:
    """A secret's name and times (never its ciphertext), or ``None``."""
    row = (
        (await session.execute(select(*INFO_COLUMNS).where(secrets.c.name == name)))
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def all_info(session: AsyncSession) -> list[dict[str, Any]]:
    """Every secret's name and times, by name."""
    rows = (await session.execute(select(*INFO_COLUMNS).order_by(secrets.c.name))).mappings()
    return [dict(row) for row in rows]


async def upsert(
    session: AsyncSession, name: str, ciphertext: bytes, actor: str | None, now: datetime
) -> bool:
    """Store ``ciphertext`` under ``name``; True when the secret is new."""
    changed = await session.execute(
        update(secrets)
        .where(secrets.c.name == name)
        .values(ciphertext=ciphertext, updated_at=now, updated_by=actor)
    )
    if getattr(changed, "rowcount", 0):
        return False
    await session.execute(
        insert(secrets).values(
            name=name, ciphertext=ciphertext, created_at=now, updated_at=now, updated_by=actor
        )
    )
    return True


async def remove(session: AsyncSession, name: str) -> bool:
    """Delete ``name``; False when there was no such secret."""
    result = await session.execute(delete(secrets).where(secrets.c.name == name))
    return bool(getattr(result, "rowcount", 0))
