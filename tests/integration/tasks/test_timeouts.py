"""A task nobody decides in time: on_timeout fail, an outcome, or escalate (SPEC §4).

Due dates are one second; the tests poll the execution until the timeout has been
applied (the engine fires the stored wait), nothing sleeps in place of it.
"""

from __future__ import annotations

from tests.integration.engine.conftest import (
    Client,
    control,
    edge,
    event_types,
    latest,
    script,
    start,
    statuses,
    upload,
    wait_for_status,
    workflow,
)
from tests.integration.tasks.conftest import (
    complete,
    get_task,
    human,
    wait_for_change,
    wait_for_task,
    who,
)


def timing_out(**config: object) -> dict[str, object]:
    return workflow(
        [
            human("review", due_date="1s", **config),
            script("yes", "went = 'yes'"),
            script("no", "went = 'no'"),
        ],
        [edge("review", "yes", "approved"), edge("review", "no", "rejected")],
    )


async def test_on_timeout_fail_expires_the_task_and_fails_the_node(client: Client) -> None:
    await upload(client, timing_out(on_timeout="fail"))
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"], park=False)
    assert task["due_at"] is not None
    failed = await wait_for_status(client, execution["id"], "failed")
    review = latest(failed)["review"]
    assert review["status"] == "failed"
    assert "was not decided by" in review["error"]["message"]
    assert review["retry_count"] == 0  # not retryable: nobody decided
    expired = await get_task(client, task["id"])
    assert expired["status"] == "expired"
    late = await complete(client, task["id"], "approved", who("bob"))
    assert late.status_code == 409
    assert "expired" in late.json()["error"]["message"]


async def test_the_default_on_timeout_is_fail(client: Client) -> None:
    await upload(client, timing_out())
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"], park=False)
    await wait_for_status(client, execution["id"], "failed")
    assert (await get_task(client, task["id"]))["status"] == "expired"


async def test_on_timeout_outcome_completes_the_task_with_it(client: Client) -> None:
    await upload(client, timing_out(on_timeout="rejected", form=[{"name": "notes"}]))
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"], park=False)
    done = await wait_for_status(client, execution["id"], "completed")
    output = latest(done)["review"]["output"]
    assert output["status"] == "rejected"
    assert output["completed_by"] == "system:timeout"
    assert output["notes"] is None
    assert set(statuses(done)) == {"review", "no"}
    page = await get_task(client, task["id"])
    assert page["status"] == "completed"
    assert page["completed_by"] == "system:timeout"
    assert [d["decided_by"] for d in page["decisions"]] == ["system:timeout"]


async def test_escalation_hands_the_task_over_and_waits_again(client: Client) -> None:
    await upload(client, timing_out(on_timeout="escalate", escalate_to="boss"))
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"], park=False)
    first_due = task["due_at"]

    # Due again in 1 s, the execution stays in memory meanwhile: deciding now is safe.
    page = await wait_for_change(client, task["id"], lambda t: t["assignee"] == "boss")
    assert page["status"] == "open"
    assert page["due_at"] > first_due
    assert [h["action"] for h in page["history"]] == ["opened", "escalated"]
    assert (await complete(client, task["id"], "approved", who("bob"))).status_code == 403
    assert (await complete(client, task["id"], "approved", who("boss"))).status_code == 200
    done = await wait_for_status(client, execution["id"], "completed")
    assert latest(done)["review"]["output"]["completed_by"] == "boss"
    assert set(statuses(done)) == {"review", "yes"}
    kinds = [kind for kind, node_id in await event_types(client, execution["id"])]
    assert kinds.count("task.escalated") == 1


async def test_an_escalated_task_nobody_decides_expires(client: Client) -> None:
    await upload(client, timing_out(on_timeout="escalate", escalate_to="role:directors"))
    execution = await start(client, "wf")
    task = await wait_for_task(client, execution["id"], park=False)
    failed = await wait_for_status(client, execution["id"], "failed")
    assert "even after escalation" in latest(failed)["review"]["error"]["message"]
    page = await get_task(client, task["id"])
    assert page["status"] == "expired"
    assert page["assignee"] is None
    assert page["candidate_roles"] == ["directors"]
    assert [h["action"] for h in page["history"]] == ["opened", "escalated", "expired"]


async def test_retrying_after_an_expiry_opens_a_new_task(client: Client) -> None:
    await upload(client, timing_out(on_timeout="fail"))
    execution = await start(client, "wf")
    first = await wait_for_task(client, execution["id"], park=False)
    await wait_for_status(client, execution["id"], "failed")
    assert (await control(client, execution["id"], "retry")).status_code == 200
    second = await wait_for_task(client, execution["id"], park=False)
    assert second["id"] != first["id"]
    assert (await get_task(client, first["id"]))["status"] == "expired"
