"""Helpers for trigger tests: read a workflow's triggers and fires through the REST API.

Every wait polls (every 50 ms) until what it waits for is there; nothing sleeps in
place of work. Waiting for wall-clock time itself (a server kept down across scheduled
fires) is :func:`until_the_clock_passes`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import select

from server.store.database import Database
from server.store.models import TriggerFireRow
from tests.integration.engine.conftest import BASE, Client, engine_client, expr, workflow

POLL_SECONDS = 0.05
EVERY_SECOND = "* * * * * *"


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    async with engine_client(database_url) as test_client:
        yield test_client


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def now() -> datetime:
    return datetime.now(UTC)


async def until_the_clock_passes(moment: datetime) -> None:
    """Wait for wall-clock time itself (the world changing), not for work."""
    await asyncio.sleep(max((moment - now()).total_seconds(), 0) + 0.01)


def cron_workflow(workflow_id: str, schedule: str = EVERY_SECOND, **trigger: Any) -> dict:
    """A one-node workflow with one cron trigger (id ``every``)."""
    return workflow(
        [expr("a", "1")],
        id=workflow_id,
        triggers=[{"id": "every", "type": "cron", "schedule": schedule, **trigger}],
    )


async def describe(client: Client, workflow_id: str, last: int = 200) -> dict[str, Any]:
    response = await client.get(f"{BASE}/{workflow_id}/triggers", params={"last": last})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def fires(client: Client, workflow_id: str, trigger_id: str = "every") -> list[dict]:
    """The trigger's fires, oldest first."""
    listing = await describe(client, workflow_id)
    (trigger,) = [t for t in listing["triggers"] if t["id"] == trigger_id]
    found: list[dict[str, Any]] = trigger["last_fires"]
    return sorted(found, key=lambda fire: fire.get("scheduled_for") or fire["received_at"])


async def wait_for_fires(
    client: Client,
    workflow_id: str,
    predicate: Callable[[list[dict[str, Any]]], bool],
    *,
    trigger_id: str = "every",
    timeout: float = 30,
    what: str = "the fires",
) -> list[dict[str, Any]]:
    """Poll the trigger's fires until ``predicate`` holds for them; the fires then."""
    deadline = time.monotonic() + timeout
    while True:
        found = await fires(client, workflow_id, trigger_id)
        if predicate(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{workflow_id}/{trigger_id}: no {what} within {timeout}s: {found}"
            )
        await asyncio.sleep(POLL_SECONDS)


async def stored_fire_times(database_url: str, workflow_id: str) -> list[datetime]:
    """The scheduled times of every stored fire of a workflow (also of triggers that are
    gone, which the API no longer lists)."""
    database = Database(database_url)
    try:
        async with database.reader() as session:
            query = select(TriggerFireRow.scheduled_for).where(
                TriggerFireRow.workflow_id == workflow_id
            )
            return sorted((await session.scalars(query)).all())
    finally:
        await database.dispose()


def started(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fires that have started their execution."""
    return [fire for fire in found if fire["execution_id"]]


def fired_after(moment: datetime) -> Callable[[list[dict[str, Any]]], bool]:
    """A predicate: some fire scheduled after ``moment`` has started its execution."""
    return lambda found: any(at(f["scheduled_for"]) > moment for f in started(found))


def consecutive_seconds(found: list[dict[str, Any]]) -> bool:
    times = [at(fire["scheduled_for"]) for fire in found]
    return all(b - a == timedelta(seconds=1) for a, b in pairwise(times))
