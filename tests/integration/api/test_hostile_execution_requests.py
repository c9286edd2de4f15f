"""Hostile requests to the execution routes get a 4xx in the error shape, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api.conftest import Client, definition

BASE = "/api/v1/workflows"
EXECUTIONS = f"{BASE}/executions"


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("POST", f"{BASE}/orders/execute", {"start_at": "9999-12-31T23:59:59+00:00"}, 422),
        ("POST", f"{BASE}/orders/execute", {"start_at": "yesterday"}, 422),
        ("POST", f"{BASE}/orders/execute", {"start_at": "2030-01-01T00:00:00"}, 422),
        ("POST", f"{BASE}/orders/execute", {"delay": 1e308}, 422),
        ("POST", f"{BASE}/orders/execute", {"delay": -1}, 422),
        ("POST", f"{BASE}/orders/execute", {"delay": True}, 422),
        ("POST", f"{BASE}/orders/execute", {"input": [1, 2]}, 422),
        ("POST", f"{BASE}/orders/execute", {"priority": "urgent"}, 422),
        ("POST", f"{BASE}/orders/execute", {"version": {"$gt": ""}}, 422),
        ("POST", f"{BASE}/orders/execute", {"idempotency_key": "k" * 300}, 422),
        ("POST", f"{BASE}/orders/execute", [1], 422),
        ("POST", f"{BASE}/orders/execute", {"version": "9.9.9"}, 404),
        ("POST", f"{BASE}/nothing-here/execute", {}, 404),
        ("GET", f"{EXECUTIONS}?started_from=notadate", None, 400),
        ("GET", f"{EXECUTIONS}?limit=-5", None, 400),
        ("GET", f"{EXECUTIONS}?priority=urgent", None, 400),
        ("GET", f"{EXECUTIONS}/no-such-execution", None, 404),
        ("GET", f"{EXECUTIONS}/no-such-execution/events?after=-1", None, 400),
        ("POST", f"{EXECUTIONS}/no-such-execution/cancel", None, 404),
        ("POST", f"{EXECUTIONS}/no-such-execution/rerun", {"node_id": 5}, 422),
        ("POST", f"{EXECUTIONS}/no-such-execution/skip", {"node_id": "a", "output": "x"}, 422),
        ("POST", f"{EXECUTIONS}/no-such-execution/restart", {"version": 3}, 422),
    ],
)
async def test_hostile_request_is_refused_cleanly(
    client: Client, method: str, path: str, body: Any, expected: int
) -> None:
    await client.post(BASE, json=definition())
    response = await client.request(method, path, json=body)
    assert response.status_code == expected, response.text
    assert set(response.json()) == {"error"}
    assert response.json()["error"]["message"]


async def test_idempotency_key_header_that_is_too_long_is_400(client: Client) -> None:
    await client.post(BASE, json=definition())
    started = (await client.post(f"{BASE}/orders/execute", json={})).json()
    response = await client.post(
        f"{EXECUTIONS}/{started['id']}/cancel", headers={"Idempotency-Key": "k" * 300}
    )
    assert response.status_code == 400
