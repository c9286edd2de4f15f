"""CSRF: session-authenticated changes need the session's token; bearer ones do not.

The sign-in form has its own token (signed double-submit cookie). A real app on a real
database; the test client is the browser.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from server.security.csrf import LOGIN_COOKIE
from server.security.sessions import COOKIE
from server.store.models import SessionRow
from tests.integration.security.test_sessions import (
    ADMIN,
    PASSWORD,
    Client,
    alert,
    count,
    login_token,
    session_csrf,
    set_cookies,
    signed_in,
    signin_app,
    whoami,
)

WORKFLOWS = "/api/v1/workflows"


def definition(workflow_id: str) -> dict[str, object]:
    return {
        "id": workflow_id,
        "name": workflow_id,
        "nodes": [
            {
                "id": "one",
                "type": "transform",
                "config": {"transform_type": "expression", "expression": "1 + 1"},
            }
        ],
        "edges": [],
    }


async def csrf_of(client: Client) -> str:
    return session_csrf((await client.get("/")).text)


async def test_a_session_post_without_the_token_is_refused_and_with_it_accepted(
    database_url: str, tmp_path: Path
) -> None:
    async with signin_app(database_url, tmp_path) as client:
        await signed_in(client)
        token = await csrf_of(client)

        missing = await client.post(WORKFLOWS, json=definition("wf-a"))
        assert missing.status_code == 403
        error = missing.json()["error"]
        assert error["code"] == "csrf_failed"
        assert "CSRF token missing" in error["message"]
        assert "X-CSRF-Token" in error["message"]

        wrong = await client.post(
            WORKFLOWS, json=definition("wf-a"), headers={"X-CSRF-Token": "x" * 43}
        )
        assert wrong.status_code == 403
        assert "does not match this session" in wrong.json()["error"]["message"]
        # Nothing was stored by the refused requests.
        assert (await client.get(f"{WORKFLOWS}/wf-a")).status_code == 404

        accepted = await client.post(
            WORKFLOWS, json=definition("wf-a"), headers={"X-CSRF-Token": token}
        )
        assert accepted.status_code == 201, accepted.text
        # Reads need no token.
        assert (await client.get(f"{WORKFLOWS}/wf-a")).status_code == 200


async def test_a_form_post_needs_the_token_field(sqlite_url: str, tmp_path: Path) -> None:
    async with signin_app(sqlite_url, tmp_path) as client:
        session = await signed_in(client)
        token = await csrf_of(client)

        refused = await client.post("/logout", data={"other": "field"}, follow_redirects=False)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "csrf_failed"
        assert await whoami(client, session) == 200  # still signed in

        wrong = await client.post("/logout", data={"csrf_token": "y" * 43}, follow_redirects=False)
        assert wrong.status_code == 403
        assert await whoami(client, session) == 200

        accepted = await client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
        assert accepted.status_code == 303
        assert await whoami(client, session) == 401


async def test_bearer_requests_need_no_token(sqlite_url: str, tmp_path: Path) -> None:
    async with signin_app(sqlite_url, tmp_path) as client:
        created = await client.post(
            "/api/v1/api-keys", json={"name": "ci", "role": "manager"}, headers=ADMIN
        )
        assert created.status_code == 201, created.text
        bearer = {"Authorization": f"Bearer {created.json()['key']}"}
        # A plain API client: no cookie, no token.
        response = await client.post(WORKFLOWS, json=definition("by-key"), headers=bearer)
        assert response.status_code == 201, response.text
        # A bearer credential wins over a session cookie sent along: still no token needed.
        await signed_in(client)
        assert client.cookies.get(COOKIE)
        response = await client.post(WORKFLOWS, json=definition("by-key-2"), headers=bearer)
        assert response.status_code == 201, response.text
        response = await client.post(
            WORKFLOWS, json=definition("by-key-3"), headers={"X-API-Key": created.json()["key"]}
        )
        assert response.status_code == 201, response.text


async def test_the_sign_in_form_needs_its_own_token(sqlite_url: str, tmp_path: Path) -> None:
    async with signin_app(sqlite_url, tmp_path) as client:
        form = {"username": "alice", "password": PASSWORD}

        await login_token(client)  # the browser has the form's cookie, but the POST
        no_token = await client.post("/login", data=form, follow_redirects=False)
        assert no_token.status_code == 403  # ... carries no token (a cross-site form)
        assert "did not come from this server" in alert(no_token)

        # A token made for another browser's cookie (an attacker's own) does not pass.
        token = await login_token(client)
        client.cookies.delete(LOGIN_COOKIE)
        forged = await client.post(
            "/login",
            data={**form, "csrf_token": token},
            headers={"Cookie": f"{LOGIN_COOKIE}=another-browsers-nonce-0123456789abcdef"},
            follow_redirects=False,
        )
        assert forged.status_code == 403
        for response in (no_token, forged):
            assert not set_cookies(response, COOKIE)
        assert await count(sqlite_url, select(func.count()).select_from(SessionRow)) == 0

        # The same browser, with the form it was given, signs in.
        ok = await client.post(
            "/login", data={**form, "csrf_token": await login_token(client)}, follow_redirects=False
        )
        assert ok.status_code == 303
