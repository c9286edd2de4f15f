"""``webhook`` nodes in receive mode and ``POST /api/v1/callbacks/{token}``.

The test plays the outside sender: it signs callbacks with ``server.signing.sign`` as a
Standard Webhooks sender would, posts them to the route, and polls the execution.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.signing import sign
from tests.integration.engine.conftest import (
    Client,
    chain,
    engine_client,
    node,
    node_runs,
    script,
    start,
    upload,
    wait_for_status,
    wait_until,
    workflow,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ROTATED = "previous secret"
CALLBACKS = "/api/v1/callbacks/"


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    async with engine_client(database_url) as test_client:
        yield test_client


def receive(config: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return node("confirm", "webhook", {"mode": "receive", **(config or {})}, **fields)


def is_waiting(execution: dict[str, Any]) -> bool:
    return any(item["kind"] == "callback" for item in execution["waiting_on"])


async def waiting(
    client: Client, document: dict[str, Any], **body: Any
) -> tuple[dict[str, Any], str]:
    """Start ``document`` and wait until its callback node waits; (execution, URL path)."""
    await upload(client, document)
    started = await start(client, document["id"], **body)
    execution = await wait_until(client, started["id"], is_waiting, what="a callback wait")
    (item,) = [item for item in execution["waiting_on"] if item["kind"] == "callback"]
    path: str = item["callback_url"]
    return execution, path


def signed(
    payload: Any,
    *,
    secret: str = SECRET,
    message_id: str = "msg_1",
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    headers = sign([secret], message_id, timestamp or int(time.time()), body)
    return body, {**headers, "Content-Type": "application/json"}


async def post(client: Client, path: str, body: bytes, headers: dict[str, str]) -> Any:
    return await client.post(path, content=body, headers=headers)


async def test_a_signed_callback_resumes_the_node_with_its_payload(client: Client) -> None:
    document = workflow(
        [receive({"secret": SECRET, "timeout": "1h"}), script("after", "seen = payload['ok']")],
        chain("confirm", "after"),
    )
    execution, path = await waiting(client, document)
    assert path.startswith(CALLBACKS)
    token = path.removeprefix(CALLBACKS)
    assert len(token) >= 32  # ≥ 128 random bits, URL-safe base64
    (run_,) = node_runs(execution, "confirm")
    assert run_["status"] == "waiting"
    assert any(path in line for line in run_["logs"])  # the node's logs name the address

    body, headers = signed({"ok": True, "ref": "A-1"})
    response = await post(client, path, body, {**headers, "X-Trace": "t-1", "Authorization": "x"})
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted"}

    done = await wait_for_status(client, execution["id"], "completed")
    output = node_runs(done, "confirm")[0]["output"]
    assert output["payload"] == {"ok": True, "ref": "A-1"}
    assert output["headers"]["x-trace"] == "t-1"
    assert output["headers"]["webhook-id"] == "msg_1"
    assert "authorization" not in output["headers"]
    assert output["received_at"].endswith("Z")
    assert done["output"]["seen"] is True


async def test_any_of_several_secrets_verifies(client: Client) -> None:
    execution, path = await waiting(client, workflow([receive({"secret": [SECRET, ROTATED]})]))
    body, headers = signed({"v": 2}, secret=ROTATED)
    assert (await post(client, path, body, headers)).status_code == 202
    await wait_for_status(client, execution["id"], "completed")


async def test_a_wrong_signature_is_refused_and_the_node_keeps_waiting(client: Client) -> None:
    execution, path = await waiting(client, workflow([receive({"secret": SECRET})]))
    body, headers = signed({"forged": True}, secret="not the secret")
    response = await post(client, path, body, headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert "does not match" in response.json()["error"]["message"]
    tampered_body, good_headers = signed({"amount": 1})
    response = await post(client, path, tampered_body.replace(b"1", b"9"), good_headers)
    assert response.status_code == 401
    unsigned = await client.post(path, json={"x": 1})
    assert unsigned.status_code == 401
    assert "missing signature header" in unsigned.json()["error"]["message"]

    still = await wait_until(client, execution["id"], is_waiting)
    assert still["status"] == "running"
    assert node_runs(still, "confirm")[0]["status"] == "waiting"
    body, headers = signed({"genuine": True})
    assert (await post(client, path, body, headers)).status_code == 202
    done = await wait_for_status(client, execution["id"], "completed")
    assert node_runs(done, "confirm")[0]["output"]["payload"] == {"genuine": True}


async def test_an_old_timestamp_is_refused(client: Client) -> None:
    execution, path = await waiting(client, workflow([receive({"secret": SECRET})]))
    body, headers = signed({"late": True}, timestamp=int(time.time()) - 6 * 60)
    response = await post(client, path, body, headers)
    assert response.status_code == 401
    assert "webhook-timestamp" in response.json()["error"]["message"]
    assert is_waiting(await wait_until(client, execution["id"], is_waiting))


async def test_an_unknown_token_is_404(client: Client) -> None:
    response = await client.post(f"{CALLBACKS}no-such-token", json={"x": 1})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    long_token = await client.post(CALLBACKS + "x" * 500, json={})
    assert long_token.status_code == 404


async def test_a_replayed_webhook_id_has_no_second_effect(client: Client) -> None:
    document = workflow(
        [receive({"secret": SECRET}), script("count", "n = 1")], chain("confirm", "count")
    )
    execution, path = await waiting(client, document)
    body, headers = signed({"first": True}, message_id="msg_same")
    assert (await post(client, path, body, headers)).status_code == 202
    done = await wait_for_status(client, execution["id"], "completed")

    again_body, again_headers = signed({"second": True}, message_id="msg_same")
    replay = await post(client, path, again_body, again_headers)
    assert replay.status_code == 200
    assert replay.json() == {"status": "duplicate"}
    other_body, other_headers = signed({"third": True}, message_id="msg_other")
    assert (await post(client, path, other_body, other_headers)).status_code == 404

    after = await wait_for_status(client, execution["id"], "completed")
    assert after["completed_at"] == done["completed_at"]
    assert node_runs(after, "confirm")[0]["output"]["payload"] == {"first": True}
    assert len(node_runs(after, "count")) == 1


async def test_an_unsigned_node_takes_any_body_and_keeps_text_as_text(client: Client) -> None:
    execution, path = await waiting(client, workflow([receive()]))
    response = await client.post(
        path, content=b"plain words", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 202
    done = await wait_for_status(client, execution["id"], "completed")
    assert node_runs(done, "confirm")[0]["output"]["payload"] == "plain words"
    second = await client.post(path, content=b"again", headers={"Content-Type": "text/plain"})
    assert second.status_code == 404  # answered; without a webhook-id it is not a repeat


async def test_the_idempotency_key_header_replays_the_first_answer(client: Client) -> None:
    execution, path = await waiting(client, workflow([receive()]))
    headers = {"Idempotency-Key": "cb-1"}
    first = await client.post(path, json={"n": 1}, headers=headers)
    repeat = await client.post(path, json={"n": 1}, headers=headers)
    assert (first.status_code, repeat.status_code) == (202, 202)
    assert repeat.json() == first.json()
    await wait_for_status(client, execution["id"], "completed")


async def test_a_nul_character_is_refused_not_stored(client: Client) -> None:
    execution, path = await waiting(client, workflow([receive()]))
    response = await client.post(path, json={"text": "a\u0000b"})
    assert response.status_code == 422
    assert is_waiting(await wait_until(client, execution["id"], is_waiting))


async def test_a_callback_that_never_comes_fails_the_node_at_its_timeout(client: Client) -> None:
    document = workflow([receive({"timeout": "1s"})])
    execution, path = await waiting(client, document)
    failed = await wait_for_status(client, execution["id"], "failed")
    (run_,) = node_runs(failed, "confirm")
    assert run_["status"] == "failed"
    assert "no callback arrived within 1s" in run_["error"]["message"]
    late = await client.post(path, json={"late": True})
    assert late.status_code == 404


@pytest.mark.parametrize("secret", ["", []])
async def test_an_empty_secret_is_a_validation_error(client: Client, secret: Any) -> None:
    response = await client.post(
        "/api/v1/workflows/validate", json=workflow([receive({"secret": secret})])
    )
    report = response.json()
    assert report["valid"] is False
    assert "/nodes/0/config/secret" in [error["path"] for error in report["errors"]]


async def test_callbacks_are_rate_limited_per_address(sqlite_url: str) -> None:
    """A public route: a flood from one address gets 429 with Retry-After."""
    flags = {"triggers.hook_rate_per_minute": 1, "triggers.hook_rate_burst": 2}
    async with engine_client(sqlite_url, **flags) as limited:
        answers = [
            (await limited.post("/api/v1/callbacks/no-such-token", content=b"{}")).status_code
            for _ in range(3)
        ]
        assert answers == [404, 404, 429]
        refused = await limited.post("/api/v1/callbacks/no-such-token", content=b"{}")
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
