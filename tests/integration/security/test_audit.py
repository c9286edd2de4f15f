"""The audit log (SPEC §8): who changed users, keys, definitions, executions and tasks;
``GET /api/v1/audit`` with its filters; and the task rules with real identities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from server.security.audit import AuditLog
from server.store.database import Database
from tests.auth import ADMIN_HEADERS
from tests.integration.engine.conftest import timer, upload, wait_until, workflow
from tests.integration.security.conftest import (
    Client,
    audit,
    bearer,
    make_key,
    make_user,
    token,
)
from tests.integration.tasks.conftest import human, wait_for_task

AUDIT = "/api/v1/audit"


def actions(page: dict[str, Any]) -> list[str]:
    return [entry["action"] for entry in page["entries"]]


async def test_user_key_and_definition_changes_name_who_made_them(client: Client) -> None:
    user = await make_user(client, "fay", "viewer")
    key = await make_key(client, "manager", "deployer")
    await client.delete(f"/api/v1/api-keys/{key['id']}", headers=ADMIN_HEADERS)
    writer = await make_key(client, "manager", "writer")
    await upload_as(client, writer["key"], workflow([timer("t", 60)], id="audited"))
    await client.patch(
        f"/api/v1/users/{user['id']}", json={"role": "operator"}, headers=ADMIN_HEADERS
    )
    page = await audit(client)
    assert actions(page)[:6] == [
        "user.updated",
        "workflow.published",
        "api_key.created",
        "api_key.revoked",
        "api_key.created",
        "user.created",
    ]
    by_action = {e["action"]: e for e in reversed(page["entries"])}
    assert by_action["user.created"]["actor"] == "key:bootstrap-admin"
    assert by_action["user.created"]["target_id"] == "fay"
    assert by_action["user.updated"]["data"] == {"role": {"from": "viewer", "to": "operator"}}
    assert by_action["workflow.published"]["actor"] == "key:writer"
    assert by_action["api_key.revoked"]["target_id"] == key["id"]
    assert key["key"] not in str(page)  # the key itself is never in the log


async def test_control_actions_and_task_decisions_are_audited(client: Client) -> None:
    client.headers.update(ADMIN_HEADERS)
    operator = bearer(token("olga", "operator"))
    await upload(client, workflow([timer("wait", 600)], id="slow"))
    await upload(client, workflow([human("review", assignee="olga")], id="review"))
    execution = await start_as(client, operator, "slow")
    cancelled = await client.post(
        f"/api/v1/workflows/executions/{execution}/cancel", headers=operator
    )
    assert cancelled.status_code == 200, cancelled.text
    reviewed = await start_as(client, operator, "review")
    task = await wait_for_task(client, reviewed)
    # Another operator may not decide olga's task; a viewer may not even try.
    other = await client.post(
        f"/api/v1/tasks/{task['id']}/complete",
        json={"outcome": "approved"},
        headers=bearer(token("oscar", "operator")),
    )
    assert other.status_code == 403
    viewer = await client.post(
        f"/api/v1/tasks/{task['id']}/complete",
        json={"outcome": "approved"},
        headers=bearer(token("vera", "viewer")),
    )
    assert viewer.status_code == 403
    done = await client.post(
        f"/api/v1/tasks/{task['id']}/complete", json={"outcome": "approved"}, headers=operator
    )
    assert done.status_code == 200, done.text
    assert done.json()["completed_by"] == "olga"
    await wait_until(client, reviewed, lambda e: e["status"] == "completed")
    page = await audit(client, actor="olga")
    assert actions(page) == [
        "task.complete",
        "execution.start",
        "execution.cancel",
        "execution.start",
    ]
    assert page["entries"][0]["target_id"] == task["id"]
    assert page["entries"][2]["target_id"] == execution
    assert page["entries"][2]["data"]["via"] == "jwt"


async def test_four_eyes_holds_with_real_identities(client: Client) -> None:
    """The starter is the authenticated caller (not whatever ``triggered_by`` says), so
    the four-eyes rule cannot be dodged by naming someone else."""
    client.headers.update(ADMIN_HEADERS)
    await upload(
        client,
        workflow([human("review", candidate_roles=["operator"], allow_self_approval=False)]),
    )
    olga = bearer(token("olga", "operator"))
    response = await client.post(
        "/api/v1/workflows/wf/execute", json={"triggered_by": "nobody"}, headers=olga
    )
    assert response.status_code == 201, response.text
    assert response.json()["triggered_by"] == "olga"
    task = await wait_for_task(client, response.json()["id"])
    mine = await client.post(
        f"/api/v1/tasks/{task['id']}/complete", json={"outcome": "approved"}, headers=olga
    )
    assert mine.status_code == 403
    assert "four-eyes" in mine.json()["error"]["message"]
    otto = bearer(token("otto", "operator"))
    other = await client.post(
        f"/api/v1/tasks/{task['id']}/complete", json={"outcome": "approved"}, headers=otto
    )
    assert other.status_code == 200, other.text


async def test_filters_paging_and_total(client: Client, database_url: str) -> None:
    for n in range(5):
        await make_key(client, "viewer", f"key-{n}")
    await make_user(client, "gil", "viewer")
    keys = await audit(client, action="api_key")
    assert keys["total"] == 6  # the bootstrap key and five more
    page = await audit(client, action="api_key.created", limit=2, offset=1)
    assert page["total"] == 5
    assert [e["data"]["name"] for e in page["entries"]] == ["key-3", "key-2"]
    assert (await audit(client, target="gil"))["total"] == 1
    assert (await audit(client, target_type="user", action="user.created"))["total"] == 2
    assert (await audit(client, actor="nobody"))["total"] == 0
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    earlier = (datetime.now(UTC) - timedelta(minutes=5)).replace(tzinfo=None).isoformat()
    assert (await audit(client, **{"from": later}))["total"] == 0
    everything = await audit(client, **{"from": earlier, "to": later})
    assert everything["total"] == (await audit(client))["total"] >= 8
    assert (
        await client.get(AUDIT, params={"from": "yesterday"}, headers=ADMIN_HEADERS)
    ).status_code == 400
    assert (await client.get(AUDIT, params={"limit": 0}, headers=ADMIN_HEADERS)).status_code == 400
    capped = await client.get(AUDIT, params={"limit": 10_000}, headers=ADMIN_HEADERS)
    assert capped.json()["limit"] == 200


async def test_only_admins_read_the_audit_log(client: Client) -> None:
    manager = bearer((await make_key(client, "manager"))["key"])
    assert (await client.get(AUDIT, headers=manager)).status_code == 403
    assert (await client.get(AUDIT)).status_code == 401


async def test_recorded_values_are_cut_to_their_columns_and_kept_verbatim(
    client: Client, database_url: str
) -> None:
    """What the sign-in page records for a failed login with a hostile username."""
    database = Database(database_url)
    try:
        await AuditLog(database).record(
            "login.failed",
            actor="x" * 5000,
            target_type="user",
            target_id='mallory\r\n{"forged": true}',
            data={"reason": "bad password"},
            remote_addr="127.0.0.1",
        )
    finally:
        await database.dispose()
    (entry,) = (await audit(client, action="login"))["entries"]
    assert entry["actor"] == "x" * 200
    assert entry["target_id"] == 'mallory\r\n{"forged": true}'
    assert entry["remote_addr"] == "127.0.0.1"


async def upload_as(client: Client, key: str, document: dict[str, Any]) -> None:
    response = await client.post("/api/v1/workflows", json=document, headers=bearer(key))
    assert response.status_code == 201, response.text


async def start_as(client: Client, headers: dict[str, str], workflow_id: str) -> str:
    response = await client.post(
        f"/api/v1/workflows/{workflow_id}/execute", json={}, headers=headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
