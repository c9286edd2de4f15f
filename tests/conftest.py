"""Fixtures shared by the whole suite (no tests here).

Databases:

* ``sqlite_url`` — a fresh SQLite file in the test's tmp dir.
* ``postgres_url`` — a fresh, empty PostgreSQL database per test, cloned from the
  session's ``flowyard_template_<pid>`` database on the server named by
  ``FLOWYARD_TEST_POSTGRES_URL``
  (``make test`` starts a throwaway server and sets it). Without that variable the test
  skips; under ``CI=true`` it fails instead.
* ``database_url`` — parametrized: the test runs once on each backend (ids ``sqlite`` and
  ``postgres``; the second carries the ``postgres`` marker).

All URLs are SQLAlchemy async URLs (``sqlite+aiosqlite://…``, ``postgresql+asyncpg://…``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

from server.security import passwords

POSTGRES_URL_ENV = "FLOWYARD_TEST_POSTGRES_URL"
#: One per test session: sessions sharing a server must not drop each other's template.
TEMPLATE_DATABASE = f"flowyard_template_{os.getpid()}"
POSTGRES_MISSING = (
    "PostgreSQL not available: set FLOWYARD_TEST_POSTGRES_URL or run `make test`, "
    "which provisions one"
)

# Admin DSNs whose template database this session has already (re)created.
_templates_ready: set[str] = set()


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> None:
    """argon2's production parameters cost ~0.3 s a hash; tests use cheap ones (every
    test app creates a first admin; hashes made either way still verify)."""
    passwords.use_parameters(time_cost=1, memory_cost=8, parallelism=1)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


@pytest.fixture(scope="session", autouse=True)
def _ci_requires_postgres() -> None:
    """In CI every system component must be there: no silent PostgreSQL skips."""
    if in_ci() and not os.environ.get(POSTGRES_URL_ENV):
        pytest.exit(
            f"CI=true but {POSTGRES_URL_ENV} is not set: the PostgreSQL tests would be "
            "skipped. Run the suite with `make test`, which provisions PostgreSQL.",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/flowyard.db"


def _admin_dsn(url: URL) -> str:
    """asyncpg's DSN for the maintenance database named in the URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _ensure_template(conn: asyncpg.Connection, dsn: str) -> None:
    """Start each session from a new, empty template database."""
    if dsn in _templates_ready:
        return
    await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DATABASE}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{TEMPLATE_DATABASE}"')
    _templates_ready.add(dsn)


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    raw = os.environ.get(POSTGRES_URL_ENV)
    if not raw:
        if in_ci():
            pytest.fail(POSTGRES_MISSING)
        pytest.skip(POSTGRES_MISSING)

    url = make_url(raw)
    dsn = _admin_dsn(url)
    name = f"fy_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(dsn)
    try:
        await _ensure_template(conn, dsn)
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DATABASE}"')
    finally:
        await conn.close()

    yield url.set(database=name).render_as_string(hide_password=False)

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest) -> str:
    """The test runs once on SQLite and once on PostgreSQL."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url
