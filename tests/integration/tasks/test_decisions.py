"""Deciding human tasks: routing by outcome, forms, approvals, permissions, races."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.integration.engine.conftest import (
    Client,
    edge,
    event_types,
    get_execution,
    latest,
    node_runs,
    script,
    start,
    statuses,
    upload,
    wait_for_status,
    workflow,
)
from tests.integration.tasks.conftest import (
    TASKS,
    Mailbox,
    complete,
    get_task,
    human,
    tasks_client,
    wait_for_task,
    who,
)

DEFINITIONS = Path(__file__).parents[3] / "definitions"


def branching(**config: object) -> dict[str, object]:
    """review → (approved) yes, (rejected) no, and an unconditional → after."""
    return workflow(
        [
            human("review", **config),
            script("yes", "went = 'yes'"),
            script("no", "went = 'no'"),
            script("after", "seen = status"),
        ],
        [
            edge("review", "yes", "approved"),
            edge("review", "no", "rejected"),
            edge("review", "after"),
        ],
    )


async def test_the_execution_continues_along_the_outcome_edge(client: Client) -> None:
    await upload(client, branching(form=[{"name": "notes", "type": "textarea"}]))
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"])
    response = await complete(
        client, task["id"], "rejected", who("bob"), comment="too vague", data={"notes": "n"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"
    done = await wait_for_status(client, execution["id"], "completed")
    assert statuses(done) == {"review": "completed", "no": "completed", "after": "completed"}
    output = latest(done)["review"]["output"]
    assert output["status"] == "rejected"
    assert output["comment"] == "too vague"
    assert output["completed_by"] == "bob"
    assert output["notes"] == "n"
    assert output["completed_at"].endswith("Z")
    assert done["output"]["went"] == "no"
    assert done["output"]["seen"] == "rejected"


async def test_the_approved_outcome_takes_the_approved_edge(client: Client) -> None:
    await upload(client, branching())
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"])
    assert (await complete(client, task["id"], "approved", who("bob"))).status_code == 200
    done = await wait_for_status(client, execution["id"], "completed")
    assert set(statuses(done)) == {"review", "yes", "after"}
    assert latest(done)["review"]["branch"] == "approved"


async def test_the_seed_document_approval_routes_by_outcome(
    database_url: str, tmp_path: Path, smtp: tuple[int, Mailbox]
) -> None:
    port, mailbox = smtp
    document = json.loads((DEFINITIONS / "document-approval.json").read_text())
    async with tasks_client(database_url, tmp_path, smtp_port=port) as client:
        await upload(client, document)
        execution = await start(
            client, "approval-workflow", input={"document_id": "D-7"}, owner="eve"
        )
        first = await wait_for_task(client, execution["id"])
        assert first["node_id"] == "initial-review"
        assert first["title"] == "Review document D-7"
        assert first["assignee"] == "manager"
        reply = await complete(
            client, first["id"], "approved", who("manager"), data={"notes": "fine by me"}
        )
        assert reply.status_code == 200, reply.text
        second = await wait_for_task(client, execution["id"])
        assert second["node_id"] == "final-approval"
        assert second["description"] == "First review notes: fine by me"
        assert second["allow_self_approval"] is False
        # eve started the execution: four eyes keep her out, even as an admin.
        refused = await complete(client, second["id"], "rejected", who("eve", "admin"))
        assert refused.status_code == 403
        assert "four-eyes" in refused.json()["error"]["message"]
        assert (await complete(client, second["id"], "rejected", who("admin"))).status_code == 200
        # The decision after the review routes to notify-rejected, never notify-approved.
        done = await wait_for_status(client, execution["id"], ("completed", "failed"))
        runs = statuses(done)
        assert runs["check-final"] == "completed"
        assert latest(done)["check-final"]["output"]["decision"] == "rejected"
        assert "notify-rejected" in runs
        assert "notify-approved" not in runs
        if done["status"] == "completed":  # the e-mail node really sent its message
            ((recipients, message),) = await mailbox.wait(1)
            assert recipients == ["author@example.com"]
            assert message["Subject"] == "Document D-7 rejected"


async def test_form_data_is_checked_and_every_problem_reported(client: Client) -> None:
    form = [
        {"name": "reason", "type": "text", "required": True, "label": "Reason"},
        {"name": "amount", "type": "number"},
        {"name": "urgent", "type": "boolean"},
        {"name": "level", "type": "select", "options": ["low", {"value": "high", "label": "H"}]},
        {"name": "when", "type": "date"},
    ]
    await upload(client, branching(form=form))
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"])
    bad = {"amount": "lots", "urgent": "maybe", "level": "medium", "when": "tomorrow", "x": 1}
    response = await complete(client, task["id"], "approved", who("bob"), data=bad)
    assert response.status_code == 422
    problems = {d["path"]: d["message"] for d in response.json()["error"]["details"]}
    assert set(problems) == {
        "/data/reason", "/data/amount", "/data/urgent", "/data/level", "/data/when", "/data/x",
    }  # fmt: skip
    assert "required" in problems["/data/reason"]
    assert "'low'" in problems["/data/level"]
    wrong_outcome = await complete(client, task["id"], "maybe", who("bob"))
    assert wrong_outcome.status_code == 422
    assert wrong_outcome.json()["error"]["details"][0]["path"] == "/outcome"
    not_an_object = await complete(client, task["id"], "approved", who("bob"), data=[1])
    assert not_an_object.status_code == 422
    assert (await get_task(client, task["id"]))["decisions"] == []  # nothing was recorded

    good = {"reason": "ok", "amount": "12.5", "urgent": "on", "level": "high", "when": "2030-01-31"}
    response = await complete(client, task["id"], "approved", who("bob"), data=good)
    assert response.status_code == 200, response.text
    done = await wait_for_status(client, execution["id"], "completed")
    output = latest(done)["review"]["output"]
    assert output["amount"] == 12.5
    assert output["urgent"] is True
    assert output["level"] == "high"
    assert output["when"] == "2030-01-31"


async def test_required_approvals_need_distinct_people(client: Client) -> None:
    await upload(client, branching(assignee=None, candidate_roles=["board"], required_approvals=2))
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"])
    first = await complete(client, task["id"], "approved", who("ann", "board"), comment="yes")
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "open"
    assert first.json()["approvals"] == 1
    again = await complete(client, task["id"], "approved", who("ann", "board"))
    assert again.status_code == 409
    assert "already decided" in again.json()["error"]["message"]
    running = await get_execution(client, execution["id"])
    assert running["status"] == "running"
    assert statuses(running) == {"review": "waiting"}

    second = await complete(client, task["id"], "approved", who("ben", "board"))
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "completed"
    assert [d["decided_by"] for d in second.json()["decisions"]] == ["ann", "ben"]
    done = await wait_for_status(client, execution["id"], "completed")
    assert latest(done)["review"]["output"]["completed_by"] == "ben"
    assert set(statuses(done)) == {"review", "yes", "after"}


async def test_another_outcome_decides_at_once_despite_required_approvals(
    client: Client,
) -> None:
    await upload(client, branching(required_approvals=3, candidate_roles=["board"]))
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"])
    assert (await complete(client, task["id"], "approved", who("ann", "board"))).status_code == 200
    response = await complete(client, task["id"], "rejected", who("ben", "board"))
    assert response.json()["status"] == "completed"
    done = await wait_for_status(client, execution["id"], "completed")
    assert set(statuses(done)) == {"review", "no", "after"}


async def test_four_eyes_refuses_whoever_started_the_execution(client: Client) -> None:
    await upload(client, branching(allow_self_approval=False))
    execution = await start(client, "wf", triggered_by="bob")
    task = await wait_for_task(client, execution["id"])
    page = await get_task(client, task["id"], **who("bob"))
    assert page["permission"]["may_decide"] is False
    assert "four-eyes" in page["permission"]["reason"]
    refused = await complete(client, task["id"], "approved", who("bob"))
    assert refused.status_code == 403
    assert "bob" in refused.json()["error"]["message"]
    assert (
        await complete(client, task["id"], "approved", who("mia", "manager"))
    ).status_code == 200
    await wait_for_status(client, execution["id"], "completed")


async def test_only_permitted_people_may_decide(client: Client) -> None:
    await upload(client, branching(candidate_roles=["finance"]))
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"])
    for headers in (who("carol"), who("vic", "viewer", "finance"), who("gus", "guest")):
        response = await complete(client, task["id"], "approved", headers)
        assert response.status_code == 403, (headers, response.text)
        assert response.json()["error"]["code"] == "forbidden"
    assert (await get_task(client, task["id"], **who("fay", "finance")))["permission"] == {
        "actor": "fay",
        "may_decide": True,
        "reason": None,
    }
    assert (
        await complete(client, task["id"], "approved", who("fay", "finance"))
    ).status_code == 200
    second = await complete(client, task["id"], "approved", who("bob"))
    assert second.status_code == 409
    assert "completed" in second.json()["error"]["message"]


async def test_two_concurrent_completions_one_wins_and_the_execution_moves_on_once(
    client: Client,
) -> None:
    await upload(client, branching())
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"])
    responses = await asyncio.gather(
        complete(client, task["id"], "approved", who("bob")),
        complete(client, task["id"], "rejected", who("mia", "manager")),
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409], [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 200).json()
    done = await wait_for_status(client, execution["id"], "completed")
    assert len(node_runs(done, "review")) == 1
    assert len(node_runs(done, "after")) == 1
    branch = "yes" if winner["outcome"] == "approved" else "no"
    assert set(statuses(done)) == {"review", branch, "after"}
    assert latest(done)["review"]["output"]["completed_by"] == winner["completed_by"]
    kinds = [kind for kind, _ in await event_types(client, execution["id"])]
    assert kinds.count("task.completed") == 1
    assert kinds.count("node.completed") == 3


async def test_completing_an_unknown_task_is_404(client: Client) -> None:
    response = await complete(client, "no-such-task", "approved", who("bob"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert (await client.get(f"{TASKS}/no-such-task")).status_code == 404


async def test_an_idempotency_key_repeats_the_first_result(client: Client) -> None:
    await upload(client, branching())
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"])
    headers = {**who("bob"), "Idempotency-Key": "decide-1"}
    first = await complete(client, task["id"], "approved", headers)
    assert first.status_code == 200
    repeat = await complete(client, task["id"], "approved", headers)
    assert repeat.status_code == 200
    assert repeat.json() == first.json()
    assert (await complete(client, task["id"], "approved", who("bob"))).status_code == 409
    mixed_up = await complete(client, task["id"], "rejected", headers)
    assert mixed_up.status_code == 422
    done = await wait_for_status(client, execution["id"], "completed")
    assert len(node_runs(done, "yes")) == 1
    assert len((await get_task(client, task["id"]))["decisions"]) == 1


async def test_four_eyes_reach_into_child_executions(client: Client) -> None:
    """Whoever started the parent started its children: they cannot approve a task in a
    sub_workflow either (the child's owner is the parent's, whoever that names)."""
    await upload(
        client,
        workflow([human("approve", assignee="bob", allow_self_approval=False)], id="approval"),
    )
    await upload(
        client,
        workflow(
            [
                {
                    "id": "call",
                    "name": "call",
                    "type": "sub_workflow",
                    "config": {"workflow_id": "approval"},
                }
            ],
            id="parent",
        ),
    )
    execution = await start(client, "parent", triggered_by="bob", owner="someone-else")
    child = await wait_until_child(client, execution["id"])
    task = await wait_for_task(client, child)
    refused = await complete(client, task["id"], "approved", who("bob"))
    assert refused.status_code == 403, refused.text
    assert "four-eyes" in refused.text


async def wait_until_child(client: Client, execution_id: str) -> str:
    for _ in range(500):
        children = (await get_execution(client, execution_id))["child_executions"]
        if children:
            return str(children[0]["id"])
        await asyncio.sleep(0.02)
    raise AssertionError("no child execution")
