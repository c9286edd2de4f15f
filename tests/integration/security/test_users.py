"""Users (SPEC §6, §8): created by admins with argon2 hashes, listed, changed, disabled;
the password check behind sign-in; the first start's one-time admin password."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from demo.config import demo_settings
from server.app import create_app
from server.config import load_settings
from server.security import passwords
from server.security.audit import AuditLog
from server.security.users import UserService
from server.store.database import Database
from server.store.models import UserRow
from tests.auth import ADMIN_HEADERS
from tests.integration.security.conftest import (
    Client,
    bearer,
    make_key,
    make_user,
    secured_client,
)

USERS = "/api/v1/users"


async def stored_user(database_url: str, username: str) -> UserRow:
    database = Database(database_url)
    try:
        async with database.session() as session:
            found = await session.execute(select(UserRow).where(UserRow.username == username))
            return found.scalar_one()
    finally:
        await database.dispose()


async def test_a_user_is_created_with_an_argon2_hash_and_shown_without_it(
    client: Client, database_url: str
) -> None:
    created = await make_user(client, "ana@example.com", "operator", "s3cret-enough")
    assert set(created) == {
        "id",
        "username",
        "email",
        "role",
        "disabled",
        "created_at",
        "last_login_at",
    }
    assert uuid.UUID(created["id"]).version == 4
    assert created["role"] == "operator"
    assert created["disabled"] is False
    row = await stored_user(database_url, "ana@example.com")
    assert row.password_hash.startswith("$argon2id$")
    assert "s3cret-enough" not in row.password_hash
    listed = (await client.get(USERS, headers=ADMIN_HEADERS)).json()
    assert listed["total"] == 2  # the first-start admin and ana
    assert [u["username"] for u in listed["users"]] == ["admin", "ana@example.com"]
    assert "password" not in str(listed)
    assert "argon2" not in str(listed)


async def test_bad_users_are_refused_with_every_problem(client: Client) -> None:
    bad = await client.post(
        USERS,
        json={"username": "a b\r\n", "password": "short", "role": "boss", "email": "nope"},
        headers=ADMIN_HEADERS,
    )
    assert bad.status_code == 422
    paths = {d["path"] for d in bad.json()["error"]["details"]}
    assert paths == {"/username", "/password", "/role", "/email"}
    missing = await client.post(USERS, json={"username": 3}, headers=ADMIN_HEADERS)
    assert missing.status_code == 422
    assert {d["path"] for d in missing.json()["error"]["details"]} == {
        "/username",
        "/password",
        "/role",
    }
    await make_user(client, "bo", "viewer")
    again = await client.post(
        USERS,
        json={"username": "bo", "password": "another-password", "role": "viewer"},
        headers=ADMIN_HEADERS,
    )
    assert again.status_code == 409


async def test_only_admins_see_or_change_users(client: Client) -> None:
    manager = bearer((await make_key(client, "manager"))["key"])
    assert (await client.get(USERS, headers=manager)).status_code == 403
    body = {"username": "eve", "password": "long-enough-pw", "role": "admin"}
    assert (await client.post(USERS, json=body, headers=manager)).status_code == 403


async def test_authenticate_checks_the_password_and_the_disabled_flag(
    client: Client, database_url: str
) -> None:
    created = await make_user(client, "cy", "manager", "cy-password-1")
    database = Database(database_url)
    users = UserService(database, AuditLog(database))
    try:
        actor = await users.authenticate("cy", "cy-password-1")
        assert actor is not None
        assert (actor.name, actor.role, actor.authenticated) == ("cy", "manager", True)
        assert await users.authenticate("cy", "wrong-password") is None
        assert await users.authenticate("nobody", "cy-password-1") is None
        assert await users.authenticate("cy", "x" * 5000) is None
        assert (await users.get(created["id"])).last_login_at is not None
        disabled = await client.patch(
            f"{USERS}/{created['id']}", json={"disabled": True}, headers=ADMIN_HEADERS
        )
        assert disabled.status_code == 200
        assert disabled.json()["disabled"] is True
        assert await users.authenticate("cy", "cy-password-1") is None
        assert await users.actor_for_id(created["id"]) is None
        await client.patch(
            f"{USERS}/{created['id']}",
            json={"disabled": False, "role": "viewer", "password": "a-new-password"},
            headers=ADMIN_HEADERS,
        )
        assert await users.authenticate("cy", "cy-password-1") is None
        again = await users.authenticate("cy", "a-new-password")
        assert again is not None
        assert again.role == "viewer"
    finally:
        await database.dispose()


async def test_the_last_enabled_admin_cannot_be_disabled_or_demoted(client: Client) -> None:
    (admin,) = [
        u for u in (await client.get(USERS, headers=ADMIN_HEADERS)).json()["users"]
        if u["username"] == "admin"
    ]  # fmt: skip
    for change in ({"disabled": True}, {"role": "viewer"}):
        refused = await client.patch(f"{USERS}/{admin['id']}", json=change, headers=ADMIN_HEADERS)
        assert refused.status_code == 409
        assert "last enabled admin" in refused.json()["error"]["message"]
    await make_user(client, "second-admin", "admin")
    demoted = await client.patch(
        f"{USERS}/{admin['id']}", json={"role": "viewer"}, headers=ADMIN_HEADERS
    )
    assert demoted.status_code == 200


async def test_changes_are_checked(client: Client) -> None:
    user = await make_user(client, "di", "viewer")
    url = f"{USERS}/{user['id']}"
    bad = await client.patch(url, json={"disabled": "yes", "colour": "red"}, headers=ADMIN_HEADERS)
    assert bad.status_code == 422
    assert {d["path"] for d in bad.json()["error"]["details"]} == {"/disabled", "/colour"}
    assert (
        await client.patch(f"{USERS}/{uuid.uuid4()}", json={}, headers=ADMIN_HEADERS)
    ).status_code == 404
    cleared = await client.patch(url, json={"email": None}, headers=ADMIN_HEADERS)
    assert cleared.json()["email"] is None


async def test_the_first_start_prints_a_one_time_admin_password_once(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with secured_client(database_url, tmp_path):
        pass
    first = capsys.readouterr().out
    assert "Created user 'admin' with password" in first
    password = first.split("with password\n", 1)[1].split("\n", 1)[0].strip()
    assert len(password) >= 20
    row = await stored_user(database_url, "admin")
    assert row.role == "admin"
    assert passwords.verify_password(row.password_hash, password)
    async with secured_client(database_url, tmp_path):
        pass
    assert "password" not in capsys.readouterr().out  # never again


async def test_no_first_admin_in_development_mode(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with secured_client(database_url, tmp_path, **{"auth.enabled": False}) as client:
        assert (await client.get(USERS)).json()["total"] == 0
    assert "password" not in capsys.readouterr().out


def test_password_hashes_verify_and_refuse() -> None:
    hashed = passwords.hash_password("pässwörd with spaces")
    assert passwords.verify_password(hashed, "pässwörd with spaces")
    assert not passwords.verify_password(hashed, "pässwörd with space")
    assert not passwords.verify_password("not a hash", "anything")
    assert hashed != passwords.hash_password("pässwörd with spaces")  # salted


async def test_the_demo_users_sign_in_with_the_printed_passwords(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "no-definitions"
    empty.mkdir()
    base = load_settings({"server.database_url": database_url, "demo.smtp_port": 0}, environ={})
    settings = demo_settings(base, tmp_path / "demo")
    async with AsyncTestClient(app=create_app(settings, definitions_dir=empty)):
        pass
    printed = dict(
        re.findall(
            r"^\s+(admin|manager|operator|viewer)\s+password (\S+)", capsys.readouterr().out, re.M
        )
    )
    assert set(printed) == {"admin", "manager", "operator", "viewer"}
    database = Database(database_url)
    users = UserService(database, AuditLog(database))
    try:
        for role, password in printed.items():
            actor = await users.authenticate(role, password)
            assert actor is not None
            assert actor.role == role
    finally:
        await database.dispose()
