"""The approvals inbox: listing and filters, one task's page, claims, reassignment,
cancelled executions, signed links, and opening a task exactly once per node run."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from processors.human_task import TaskSpec
from server.store.models import utcnow
from tests.auth import ADMIN_HEADERS, ADMIN_KEY
from tests.integration.engine.conftest import (
    Client,
    completed,
    control,
    get_execution,
    script,
    start,
    statuses,
    timer,
    upload,
    wait_for_status,
    wait_until,
    workflow,
)
from tests.integration.tasks.conftest import (
    TASKS,
    complete,
    get_task,
    human,
    tasks_client,
    wait_for_task,
    who,
)


def one_review(**config: Any) -> dict[str, Any]:
    return workflow(
        [human("review", **config), script("after", "done = true")],
        [{"from_node": "review", "to_node": "after"}],
        variables={"doc": {"name": "doc", "type": "string", "default_value": "D-1"}},
    )


async def listed(client: Client, headers: dict[str, str] | None = None, **params: Any) -> list[str]:
    response = await client.get(TASKS, params=params, headers=headers or {})
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == len(page["tasks"]) or page["limit"] < page["total"]
    return [t["id"] for t in page["tasks"]]


async def test_the_inbox_lists_the_open_task_with_its_rendered_text(client: Client) -> None:
    document = one_review(
        title="Review ${doc}",
        description="Please look at ${doc}.",
        candidate_roles=["finance"],
        form=[{"name": "notes", "type": "textarea"}],
    )
    await upload(client, document)
    execution = await start(client, "wf", input={"doc": "D-42"})
    task = await wait_for_task(client, execution["id"])
    assert task["title"] == "Review D-42"
    assert task["description"] == "Please look at D-42."
    assert task["assignee"] == "bob"
    assert task["candidate_roles"] == ["finance"]
    assert task["outcomes"] == ["approved", "rejected"]
    assert task["workflow_id"] == "wf"
    assert task["node_id"] == "review"

    assert await listed(client, status="open") == [task["id"]]
    assert await listed(client, status="completed") == []
    assert await listed(client, who("bob"), assignee="me") == [task["id"]]
    assert await listed(client, who("carol"), assignee="me") == []
    assert await listed(client, role="finance") == [task["id"]]
    assert await listed(client, role="sales") == []
    assert await listed(client, who("carol", "finance"), mine="true") == [task["id"]]
    assert await listed(client, who("carol", "sales"), mine="true") == []
    bad = await client.get(TASKS, params={"status": "lost"})
    assert bad.status_code == 400

    running = await get_execution(client, execution["id"])
    assert running["status"] == "running"
    assert [w["kind"] for w in running["waiting_on"]] == ["human_task"]


async def test_the_list_pages_with_a_total(client: Client) -> None:
    await upload(client, one_review())
    for _ in range(3):
        await wait_for_task(client, (await start(client, "wf"))["id"])
    response = await client.get(TASKS, params={"limit": 2, "offset": 1})
    page = response.json()
    assert (page["total"], page["limit"], page["offset"], len(page["tasks"])) == (3, 2, 1, 2)


async def test_a_task_page_shows_decisions_history_and_ids(client: Client) -> None:
    await upload(client, one_review(required_approvals=2, candidate_roles=["board"]))
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"])
    assert (
        await complete(client, task["id"], "approved", who("ann", "board"), comment="ok")
    ).status_code == 200
    page = await get_task(client, task["id"], **who("ann", "board"))
    assert page["execution_id"] == execution["id"]
    assert page["workflow_id"] == "wf"
    assert page["approvals"] == 1
    (decision,) = page["decisions"]
    assert (decision["decided_by"], decision["outcome"], decision["comment"]) == (
        "ann",
        "approved",
        "ok",
    )
    assert page["permission"]["may_decide"] is False
    assert page["permission"]["reason"] == "you have already decided this task"
    assert [h["action"] for h in page["history"]] == ["opened"]


async def test_cancelling_the_execution_cancels_its_task(client: Client) -> None:
    await upload(client, one_review())
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"])
    assert (await control(client, execution["id"], "cancel")).status_code == 200
    await wait_for_status(client, execution["id"], "cancelled")
    assert (await get_task(client, task["id"]))["status"] == "cancelled"
    assert await listed(client, status="open") == []
    assert await listed(client, status="cancelled") == [task["id"]]
    response = await complete(client, task["id"], "approved", who("bob"))
    assert response.status_code == 409
    assert "cancelled" in response.json()["error"]["message"]


async def test_claiming_makes_the_task_one_persons(client: Client) -> None:
    await upload(client, one_review(assignee=None, candidate_roles=["finance"]))
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"])
    outsider = await client.post(f"{TASKS}/{task['id']}/claim", headers=who("sam", "sales"))
    assert outsider.status_code == 403
    claimed = await client.post(f"{TASKS}/{task['id']}/claim", headers=who("fay", "finance"))
    assert claimed.status_code == 200, claimed.text
    assert (claimed.json()["assignee"], claimed.json()["claimed_by"]) == ("fay", "fay")
    again = await client.post(f"{TASKS}/{task['id']}/claim", headers=who("fay", "finance"))
    assert again.status_code == 200
    other = await client.post(f"{TASKS}/{task['id']}/claim", headers=who("fin", "finance"))
    assert other.status_code == 409
    assert "fay" in other.json()["error"]["message"]
    refused = await complete(client, task["id"], "approved", who("fin", "finance"))
    assert refused.status_code == 403
    assert "claimed by 'fay'" in refused.json()["error"]["message"]
    assert (
        await complete(client, task["id"], "approved", who("fay", "finance"))
    ).status_code == 200
    await wait_for_status(client, execution["id"], "completed")


async def test_a_task_needing_several_approvals_cannot_be_claimed(client: Client) -> None:
    await upload(client, one_review(required_approvals=2))
    task = await wait_for_task(client, (await start(client, "wf"))["id"])
    response = await client.post(f"{TASKS}/{task['id']}/claim", headers=who("bob"))
    assert response.status_code == 409


async def test_reassigning_gives_the_task_to_a_user_or_a_role(client: Client) -> None:
    await upload(client, one_review())
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"])
    url = f"{TASKS}/{task['id']}/reassign"
    response = await client.post(url, json={"assignee": "dora"}, headers=who("mia", "manager"))
    assert response.status_code == 200, response.text
    assert response.json()["assignee"] == "dora"
    assert (await complete(client, task["id"], "approved", who("bob"))).status_code == 403
    to_role = await client.post(url, json={"assignee": "role:legal"}, headers=who("mia", "manager"))
    assert (to_role.json()["assignee"], to_role.json()["candidate_roles"]) == (None, ["legal"])
    bad = await client.post(url, json={"assignee": "no spaces"}, headers=who("mia", "manager"))
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["path"] == "/assignee"
    assert (await client.post(url, json={}, headers=who("mia"))).status_code == 422
    page = await get_task(client, task["id"])
    assert [h["action"] for h in page["history"]] == ["opened", "reassigned", "reassigned"]
    assert (await complete(client, task["id"], "approved", who("lee", "legal"))).status_code == 200
    await wait_for_status(client, execution["id"], "completed")


async def test_with_auth_enabled_self_declared_identities_are_ignored(
    database_url: str, tmp_path: Path
) -> None:
    flags = {"auth.enabled": True, "auth.bootstrap_admin_key": ADMIN_KEY}
    async with tasks_client(database_url, tmp_path, **flags) as client:
        client.headers.update(ADMIN_HEADERS)  # an admin sets the task up
        await upload(client, one_review())
        task = await wait_for_task(client, (await start(client, "wf"))["id"])
        del client.headers["Authorization"]  # then someone only claims to be bob, an admin
        response = await complete(client, task["id"], "approved", who("bob", "admin"))
        assert response.status_code == 401
        claim = await client.post(f"{TASKS}/{task['id']}/claim", headers=who("bob", "admin"))
        assert claim.status_code == 401
        page = await client.get(f"{TASKS}/{task['id']}", headers=who("bob", "admin"))
        assert page.status_code == 401
        client.headers.update(ADMIN_HEADERS)
        assert (await get_task(client, task["id"]))["status"] == "open"


async def test_a_signed_link_opens_the_task_and_changes_nothing(client: Client) -> None:
    await upload(client, one_review())
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"])
    links = client.app.state["engine"].services["tasks"].links
    expires = links.expiry(None, utcnow())
    url = urlsplit(links.url(task["id"], expires, outcome="approved"))
    assert url.path == f"/tasks/{task['id']}"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    opened = await client.get(url.path, params=query, headers=who("bob"))  # the task page
    assert opened.status_code == 200, opened.text
    assert f'action="/tasks/{task["id"]}/complete"' in opened.text
    assert 'value="approved" class="suggested"' in opened.text  # preselected, not decided
    for _ in range(2):  # a mail scanner following the link twice decides nothing
        assert (await client.get(url.path, params=query)).status_code == 200
    after = await get_task(client, task["id"])
    assert (after["status"], after["decisions"], after["completed_by"]) == ("open", [], None)
    assert statuses(await get_execution(client, execution["id"])) == {"review": "waiting"}

    forged = await client.get(url.path, params={**query, "sig": query["sig"][:-2] + "AA"})
    assert forged.status_code == 403
    other_task = await client.get("/tasks/another-id", params=query)
    assert other_task.status_code == 403
    past = int((utcnow() - timedelta(seconds=1)).timestamp())
    expired = await client.get(
        url.path, params={"exp": past, "sig": links.signature(task["id"], past)}
    )
    assert expired.status_code == 403
    assert "expired" in expired.json()["error"]["message"]


async def test_a_node_run_opens_its_task_once(client: Client) -> None:
    """What a re-run after a crash does: the same node run (same idempotency key) finds
    its task again; a deliberate rerun (a new key) replaces it."""
    await upload(client, one_review())
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"])
    inbox = client.app.state["engine"].services["tasks"]
    spec = TaskSpec(
        execution_id=execution["id"], node_id="review", idempotency_key=f"{execution['id']}:review",
        title="again", description="", assignee="bob", candidate_roles=(), form=(),
        outcomes=("approved", "rejected"), required_approvals=1, allow_self_approval=True,
        due_at=None,
    )  # fmt: skip
    again = await inbox.open_task(spec)
    assert (again.task_id, again.created) == (task["id"], False)
    assert await listed(client, execution_id=execution["id"]) == [task["id"]]

    rerun = await inbox.open_task(replace(spec, idempotency_key=f"{execution['id']}:review:r1"))
    assert rerun.created
    assert rerun.task_id != task["id"]
    assert (await get_task(client, task["id"]))["status"] == "cancelled"


async def test_a_task_whose_node_was_skipped_is_cancelled_when_decided(client: Client) -> None:
    document = one_review()
    document["nodes"].append(timer("hold", "1h"))  # keeps the execution running
    await upload(client, document)
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"])
    skipped = await control(
        client, execution["id"], "skip", {"node_id": "review", "output": {"status": "approved"}}
    )
    assert skipped.status_code == 200, skipped.text
    await wait_until(client, execution["id"], lambda e: "after" in completed(e), what="after")
    assert (await get_task(client, task["id"]))["status"] == "open"  # nobody has looked yet
    response = await complete(client, task["id"], "approved", who("bob"))
    assert response.status_code == 409
    assert "no longer waits for it" in response.json()["error"]["message"]
    assert (await get_task(client, task["id"]))["status"] == "cancelled"
    assert await listed(client, status="open") == []
