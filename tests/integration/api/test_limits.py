"""Request and definition limits (SPEC §8) through the REST API: a clear 413 or 422 that
names the JSON pointer, the limit and the setting to change — never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.config import load_settings
from tests.auth import ADMIN_HEADERS, with_admin_key
from tests.integration.api.conftest import Client, definition

BASE = "/api/v1/workflows"


@pytest.fixture
async def small_body_client(sqlite_url: str) -> AsyncIterator[Client]:
    """An app whose request bodies may be at most 2,000 bytes."""
    flags = {"server.database_url": sqlite_url, "limits.max_body_bytes": 2000}
    settings = load_settings(with_admin_key(flags), environ={})
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        test_client.headers.update(ADMIN_HEADERS)
        yield test_client


def transform(node_id: str, transform_type: str, expression: str) -> dict[str, Any]:
    return {
        "id": node_id,
        "name": node_id,
        "type": "transform",
        "config": {"transform_type": transform_type, "expression": expression},
    }


def problems(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_definition"
    details: list[dict[str, str]] = error["details"]
    return details


def only(details: list[dict[str, str]], setting: str) -> dict[str, str]:
    """The one problem whose message names ``setting``."""
    found = [d for d in details if setting in d["message"]]
    assert len(found) == 1, details
    return found[0]


async def test_a_body_over_the_default_10_mb_is_413_on_every_body_route(client: Client) -> None:
    await client.post(BASE, json=definition())
    huge = b'{"input": {"blob": "' + b"x" * (10 * 1024 * 1024) + b'"}}'
    for path in (f"{BASE}/orders/execute", f"{BASE}/validate", f"{BASE}/orders"):
        method = "PUT" if path.endswith("/orders") else "POST"
        response = await client.request(
            method, path, content=huge, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == "payload_too_large"
        assert "limits.max_body_bytes" in error["message"]
    listing = await client.get(f"{BASE}/executions")
    assert listing.json()["total"] == 0  # nothing was started


async def test_the_body_limit_is_a_setting(small_body_client: Client) -> None:
    small = definition()
    assert len(json.dumps(small)) < 2000
    assert (await small_body_client.post(f"{BASE}/validate", json=small)).status_code == 200
    large = definition(description="d" * 2500)
    response = await small_body_client.post(f"{BASE}/validate", json=large)
    assert response.status_code == 413
    assert "limits.max_body_bytes" in response.json()["error"]["message"]


async def test_more_nodes_than_the_limit_is_422_at_nodes(client: Client) -> None:
    nodes = [transform(f"n{i}", "expression", "1") for i in range(1001)]
    response = await client.post(BASE, json=definition(nodes=nodes))
    problem = only(problems(response), "limits.max_nodes")
    assert problem["path"] == "/nodes"
    assert "1,001" in problem["message"]
    assert "the limit is 1,000" in problem["message"]
    assert (await client.get(BASE)).json()["total"] == 0


async def test_nodes_nested_deeper_than_the_limit_is_422_at_the_body(client: Client) -> None:
    body: dict[str, Any] = {"nodes": [transform("leaf", "expression", "1")], "edges": []}
    for level in range(11):  # 11 loop bodies inside each other; the limit is 10
        loop = {
            "id": f"loop{level}",
            "name": "loop",
            "type": "loop",
            "config": {"iterations": 1, "body": body},
        }
        body = {"nodes": [loop], "edges": []}
    response = await client.post(BASE, json=definition(nodes=body["nodes"]))
    problem = only(problems(response), "limits.max_depth")
    assert problem["path"].startswith("/nodes/0/config/body/nodes/0/config/body")
    assert problem["path"].endswith("/config/body")
    assert "nested more than 10 levels" in problem["message"]


@pytest.mark.parametrize(
    ("transform_type", "length", "setting", "limit"),
    [
        ("expression", 10_001, "limits.max_expression_length", "10,000"),
        ("json_path", 2_001, "limits.max_jsonpath_length", "2,000"),
    ],
)
async def test_an_oversized_expression_is_422_at_its_key(
    client: Client, transform_type: str, length: int, setting: str, limit: str
) -> None:
    text = "x + 1" + " " * (length - 5) if transform_type == "expression" else "$.a"
    text += "b" * (length - len(text))
    assert len(text) == length
    nodes = [transform("big", transform_type, text)]
    response = await client.post(BASE, json=definition(nodes=nodes))
    problem = only(problems(response), setting)
    assert problem["path"] == "/nodes/0/config/expression"
    assert limit in problem["message"]
