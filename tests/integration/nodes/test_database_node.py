"""``database`` nodes through the REST API, on a real SQLite file and a real PostgreSQL
database (each test runs against both as the *connection* target; the engine's own
database is a SQLite file). What the node did is checked in the target database itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.acceptance.conftest import free_port
from tests.integration.engine.conftest import (
    BASE,
    Client,
    chain,
    engine_client,
    node,
    node_runs,
    run,
    script,
    workflow,
)

INJECTION = "'; DROP TABLE customers; --"
QUICK_RETRIES = {"max_attempts": 2, "delay": 0.01, "backoff": "fixed"}
SECRET_PASSWORD = "s3cret-Pa55word"


@dataclass
class Target:
    """The database the nodes talk to, and a way for the test to look inside it."""

    backend: str
    url: str  # as written in [connections.NAME]
    admin: str  # for the test: a sqlite file path or an asyncpg DSN

    async def execute(self, sql: str) -> None:
        if self.backend == "sqlite":
            with sqlite3.connect(self.admin) as conn:
                conn.executescript(sql)
            return
        conn = await asyncpg.connect(self.admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        if self.backend == "sqlite":
            with sqlite3.connect(self.admin) as conn:
                return [tuple(row) for row in conn.execute(sql)]
        conn = await asyncpg.connect(self.admin)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()


SCHEMA = {
    "sqlite": """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT);
        INSERT INTO customers (name, country) VALUES
            ('Ada', 'GB'), ('Grace', 'US'), ('Alan', 'GB'), ('Edsger', 'NL'), ('Barbara', 'US');
    """,
    "postgres": """
        CREATE TABLE customers (id SERIAL PRIMARY KEY, name TEXT NOT NULL, country TEXT);
        INSERT INTO customers (name, country) VALUES
            ('Ada', 'GB'), ('Grace', 'US'), ('Alan', 'GB'), ('Edsger', 'NL'), ('Barbara', 'US');
    """,
}


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    """A SQLite file, or a fresh PostgreSQL database named by a plain postgresql:// URL."""
    if request.param == "sqlite":
        path = tmp_path / "shop.db"
        return Target("sqlite", f"sqlite:///{path}", str(path))
    postgres_url: str = request.getfixturevalue("postgres_url")
    url = make_url(postgres_url)
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return Target("postgres", plain, plain)


@pytest.fixture
async def client(target: Target, sqlite_url: str) -> AsyncIterator[Client]:
    await target.execute(SCHEMA[target.backend])
    connections = {
        "connections.shop": {"url": target.url},
        "connections.shop_ro": {"url": target.url, "read_only": True},
    }
    async with engine_client(sqlite_url, **connections) as test_client:
        yield test_client


def db(
    query: str,
    params: Any = None,
    node_id: str = "q",
    *,
    retry_policy: dict[str, Any] | None = None,
    **config: Any,
) -> dict[str, Any]:
    """A database node on connection ``shop`` (or ``connection=…``)."""
    found: dict[str, Any] = {"connection": config.pop("connection", "shop"), "query": query}
    if params is not None:
        found["params"] = params
    fields = {"retry_policy": retry_policy} if retry_policy else {}
    return node(node_id, "database", {**found, **config}, **fields)


def output_of(execution: dict[str, Any], node_id: str = "q") -> dict[str, Any]:
    assert execution["status"] == "completed", execution["error"]
    found: dict[str, Any] = node_runs(execution, node_id)[-1]["output"]
    return found


def error_of(execution: dict[str, Any], node_id: str = "q") -> str:
    assert execution["status"] == "failed", execution
    message: str = node_runs(execution, node_id)[-1]["error"]["message"]
    return message


# --- reading rows ---------------------------------------------------------------------


async def test_select_returns_rows_as_dicts_with_count(client: Client) -> None:
    document = workflow([db("SELECT id, name FROM customers WHERE country = 'GB' ORDER BY id")])
    output = output_of(await run(client, document))
    assert output == {
        "rows": [{"id": 1, "name": "Ada"}, {"id": 3, "name": "Alan"}],
        "row_count": 2,
        "truncated": False,
    }


async def test_question_mark_params_are_bound_in_order(client: Client) -> None:
    document = workflow(
        [
            script("prepare", "country = 'US'", "min_id = 2"),
            db(
                "SELECT name FROM customers WHERE country = ? AND id >= ? ORDER BY id",
                ["${country}", "${min_id}"],
            ),
        ],
        chain("prepare", "q"),
    )
    output = output_of(await run(client, document))
    assert [row["name"] for row in output["rows"]] == ["Grace", "Barbara"]


async def test_named_params_are_bound_by_name(client: Client) -> None:
    document = workflow(
        [
            db(
                "SELECT name FROM customers WHERE country = :country AND name <> :skip ORDER BY id",
                {"skip": "Ada", "country": "${region}"},
            )
        ],
        variables={"region": {"name": "region", "type": "string", "default_value": "GB"}},
    )
    output = output_of(await run(client, document))
    assert output["rows"] == [{"name": "Alan"}]


async def test_colons_and_question_marks_inside_strings_and_comments_stay_text(
    client: Client,
) -> None:
    query = (
        "SELECT '10:30 ?' AS clock, name -- is it :name or ?\n"
        "FROM customers /* ? :x */ WHERE id = ?"
    )
    output = output_of(await run(client, workflow([db(query, [2])])))
    assert output["rows"] == [{"clock": "10:30 ?", "name": "Grace"}]


async def test_injection_in_a_parameter_stays_data(client: Client, target: Target) -> None:
    document = workflow(
        [
            db("INSERT INTO customers (name, country) VALUES (?, ?)", [INJECTION, "XX"], "ins"),
            db("SELECT name FROM customers WHERE name = :name", {"name": INJECTION}, "sel"),
        ],
        chain("ins", "sel"),
    )
    execution = await run(client, document)
    assert output_of(execution, "sel")["rows"] == [{"name": INJECTION}]
    assert await target.fetch("SELECT COUNT(*) FROM customers") == [(6,)]
    assert await target.fetch("SELECT name FROM customers WHERE country = 'XX'") == [(INJECTION,)]


async def test_max_rows_limits_the_rows_and_says_it_truncated(client: Client) -> None:
    document = workflow(
        [
            db("SELECT id FROM customers ORDER BY id", node_id="cut", max_rows=3),
            db("SELECT id FROM customers ORDER BY id", node_id="exact", max_rows=5),
        ]
    )
    execution = await run(client, document)
    cut = output_of(execution, "cut")
    assert cut == {"rows": [{"id": 1}, {"id": 2}, {"id": 3}], "row_count": 3, "truncated": True}
    assert any("more rows matched" in line for line in node_runs(execution, "cut")[0]["logs"])
    assert output_of(execution, "exact")["truncated"] is False
    assert output_of(execution, "exact")["row_count"] == 5


async def test_fetch_one_gives_the_first_row_or_null(client: Client) -> None:
    document = workflow(
        [
            db("SELECT name FROM customers WHERE id = :id", {"id": 4}, "hit", fetch="one"),
            db("SELECT name FROM customers WHERE id = :id", {"id": 99}, "miss", fetch="one"),
        ]
    )
    execution = await run(client, document)
    assert output_of(execution, "hit") == {
        "rows": [{"name": "Edsger"}],
        "row": {"name": "Edsger"},
        "row_count": 1,
        "truncated": False,
    }
    assert output_of(execution, "miss")["row"] is None


async def test_values_json_cannot_hold_become_json_friendly(client: Client, target: Target) -> None:
    if target.backend == "sqlite":
        query = "SELECT X'DEADBEEF' AS raw, 1.5 AS ratio, 'é' AS text"
        expected = {"raw": "3q2+7w==", "ratio": 1.5, "text": "é"}
    else:
        query = (
            "SELECT '\\xdeadbeef'::bytea AS raw, 12.50::numeric(6,2) AS price, "
            "3::numeric AS whole, '2024-05-01T10:00:00Z'::timestamptz AT TIME ZONE 'UTC' AS at, "
            "'2024-05-01'::date AS day, interval '90 seconds' AS wait, "
            "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS uid, "
            """'{"k": [1, 2]}'::jsonb AS doc, ARRAY[1, 2] AS list"""
        )
        expected = {
            "raw": "3q2+7w==",
            "price": 12.5,
            "whole": 3,
            "at": "2024-05-01T10:00:00",
            "day": "2024-05-01",
            "wait": 90.0,
            "uid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "doc": {"k": [1, 2]},
            "list": [1, 2],
        }
    output = output_of(await run(client, workflow([db(query)])))
    assert output["rows"] == [expected]


async def test_duplicate_column_names_are_all_kept(client: Client) -> None:
    query = "SELECT a.id, b.id FROM customers a JOIN customers b ON b.id = a.id + 1 WHERE a.id = 1"
    output = output_of(await run(client, workflow([db(query)])))
    assert output["rows"] == [{"id": 1, "id_2": 2}]


# --- writing --------------------------------------------------------------------------


async def test_insert_returns_count_and_last_insert_id(client: Client, target: Target) -> None:
    document = workflow([db("INSERT INTO customers (name) VALUES (:name)", {"name": "Frances"})])
    output = output_of(await run(client, document))
    assert output["row_count"] == 1
    if target.backend == "sqlite":
        assert output["last_insert_id"] == 6
    else:
        assert output["last_insert_id"] is None  # PostgreSQL: use RETURNING
    assert await target.fetch("SELECT id FROM customers WHERE name = 'Frances'") == [(6,)]


async def test_update_returns_the_rows_it_changed(client: Client, target: Target) -> None:
    document = workflow([db("UPDATE customers SET country = ? WHERE country = ?", ["UK", "GB"])])
    output = output_of(await run(client, document))
    assert output == {"row_count": 2, "last_insert_id": None}
    assert await target.fetch("SELECT COUNT(*) FROM customers WHERE country = 'UK'") == [(2,)]


async def test_insert_returning_gives_rows(client: Client) -> None:
    document = workflow(
        [db("INSERT INTO customers (name) VALUES (?) RETURNING id, name", ["Konrad"])]
    )
    output = output_of(await run(client, document))
    assert output["rows"] == [{"id": 6, "name": "Konrad"}]


async def test_a_failing_statement_changes_nothing(client: Client, target: Target) -> None:
    # the second row breaks the NOT NULL constraint: the first must not stay behind
    document = workflow([db("INSERT INTO customers (name) VALUES (?), (?)", ["Kept?", None])])
    error = error_of(await run(client, document))
    assert "null" in error.lower()
    assert await target.fetch("SELECT COUNT(*) FROM customers") == [(5,)]


# --- read-only connections ------------------------------------------------------------


async def test_read_only_connection_reads_but_refuses_writes(
    client: Client, target: Target
) -> None:
    document = workflow(
        [
            db("SELECT COUNT(*) AS n FROM customers", node_id="read", connection="shop_ro"),
            db("DELETE FROM customers", node_id="write", connection="shop_ro"),
        ],
        chain("read", "write"),
    )
    execution = await run(client, document)
    assert output_of_any(execution, "read")["rows"] == [{"n": 5}]
    message = error_of(execution, "write")
    assert "'shop_ro' is read-only" in message
    assert len(node_runs(execution, "write")) == 1  # not retried
    assert await target.fetch("SELECT COUNT(*) FROM customers") == [(5,)]


# --- errors ---------------------------------------------------------------------------


async def test_errors_never_show_the_url_or_password(sqlite_url: str, tmp_path: Path) -> None:
    closed_port = free_port()
    hidden_dir = tmp_path / "private-dir-name"
    connections = {
        "connections.down": {
            "url": f"postgresql://admin:{SECRET_PASSWORD}@127.0.0.1:{closed_port}/shop"
        },
        "connections.missing": {"url": f"sqlite:///{hidden_dir}/none.db", "read_only": True},
    }
    down_flow = workflow(
        [db("SELECT 1", node_id="down", connection="down", retry_policy=QUICK_RETRIES)],
        id="down",
    )
    missing_flow = workflow([db("SELECT 1", node_id="missing", connection="missing")], id="gone")
    async with engine_client(sqlite_url, **connections) as client:
        down_run = await run(client, down_flow)
        missing_run = await run(client, missing_flow)
        texts = [
            (await client.get(f"{BASE}/executions/{execution['id']}")).text
            for execution in (down_run, missing_run)
        ]
    for text in texts:
        for secret in (SECRET_PASSWORD, f"{closed_port}/shop", "private-dir-name", "://"):
            assert secret not in text
    down = node_runs(down_run, "down")
    assert len(down) == 2  # a refused connection is worth another attempt
    assert "database connection 'down'" in down[-1]["error"]["message"]
    assert "database connection 'missing'" in error_of(missing_run, "missing")


async def test_bad_sql_fails_without_retry(client: Client) -> None:
    document = workflow([db("SELEC name FROM customers", retry_policy=QUICK_RETRIES)])
    execution = await run(client, document)
    assert "syntax" in error_of(execution).lower()
    assert len(node_runs(execution, "q")) == 1


async def test_params_that_do_not_fit_the_placeholders_fail_the_node(client: Client) -> None:
    document = workflow(
        [
            script("prepare", "values = ['GB']"),
            db("SELECT name FROM customers WHERE country = ? AND id > ?", "${values}"),
        ],
        chain("prepare", "q"),
    )
    error = error_of(await run(client, document))
    assert "2 ? placeholder(s)" in error
    assert "gives 1 value(s)" in error


# --- definition-time checks -----------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"connection": "nope", "query": "SELECT 1"}, 'connection "nope" is not configured'),
        (
            {"connection": "shop", "query": "SELECT * FROM customers WHERE id = ${id}"},
            "the query contains ${…}",
        ),
        ({"connection": "shop", "query": "SELECT 1; DROP TABLE customers"}, "2 statements"),
        ({"connection": "shop", "query": "SELECT ?", "params": {}}, None),
        (
            {"connection": "shop", "query": "SELECT :a", "params": ["x"]},
            "named placeholders (:a)",
        ),
        ({"connection": "shop", "query": "SELECT ?, ?", "params": ["x"]}, "2 ? placeholder(s)"),
        ({"connection": "shop", "query": "SELECT :a, :b", "params": {"a": 1}}, "no value for :b"),
    ],
)
async def test_definition_errors_are_reported_when_uploading(
    client: Client, config: dict[str, Any], expected: str | None
) -> None:
    response = await client.post(BASE, json=workflow([node("q", "database", config)]))
    if expected is None:
        assert response.status_code == 201, response.text
        return
    assert response.status_code == 422, response.text
    messages = [detail["message"] for detail in response.json()["error"]["details"]]
    assert any(expected in message for message in messages), messages


@pytest.mark.postgres
async def test_an_asyncpg_url_is_used_as_given(postgres_url: str, sqlite_url: str) -> None:
    flags = {
        "connections.pg": {"url": postgres_url},
        "connections.pg_ro": {"url": postgres_url, "read_only": True},
    }
    document = workflow(
        [
            db("CREATE TABLE notes (id SERIAL PRIMARY KEY, body TEXT)", node_id="make",
               connection="pg"),
            db("INSERT INTO notes (body) VALUES (:body) RETURNING id", {"body": INJECTION},
               node_id="add", connection="pg"),
            db("SELECT body, id::text AS id_text FROM notes WHERE id = :id", {"id": 1},
               node_id="read", connection="pg_ro"),
            db("DELETE FROM notes", node_id="write", connection="pg_ro"),
        ],
        chain("make", "add", "read", "write"),
    )  # fmt: skip
    async with engine_client(sqlite_url, **flags) as client:
        execution = await run(client, document)
    assert output_of_any(execution, "add")["rows"] == [{"id": 1}]
    assert output_of_any(execution, "read")["rows"] == [{"body": INJECTION, "id_text": "1"}]
    assert "'pg_ro' is read-only" in error_of(execution, "write")


def output_of_any(execution: dict[str, Any], node_id: str) -> dict[str, Any]:
    found: dict[str, Any] = node_runs(execution, node_id)[-1]["output"]
    return found
