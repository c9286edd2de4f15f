"""Hostile and broken requests get a precise error in the one shape — never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.integration.api.conftest import definition

Client = AsyncTestClient[Any]
BASE = "/api/v1/workflows"


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert "Traceback" not in response.text
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"name": "x",', "not valid JSON"),
        (b"{'single': 'quotes'}", "not valid JSON"),
        (b'{"n": NaN}', "NaN is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b"\xff\xfe{}", "not"),
    ],
)
async def test_malformed_json_is_400(client: Client, body: bytes, fragment: str) -> None:
    response = await client.post(BASE, content=body, headers={"Content-Type": "application/json"})
    error = assert_error(response, 400, "malformed_json")
    assert fragment in error["message"]


async def test_json_error_says_where(client: Client) -> None:
    response = await client.post(
        BASE, content=b'{\n  "name": "x"\n  "id": 1}', headers={"Content-Type": "application/json"}
    )
    error = assert_error(response, 400, "malformed_json")
    assert "line 3" in error["message"]


async def test_empty_body_is_400(client: Client) -> None:
    response = await client.post(BASE, content=b"", headers={"Content-Type": "application/json"})
    assert_error(response, 400, "bad_request")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
async def test_wrong_content_type_is_415(client: Client, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post(BASE, content=b'{"name": "x"}', headers=headers)
    error = assert_error(response, 415, "unsupported_media_type")
    assert "application/json" in error["message"]


async def test_json_with_charset_and_vendor_types_is_accepted(client: Client) -> None:
    import json

    for content_type in ("application/json; charset=utf-8", "application/vnd.flowyard+json"):
        response = await client.post(
            f"{BASE}/validate",
            content=json.dumps(definition()).encode(),
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 200, content_type


async def test_oversize_body_is_413(client: Client) -> None:
    huge = b'{"name": "' + b"x" * (10 * 1024 * 1024 + 10) + b'"}'
    response = await client.post(BASE, content=huge, headers={"Content-Type": "application/json"})
    error = assert_error(response, 413, "payload_too_large")
    assert "max_body_bytes" in error["message"]


async def test_invalid_definition_is_422_listing_every_problem(client: Client) -> None:
    document = definition(id="Bad Id!", version="one")
    document["nodes"].append({"id": "total", "type": "teleport", "config": {}})
    document["edges"].append({"from_node": "total", "to_node": "nowhere"})
    response = await client.post(BASE, json=document)
    error = assert_error(response, 422, "invalid_definition")
    paths = {d["path"] for d in error["details"]}
    assert {"/id", "/version", "/nodes/1/id", "/nodes/1/type", "/edges/0/to_node"} <= paths
    assert all(d["message"] for d in error["details"])
    assert (await client.get(BASE)).json()["total"] == 0  # nothing stored


@pytest.mark.parametrize("body", [[1, 2], "text", 42, None, True])
async def test_non_object_definitions_are_422(client: Client, body: Any) -> None:
    import json

    response = await client.post(
        BASE, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == ""


async def test_unknown_ids_are_404(client: Client) -> None:
    requests = [
        ("GET", f"{BASE}/ghost"),
        ("GET", f"{BASE}/ghost/versions"),
        ("DELETE", f"{BASE}/ghost"),
        ("GET", f"{BASE}/ghost/diff?from=1.0.0&to=1.0.1"),
    ]
    for method, path in requests:
        response = await client.request(method, path)
        error = assert_error(response, 404, "not_found")
        assert "ghost" in error["message"]
    assert_error(await client.get("/api/v1/no-such-route"), 404, "not_found")


async def test_unknown_version_is_404(client: Client) -> None:
    await client.post(BASE, json=definition())
    assert_error(await client.get(f"{BASE}/orders", params={"version": "7.0.0"}), 404, "not_found")


async def test_wrong_method_is_405_in_the_error_shape(client: Client) -> None:
    assert_error(
        await client.request("PATCH", "/api/v1/workflows/health"), 405, "method_not_allowed"
    )


async def test_validate_answers_200_whatever_the_verdict(client: Client) -> None:
    good = await client.post(f"{BASE}/validate", json=definition())
    assert good.status_code == 200
    assert good.json()["valid"] is True
    bad = await client.post(f"{BASE}/validate", json={"nodes": []})
    assert bad.status_code == 200
    body = bad.json()
    assert body["valid"] is False
    assert any(e["path"] == "/name" for e in body["errors"])
    assert (await client.get(BASE)).json()["total"] == 0
