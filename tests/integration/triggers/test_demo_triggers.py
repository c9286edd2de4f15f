"""The demo's trigger examples are live in demo mode: the weekly cron of
``examples-triggers`` shows its next fires, and the webhook ``examples-webhooks`` sends
to (``/api/v1/hooks/order-events``) starts ``examples-triggers`` with the payload."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient

from demo.config import demo_settings
from server.app import create_app
from server.config import load_settings
from tests.auth import ADMIN_HEADERS, with_admin_key
from tests.integration.engine.conftest import TERMINAL, Client, wait_for_status
from tests.integration.triggers.conftest import at, describe, now


@pytest.fixture
async def demo(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Client]:
    base = load_settings(
        with_admin_key({"server.database_url": sqlite_url, "demo.smtp_port": 0}), environ={}
    )
    async with AsyncTestClient(app=create_app(demo_settings(base, tmp_path / "demo"))) as client:
        client.headers.update(ADMIN_HEADERS)
        yield client


async def test_the_demo_triggers_are_live_with_their_next_fires(demo: Client) -> None:
    listing = await describe(demo, "examples-triggers")
    weekly, hook = listing["triggers"]
    assert (listing["live"], weekly["live"], hook["live"]) == (True, True, True)
    fires = [at(text) for text in weekly["next_fires"]]
    assert len(fires) == 5
    berlin = [fire.astimezone(ZoneInfo("Europe/Berlin")) for fire in fires]
    assert all((f.weekday(), f.hour, f.minute) == (0, 9, 0) for f in berlin)
    assert fires[0] > now()
    assert all(b - a == timedelta(days=7) for a, b in pairwise(berlin))
    assert hook["url"].endswith("/api/v1/hooks/order-events")


async def test_the_demo_hook_starts_examples_triggers_with_the_payload(demo: Client) -> None:
    # what the examples-webhooks workflow's send-event node posts
    payload = {"event": "order.updated", "order_id": 1, "sent_by": "someone"}
    response = await demo.post("/api/v1/hooks/order-events", json=payload)
    assert response.status_code == 202, response.text
    execution = await wait_for_status(demo, response.json()["execution_id"], TERMINAL)
    assert execution["status"] == "completed", execution["error"]
    assert execution["workflow_id"] == "examples-triggers"
    assert execution["input"] == payload
    assert execution["output"]["started_for"] == "order.updated"
