"""The database fixtures in tests/conftest.py give working, isolated databases."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine


async def _select_one(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT 1"))).scalar_one())
    finally:
        await engine.dispose()


async def test_database_url_works_on_each_backend(database_url: str) -> None:
    assert await _select_one(database_url) == 1


async def test_sqlite_url_is_a_file_in_tmp_path(sqlite_url: str, tmp_path: object) -> None:
    assert sqlite_url == f"sqlite+aiosqlite:///{tmp_path}/flowyard.db"
    assert await _select_one(sqlite_url) == 1


_seen_databases: set[str] = set()


@pytest.mark.postgres
@pytest.mark.parametrize("attempt", [1, 2])
async def test_each_postgres_test_gets_a_fresh_database(postgres_url: str, attempt: int) -> None:
    """Whichever run comes second must not see the table the first one created."""
    name = make_url(postgres_url).database
    assert name is not None
    assert name.startswith("fy_")
    assert name not in _seen_databases
    _seen_databases.add(name)

    engine = create_async_engine(postgres_url)
    try:
        async with engine.begin() as conn:
            tables = await conn.run_sync(lambda sync_conn: inspect(sync_conn).get_table_names())
            assert "isolation_marker" not in tables
            await conn.execute(text("CREATE TABLE isolation_marker (id integer PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO isolation_marker VALUES (1)"))
    finally:
        await engine.dispose()
