"""Delayed and scheduled starts (``delay``, ``start_at``) are durable: a pending execution
survives a restart, starts at its time afterwards, and can be cancelled while pending."""

from __future__ import annotations

from datetime import timedelta

from tests.integration.engine.conftest import (
    TERMINAL,
    control,
    event_types,
    expr,
    get_execution,
    start,
    upload,
    wait_for_status,
    workflow,
)
from tests.integration.triggers.conftest import at, engine_client, now


async def test_a_delayed_start_survives_a_restart_and_runs_at_its_time(
    database_url: str,
) -> None:
    async with engine_client(database_url) as client:
        await upload(client, workflow([expr("a", "1")]))
        execution = await start(client, delay=1.5)
        assert execution["status"] == "pending"
    stopped = now()
    (delay,) = execution["waiting_on"]
    due = at(delay["until"])
    assert stopped < due, "the premise: the server stopped before the start was due"
    async with engine_client(database_url) as client:
        pending = await get_execution(client, execution["id"])
        if now() < due:
            assert pending["status"] == "pending"
        done = await wait_for_status(client, execution["id"], TERMINAL)
        assert done["status"] == "completed", done["error"]
        assert at(done["started_at"]) >= due
        kinds = await event_types(client, execution["id"])
        assert kinds.count(("execution.started", None)) == 1


async def test_a_scheduled_start_can_be_cancelled_while_pending_after_a_restart(
    database_url: str,
) -> None:
    start_at = (now() + timedelta(minutes=10)).isoformat()
    async with engine_client(database_url) as client:
        await upload(client, workflow([expr("a", "1")]))
        execution = await start(client, start_at=start_at)
        assert execution["status"] == "pending"
    async with engine_client(database_url) as client:
        pending = await get_execution(client, execution["id"])
        assert pending["status"] == "pending"
        assert [w["kind"] for w in pending["waiting_on"]] == ["delay"]
        assert at(pending["waiting_on"][0]["until"]) == at(start_at)
        response = await control(client, execution["id"], "cancel")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "cancelled"
    async with engine_client(database_url) as client:
        cancelled = await get_execution(client, execution["id"])
        assert cancelled["status"] == "cancelled"
        assert cancelled["started_at"] is None
        assert cancelled["waiting_on"] == []
        kinds = [kind for kind, _ in await event_types(client, execution["id"])]
        assert "execution.started" not in kinds
        assert "node.started" not in kinds
