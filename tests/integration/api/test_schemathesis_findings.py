"""Regressions for what schemathesis found (test_schemathesis.py), kept as fast,
deterministic tests: each of these requests once answered 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api.conftest import Client, definition

HUGE = 2**64  # beyond the signed 64-bit integers both databases bind

LIST_ROUTES = [
    "/api/v1/workflows",
    "/api/v1/workflows/executions",
    "/api/v1/workflows/orders/executions",
    "/api/v1/tasks",
    "/api/v1/users",
    "/api/v1/api-keys",
    "/api/v1/audit",
]


@pytest.mark.parametrize("path", LIST_ROUTES)
async def test_an_offset_beyond_64_bits_is_400_not_500(client: Client, path: str) -> None:
    await client.post("/api/v1/workflows", json=definition())
    response = await client.get(path, params={"offset": HUGE})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_request"
    largest = await client.get(path, params={"offset": 2**63 - 1})
    assert largest.status_code == 200, largest.text


async def test_an_event_id_beyond_64_bits_is_400_not_500(client: Client) -> None:
    await client.post("/api/v1/workflows", json=definition())
    started = await client.post("/api/v1/workflows/orders/execute", json={})
    assert started.status_code == 201, started.text
    events = f"/api/v1/workflows/executions/{started.json()['id']}/events"
    assert (await client.get(events, params={"after": HUGE})).status_code == 400
    assert (await client.get(events, params={"after": 2**63 - 1})).status_code == 200


@pytest.mark.parametrize("priority", [{}, [], 1, True, {"high": 1}])
async def test_a_priority_that_is_not_text_is_422(client: Client, priority: Any) -> None:
    await client.post("/api/v1/workflows", json=definition())
    response = await client.post(
        "/api/v1/workflows/orders/execute", json={"priority": priority, "delay": -1}
    )
    assert response.status_code == 422, response.text
    paths = {d["path"] for d in response.json()["error"]["details"]}
    assert paths == {"/priority", "/delay"}  # still every problem at once


async def test_every_reference_in_the_openapi_document_resolves(client: Client) -> None:
    spec = (await client.get("/schema/openapi.json")).json()

    def refs(value: Any) -> list[str]:
        if isinstance(value, dict):
            found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
            return found + [r for item in value.values() for r in refs(item)]
        if isinstance(value, list):
            return [r for item in value for r in refs(item)]
        return []

    for ref in refs(spec):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in spec["components"]["schemas"], ref
    assert "WorkflowDefinition.node" in spec["components"]["schemas"]
    assert "WorkflowDefinition.config-loop" in spec["components"]["schemas"]
