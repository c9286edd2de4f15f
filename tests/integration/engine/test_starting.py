"""Starting executions (SPEC §5 Start options, Versions are pinned)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.integration.engine.conftest import (
    BASE,
    EXECUTIONS,
    TERMINAL,
    Client,
    chain,
    control,
    event_types,
    expr,
    node_runs,
    start,
    timer,
    upload,
    wait_for_status,
    wait_until,
    workflow,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def versioned(version: str, label: str, **fields: Any) -> dict[str, Any]:
    """A timer, then a node whose output names the version it belongs to."""
    return workflow(
        [timer("wait", 0.3), expr(f"mark-{label}", f"'{label}'")],
        chain("wait", f"mark-{label}"),
        version=version,
        **fields,
    )


async def test_a_running_execution_keeps_its_version_when_a_new_one_is_published(
    client: Client,
) -> None:
    await upload(client, versioned("1.0.0", "v1"))
    first = await start(client)
    await wait_until(client, first["id"], lambda e: bool(e["waiting_on"]), what="the timer")
    response = await client.put(f"{BASE}/wf", json=versioned("2.0.0", "v2"))
    assert response.status_code == 201, response.text
    execution = await wait_for_status(client, first["id"], TERMINAL)
    assert execution["status"] == "completed", execution["error"]
    assert execution["workflow_version"] == "1.0.0"
    assert execution["output"]["result"] == "v1"
    assert {r["node_id"] for r in node_runs(execution)} == {"wait", "mark-v1"}
    second = await wait_for_status(client, (await start(client))["id"], TERMINAL)
    assert (second["workflow_version"], second["output"]["result"]) == ("2.0.0", "v2")


async def test_the_version_option_runs_that_version(client: Client) -> None:
    await upload(client, versioned("1.0.0", "v1"))
    assert (await client.put(f"{BASE}/wf", json=versioned("2.0.0", "v2"))).status_code == 201
    execution = await start(client, version="1.0.0")
    done = await wait_for_status(client, execution["id"], TERMINAL)
    assert (done["workflow_version"], done["output"]["result"]) == ("1.0.0", "v1")


async def test_the_newest_active_version_runs_by_default_not_a_newer_draft(
    client: Client,
) -> None:
    await upload(client, versioned("1.0.0", "v1"))
    response = await client.put(f"{BASE}/wf", json=versioned("2.0.0", "v2", status="draft"))
    assert response.status_code == 201, response.text
    versions = (await client.get(f"{BASE}/wf/versions")).json()["versions"]
    assert {v["version"]: v["status"] for v in versions} == {"1.0.0": "active", "2.0.0": "draft"}
    done = await wait_for_status(client, (await start(client))["id"], TERMINAL)
    assert (done["workflow_version"], done["output"]["result"]) == ("1.0.0", "v1")
    draft = await wait_for_status(client, (await start(client, version="2.0.0"))["id"], TERMINAL)
    assert draft["output"]["result"] == "v2"  # a draft runs only when asked for


async def test_input_is_validated_with_every_problem_listed(client: Client) -> None:
    document = workflow(
        [expr("a", "1")],
        variables={
            "name": {"name": "name", "type": "string", "required": True},
            "count": {"name": "count", "type": "integer"},
            "flag": {"name": "flag", "type": "boolean"},
            "ratio": {"name": "ratio", "type": "number"},
            "tags": {"name": "tags", "type": "array"},
            "fallback": {"name": "fallback", "type": "string", "required": True,
                         "default_value": "x"},
        },
    )  # fmt: skip
    await upload(client, document)
    bad = {"count": "3", "flag": 1, "ratio": True, "tags": {"a": 1}}
    response = await client.post(f"{BASE}/wf/execute", json={"input": bad})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    problems = {d["path"]: d["message"] for d in error["details"]}
    assert set(problems) == {"/input/name", "/input/count", "/input/flag", "/input/ratio",
                             "/input/tags"}  # fmt: skip
    assert "missing" in problems["/input/name"]
    assert "integer" in problems["/input/count"]
    assert "string" in problems["/input/count"]
    listed = (await client.get(EXECUTIONS, params={"workflow_id": "wf"})).json()
    assert listed["total"] == 0  # nothing was started
    good = await start(client, input={"name": "n", "count": 3, "ratio": 2, "extra": [1]})
    assert good["status"] in ("running", "completed")


@pytest.mark.parametrize("how", ["body", "header"])
async def test_a_second_start_with_the_same_idempotency_key_returns_the_first(
    client: Client, how: str
) -> None:
    await upload(client, workflow([expr("a", "1")]))

    async def post(key: str) -> Any:
        if how == "body":
            return await client.post(f"{BASE}/wf/execute", json={"idempotency_key": key})
        return await client.post(f"{BASE}/wf/execute", json={}, headers={"Idempotency-Key": key})

    first = await post("order-17")
    again = await post("order-17")
    other = await post("order-18")
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.json()["id"] == first.json()["id"]
    assert other.json()["id"] != first.json()["id"]
    listed = (await client.get(EXECUTIONS, params={"workflow_id": "wf"})).json()
    assert listed["total"] == 2


@pytest.mark.parametrize("how", ["body", "header"])
@pytest.mark.parametrize("key", ["cron:wf:nightly:2030-01-01T00:00:00Z", "hook:x", "abc~1~0"])
async def test_the_servers_own_idempotency_keys_are_refused(
    client: Client, how: str, key: str
) -> None:
    """A caller must not take the key of a cron fire, a hook delivery or a child first."""
    await upload(client, workflow([expr("a", "1")]))
    if how == "body":
        response = await client.post(f"{BASE}/wf/execute", json={"idempotency_key": key})
    else:
        response = await client.post(
            f"{BASE}/wf/execute", json={}, headers={"Idempotency-Key": key}
        )
    assert response.status_code == 422, response.text
    assert "the server's own" in response.text


async def test_a_delayed_start_is_pending_until_its_time_then_runs(client: Client) -> None:
    await upload(client, workflow([expr("a", "1")]))
    execution = await start(client, delay=0.3)
    assert execution["status"] == "pending"
    (delay,) = execution["waiting_on"]
    assert delay["kind"] == "delay"
    assert at(delay["until"]) >= at(execution["created_at"]) + timedelta(seconds=0.3)
    done = await wait_for_status(client, execution["id"], TERMINAL)
    assert done["status"] == "completed", done["error"]
    assert at(done["started_at"]) >= at(delay["until"])
    (run_,) = node_runs(done, "a")
    assert at(run_["started_at"]) >= at(delay["until"])
    assert done["waiting_on"] == []


async def test_cancelling_a_delayed_start_means_it_never_runs(client: Client) -> None:
    await upload(client, workflow([expr("a", "1")]))
    delayed = await start(client, delay=0.2)
    response = await control(client, delayed["id"], "cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    # A later delayed start is a barrier: once it has run, the engine has passed the
    # cancelled one's start time.
    barrier = await start(client, delay=0.4)
    await wait_for_status(client, barrier["id"], "completed")
    execution = (await client.get(f"{EXECUTIONS}/{delayed['id']}")).json()
    assert execution["status"] == "cancelled"
    assert all(r["started_at"] is None for r in execution["executed_nodes"])
    assert execution["waiting_on"] == []
    kinds = [kind for kind, _ in await event_types(client, delayed["id"])]
    assert "execution.started" not in kinds
    assert "node.started" not in kinds
