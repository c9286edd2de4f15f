"""The definition routes of SPEC §6 against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import select

from server.store.database import Database
from server.store.models import AuditRow, ExecutionRow, WorkflowVersionRow
from tests.integration.api.conftest import definition

Client = AsyncTestClient[Any]
BASE = "/api/v1/workflows"


async def create(client: Client, document: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(BASE, json=document)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_answers_the_stored_document_with_defaults(client: Client) -> None:
    document = definition()
    del document["version"]
    document["x-custom"] = {"kept": True}  # unknown fields round-trip
    body = await create(client, document)
    assert body["version"] == "1.0.0"
    assert body["status"] == "active"
    assert body["x-custom"] == {"kept": True}
    fetched = (await client.get(f"{BASE}/orders")).json()
    assert fetched == body


async def test_create_without_id_generates_one(client: Client) -> None:
    document = definition()
    del document["id"]
    body = await create(client, document)
    assert (await client.get(f"{BASE}/{body['id']}")).status_code == 200


async def test_identical_repost_is_idempotent_and_different_content_conflicts(
    client: Client,
) -> None:
    await create(client, definition())
    again = await client.post(BASE, json=definition())
    assert again.status_code == 200
    assert again.json()["name"] == "Order intake"
    changed = await client.post(BASE, json=definition(name="Something else"))
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "conflict"
    assert "new version" in changed.json()["error"]["message"]
    other_status = await client.post(BASE, json=definition(status="inactive"))
    assert other_status.status_code == 409
    assert "PATCH" in other_status.json()["error"]["message"]


async def test_put_adds_versions_and_refuses_existing_ones(client: Client) -> None:
    await create(client, definition())
    response = await client.put(f"{BASE}/orders", json=definition(version="1.1.0", name="v1.1"))
    assert response.status_code == 201
    assert (await client.get(f"{BASE}/orders")).json()["version"] == "1.1.0"
    assert (await client.get(f"{BASE}/orders", params={"version": "1.0.0"})).json()[
        "name"
    ] == "Order intake"
    again = await client.put(f"{BASE}/orders", json=definition(version="1.1.0"))
    assert again.status_code == 409
    assert "already has version 1.1.0" in again.json()["error"]["message"]
    bumped = await client.put(
        f"{BASE}/orders", json={k: v for k, v in definition().items() if k != "version"}
    )
    assert bumped.status_code == 201
    assert bumped.json()["version"] == "1.1.1"


async def test_put_checks_the_id_and_the_workflow(client: Client) -> None:
    await create(client, definition())
    mismatch = await client.put(f"{BASE}/orders", json=definition(id="other", version="2.0.0"))
    assert mismatch.status_code == 422
    assert mismatch.json()["error"]["details"][0]["path"] == "/id"
    missing = await client.put(f"{BASE}/nothing-here", json=definition(id="nothing-here"))
    assert missing.status_code == 404


async def test_versions_list_in_semver_order(client: Client) -> None:
    await create(client, definition(version="1.10.0"))
    await client.put(f"{BASE}/orders", json=definition(version="1.9.0"))
    await client.put(f"{BASE}/orders", json=definition(version="2.0.0-rc.1"))
    body = (await client.get(f"{BASE}/orders/versions")).json()
    assert body["workflow_id"] == "orders"
    assert [v["version"] for v in body["versions"]] == ["1.9.0", "1.10.0", "2.0.0-rc.1"]
    assert set(body["versions"][0]) == {"version", "status", "created_at", "created_by"}
    assert (await client.get(f"{BASE}/orders")).json()["version"] == "2.0.0-rc.1"


async def test_diff_between_versions(client: Client) -> None:
    await create(client, definition())
    v2 = definition(version="2.0.0")
    v2["nodes"][0]["config"]["expression"] = "2 + 2"
    v2["nodes"].append({"id": "after", "name": "After", "type": "transform",
                        "config": {"transform_type": "expression", "expression": "3"}})  # fmt: skip
    v2["edges"].append({"id": "e1", "from_node": "total", "to_node": "after"})
    await client.put(f"{BASE}/orders", json=v2)
    diff = (await client.get(f"{BASE}/orders/diff", params={"from": "1.0.0", "to": "2.0.0"})).json()
    assert [n["id"] for n in diff["nodes"]["added"]] == ["after"]
    assert diff["nodes"]["changed"][0]["changes"] == [
        {"path": "config.expression", "from": "1 + 1", "to": "2 + 2", "kind": "changed"}
    ]
    assert [e["id"] for e in diff["edges"]["added"]] == ["e1"]
    unknown = await client.get(f"{BASE}/orders/diff", params={"from": "1.0.0", "to": "9.9.9"})
    assert unknown.status_code == 404
    assert "known: 1.0.0, 2.0.0" in unknown.json()["error"]["message"]


async def test_list_filters_search_sort_and_paging(client: Client) -> None:
    for i in range(7):
        await create(
            client,
            definition(
                id=f"wf-{i}",
                name=f"Flow {i}",
                category="billing" if i % 2 else "sales",
                owner=f"owner-{i % 3}",
                tags=["even"] if i % 2 == 0 else ["odd", "x"],
                description="has 100% coverage" if i == 5 else "",
                status="draft" if i == 6 else "active",
            ),
        )
    page = (
        await client.get(
            BASE, params={"limit": 2, "offset": 2, "sort_by": "name", "sort_order": "asc"}
        )
    ).json()
    assert page["total"] == 7
    assert (page["limit"], page["offset"]) == (2, 2)
    assert [w["id"] for w in page["workflows"]] == ["wf-2", "wf-3"]

    async def ids(**params: Any) -> list[str]:
        body = (
            await client.get(BASE, params={"sort_by": "id", "sort_order": "asc", **params})
        ).json()
        assert body["total"] == len(body["workflows"])
        return [w["id"] for w in body["workflows"]]

    assert await ids(category="billing") == ["wf-1", "wf-3", "wf-5"]
    assert await ids(owner="owner-0") == ["wf-0", "wf-3", "wf-6"]
    assert await ids(tag="odd") == ["wf-1", "wf-3", "wf-5"]
    assert await ids(status="draft") == ["wf-6"]
    assert await ids(search="FLOW 4") == ["wf-4"]
    assert await ids(search="100%") == ["wf-5"]  # LIKE wildcards are escaped
    assert await ids(search="_") == []
    desc = (
        await client.get(BASE, params={"sort_by": "name", "sort_order": "desc", "limit": 1})
    ).json()
    assert desc["workflows"][0]["id"] == "wf-6"
    capped = (await client.get(BASE, params={"limit": 100000})).json()
    assert capped["limit"] == 200


async def test_list_rejects_bad_parameters_in_the_error_shape(client: Client) -> None:
    for params in ({"limit": "abc"}, {"limit": 0}, {"sort_by": "password"}, {"offset": -1}):
        response = await client.get(BASE, params=params)
        assert response.status_code == 400, params
        error = response.json()["error"]
        assert error["code"] == "bad_request"
        assert error["details"], params


async def test_status_lifecycle(client: Client) -> None:
    await create(client, definition(status="draft"))
    response = await client.patch(f"{BASE}/orders", json={"status": "active"})
    assert response.status_code == 200
    assert response.json()["status"] == "active"
    listed = (await client.get(BASE, params={"status": "active"})).json()
    assert [w["id"] for w in listed["workflows"]] == ["orders"]
    assert (
        await client.patch(f"{BASE}/orders", json={"status": "deprecated", "version": "1.0.0"})
    ).status_code == 200
    refused = await client.patch(f"{BASE}/orders", json={"status": "active"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "invalid_transition"
    assert "'deprecated'" in refused.json()["error"]["message"]
    bad = await client.patch(f"{BASE}/orders", json={"status": "paused", "colour": "red"})
    assert bad.status_code == 422
    assert {d["path"] for d in bad.json()["error"]["details"]} == {"/status", "/colour"}


async def test_delete_frees_the_id_and_respects_running_executions(
    client: Client, database_url: str
) -> None:
    await create(client, definition())
    # The app runs on the test client's own event loop; this test uses its own connection.
    database = Database(database_url)
    async with database.session() as session, session.begin():
        version = (await session.execute(select(WorkflowVersionRow))).scalar_one()
        session.add(ExecutionRow(workflow_id="orders", workflow_version="1.0.0",
                                 definition_pk=version.pk, status="running"))  # fmt: skip
    await database.dispose()
    refused = await client.delete(f"{BASE}/orders")
    assert refused.status_code == 409
    assert "force=true" in refused.json()["error"]["message"]
    assert (await client.delete(f"{BASE}/orders", params={"force": "true"})).status_code == 204
    assert (await client.get(f"{BASE}/orders")).status_code == 404
    assert (await client.delete(f"{BASE}/orders")).status_code == 404
    recreated = await client.post(BASE, json=definition(name="Second life"))
    assert recreated.status_code == 201
    assert (await client.get(f"{BASE}/orders/versions")).json()["versions"][0]["version"] == "1.0.0"


async def test_definition_changes_are_audited(client: Client, database_url: str) -> None:
    await create(client, definition())
    await client.put(f"{BASE}/orders", json=definition(version="1.0.1"))
    await client.patch(f"{BASE}/orders", json={"status": "inactive"})
    await client.delete(f"{BASE}/orders")
    database = Database(database_url)
    async with database.session() as session:
        rows = (
            await session.execute(
                select(AuditRow.action, AuditRow.actor)
                .where(AuditRow.target_type == "workflow")
                .order_by(AuditRow.id)
            )
        ).all()
    await database.dispose()
    assert [action for action, _ in rows] == [
        "workflow.published",
        "workflow.version_added",
        "workflow.status_changed",
        "workflow.deleted",
    ]
    assert {actor for _, actor in rows} == {"key:bootstrap-admin"}  # the caller, not None
