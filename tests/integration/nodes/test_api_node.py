"""``api`` nodes run through the REST API against real HTTP servers on 127.0.0.1.

Each test runs on SQLite and PostgreSQL. The peer records what really arrived (method,
query, headers, body), so the assertions are about the wire, not about our own objects.
"""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.engine.conftest import (
    Client,
    chain,
    engine_client,
    node,
    node_runs,
    run,
    script,
    workflow,
)
from tests.integration.nodes.http_peer import HttpPeer, Reply, redirect

RESPONSE_LIMIT = 2000
QUICK_RETRIES = {"max_attempts": 3, "delay": 0.01, "backoff": "fixed"}
JSON = {"Content-Type": "application/json"}
TEXT = {"Content-Type": "text/plain"}
NOWHERE = "http://127.0.0.1:1/"  # never contacted: these configs fail before connecting


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    flags = {"outbound.deny": ["127.0.0.2"], "limits.max_response_bytes": RESPONSE_LIMIT}
    async with engine_client(database_url, **flags) as test_client:
        yield test_client


@pytest.fixture
async def peer() -> AsyncIterator[HttpPeer]:
    async with HttpPeer() as server:
        yield server


def api(config: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return node("call", "api", config, **fields)


def call_runs(execution: dict[str, Any]) -> list[dict[str, Any]]:
    return node_runs(execution, "call")


def final_error(execution: dict[str, Any]) -> str:
    message: str = call_runs(execution)[-1]["error"]["message"]
    return message


async def test_a_templated_get_returns_status_headers_and_json(
    client: Client, peer: HttpPeer
) -> None:
    peer.script(Reply(200, json={"id": 7, "name": "Ada"}, headers={"X-Request-Id": "r-1"}))
    document = workflow(
        [
            script("prepare", "customer = 7", "region = 'eu'"),
            api(
                {
                    "url": peer.url("/customers/${customer}"),
                    "query": {"region": "${region}", "page": 2, "active": True, "skip": None},
                    "headers": {"X-Tenant": "t-${customer}"},
                }
            ),
        ],
        chain("prepare", "call"),
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    (request,) = peer.requests
    assert (request.method, request.path) == ("GET", "/customers/7")
    assert request.query == {"region": ["eu"], "page": ["2"], "active": ["true"]}
    assert request.headers["x-tenant"] == "t-7"
    assert request.headers["idempotency-key"] == f"{execution['id']}:call"
    output = call_runs(execution)[0]["output"]
    assert output["status_code"] == 200
    assert output["data"] == {"id": 7, "name": "Ada"}
    assert output["headers"]["x-request-id"] == "r-1"
    assert output["headers"]["content-type"] == "application/json"
    assert execution["output"]["data"] == {"id": 7, "name": "Ada"}  # merged into the scope


async def test_a_json_body_is_sent_with_its_content_type(client: Client, peer: HttpPeer) -> None:
    peer.script(Reply(201, json={"created": True}))
    document = workflow(
        [
            script("prepare", "amount = 12.5", "items = ['a', 'b']"),
            api(
                {
                    "url": peer.url("/orders"),
                    "method": "post",
                    "json": {"amount": "${amount}", "items": "${items}", "note": "n ${amount}"},
                }
            ),
        ],
        chain("prepare", "call"),
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    (request,) = peer.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"amount": 12.5, "items": ["a", "b"], "note": "n 12.5"}
    assert call_runs(execution)[0]["output"]["status_code"] == 201


async def test_a_raw_body_is_sent_as_text(client: Client, peer: HttpPeer) -> None:
    document = workflow([api({"url": peer.url("/raw"), "method": "PUT", "body": "line one"})])
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    (request,) = peer.requests
    assert (request.method, request.body) == ("PUT", b"line one")
    assert request.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        ({"type": "bearer", "token": "tok-1"}, "authorization", "Bearer tok-1"),
        (
            {"type": "basic", "username": "ada", "password": "pw"},
            "authorization",
            "Basic " + base64.b64encode(b"ada:pw").decode(),
        ),
        ({"type": "header", "name": "X-Api-Key", "value": "k-9"}, "x-api-key", "k-9"),
    ],
)
async def test_auth_is_sent_in_the_right_header(
    client: Client, peer: HttpPeer, auth: dict[str, Any], header: str, value: str
) -> None:
    execution = await run(client, workflow([api({"url": peer.url("/me"), "auth": auth})]))
    assert execution["status"] == "completed", execution["error"]
    assert peer.requests[0].headers[header] == value


async def test_a_failure_never_repeats_the_credentials(client: Client, peer: HttpPeer) -> None:
    peer.script(Reply(401, json={"error": "bad token"}))
    document = workflow(
        [
            api(
                {
                    "url": peer.url("/me?api_key=qs-secret").replace("http://", "http://u:pw-1@"),
                    "auth": {"type": "bearer", "token": "tok-secret"},
                }
            )
        ]
    )
    execution = await run(client, document)
    assert execution["status"] == "failed"
    message = final_error(execution)
    assert "401" in message
    assert "bad token" in message  # the body excerpt
    for secret in ("tok-secret", "qs-secret", "pw-1"):
        assert secret not in message
        assert secret not in str(execution["error"])


async def test_503_twice_then_200_completes_on_the_third_attempt_with_one_key(
    client: Client, peer: HttpPeer
) -> None:
    peer.script(Reply(503, body="busy"), Reply(503, body="busy"), Reply(200, json={"ok": 1}))
    document = workflow([api({"url": peer.url("/flaky")}, retry_policy=QUICK_RETRIES)])
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    runs = call_runs(execution)
    assert [(r["attempt"], r["status"]) for r in runs] == [
        (1, "failed"),
        (2, "failed"),
        (3, "completed"),
    ]
    assert "answered 503" in runs[0]["error"]["message"]
    assert runs[0]["error"]["status_code"] == 503
    keys = [r.headers["idempotency-key"] for r in peer.requests]
    assert keys == [f"{execution['id']}:call"] * 3


async def test_429_is_retried(client: Client, peer: HttpPeer) -> None:
    peer.script(Reply(429), Reply(200))
    document = workflow([api({"url": peer.url("/limited")}, retry_policy=QUICK_RETRIES)])
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    assert len(peer.requests) == 2


async def test_a_4xx_fails_at_once_despite_the_retry_policy(client: Client, peer: HttpPeer) -> None:
    peer.script(Reply(404, body="no such customer\n\x00 here"))
    document = workflow([api({"url": peer.url("/c/9")}, retry_policy=QUICK_RETRIES)])
    execution = await run(client, document)
    assert execution["status"] == "failed"
    assert len(peer.requests) == 1
    message = final_error(execution)
    assert f"GET {peer.url('/c/9')} answered 404 (expected 2xx)" in message
    assert "body: no such customer here" in message


@pytest.mark.parametrize("expected", [404, [200, 404], "4xx", ["2xx", "404"]])
async def test_expected_status_accepts_other_statuses(
    client: Client, peer: HttpPeer, expected: Any
) -> None:
    peer.script(Reply(404, json={"found": False}))
    document = workflow([api({"url": peer.url("/c/9"), "expected_status": expected})])
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    assert call_runs(execution)[0]["output"]["status_code"] == 404


async def test_an_expected_status_list_rejects_what_it_does_not_name(
    client: Client, peer: HttpPeer
) -> None:
    peer.script(Reply(200))
    document = workflow([api({"url": peer.url("/"), "expected_status": [201, "3xx"]})])
    execution = await run(client, document)
    assert execution["status"] == "failed"
    assert "answered 200 (expected 201, 3xx)" in final_error(execution)


async def test_a_timeout_is_retried_and_then_fails(client: Client, peer: HttpPeer) -> None:
    release = asyncio.Event()
    peer.handler = lambda _: Reply(200, hold=release)
    retries = {"max_attempts": 2, "delay": 0.01, "backoff": "fixed"}
    document = workflow([api({"url": peer.url("/slow"), "timeout": 0.2}, retry_policy=retries)])
    execution = await run(client, document)
    release.set()
    assert execution["status"] == "failed"
    assert [r["status"] for r in call_runs(execution)] == ["failed", "failed"]
    assert "did not answer within 0.2 s" in final_error(execution)
    assert len(peer.requests) == 2


async def test_a_refused_connection_is_retried(client: Client) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    document = workflow([api({"url": f"http://127.0.0.1:{port}/"}, retry_policy=QUICK_RETRIES)])
    execution = await run(client, document)
    assert execution["status"] == "failed"
    assert len(call_runs(execution)) == 3
    assert "could not be reached" in final_error(execution)


async def test_a_redirect_to_a_denied_address_fails_without_reaching_it(
    client: Client, peer: HttpPeer
) -> None:
    async with HttpPeer("127.0.0.2") as denied:
        peer.handler = lambda _: redirect(denied.url("/internal"))
        document = workflow([api({"url": peer.url("/start")}, retry_policy=QUICK_RETRIES)])
        execution = await run(client, document)
        assert execution["status"] == "failed"
        assert len(call_runs(execution)) == 1  # blocked is final: no retries
        assert "destination 127.0.0.2 is blocked by outbound.deny" in final_error(execution)
        assert denied.requests == []
        assert len(peer.requests) == 1


async def test_redirects_are_followed_unless_turned_off(client: Client, peer: HttpPeer) -> None:
    peer.handler = lambda r: redirect("/there") if r.path == "/here" else Reply(200, json=r.path)
    followed = await run(client, workflow([api({"url": peer.url("/here")})], id="followed"))
    assert call_runs(followed)[0]["output"]["data"] == "/there"
    config = {"url": peer.url("/here"), "follow_redirects": False, "expected_status": "3xx"}
    kept = await run(client, workflow([api(config)], id="kept"))
    output = call_runs(kept)[0]["output"]
    assert output["status_code"] == 302
    assert output["headers"]["location"] == "/there"


async def test_a_response_over_the_limit_fails_naming_the_limit(
    client: Client, peer: HttpPeer
) -> None:
    peer.script(Reply(200, chunks=[b"z" * 500] * 10))
    document = workflow([api({"url": peer.url("/big")}, retry_policy=QUICK_RETRIES)])
    execution = await run(client, document)
    assert execution["status"] == "failed"
    assert len(call_runs(execution)) == 1
    assert f"limits.max_response_bytes ({RESPONSE_LIMIT} bytes)" in final_error(execution)


@pytest.mark.parametrize(
    ("response_type", "reply", "data"),
    [
        ("auto", Reply(200, json={"a": 1}), {"a": 1}),
        ("auto", Reply(200, body="plain", headers=TEXT), "plain"),
        ("auto", Reply(200, body="{not json", headers=JSON), "{not json"),
        ("json", Reply(200, body='{"b": 2}', headers=TEXT), {"b": 2}),
        ("text", Reply(200, json={"a": 1}), '{"a": 1}'),
        ("auto", Reply(204), None),
    ],
)  # fmt: skip
async def test_response_type_decides_how_the_body_is_read(
    client: Client, peer: HttpPeer, response_type: str, reply: Reply, data: Any
) -> None:
    peer.script(reply)
    config = {"url": peer.url("/"), "response_type": response_type}
    execution = await run(client, workflow([api(config)]))
    assert execution["status"] == "completed", execution["error"]
    assert call_runs(execution)[0]["output"]["data"] == data


async def test_json_response_type_fails_on_a_body_that_is_not_json(
    client: Client, peer: HttpPeer
) -> None:
    peer.script(Reply(200, body="<html>oops</html>"))
    config = {"url": peer.url("/"), "response_type": "json"}
    execution = await run(client, workflow([api(config)]))
    assert execution["status"] == "failed"
    assert "the response is not JSON" in final_error(execution)
    assert "<html>oops</html>" in final_error(execution)


async def test_a_user_idempotency_key_header_wins(client: Client, peer: HttpPeer) -> None:
    config = {"url": peer.url("/"), "headers": {"idempotency-key": "mine-1"}}
    execution = await run(client, workflow([api(config)]))
    assert execution["status"] == "completed", execution["error"]
    assert [v for k, v in peer.requests[0].header_list if k.lower() == "idempotency-key"] == [
        "mine-1"
    ]


@pytest.mark.parametrize(
    ("target", "config", "message"),
    [
        (5, {"url": "${target}"}, "'url' must be an http(s) URL, not int"),
        ("ftp://127.0.0.1/x", {"url": "${target}"}, "has scheme 'ftp'; only http and https"),
        ("a\r\nX-B: b", {"url": NOWHERE, "headers": {"X-A": "${target}"}}, "line break"),
        ({"k": 1}, {"url": NOWHERE, "query": {"q": "${target}"}}, "'query.q'"),
        ("4xx-ish", {"url": NOWHERE, "expected_status": "${target}"}, "status code"),
    ],
)  # fmt: skip
async def test_a_rendered_config_that_cannot_make_a_request_fails_at_once(
    client: Client, target: Any, config: dict[str, Any], message: str
) -> None:
    document = workflow(
        [api(config, retry_policy=QUICK_RETRIES)], variables={"target": {"name": "target"}}
    )
    execution = await run(client, document, input={"target": target})
    assert execution["status"] == "failed"
    assert len(call_runs(execution)) == 1
    assert message in final_error(execution)


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({}, "/nodes/0/config"),
        ({"url": "ftp://x/"}, "/nodes/0/config/url"),
        ({"url": "http://x/", "expected_status": "2xy"}, "/nodes/0/config/expected_status"),
        ({"url": "http://x/", "expected_status": [200, 99]}, "/nodes/0/config/expected_status/1"),
        ({"url": "http://x/", "headers": {"Bad Name": "v"}}, "/nodes/0/config/headers/Bad Name"),
        ({"url": "http://x/", "auth": {"type": "bearer"}}, "/nodes/0/config/auth/token"),
        ({"url": "http://x/", "timeout": "soon"}, "/nodes/0/config/timeout"),
        ({"url": "http://x/", "json": {}, "body": "b"}, "/nodes/0/config/body"),
    ],
)
async def test_validation_points_at_the_config_key(
    client: Client, config: dict[str, Any], path: str
) -> None:
    response = await client.post("/api/v1/workflows/validate", json=workflow([api(config)]))
    report = response.json()
    assert report["valid"] is False
    assert path in [error["path"] for error in report["errors"]], report["errors"]


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, body='{"a": "x\\u0000y"}', headers=JSON),
        Reply(200, body=b"text\x00with nul", headers=TEXT),
    ],
)
async def test_a_response_with_a_nul_character_fails_on_every_backend(
    client: Client, peer: HttpPeer, reply: Reply
) -> None:
    # PostgreSQL cannot store U+0000 in JSON; the node refuses it instead of the commit.
    peer.script(reply)
    document = workflow([api({"url": peer.url("/")}, retry_policy=QUICK_RETRIES)])
    execution = await run(client, document)
    assert execution["status"] == "failed"
    assert len(peer.requests) == 1
    assert "NUL character" in final_error(execution)
