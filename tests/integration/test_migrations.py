"""The migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from server.store.database import Database
from server.store.migrate import current_revision, head_revision, upgrade
from server.store.models import Base


async def test_migrations_match_the_models(database_url: str) -> None:
    database = Database(database_url)
    try:
        await upgrade(database)
        assert await current_revision(database) == head_revision()

        def drift(connection: Connection) -> list[object]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))

        async with database.engine.connect() as connection:
            assert await connection.run_sync(drift) == []
        await upgrade(database)  # a second run is a no-op
    finally:
        await database.dispose()
