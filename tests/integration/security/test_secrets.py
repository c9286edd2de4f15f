"""Stored secrets through the REST API, on SQLite and PostgreSQL: the admin routes, the
encryption at rest, and ``${secrets.NAME}`` resolved when a node runs.

The app runs with ``auth.enabled = false``: callers name themselves with the development
headers (``server.identity``); the data dir, where the key file is made, is the test's
tmp dir. ``test_redaction.py`` reuses the helpers defined here.
"""

from __future__ import annotations

import base64
import os
import stat
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.fernet import Fernet
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from server.app import create_app
from server.config import load_settings
from server.keys import KEY_FILE, derive, load_master_key
from server.store.database import Database
from server.store.models import AuditRow, SecretRow
from tests.integration.engine.conftest import (
    Client,
    decision,
    expr,
    node,
    node_runs,
    run,
    script,
    start,
    upload,
    wait_for_status,
    workflow,
)
from tests.integration.nodes.http_peer import HttpPeer, Recorded, Reply

SECRETS = "/api/v1/secrets"
ADMIN = {"X-Flowyard-User": "ada", "X-Flowyard-Roles": "admin"}
OPERATOR = {"X-Flowyard-User": "otto", "X-Flowyard-Roles": "operator"}
TOKEN = "tok_9f8e7d6c5b4a3210"
JWT_SECRET = "test-jwt-secret-" + "x" * 32


def bearer(role: str, subject: str = "someone") -> dict[str, str]:
    """A valid HS256 JWT for ``role`` (the app is configured with ``JWT_SECRET``)."""
    claims = {"sub": subject, "role": role, "exp": int(time.time()) + 300}
    return {"Authorization": "Bearer " + pyjwt.encode(claims, JWT_SECRET, algorithm="HS256")}


@asynccontextmanager
async def secrets_client(database_url: str, data_dir: Path, **flags: Any) -> AsyncIterator[Client]:
    """The app with auth disabled and its data dir (the key file) at ``data_dir``."""
    settings = load_settings(
        {
            "server.database_url": database_url,
            "server.data_dir": str(data_dir),
            "auth.enabled": False,
            **flags,
        },
        environ={},
    )
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
async def client(database_url: str, tmp_path: Path) -> AsyncIterator[Client]:
    async with secrets_client(database_url, tmp_path / "data") as test_client:
        yield test_client


@pytest.fixture
async def peer() -> AsyncIterator[HttpPeer]:
    async with HttpPeer() as server:
        yield server


async def put_secret(client: Client, name: str, value: str, expected: int = 201) -> Any:
    response = await client.put(f"{SECRETS}/{name}", json={"value": value}, headers=ADMIN)
    assert response.status_code == expected, response.text
    return response.json()


def template(node_id: str, text: str) -> dict[str, Any]:
    return node(node_id, "transform", {"transform_type": "template", "template": text})


def error_of(execution: dict[str, Any], node_id: str) -> str:
    message: str = node_runs(execution, node_id)[-1]["error"]["message"]
    return message


# --- the admin routes ----------------------------------------------------------------------


async def test_put_list_and_delete_never_show_the_value(client: Client) -> None:
    created = await client.put(f"{SECRETS}/API_TOKEN", json={"value": TOKEN}, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "API_TOKEN"
    assert created.json()["updated_by"] == "ada"
    replaced = await client.put(f"{SECRETS}/API_TOKEN", json={"value": TOKEN + "-2"}, headers=ADMIN)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["created_at"] == created.json()["created_at"]
    await put_secret(client, "other", "value-of-other")

    listed = await client.get(SECRETS, headers=ADMIN)
    assert listed.status_code == 200
    assert [s["name"] for s in listed.json()["secrets"]] == ["API_TOKEN", "other"]
    assert listed.json()["total"] == 2
    assert set(listed.json()["secrets"][0]) == {"name", "created_at", "updated_at", "updated_by"}

    deleted = await client.delete(f"{SECRETS}/API_TOKEN", headers=ADMIN)
    assert deleted.status_code == 204
    again = await client.delete(f"{SECRETS}/API_TOKEN", headers=ADMIN)
    assert again.status_code == 404
    assert again.json()["error"]["message"] == "no secret named 'API_TOKEN'"
    listed = await client.get(SECRETS, headers=ADMIN)
    assert [s["name"] for s in listed.json()["secrets"]] == ["other"]
    for response in (created, replaced, listed, deleted, again):
        assert TOKEN not in response.text


async def test_values_are_stored_encrypted_with_the_key_derived_for_secrets(
    client: Client, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWYARD_SECRET_KEY", raising=False)
    await put_secret(client, "API_TOKEN", TOKEN)
    database = Database(database_url)
    try:
        async with database.reader() as session:
            stored = (await session.scalars(select(SecretRow))).one()
    finally:
        await database.dispose()
    assert TOKEN.encode() not in stored.ciphertext
    key_file = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    master = load_master_key(tmp_path / "data", environ={})
    fernet = Fernet(base64.urlsafe_b64encode(derive(master, "secrets")))
    assert fernet.decrypt(stored.ciphertext).decode() == TOKEN


async def test_changes_are_audited_with_who_and_never_the_value(
    client: Client, database_url: str
) -> None:
    await put_secret(client, "API_TOKEN", TOKEN)
    await put_secret(client, "API_TOKEN", TOKEN + "-2", expected=200)
    assert (await client.delete(f"{SECRETS}/API_TOKEN", headers=ADMIN)).status_code == 204
    database = Database(database_url)
    try:
        async with database.reader() as session:
            rows = (
                await session.scalars(
                    select(AuditRow).where(AuditRow.target_type == "secret").order_by(AuditRow.id)
                )
            ).all()
    finally:
        await database.dispose()
    assert [(r.action, r.actor, r.target_id) for r in rows] == [
        ("secret.created", "ada", "API_TOKEN"),
        ("secret.replaced", "ada", "API_TOKEN"),
        ("secret.deleted", "ada", "API_TOKEN"),
    ]
    assert all(TOKEN not in repr(r.data) for r in rows)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("1abc", {"value": TOKEN}),
        ("with-dash", {"value": TOKEN}),
        ("x" * 129, {"value": TOKEN}),
        ("SHORT", {"value": "abc"}),
        ("NUMBER", {"value": 12345}),
        ("MISSING", {"val": TOKEN}),
        ("NUL", {"value": TOKEN + "\x00"}),
    ],
)
async def test_invalid_names_and_values_are_refused_without_repeating_the_value(
    client: Client, name: str, body: dict[str, Any]
) -> None:
    response = await client.put(f"{SECRETS}/{name}", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]
    assert TOKEN not in response.text
    assert (await client.get(SECRETS, headers=ADMIN)).json()["total"] == 0


async def test_only_admins_manage_secrets(database_url: str, tmp_path: Path) -> None:
    flags = {"auth.enabled": True, "auth.jwt_secret": JWT_SECRET}
    async with secrets_client(database_url, tmp_path / "data", **flags) as client:
        routes = (("GET", SECRETS), ("PUT", f"{SECRETS}/X_KEY"), ("DELETE", f"{SECRETS}/X_KEY"))
        for method, path in routes:
            body = {"value": TOKEN} if method == "PUT" else None
            anonymous = await client.request(method, path, json=body)
            assert anonymous.status_code == 401, anonymous.text
            for role in ("operator", "manager"):
                refused = await client.request(method, path, json=body, headers=bearer(role))
                assert refused.status_code == 403, refused.text
        admin = bearer("admin", "root-ops")
        assert (await client.get(SECRETS, headers=admin)).json()["total"] == 0
        created = await client.put(f"{SECRETS}/X_KEY", json={"value": TOKEN}, headers=admin)
        assert created.status_code == 201, created.text
        assert created.json()["updated_by"] == "root-ops"
        assert (await client.delete(f"{SECRETS}/X_KEY", headers=admin)).status_code == 204


async def test_a_repeated_put_with_the_same_idempotency_key_changes_nothing(
    client: Client, database_url: str
) -> None:
    headers = {**ADMIN, "Idempotency-Key": "put-1"}
    first = await client.put(f"{SECRETS}/API_TOKEN", json={"value": TOKEN}, headers=headers)
    second = await client.put(f"{SECRETS}/API_TOKEN", json={"value": TOKEN}, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json() == second.json()
    removal = {**ADMIN, "Idempotency-Key": "delete-1"}
    for _ in range(2):
        removed = await client.delete(f"{SECRETS}/API_TOKEN", headers=removal)
        assert removed.status_code == 204, removed.text
    database = Database(database_url)
    try:
        async with database.reader() as session:
            actions = (
                await session.scalars(
                    select(AuditRow.action).where(AuditRow.target_type == "secret")
                )
            ).all()
    finally:
        await database.dispose()
    assert actions == ["secret.created", "secret.deleted"]


# --- ${secrets.NAME} at run time -----------------------------------------------------------


async def test_a_node_gets_the_value_and_stores_only_stars(client: Client, peer: HttpPeer) -> None:
    await put_secret(client, "API_TOKEN", TOKEN)
    document = workflow(
        [
            node(
                "call",
                "api",
                {
                    "url": peer.url("/things"),
                    "headers": {"Authorization": "Bearer ${secrets.API_TOKEN}"},
                },
            )
        ]
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    assert peer.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    stored = node_runs(execution, "call")[0]["input"]
    assert stored["headers"] == {"Authorization": "Bearer ***"}
    assert stored["url"] == peer.url("/things")


async def test_an_unknown_secret_fails_the_node_saying_how_to_set_it(client: Client) -> None:
    execution = await run(client, workflow([template("t", "key ${secrets.NOT_SET}")]))
    assert execution["status"] == "failed"
    assert error_of(execution, "t") == (
        "no secret named NOT_SET; set it with PUT /api/v1/secrets/NOT_SET"
    )


async def test_a_replaced_secret_is_used_by_the_next_run_at_once(
    client: Client, peer: HttpPeer
) -> None:
    config = {"url": peer.url("/"), "headers": {"X-Key": "${secrets.API_TOKEN}"}}
    await upload(client, workflow([node("call", "api", config)]))

    async def run_once() -> dict[str, Any]:
        started = await start(client, "wf")
        return await wait_for_status(client, started["id"], ("completed", "failed"))

    await put_secret(client, "API_TOKEN", TOKEN)
    assert (await run_once())["status"] == "completed"
    await put_secret(client, "API_TOKEN", TOKEN + "-new", expected=200)
    assert (await run_once())["status"] == "completed"
    assert (await client.delete(f"{SECRETS}/API_TOKEN", headers=ADMIN)).status_code == 204
    execution = await run_once()
    assert [r.headers["x-key"] for r in peer.requests] == [TOKEN, TOKEN + "-new"]
    assert execution["status"] == "failed"
    assert error_of(execution, "call").startswith("no secret named API_TOKEN")


@pytest.mark.parametrize(
    "written", ["${secrets}", "${secrets.API_TOKEN.length}", "${secrets['bad-name']}"]
)
async def test_only_secrets_dot_name_resolves(client: Client, written: str) -> None:
    await put_secret(client, "API_TOKEN", TOKEN)
    execution = await run(client, workflow([template("t", f"x {written}")]))
    assert execution["status"] == "failed"
    message = error_of(execution, "t")
    assert "use a secret as ${secrets.NAME}" in message
    assert TOKEN not in message


async def test_expressions_and_conditions_cannot_read_secrets(client: Client) -> None:
    """Secrets resolve in rendered config only: an expression sees an empty ``secrets``."""
    await put_secret(client, "API_TOKEN", TOKEN)
    in_expression = await run(client, workflow([expr("e", "${secrets.API_TOKEN}")], id="e"))
    assert in_expression["status"] == "failed"
    assert "unknown path 'secrets.API_TOKEN'" in error_of(in_expression, "e")
    in_script = await run(client, workflow([script("s", "seen = secrets")], id="s"))
    assert in_script["status"] == "completed"
    assert node_runs(in_script, "s")[0]["output"] == {"seen": {}}
    in_condition = await run(
        client,
        workflow(
            [decision("d", condition="len(secrets) > 0"), expr("yes", "1"), expr("no", "0")],
            [
                {"from_node": "d", "to_node": "yes", "condition": "true"},
                {"from_node": "d", "to_node": "no", "condition": "false"},
            ],
            id="d",
        ),
    )
    assert in_condition["status"] == "completed", in_condition["error"]
    assert node_runs(in_condition, "d")[0]["output"]["decision"] == "false"
    for execution in (in_expression, in_script, in_condition):
        assert TOKEN not in str(execution)


async def test_a_changed_server_key_fails_the_node_with_a_clear_message(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWYARD_SECRET_KEY", "first-key-" + "a" * 40)
    async with secrets_client(database_url, tmp_path / "data") as client:
        await put_secret(client, "API_TOKEN", TOKEN)
    monkeypatch.setenv("FLOWYARD_SECRET_KEY", "second-key-" + "b" * 40)
    async with secrets_client(database_url, tmp_path / "data") as client:
        execution = await run(client, workflow([template("t", "${secrets.API_TOKEN}")]))
    assert execution["status"] == "failed"
    assert error_of(execution, "t") == (
        "secret 'API_TOKEN' cannot be decrypted with this server's key (was "
        "FLOWYARD_SECRET_KEY or the key file changed?); set it again with "
        "PUT /api/v1/secrets/API_TOKEN"
    )


async def test_a_secret_in_a_loop_body_resolves_in_every_iteration(
    client: Client, peer: HttpPeer
) -> None:
    seen: list[Recorded] = []

    def answer(request: Recorded) -> Reply:
        seen.append(request)
        return Reply(200, json={"ok": True})

    peer.handler = answer
    await put_secret(client, "API_TOKEN", TOKEN)
    body = {
        "nodes": [
            node(
                "call",
                "api",
                {"url": peer.url("/item/${item}"), "headers": {"X-Key": "${secrets.API_TOKEN}"}},
            )
        ],
        "edges": [],
    }
    document = workflow([node("each", "loop", {"items": "${things}", "body": body})])
    execution = await run(client, document, input={"things": [1, 2, 3]})
    assert execution["status"] == "completed", execution["error"]
    assert sorted(r.path for r in seen) == ["/item/1", "/item/2", "/item/3"]
    assert {r.headers["x-key"] for r in seen} == {TOKEN}


async def test_a_human_task_cannot_use_a_secret(client: Client) -> None:
    """Its title and form are shown in the inbox as they are: no redaction reaches them."""
    await put_secret(client, "API_TOKEN", TOKEN)
    task = {"id": "ask", "name": "Ask", "type": "human_task",
            "config": {"title": "Token is ${secrets.API_TOKEN}"}}  # fmt: skip
    execution = await run(client, workflow([task], id="ask-secret"))
    assert execution["status"] == "failed"
    assert "cannot use ${secrets" in error_of(execution, "ask")
    tasks = await client.get("/api/v1/tasks")
    assert TOKEN not in tasks.text
