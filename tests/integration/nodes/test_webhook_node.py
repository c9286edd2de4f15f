"""``webhook`` nodes in send mode, against a real receiver on 127.0.0.1.

The receiver checks every signature itself with ``server.signing.verify`` — what a
Standard Webhooks consumer does — over the exact bytes that arrived.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from server.signing import SignatureError, verify
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
from tests.integration.nodes.http_peer import HttpPeer, Recorded, Reply, redirect

SECRET = "whsec_" + base64.b64encode(b"a shared secret of 24 b.").decode()
OLD_SECRET = "rotated-out plain secret"


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    async with engine_client(database_url, **{"outbound.deny": ["127.0.0.2"]}) as test_client:
        yield test_client


@pytest.fixture
async def peer() -> AsyncIterator[HttpPeer]:
    async with HttpPeer() as server:
        yield server


def send(config: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return node("notify", "webhook", config, **fields)


def verified(request: Recorded, secrets: list[str], at: datetime | None = None) -> str:
    """The webhook-id of a request whose signature holds for ``secrets`` (else raises)."""
    return verify(secrets, request.headers, request.body, at or datetime.now(UTC))


async def test_a_signed_webhook_verifies_at_the_receiver(client: Client, peer: HttpPeer) -> None:
    peer.script(Reply(200, json={"received": True}))
    document = workflow(
        [
            script("prepare", "order_id = 42", "total = 9.5"),
            send(
                {
                    "url": peer.url("/hooks/orders"),
                    "payload": {"event": "order.paid", "order": "${order_id}", "sum": "${total}"},
                    "headers": {"X-Source": "flowyard"},
                    "secret": SECRET,
                }
            ),
        ],
        chain("prepare", "notify"),
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    (request,) = peer.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-source"] == "flowyard"
    assert request.json() == {"event": "order.paid", "order": 42, "sum": 9.5}
    assert verified(request, [SECRET]) == f"{execution['id']}:notify"
    with pytest.raises(SignatureError):
        verified(request, ["some other secret"])
    output = node_runs(execution, "notify")[0]["output"]
    assert output == {"status_code": 200, "data": {"received": True}}


async def test_retries_keep_the_webhook_id_and_sign_each_attempt_afresh(
    client: Client, peer: HttpPeer
) -> None:
    peer.script(Reply(503), Reply(200))
    # the retry waits just over a second, so the second attempt has a later timestamp
    retries = {"max_attempts": 3, "delay": 1.1, "backoff": "fixed"}
    document = workflow(
        [send({"url": peer.url("/"), "payload": {"n": 1}, "secret": SECRET}, retry_policy=retries)]
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    first, second = peer.requests
    ids = [verified(request, [SECRET]) for request in (first, second)]
    assert ids == [f"{execution['id']}:notify"] * 2
    assert int(second.headers["webhook-timestamp"]) > int(first.headers["webhook-timestamp"])
    assert second.headers["webhook-signature"] != first.headers["webhook-signature"]
    assert first.body == second.body


async def test_a_secret_list_signs_with_the_first(client: Client, peer: HttpPeer) -> None:
    document = workflow([send({"url": peer.url("/"), "secret": [SECRET, OLD_SECRET]})])
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    (request,) = peer.requests
    verified(request, [SECRET])
    with pytest.raises(SignatureError):
        verified(request, [OLD_SECRET])
    assert request.json() == {}  # no payload: an empty object


async def test_a_plain_secret_is_used_as_its_bytes(client: Client, peer: HttpPeer) -> None:
    document = workflow([send({"url": peer.url("/"), "secret": OLD_SECRET, "method": "PUT"})])
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    (request,) = peer.requests
    assert request.method == "PUT"
    verified(request, [OLD_SECRET])


async def test_without_a_secret_the_webhook_is_unsigned_but_identified(
    client: Client, peer: HttpPeer
) -> None:
    execution = await run(client, workflow([send({"url": peer.url("/"), "payload": [1, 2]})]))
    assert execution["status"] == "completed", execution["error"]
    (request,) = peer.requests
    assert "webhook-signature" not in request.headers
    assert request.headers["webhook-id"] == f"{execution['id']}:notify"
    assert request.headers["webhook-timestamp"].isdigit()
    assert request.json() == [1, 2]


async def test_user_headers_cannot_replace_the_signature(client: Client, peer: HttpPeer) -> None:
    config = {
        "url": peer.url("/"),
        "secret": SECRET,
        "headers": {"Webhook-Id": "forged", "Content-Type": "text/plain"},
    }
    execution = await run(client, workflow([send(config)]))
    assert execution["status"] == "completed", execution["error"]
    (request,) = peer.requests
    assert verified(request, [SECRET]) == f"{execution['id']}:notify"
    assert request.headers["content-type"] == "application/json"


async def test_a_4xx_fails_without_retries(client: Client, peer: HttpPeer) -> None:
    peer.script(Reply(410, body="endpoint removed"))
    retries = {"max_attempts": 3, "delay": 0.01, "backoff": "fixed"}
    document = workflow([send({"url": peer.url("/gone"), "secret": SECRET}, retry_policy=retries)])
    execution = await run(client, document)
    assert execution["status"] == "failed"
    (attempt,) = node_runs(execution, "notify")
    assert "answered 410 (expected 2xx); body: endpoint removed" in attempt["error"]["message"]
    assert SECRET not in attempt["error"]["message"]


async def test_webhooks_do_not_follow_redirects(client: Client, peer: HttpPeer) -> None:
    async with HttpPeer("127.0.0.2") as denied:
        peer.script(redirect(denied.url("/")))
        execution = await run(client, workflow([send({"url": peer.url("/")})]))
        assert execution["status"] == "failed"
        assert "answered 302" in node_runs(execution, "notify")[0]["error"]["message"]
        assert denied.requests == []


async def test_a_denied_destination_fails_without_a_request(client: Client) -> None:
    async with HttpPeer("127.0.0.2") as denied:
        execution = await run(client, workflow([send({"url": denied.url("/")})]))
        assert execution["status"] == "failed"
        message = node_runs(execution, "notify")[0]["error"]["message"]
        assert "blocked by outbound.deny" in message
        assert denied.requests == []


async def test_a_malformed_whsec_secret_fails_at_once(client: Client, peer: HttpPeer) -> None:
    execution = await run(
        client, workflow([send({"url": peer.url("/"), "secret": "whsec_not base64!"})])
    )
    assert execution["status"] == "failed"
    assert "whsec_" in node_runs(execution, "notify")[0]["error"]["message"]
    assert peer.requests == []
