"""Control actions through the REST routes (SPEC §5 Control, §6)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.engine.conftest import (
    EXECUTIONS,
    TERMINAL,
    Client,
    chain,
    control,
    event_types,
    events,
    expr,
    get_execution,
    latest,
    node_runs,
    run,
    script,
    slow_script,
    start,
    statuses,
    timer,
    upload,
    wait_for_status,
    wait_until,
    workflow,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def waiting(execution: dict[str, Any]) -> bool:
    return any(w["kind"] == "timer" for w in execution["waiting_on"])


async def started_waiting(client: Client, document: dict[str, Any], **body: Any) -> str:
    """Upload and start ``document``; its id once it waits on its timer."""
    await upload(client, document)
    execution = await start(client, document["id"], **body)
    await wait_until(client, execution["id"], waiting, what="a timer wait")
    return str(execution["id"])


async def until_the_clock_passes(moment: datetime) -> None:
    """Wait for wall-clock time itself (the world changing), not for work."""
    await asyncio.sleep(max((moment - datetime.now(UTC)).total_seconds(), 0) + 0.01)


# --- cancel ---------------------------------------------------------------------------------


async def test_cancel_stops_a_waiting_execution(client: Client) -> None:
    execution_id = await started_waiting(
        client, workflow([timer("wait", 30), expr("after", "1")], chain("wait", "after"))
    )
    response = await control(client, execution_id, "cancel")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "cancelled"
    assert body["waiting_on"] == []
    assert body["completed_at"] is not None
    assert statuses(body) == {"wait": "cancelled"}
    kinds = await event_types(client, execution_id)
    assert ("node.cancelled", "wait") in kinds
    assert kinds[-1] == ("execution.cancelled", None)


async def test_cancel_stops_a_running_node(client: Client) -> None:
    await upload(
        client, workflow([slow_script("busy"), expr("after", "1")], chain("busy", "after"))
    )
    execution = await start(client)
    await wait_until(
        client, execution["id"], lambda e: statuses(e).get("busy") == "running", what="busy runs"
    )
    response = await control(client, execution["id"], "cancel")
    assert response.status_code == 200, response.text
    assert statuses(response.json()) == {"busy": "cancelled"}
    (busy,) = node_runs(response.json(), "busy")
    assert busy["output"] is None


# --- suspend / resume --------------------------------------------------------------------------


async def test_a_timer_due_while_suspended_fires_only_after_resume(client: Client) -> None:
    document = workflow([timer("wait", 0.3), expr("after", "'done'")], chain("wait", "after"))
    execution_id = await started_waiting(client, document)
    response = await control(client, execution_id, "suspend")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "suspended"
    # Barrier: the same timer in an execution started later has fired.
    sentinel = await start(client)
    await wait_for_status(client, sentinel["id"], "completed")
    suspended = (await client.get(f"{EXECUTIONS}/{execution_id}")).json()
    assert suspended["status"] == "suspended"
    assert statuses(suspended) == {"wait": "waiting"}
    response = await control(client, execution_id, "resume")
    assert response.status_code == 200, response.text
    assert response.json()["status"] in ("running", "completed")  # it may finish at once
    done = await wait_for_status(client, execution_id, TERMINAL)
    assert done["status"] == "completed", done["error"]
    kinds = await event_types(client, execution_id)
    assert kinds.index(("execution.resumed", None)) < kinds.index(("node.completed", "wait"))
    assert kinds.index(("execution.suspended", None)) < kinds.index(("execution.resumed", None))


async def test_a_suspended_delayed_start_runs_at_its_time_after_resume(client: Client) -> None:
    await upload(client, workflow([expr("a", "1")]))
    execution = await start(client, delay=0.3)
    suspended = await control(client, execution["id"], "suspend")
    assert (suspended.status_code, suspended.json()["status"]) == (200, "suspended")
    resumed = await control(client, execution["id"], "resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "pending"  # it had not begun: back to its delay
    done = await wait_for_status(client, execution["id"], TERMINAL)
    assert done["status"] == "completed", done["error"]
    kinds = await event_types(client, execution["id"])
    assert kinds.count(("execution.started", None)) == 1
    (delay_until,) = [w["until"] for w in execution["waiting_on"]]
    assert done["started_at"] is not None
    (a,) = node_runs(done, "a")
    assert at(a["started_at"]) >= at(delay_until)


# --- retry -----------------------------------------------------------------------------------


async def test_retry_reruns_only_the_failed_node_and_keeps_completed_outputs(
    client: Client,
) -> None:
    document = workflow(
        [
            script("side", "side = 'kept'"),
            script("a", "a_value = 41"),
            # fails until `ready_at`, then succeeds: the world changed, so a retry helps
            script("b", "x = 1 / 0 if now() < parse_date(ready_at) else a_value + 1"),
            script("c", "c_value = x"),
        ],
        chain("a", "b", "c"),
    )
    await upload(client, document)
    ready_at = datetime.now(UTC) + timedelta(seconds=0.3)
    execution = await start(client, input={"ready_at": ready_at.isoformat()})
    failed = await wait_for_status(client, execution["id"], TERMINAL)
    assert failed["status"] == "failed"
    assert failed["error"]["node_id"] == "b"
    await until_the_clock_passes(ready_at)
    response = await control(client, execution["id"], "retry")
    assert response.status_code == 200, response.text
    assert response.json()["status"] in ("running", "completed")
    done = await wait_for_status(client, execution["id"], TERMINAL)
    assert done["status"] == "completed", done["error"]
    assert done["error"] is None
    assert (done["output"]["c_value"], done["output"]["side"]) == (42, "kept")
    assert len(node_runs(done, "side")) == 1
    assert len(node_runs(done, "a")) == 1
    assert len(node_runs(done, "c")) == 1
    b_runs = node_runs(done, "b")
    assert [(r["attempt"], r["status"], r["superseded"]) for r in b_runs] == [
        (1, "failed", True),
        (2, "completed", False),
    ]
    page = await events(client, execution["id"])
    (retried,) = [e for e in page["events"] if e["type"] == "execution.retried"]
    assert retried["data"]["nodes"] == ["b"]


# --- rerun -----------------------------------------------------------------------------------


async def test_rerun_from_a_node_runs_it_and_its_downstream_again_with_the_patch(
    client: Client,
) -> None:
    document = workflow(
        [
            script("a", "base = 10"),
            script("b", "y = base + x"),
            script("c", "z = y * 2"),
            script("side", "side = 1"),
        ],
        chain("a", "b", "c"),
        variables={"x": {"name": "x", "type": "integer", "default_value": 1}},
    )
    first = await run(client, document)
    assert first["output"]["z"] == 22
    response = await control(
        client, first["id"], "rerun", {"node_id": "b", "input_patch": {"x": 5}}
    )
    assert response.status_code == 200, response.text
    done = await wait_for_status(client, first["id"], TERMINAL)
    assert done["status"] == "completed", done["error"]
    assert done["output"]["z"] == 30
    assert len(node_runs(done, "a")) == 1  # upstream is not run again
    assert len(node_runs(done, "side")) == 1
    for node_id in ("b", "c"):
        runs = node_runs(done, node_id)
        assert [(r["generation"], r["superseded"]) for r in runs] == [(0, True), (1, False)]
        assert latest(done)[node_id]["status"] == "completed"
    page = await events(client, first["id"])
    (rerun,) = [e for e in page["events"] if e["type"] == "execution.rerun"]
    assert rerun["node_id"] == "b"
    assert set(rerun["data"]["reset"]) == {"b", "c"}
    assert rerun["data"]["input_patch"] == {"x": 5}


async def test_rerun_refuses_an_input_patch_of_the_wrong_type(client: Client) -> None:
    document = workflow(
        [script("a", "y = x + 1")],
        [],
        variables={"x": {"name": "x", "type": "integer", "default_value": 1}},
    )
    first = await run(client, document)
    response = await control(
        client, first["id"], "rerun", {"node_id": "a", "input_patch": {"x": "five"}}
    )
    assert response.status_code == 422
    (detail,) = response.json()["error"]["details"]
    assert detail["path"] == "/input_patch/x"
    assert "integer" in detail["message"]
    again = await get_execution(client, first["id"])
    assert again["status"] == "completed"  # nothing was reset
    assert len(node_runs(again, "a")) == 1


# --- skip ------------------------------------------------------------------------------------


async def test_skip_a_failed_node_with_an_output_continues_the_execution(
    client: Client,
) -> None:
    document = workflow(
        [script("broken", "fixed = 1 / 0"), script("after", "y = fixed + 1")],
        chain("broken", "after"),
    )
    failed = await run(client, document)
    assert failed["status"] == "failed"
    response = await control(
        client, failed["id"], "skip", {"node_id": "broken", "output": {"fixed": 41}}
    )
    assert response.status_code == 200, response.text
    done = await wait_for_status(client, failed["id"], TERMINAL)
    assert done["status"] == "completed", done["error"]
    assert done["output"] == {"fixed": 41, "y": 42}
    broken = latest(done)["broken"]
    assert (broken["status"], broken["output"]) == ("skipped", {"fixed": 41})
    assert ("node.skipped_by_user", "broken") in await event_types(client, failed["id"])


async def test_skip_a_waiting_node_with_an_output(client: Client) -> None:
    document = workflow([timer("wait", 30), script("after", "seen = note")], chain("wait", "after"))
    execution_id = await started_waiting(client, document)
    response = await control(
        client, execution_id, "skip", {"node_id": "wait", "output": {"note": "skipped"}}
    )
    assert response.status_code == 200, response.text
    done = await wait_for_status(client, execution_id, TERMINAL)
    assert done["status"] == "completed", done["error"]
    assert done["output"]["seen"] == "skipped"
    assert done["waiting_on"] == []


# --- restart ---------------------------------------------------------------------------------


async def test_restart_makes_a_new_linked_execution_and_leaves_the_old_one(
    client: Client,
) -> None:
    old = await run(client, workflow([script("a", "doubled = n * 2")]), input={"n": 4})
    response = await control(client, old["id"], "restart")
    assert response.status_code == 201, response.text
    new = response.json()
    assert new["id"] != old["id"]
    assert new["restarted_from"] == old["id"]
    assert new["input"] == {"n": 4}
    done = await wait_for_status(client, new["id"], TERMINAL)
    assert done["output"] == {"n": 4, "doubled": 8}
    again = (await client.get(f"{EXECUTIONS}/{old['id']}")).json()
    for field in ("status", "output", "completed_at", "executed_nodes", "restarted_from"):
        assert again[field] == old[field], field


# --- refusals --------------------------------------------------------------------------------


async def conflict(client: Client, execution_id: str, action: str, body: Any = None) -> str:
    response = await control(client, execution_id, action, body)
    assert response.status_code == 409, response.text
    message: str = response.json()["error"]["message"]
    return message


async def test_illegal_transitions_are_409_naming_the_current_status(client: Client) -> None:
    done = await run(client, workflow([expr("a", "1")]))
    assert "completed" in await conflict(client, done["id"], "resume")
    assert "completed" in await conflict(client, done["id"], "skip", {"node_id": "a"})
    assert "completed" in await conflict(client, done["id"], "retry")
    assert "completed" in await conflict(client, done["id"], "cancel")
    assert (await client.get(f"{EXECUTIONS}/{done['id']}")).json() == done  # nothing changed

    waiting_id = await started_waiting(client, workflow([timer("wait", 30)], id="waits"))
    assert "running" in await conflict(client, waiting_id, "retry")
    assert "running" in await conflict(client, waiting_id, "resume")
    assert (await control(client, waiting_id, "cancel")).status_code == 200
    assert "cancelled" in await conflict(client, waiting_id, "cancel")
    assert "cancelled" in await conflict(client, waiting_id, "suspend")


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("cancel", None),
        ("suspend", None),
        ("resume", None),
        ("retry", None),
        ("rerun", {"node_id": "a"}),
        ("skip", {"node_id": "a"}),
        ("restart", None),
    ],
)
async def test_an_unknown_execution_is_404(client: Client, action: str, body: Any) -> None:
    response = await control(client, "no-such-execution", action, body)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"


async def test_reading_an_unknown_execution_is_404(client: Client) -> None:
    assert (await client.get(f"{EXECUTIONS}/nope")).status_code == 404
    assert (await client.get(f"{EXECUTIONS}/nope/events")).status_code == 404


async def test_idempotency_key_makes_a_repeated_control_action_a_no_op(client: Client) -> None:
    execution_id = await started_waiting(client, workflow([timer("wait", 30)]))
    key = {"Idempotency-Key": "cancel-once"}
    first = await control(client, execution_id, "cancel", headers=key)
    again = await control(client, execution_id, "cancel", headers=key)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    unkeyed = await control(client, execution_id, "cancel")
    assert unkeyed.status_code == 409  # the same request without the key really acts
    kinds = await event_types(client, execution_id)
    assert kinds.count(("execution.cancelled", None)) == 1
