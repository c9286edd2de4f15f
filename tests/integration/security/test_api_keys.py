"""API keys (SPEC §6, §8): shown once, stored hashed, prefix visible, revocable, last
used time; the bootstrap admin key; both request headers."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from server.errors import ConfigurationError
from server.store.database import Database
from server.store.models import ApiKeyRow, AuditRow
from tests.auth import ADMIN_HEADERS, ADMIN_KEY
from tests.integration.security.conftest import Client, bearer, make_key, secured_client

KEYS = "/api/v1/api-keys"


async def stored_keys(database_url: str) -> list[ApiKeyRow]:
    database = Database(database_url)
    try:
        async with database.session() as session:
            return list((await session.execute(select(ApiKeyRow))).scalars())
    finally:
        await database.dispose()


async def test_a_new_key_is_shown_once_and_stored_only_as_a_digest(
    client: Client, database_url: str
) -> None:
    created = await make_key(client, "operator", "nightly import")
    assert set(created) == {"id", "name", "role", "prefix", "key", "created_at"}
    key = created["key"]
    assert key.startswith("fy_")
    assert key.startswith(created["prefix"])
    assert len(created["prefix"]) == 11
    assert len(key) == 43
    assert uuid.UUID(created["id"]).version == 4  # random ids, never sequential
    listed = (await client.get(KEYS, headers=ADMIN_HEADERS)).json()
    assert listed["total"] == 2  # the bootstrap key and this one
    mine = next(k for k in listed["api_keys"] if k["id"] == created["id"])
    assert mine["prefix"] == created["prefix"]
    assert mine["role"] == "operator"
    assert "key" not in mine
    assert key not in str(listed)
    one = (await client.get(f"{KEYS}/{created['id']}", headers=ADMIN_HEADERS)).json()
    assert key not in str(one)
    assert one["revoked"] is False
    rows = {row.id: row for row in await stored_keys(database_url)}
    assert rows[created["id"]].key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert all(key not in (row.key_hash, row.prefix, row.name) for row in rows.values())


async def test_a_key_works_in_either_header_and_records_when_it_was_used(
    client: Client, database_url: str
) -> None:
    created = await make_key(client, "viewer")
    assert (await client.get(f"{KEYS}/{created['id']}", headers=ADMIN_HEADERS)).json()[
        "last_used_at"
    ] is None
    assert (
        await client.get("/api/v1/workflows", headers=bearer(created["key"]))
    ).status_code == 200
    by_header = await client.get("/api/v1/workflows", headers={"X-API-Key": created["key"]})
    assert by_header.status_code == 200
    used = (await client.get(f"{KEYS}/{created['id']}", headers=ADMIN_HEADERS)).json()
    assert used["last_used_at"] is not None


async def test_a_revoked_key_never_works_again(client: Client) -> None:
    created = await make_key(client, "manager")
    headers = bearer(created["key"])
    assert (await client.get("/api/v1/workflows", headers=headers)).status_code == 200
    assert (
        await client.delete(f"{KEYS}/{created['id']}", headers=ADMIN_HEADERS)
    ).status_code == 204
    refused = await client.get("/api/v1/workflows", headers=headers)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["error"]["message"]
    again = await client.delete(f"{KEYS}/{created['id']}", headers=ADMIN_HEADERS)
    assert again.status_code == 204  # harmless
    shown = (await client.get(f"{KEYS}/{created['id']}", headers=ADMIN_HEADERS)).json()
    assert shown["revoked"] is True
    assert shown["revoked_at"]
    live = (await client.get(KEYS, params={"revoked": "false"}, headers=ADMIN_HEADERS)).json()
    assert created["id"] not in {k["id"] for k in live["api_keys"]}
    assert (await client.delete(f"{KEYS}/{uuid.uuid4()}", headers=ADMIN_HEADERS)).status_code == 404


async def test_a_key_with_the_right_prefix_but_a_wrong_secret_is_refused(client: Client) -> None:
    created = await make_key(client, "admin")
    forged = created["key"][:-1] + ("a" if created["key"][-1] != "a" else "b")
    assert (await client.get(KEYS, headers=bearer(forged))).status_code == 401


async def test_only_admins_manage_keys_and_the_request_is_checked(client: Client) -> None:
    manager = await make_key(client, "manager")
    refused = await client.post(
        KEYS, json={"name": "x", "role": "admin"}, headers=bearer(manager["key"])
    )
    assert refused.status_code == 403
    invalid = await client.post(KEYS, json={"name": "a\nb", "role": "boss"}, headers=ADMIN_HEADERS)
    assert invalid.status_code == 422
    assert {d["path"] for d in invalid.json()["error"]["details"]} == {"/name", "/role"}
    assert (await client.post(KEYS, json=[], headers=ADMIN_HEADERS)).status_code == 400


async def test_the_bootstrap_key_exists_once_across_restarts(
    database_url: str, tmp_path: Path
) -> None:
    for _ in range(2):
        async with secured_client(database_url, tmp_path) as client:
            assert (await client.get(KEYS, headers=ADMIN_HEADERS)).status_code == 200
    rows = await stored_keys(database_url)
    assert [(r.name, r.role, r.prefix) for r in rows] == [
        ("bootstrap-admin", "admin", ADMIN_KEY[:11])
    ]
    database = Database(database_url)
    async with database.session() as session:
        actions = (await session.execute(select(AuditRow.action))).scalars().all()
    await database.dispose()
    assert actions.count("api_key.bootstrapped") == 1


async def test_a_revoked_bootstrap_key_stays_revoked(database_url: str, tmp_path: Path) -> None:
    async with secured_client(database_url, tmp_path) as client:
        other = await make_key(client, "admin")
        (bootstrap,) = [
            k
            for k in (await client.get(KEYS, headers=ADMIN_HEADERS)).json()["api_keys"]
            if k["name"] == "bootstrap-admin"
        ]
        await client.delete(f"{KEYS}/{bootstrap['id']}", headers=bearer(other["key"]))
    async with secured_client(database_url, tmp_path) as client:
        assert (await client.get(KEYS, headers=ADMIN_HEADERS)).status_code == 401


@pytest.mark.parametrize("value", ["fy_short", "not-a-key-" + "x" * 40, "fy_" + "ü" * 40])
async def test_a_bootstrap_key_that_is_not_a_strong_key_stops_the_start(
    sqlite_url: str, tmp_path: Path, value: str
) -> None:
    with pytest.raises(ConfigurationError, match="bootstrap_admin_key"):
        async with secured_client(sqlite_url, tmp_path, **{"auth.bootstrap_admin_key": value}):
            pass


def test_the_environment_variable_of_the_spec_sets_the_bootstrap_key() -> None:
    from server.config import load_settings

    settings = load_settings(environ={"FLOWYARD_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY})
    assert settings.auth.bootstrap_admin_key == ADMIN_KEY
