"""Webhook triggers through ``POST /api/v1/hooks/{path}``: signatures, input mapping,
exactly-once starts, rate limits and unique paths."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from server.signing import generate_secret, sign
from tests.integration.engine.conftest import (
    BASE,
    EXECUTIONS,
    Client,
    engine_client,
    expr,
    get_execution,
    upload,
    workflow,
)
from tests.integration.triggers.conftest import describe

HOOKS = "/api/v1/hooks"
SECRET = generate_secret()
VARIABLES = {
    "order_id": {"name": "order_id", "type": "integer", "required": True},
    "source": {"name": "source", "type": "string"},
    "page": {"name": "page", "type": "integer"},
    "urgent": {"name": "urgent", "type": "boolean"},
}


def hook_workflow(workflow_id: str = "orders", path: str = "orders", **trigger: Any) -> dict:
    return workflow(
        [expr("a", "1")],
        id=workflow_id,
        variables=VARIABLES,
        triggers=[{"id": "incoming", "type": "webhook", "path": path, **trigger}],
    )


def signed(
    body: dict[str, Any], *, secret: str = SECRET, message_id: str = "msg_1", age: int = 0
) -> tuple[bytes, dict[str, str]]:
    """A body and its Standard Webhooks headers, signed ``age`` seconds ago."""
    raw = json.dumps(body).encode()
    headers = sign([secret], message_id, int(time.time()) - age, raw)
    return raw, {**headers, "content-type": "application/json"}


async def post(client: Client, path: str, raw: bytes, headers: dict[str, str], **kw: Any) -> Any:
    return await client.post(f"{HOOKS}/{path}", content=raw, headers=headers, **kw)


async def total(client: Client, workflow_id: str = "orders") -> int:
    response = await client.get(EXECUTIONS, params={"workflow_id": workflow_id})
    count: int = response.json()["total"]
    return count


async def test_a_signed_hook_starts_an_execution_with_the_mapped_input(client: Client) -> None:
    mapping = {
        "order_id": "body.order.id",
        "source": "headers.x-source",
        "page": "query.page",
        "urgent": "query.urgent",
        "missing": "body.not.there",
    }
    await upload(client, hook_workflow(secret=SECRET, input_mapping=mapping, input={"fixed": 1}))
    raw, headers = signed({"order": {"id": 42, "total": 9.5}})
    query = {"page": "3", "urgent": "true"}
    response = await post(client, "orders", raw, {**headers, "X-Source": "shop"}, params=query)
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["status"], body["workflow_id"], body["trigger_id"]) == (
        "accepted",
        "orders",
        "incoming",
    )
    execution = await get_execution(client, body["execution_id"])
    # query text is read as the declared type; an absent path is left out
    assert execution["input"] == {
        "fixed": 1,
        "order_id": 42,
        "source": "shop",
        "page": 3,
        "urgent": True,
    }
    assert execution["triggered_by"] == "webhook:incoming"
    (trigger,) = (await describe(client, "orders"))["triggers"]
    assert (trigger["signed"], trigger["url"].endswith("/api/v1/hooks/orders")) == (True, True)
    assert [fire["execution_id"] for fire in trigger["last_fires"]] == [body["execution_id"]]


async def test_without_a_mapping_a_json_object_body_is_the_input(client: Client) -> None:
    await upload(client, hook_workflow())  # no secret: unsigned requests are accepted
    response = await client.post(f"{HOOKS}/orders", json={"order_id": 7, "extra": "kept"})
    assert response.status_code == 202, response.text
    execution = await get_execution(client, response.json()["execution_id"])
    assert execution["input"] == {"order_id": 7, "extra": "kept"}


async def test_bad_signatures_and_unknown_paths_start_nothing(client: Client) -> None:
    await upload(client, hook_workflow(secret=SECRET))
    good_body, good_headers = signed({"order_id": 1})
    cases = {
        "wrong secret": signed({"order_id": 1}, secret=generate_secret()),
        "old timestamp": signed({"order_id": 1}, age=6 * 60),
        "tampered body": (b'{"order_id": 2}', good_headers),
        "unsigned": (good_body, {"content-type": "application/json"}),
    }
    for name, (raw, headers) in cases.items():
        response = await post(client, "orders", raw, headers)
        assert response.status_code == 401, (name, response.text)
        assert response.json()["error"]["code"] == "invalid_signature"
    unknown = await post(client, "no-such-hook", good_body, good_headers)
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["error"]["code"] == "not_found"
    assert await total(client) == 0


async def test_a_secret_list_accepts_each_secret_for_rotation(client: Client) -> None:
    new = generate_secret()
    await upload(client, hook_workflow(secret=[new, SECRET]))
    for index, secret in enumerate((SECRET, new)):
        raw, headers = signed({"order_id": 1}, secret=secret, message_id=f"m{index}")
        response = await post(client, "orders", raw, headers)
        assert response.status_code == 202, response.text
    assert await total(client) == 2


async def test_a_stored_secret_signs_the_hook_and_a_missing_one_is_a_503(client: Client) -> None:
    await upload(client, hook_workflow(secret="${secrets.ORDERS_HOOK}"))
    raw, headers = signed({"order_id": 1})
    missing = await post(client, "orders", raw, headers)
    assert missing.status_code == 503, missing.text
    stored = await client.put("/api/v1/secrets/ORDERS_HOOK", json={"value": SECRET})
    assert stored.status_code in (200, 201), stored.text
    response = await post(client, "orders", raw, headers)
    assert response.status_code == 202, response.text
    assert SECRET not in response.text
    assert await total(client) == 1


async def test_a_redelivered_webhook_id_starts_nothing_new(client: Client) -> None:
    await upload(client, hook_workflow(secret=SECRET))
    raw, headers = signed({"order_id": 5}, message_id="msg_redelivered")
    first = await post(client, "orders", raw, headers)
    assert first.status_code == 202, first.text
    # the sender retries: same webhook-id, a fresh timestamp and signature
    raw, headers = signed({"order_id": 5}, message_id="msg_redelivered")
    again = await post(client, "orders", raw, headers)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"
    assert again.json()["execution_id"] == first.json()["execution_id"]
    assert await total(client) == 1


async def test_two_deliveries_racing_start_one_execution(client: Client) -> None:
    await upload(client, hook_workflow())
    headers = {"webhook-id": "msg_race"}
    responses = await asyncio.gather(
        *(client.post(f"{HOOKS}/orders", json={"order_id": 1}, headers=headers) for _ in range(4))
    )
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 202]
    assert len({r.json()["execution_id"] for r in responses}) == 1
    assert await total(client) == 1


async def test_an_idempotency_key_replays_the_first_answer(client: Client) -> None:
    await upload(client, hook_workflow())
    key = {"Idempotency-Key": "order-9"}
    first = await client.post(f"{HOOKS}/orders", json={"order_id": 9}, headers=key)
    again = await client.post(f"{HOOKS}/orders", json={"order_id": 9}, headers=key)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    other = await client.post(f"{HOOKS}/orders", json={"order_id": 10}, headers=key)
    assert other.status_code == 422, other.text  # one key, two different requests
    assert await total(client) == 1


async def test_an_input_the_variables_refuse_is_a_422(client: Client) -> None:
    await upload(client, hook_workflow())
    response = await client.post(f"{HOOKS}/orders", json={"order_id": "not a number"})
    assert response.status_code == 422, response.text
    assert [d["path"] for d in response.json()["error"]["details"]] == ["/input/order_id"]
    response = await client.post(f"{HOOKS}/orders", content=b"plain text, no order id")
    assert response.status_code == 422, response.text
    assert await total(client) == 0


async def test_hooks_are_rate_limited(database_url: str) -> None:
    flags = {"triggers.hook_rate_per_minute": 1, "triggers.hook_rate_burst": 2}
    async with engine_client(database_url, **flags) as client:
        await upload(client, hook_workflow())
        answers = [
            (await client.post(f"{HOOKS}/orders", json={"order_id": n})).status_code
            for n in range(3)
        ]
        assert answers == [202, 202, 429]
        limited = await client.post(f"{HOOKS}/orders", json={"order_id": 4})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["error"]["code"] == "rate_limited"
        assert await total(client) == 2


async def test_a_hook_path_belongs_to_one_workflow(client: Client) -> None:
    await upload(client, hook_workflow("first", path="shared"))
    taken = await client.post(BASE, json=hook_workflow("second", path="shared"))
    assert taken.status_code == 409, taken.text
    error = taken.json()["error"]
    assert "'first'" in error["message"]
    assert error["details"][0]["path"] == "/triggers/0/path"
    # a draft may carry the path; activating it is refused the same way
    draft = hook_workflow("second", path="shared") | {"status": "draft"}
    assert (await client.post(BASE, json=draft)).status_code == 201
    refused = await client.patch(f"{BASE}/second", json={"status": "active"})
    assert refused.status_code == 409, refused.text
    # once the first lets go of it, the path is free
    released = await client.patch(f"{BASE}/first", json={"status": "inactive"})
    assert released.status_code == 200, released.text
    assert (await client.post(f"{HOOKS}/shared", json={"order_id": 1})).status_code == 404
    taken_over = await client.patch(f"{BASE}/second", json={"status": "active"})
    assert taken_over.status_code == 200, taken_over.text
    response = await client.post(f"{HOOKS}/shared", json={"order_id": 1})
    assert response.status_code == 202, response.text
    assert response.json()["workflow_id"] == "second"


async def test_the_hook_route_is_public_and_the_trigger_list_is_not(database_url: str) -> None:
    async with engine_client(database_url) as client:
        await upload(client, hook_workflow())
        client.headers.pop("Authorization")
        response = await client.post(f"{HOOKS}/orders", json={"order_id": 1})
        assert response.status_code == 202, response.text
        listing = await client.get(f"{BASE}/orders/triggers")
        assert listing.status_code == 401, listing.text


@pytest.mark.postgres
async def test_a_hook_published_through_another_process_is_found_at_once(
    postgres_url: str,
) -> None:
    """Two apps on one database (several processes share PostgreSQL): the second learns
    of the hook the first published on its first request for the path."""
    hook = {"id": "h", "type": "webhook", "path": "late"}
    async with engine_client(postgres_url) as first, engine_client(postgres_url) as second:
        await upload(first, workflow([expr("a", "1")], id="late", triggers=[hook]))
        response = await second.post(f"{HOOKS}/late", json={})
        assert response.status_code == 202, response.text
