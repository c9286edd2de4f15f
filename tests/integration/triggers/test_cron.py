"""Cron triggers in a real app: fires, following the registry, misfires after downtime.

Schedules fire every second (6-field cron), so each test waits a few real seconds; a
second workflow on the same schedule serves as a barrier when a test must show that
something did *not* fire ("the barrier fired twice since, the other did not").
"""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest

from server.store.database import Database
from server.store.migrate import upgrade
from server.store.models import TriggerFireRow
from tests.integration.engine.conftest import (
    BASE,
    EXECUTIONS,
    Client,
    engine_client,
    expr,
    get_execution,
    upload,
    workflow,
)
from tests.integration.triggers.conftest import (
    at,
    consecutive_seconds,
    cron_workflow,
    describe,
    fired_after,
    fires,
    now,
    started,
    stored_fire_times,
    until_the_clock_passes,
    wait_for_fires,
)


async def executions_of(client: Client, workflow_id: str) -> set[str]:
    response = await client.get(f"{BASE}/{workflow_id}/executions", params={"limit": 200})
    assert response.status_code == 200, response.text
    return {e["id"] for e in response.json()["executions"]}


async def test_an_every_second_cron_starts_one_execution_per_second(client: Client) -> None:
    document = cron_workflow("ticks", input={"n": 7})
    document["variables"] = {"n": {"name": "n", "type": "integer", "required": True}}
    await upload(client, document)
    listing = await describe(client, "ticks")
    (trigger,) = listing["triggers"]
    assert (listing["live"], trigger["live"], trigger["misfire"]) == (True, True, "run_once")
    upcoming = [at(t) for t in trigger["next_fires"]]
    assert len(upcoming) == 5
    assert all(b - a == timedelta(seconds=1) for a, b in pairwise(upcoming))
    assert upcoming[0] > now() - timedelta(seconds=1)

    found = await wait_for_fires(client, "ticks", lambda f: len(started(f)) >= 3)
    response = await client.patch(f"{BASE}/ticks", json={"status": "inactive"})
    assert response.status_code == 200, response.text

    found = started(await fires(client, "ticks"))
    assert len(found) >= 3
    assert consecutive_seconds(found), found
    assert {fire["kind"] for fire in found} == {"scheduled"}
    ids = [fire["execution_id"] for fire in found]
    assert len(set(ids)) == len(ids)
    # every execution of the workflow is one of the fires: none started twice
    assert await executions_of(client, "ticks") == set(ids)
    execution = await get_execution(client, ids[0])
    assert execution["input"] == {"n": 7}
    assert execution["triggered_by"] == "cron:every"
    assert execution["workflow_version"] == "1.0.0"
    stopped = await describe(client, "ticks")
    assert stopped["live"] is False
    assert stopped["triggers"][0]["next_fires"] == []


async def test_deactivating_stops_the_schedule_at_once(client: Client) -> None:
    await upload(client, cron_workflow("stopped"))
    await upload(client, cron_workflow("barrier"))
    await wait_for_fires(client, "stopped", lambda f: len(started(f)) >= 1)
    response = await client.patch(f"{BASE}/stopped", json={"status": "inactive"})
    assert response.status_code == 200, response.text
    answered = now()
    await wait_for_fires(client, "barrier", fired_after(answered + timedelta(seconds=1)))
    assert all(at(fire["scheduled_for"]) <= answered for fire in await fires(client, "stopped"))

    # activating it again brings the schedule back
    response = await client.patch(f"{BASE}/stopped", json={"status": "active"})
    assert response.status_code == 200, response.text
    await wait_for_fires(client, "stopped", fired_after(now()))


async def test_only_the_newest_active_versions_trigger_is_live(
    client: Client, database_url: str
) -> None:
    await upload(client, cron_workflow("versions", input={"n": 1}))
    await wait_for_fires(client, "versions", lambda f: len(started(f)) >= 1)
    second = cron_workflow("versions", input={"n": 2})
    second["version"] = "2.0.0"
    response = await client.put(f"{BASE}/versions", json=second)
    assert response.status_code == 201, response.text
    published = now()
    found = await wait_for_fires(client, "versions", fired_after(published))
    for fire in started(found):
        if at(fire["scheduled_for"]) > published:
            execution = await get_execution(client, fire["execution_id"])
            assert (execution["workflow_version"], execution["input"]) == ("2.0.0", {"n": 2})
    assert (await describe(client, "versions"))["version"] == "2.0.0"

    # a newer version without the trigger ends the schedule
    third = workflow([expr("a", "1")], id="versions", version="3.0.0")
    response = await client.put(f"{BASE}/versions", json=third)
    assert response.status_code == 201, response.text
    removed = now()
    await upload(client, cron_workflow("barrier-2"))
    await wait_for_fires(client, "barrier-2", fired_after(removed + timedelta(seconds=1)))
    assert (await describe(client, "versions"))["triggers"] == []
    assert all(moment <= removed for moment in await stored_fire_times(database_url, "versions"))


async def test_deleting_a_workflow_ends_its_schedule_and_its_hook(
    client: Client, database_url: str
) -> None:
    document = cron_workflow("doomed")
    document["triggers"].append({"id": "hook", "type": "webhook", "path": "doomed"})
    await upload(client, document)
    await wait_for_fires(client, "doomed", lambda f: len(started(f)) >= 1)
    response = await client.delete(f"{BASE}/doomed", params={"force": "true"})
    assert response.status_code == 204, response.text
    deleted = now()
    assert (await client.post("/api/v1/hooks/doomed", json={})).status_code == 404
    await upload(client, cron_workflow("barrier"))
    await wait_for_fires(client, "barrier", fired_after(deleted + timedelta(seconds=1)))
    scheduled = await stored_fire_times(database_url, "doomed")
    assert scheduled
    assert all(moment <= deleted for moment in scheduled)


async def test_a_disabled_trigger_never_fires_and_a_refused_input_is_recorded(
    client: Client,
) -> None:
    await upload(client, cron_workflow("disabled", enabled=False))
    refused = cron_workflow("refused")
    refused["variables"] = {"n": {"name": "n", "type": "integer", "required": True}}
    await upload(client, refused)
    (disabled,) = (await describe(client, "disabled"))["triggers"]
    assert (disabled["enabled"], disabled["live"], disabled["next_fires"]) == (False, False, [])
    found = await wait_for_fires(client, "refused", lambda f: len(f) >= 2 and f[0]["error"])
    assert found[0]["execution_id"] is None
    assert "n" in found[0]["error"]
    assert await executions_of(client, "refused") == set()
    assert await fires(client, "disabled") == []


async def downtime_fires(database_url: str, policies: dict[str, dict[str, Any]]) -> dict:
    """Run every-second crons, stop the server for 3.5 s, start it again; each
    workflow's fires (oldest first), the stop time and the restart time."""
    async with engine_client(database_url) as client:
        for workflow_id, trigger in policies.items():
            await upload(client, cron_workflow(workflow_id, **trigger))
        for workflow_id in policies:
            await wait_for_fires(client, workflow_id, lambda f: len(started(f)) >= 1)
    stopped = now()
    await until_the_clock_passes(stopped + timedelta(seconds=3.5))
    async with engine_client(database_url) as client:
        restarted = now()
        result = {}
        for workflow_id in policies:
            found = await wait_for_fires(
                client,
                workflow_id,
                lambda f: any(
                    fire["kind"] == "scheduled" and at(fire["scheduled_for"]) > restarted
                    for fire in started(f)
                ),
            )
            result[workflow_id] = found
    return {"fires": result, "stopped": stopped, "restarted": restarted}


async def test_misfire_policies_after_downtime(database_url: str) -> None:
    policies = {
        "once": {},  # run_once is the default
        "skip": {"misfire": "skip"},
        "all": {"misfire": "run_all", "max_catch_up": 2},
    }
    outcome = await downtime_fires(database_url, policies)
    stopped, restarted = outcome["stopped"], outcome["restarted"]
    catch_ups = {}
    for workflow_id, found in outcome["fires"].items():
        before = [f for f in found if at(f["scheduled_for"]) <= stopped]
        after = [f for f in found if at(f["scheduled_for"]) > stopped]
        assert before, workflow_id
        last_before = at(before[-1]["scheduled_for"])
        first_scheduled = min(
            at(f["scheduled_for"])
            for f in after
            if f["kind"] == "scheduled" and at(f["scheduled_for"]) > restarted
        )
        missed = (first_scheduled - last_before).total_seconds() - 1
        assert missed >= 3, f"{workflow_id}: the premise (3 missed fires) does not hold"
        caught = [f for f in after if f["kind"] == "catch_up"]
        # the catch-ups are the newest missed fires, right before the schedule resumed
        assert [at(f["scheduled_for"]) for f in caught] == [
            first_scheduled - timedelta(seconds=n) for n in range(len(caught), 0, -1)
        ]
        assert all(f["execution_id"] for f in found)
        catch_ups[workflow_id] = len(caught)
    assert catch_ups == {"once": 1, "skip": 0, "all": 2}


async def test_a_claimed_fire_whose_process_died_is_started_at_the_next_start(
    database_url: str,
) -> None:
    async with engine_client(database_url) as client:
        await upload(client, cron_workflow("weekly", "0 9 * * 1"))
    # what a process that died between claiming a fire and starting it leaves behind
    database = Database(database_url)
    scheduled = now().replace(microsecond=0) - timedelta(minutes=1)
    try:
        await upgrade(database)
        async with database.session() as session, session.begin():
            session.add(
                TriggerFireRow(
                    workflow_id="weekly",
                    trigger_id="every",
                    scheduled_for=scheduled,
                    fired_at=scheduled,
                )
            )
    finally:
        await database.dispose()
    async with engine_client(database_url) as client:
        (fire,) = await wait_for_fires(client, "weekly", lambda f: len(started(f)) == 1)
        assert at(fire["scheduled_for"]) == scheduled
        execution = await get_execution(client, fire["execution_id"])
        assert execution["triggered_by"] == "cron:every"
        listed = await client.get(EXECUTIONS, params={"workflow_id": "weekly"})
        assert listed.json()["total"] == 1


@pytest.mark.postgres
async def test_two_processes_start_each_fire_once(postgres_url: str) -> None:
    """Two apps (each with its own scheduler, as two server processes have) on one
    database try every fire; the claim lets exactly one of them start it."""
    async with engine_client(postgres_url) as first, engine_client(postgres_url) as second:
        await upload(first, cron_workflow("shared"))
        # a new version published through the second: now both run the schedule
        newer = cron_workflow("shared") | {"version": "1.1.0"}
        assert (await second.put(f"{BASE}/shared", json=newer)).status_code == 201
        live = now()
        found = await wait_for_fires(
            second, "shared", lambda f: sum(at(x["scheduled_for"]) > live for x in started(f)) >= 3
        )
        found = started(found)
        assert consecutive_seconds(found), found
        ids = [fire["execution_id"] for fire in found]
        assert len(set(ids)) == len(ids)
        for version in ("1.1.0", "1.0.0"):  # no active version left: no live trigger
            change = {"status": "inactive", "version": version}
            assert (await second.patch(f"{BASE}/shared", json=change)).status_code == 200
        stopped = now()
        await until_the_clock_passes(stopped + timedelta(seconds=1.5))
        settled = await wait_for_fires(first, "shared", lambda f: f == started(f))
        assert all(at(fire["scheduled_for"]) <= stopped for fire in settled)
        assert await executions_of(first, "shared") == {f["execution_id"] for f in settled}


async def test_health_reports_the_trigger_scheduler(client: Client) -> None:
    response = await client.get(f"{BASE}/health")
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["scheduler"] == {
        "status": "ok",
        "latency_ms": None,
        "message": None,
    }
