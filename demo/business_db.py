"""The demo's business database: customers and orders in ``demo.db`` (SPEC §10).

The examples' ``database`` nodes use it through the ``demo_db`` connection, and the demo
HTTP API (``demo.api``) answers from it, so a pipeline that marks orders through SQL
sees its change in the API's next answer. On demo start the tables are created and, when
empty, filled with a fixed set of customers and orders (the same on every start, so the
examples behave the same). Queries use the standard library's ``sqlite3`` in a worker
thread, one short connection each.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path
from typing import Any

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS customers (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        email TEXT NOT NULL UNIQUE,
        country TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS orders (
        id INTEGER PRIMARY KEY,
        customer_id INTEGER NOT NULL REFERENCES customers (id),
        amount REAL NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS ix_orders_customer ON orders (customer_id)",
    "CREATE INDEX IF NOT EXISTS ix_orders_status ON orders (status)",
)

#: (name, email, country) of the demo's customers; their ids are 1, 2, …
CUSTOMERS: tuple[tuple[str, str, str], ...] = (
    ("Ada Lovelace", "ada@example.com", "GB"),
    ("Grace Hopper", "grace@example.com", "US"),
    ("Alan Turing", "alan@example.com", "GB"),
    ("Katherine Johnson", "katherine@example.com", "US"),
    ("Emmy Noether", "emmy@example.com", "DE"),
    ("Marie Curie", "marie@example.com", "FR"),
    ("Konrad Zuse", "konrad@example.com", "DE"),
    ("Margaret Hamilton", "margaret@example.com", "US"),
    ("Edsger Dijkstra", "edsger@example.com", "NL"),
    ("Barbara Liskov", "barbara@example.com", "US"),
    ("Tim Berners-Lee", "tim@example.com", "GB"),
    ("Frances Allen", "frances@example.com", "US"),
)
ORDER_COUNT = 40
STATUSES = ("pending", "shipped", "pending", "delivered", "pending", "cancelled")
FIRST_DAY = date(2024, 1, 8)
CUSTOMER_COLUMNS = "id, name, email, country, created_at"
ORDER_COLUMNS = "id, customer_id, amount, status, created_at"
#: The largest id SQLite can hold; larger ids in a URL simply do not exist.
MAX_ID = 2**63 - 1


def seed_orders() -> list[tuple[int, int, float, str, str]]:
    """The demo's orders: (id, customer_id, amount, status, created_at).

    Spread over every customer, amounts from 9.99 to 297.49 (about half of them at or
    above 100, what the data pipeline looks for) and a mix of statuses.
    """
    orders = []
    for number in range(1, ORDER_COUNT + 1):
        customer_id = (number * 5) % len(CUSTOMERS) + 1
        amount = round(((number * 37) % 24) * 12.5 + 9.99, 2)
        status = STATUSES[number % len(STATUSES)]
        created = (FIRST_DAY + timedelta(days=number * 3)).isoformat()
        orders.append((number, customer_id, amount, status, created))
    return orders


class BusinessDatabase:
    """Customers and orders in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def prepare(self) -> bool:
        """Create the tables and fill them when empty; True when it filled them."""
        return await asyncio.to_thread(self._prepare)

    async def customers(self, *, country: str | None = None) -> list[dict[str, Any]]:
        where, params = _filters({"country": country})
        # bandit B608, a false alarm: fixed column names, every value bound as ?
        sql = f"SELECT {CUSTOMER_COLUMNS} FROM customers{where} ORDER BY id"  # nosec
        return await self._query(sql, params)

    async def customer(self, customer_id: int) -> dict[str, Any] | None:
        if not 0 < customer_id <= MAX_ID:
            return None
        # bandit B608, a false alarm: constant SQL
        sql = f"SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ?"  # nosec
        rows = await self._query(sql, (customer_id,))
        return rows[0] if rows else None

    async def orders(
        self,
        *,
        status: str | None = None,
        customer_id: int | None = None,
        min_amount: float | None = None,
    ) -> list[dict[str, Any]]:
        where, params = _filters({"status": status, "customer_id": customer_id})
        if min_amount is not None:
            where += (" AND " if where else " WHERE ") + "amount >= ?"
            params.append(min_amount)
        # bandit B608, a false alarm: fixed column names, every value bound as ?
        sql = f"SELECT {ORDER_COLUMNS} FROM orders{where} ORDER BY id"  # nosec
        return await self._query(sql, params)

    async def order(self, order_id: int) -> dict[str, Any] | None:
        if not 0 < order_id <= MAX_ID:
            return None
        # bandit B608, a false alarm: constant SQL
        sql = f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?"  # nosec
        rows = await self._query(sql, (order_id,))
        return rows[0] if rows else None

    async def _query(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._read, sql, params)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30)
        connection.row_factory = sqlite3.Row
        return connection

    def _read(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        with closing(self._connect()) as connection:
            return [dict(row) for row in connection.execute(sql, tuple(params))]

    def _prepare(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as connection, connection:
            connection.execute("PRAGMA journal_mode=WAL")
            for statement in SCHEMA:
                connection.execute(statement)
            if connection.execute("SELECT COUNT(*) FROM customers").fetchone()[0]:
                return False
            created = FIRST_DAY.isoformat()
            connection.executemany(
                "INSERT INTO customers (id, name, email, country, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(n, *customer, created) for n, customer in enumerate(CUSTOMERS, 1)],
            )
            connection.executemany(
                "INSERT INTO orders (id, customer_id, amount, status, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                seed_orders(),
            )
        return True


def _filters(values: dict[str, Any]) -> tuple[str, list[Any]]:
    """`` WHERE a = ? AND b = ?`` for the given (fixed) column names whose value is set."""
    used = {column: value for column, value in values.items() if value is not None}
    if not used:
        return "", []
    return " WHERE " + " AND ".join(f"{column} = ?" for column in used), list(used.values())
