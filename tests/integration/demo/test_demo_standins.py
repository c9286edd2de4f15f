"""The demo's stand-ins (SPEC §10) in a real app in demo mode: the demo HTTP API answers
from the business database, mail sent by workflows lands in the SMTP sink and shows at
``/demo/mailbox``, and both stop with the server.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from demo.business_db import CUSTOMERS, ORDER_COUNT
from demo.config import BUSINESS_DB_FILE, demo_settings
from server.app import create_app
from server.config import Settings, load_settings
from tests.auth import ADMIN_HEADERS, with_admin_key
from tests.integration.engine.conftest import (
    TERMINAL,
    Client,
    chain,
    node,
    node_runs,
    run,
    wait_for_status,
    workflow,
)

API = "/demo/api"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # smtp_port 0: a free port, so parallel test runs never fight over 8025
    base = load_settings(
        with_admin_key({"server.database_url": database_url, "demo.smtp_port": 0}), environ={}
    )
    return demo_settings(base, tmp_path / "demo-data")


@pytest.fixture
async def client(settings: Settings, tmp_path: Path) -> AsyncIterator[Client]:
    definitions = tmp_path / "no-definitions"
    definitions.mkdir()
    app = create_app(settings, definitions_dir=definitions)
    async with AsyncTestClient(app=app) as test_client:
        test_client.headers.update(ADMIN_HEADERS)
        yield test_client


def business_rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(Path(settings.server.data_dir) / BUSINESS_DB_FILE) as conn:
        return [tuple(row) for row in conn.execute(sql)]


async def test_the_demo_api_answers_from_the_business_database(
    client: Client, settings: Settings
) -> None:
    customers = (await client.get(f"{API}/customers")).json()
    assert len(customers) == len(CUSTOMERS)
    assert customers[0] == {
        "id": 1,
        "name": CUSTOMERS[0][0],
        "email": CUSTOMERS[0][1],
        "country": CUSTOMERS[0][2],
        "created_at": customers[0]["created_at"],
    }
    gb = (await client.get(f"{API}/customers", params={"country": "GB"})).json()
    assert {c["country"] for c in gb} == {"GB"}
    assert len(gb) == sum(1 for c in CUSTOMERS if c[2] == "GB")

    orders = (await client.get(f"{API}/orders")).json()
    assert len(orders) == ORDER_COUNT
    assert orders == [
        dict(zip(("id", "customer_id", "amount", "status", "created_at"), row, strict=True))
        for row in business_rows(
            settings, "SELECT id, customer_id, amount, status, created_at FROM orders ORDER BY id"
        )
    ]
    large = (await client.get(f"{API}/orders", params={"min_amount": 100})).json()
    assert large
    assert all(o["amount"] >= 100 for o in large)

    # a change made in the database shows in the API's next answer
    business_rows(settings, "UPDATE customers SET name = 'Renamed' WHERE id = 2")
    assert (await client.get(f"{API}/customers/2")).json()["name"] == "Renamed"
    mine = (await client.get(f"{API}/customers/1/orders")).json()
    assert mine
    assert {o["customer_id"] for o in mine} == {1}


@pytest.mark.parametrize(
    "path", ["/customers/999", "/orders/0", "/customers/99999999999999999999999/orders"]
)
async def test_unknown_ids_are_404_in_the_error_shape(client: Client, path: str) -> None:
    response = await client.get(f"{API}{path}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_a_workflow_updates_the_demo_database_and_mails_the_sink(
    client: Client, settings: Settings
) -> None:
    document = workflow(
        [
            node(
                "hold",
                "database",
                {
                    "connection": "demo_db",
                    "query": "UPDATE orders SET status = ? WHERE id = ?",
                    "params": ["on_hold", 1],
                },
            ),
            node(
                "look",
                "database",
                {
                    "connection": "demo_db",
                    "query": "SELECT id, status FROM orders WHERE id = :id",
                    "params": {"id": 1},
                    "fetch": "one",
                },
            ),
            node(
                "tell",
                "email",
                {
                    "to": "ops@example.com",
                    "bcc": "audit@example.com",
                    "subject": "Order ${row.id} is ${row.status}",
                    "body": "Held by ${execution.id}",
                    "html": "<p>Order <b>{{ row.id }}</b>: {{ row.status }}</p>",
                },
            ),
        ],
        chain("hold", "look", "tell"),
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    assert node_runs(execution, "hold")[0]["output"]["row_count"] == 1

    order = (await client.get(f"{API}/orders/1")).json()
    assert order["status"] == "on_hold"

    mailbox = (await client.get("/demo/mailbox")).json()
    assert mailbox["total"] == 1
    (message,) = mailbox["messages"]
    sent = node_runs(execution, "tell")[0]["output"]
    assert message["message_id"] == sent["message_id"]
    assert message["subject"] == "Order 1 is on_hold"
    assert message["to"] == "ops@example.com"
    assert sorted(message["envelope_to"]) == ["audit@example.com", "ops@example.com"]
    assert message["envelope_from"] == "flowyard@localhost"
    assert message["text"].strip() == f"Held by {execution['id']}"
    assert message["html"].strip() == "<p>Order <b>1</b>: on_hold</p>"
    assert mailbox["smtp_port"] == settings.demo.smtp_port


async def test_a_seed_example_mails_the_sink(settings: Settings) -> None:
    app = create_app(settings)  # loads every definition in definitions/
    async with AsyncTestClient(app=app) as client:
        client.headers.update(ADMIN_HEADERS)
        body = {"input": {"event": "manual", "order_id": 7}}
        response = await client.post("/api/v1/workflows/examples-triggers/execute", json=body)
        assert response.status_code == 201, response.text
        execution_id = response.json()["id"]
        execution = await wait_for_status(client, execution_id, TERMINAL)
        assert execution["status"] == "completed", execution["error"]
        mailbox = (await client.get("/demo/mailbox")).json()
    (report,) = mailbox["messages"]
    assert report["subject"] == "Workflow started: manual"
    assert report["envelope_to"] == ["reports@example.com"]
    assert f"Execution {execution_id} started at" in report["text"]
    assert "(order 7)" in report["text"]


async def test_the_stand_ins_stop_with_the_server(settings: Settings, tmp_path: Path) -> None:
    definitions = tmp_path / "none"
    definitions.mkdir()
    async with AsyncTestClient(app=create_app(settings, definitions_dir=definitions)) as client:
        client.headers.update(ADMIN_HEADERS)
        assert (await client.get("/demo/mailbox")).status_code == 200
        with socket.socket() as probe, pytest.raises(OSError, match="in use"):
            probe.bind(("127.0.0.1", settings.demo.smtp_port))  # the sink holds it
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", settings.demo.smtp_port))  # free again
