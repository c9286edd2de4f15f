"""Dashboard sign-in: sessions, cookies, expiry, lock-out and the login rate limit.

A real app on a real database (SQLite and PostgreSQL); the browser is the test client,
whose cookie jar plays the browser's. Expiry tests use 1-second settings and wait for
that second to pass; nothing else waits.

The helpers here (``signin_app``, ``sign_in``, ``login_token``…) are shared with
``test_csrf.py`` and ``test_headers.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from server.app import create_app
from server.config import load_settings
from server.ratelimit import TooManyRequests
from server.security.audit import AuditLog
from server.security.csrf import LOGIN_COOKIE
from server.security.sessions import COOKIE, SignIn
from server.security.users import UserService
from server.store.database import Database
from server.store.migrate import upgrade
from server.store.models import AuditRow, SessionRow
from tests.auth import ADMIN_HEADERS, ADMIN_KEY

Client = AsyncTestClient[Any]
PASSWORD = "correct-horse-battery"
#: The admin key the test apps ensure at start (``auth.bootstrap_admin_key``).
ADMIN = ADMIN_HEADERS
WRONG = "Incorrect username or password."
_FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
#: The sign-in form's token (a signed-in page also has the sign-out form's token).
_LOGIN_FORM_TOKEN = re.compile(
    r'action="/login">\s*<input type="hidden" name="csrf_token" value="([^"]+)"'
)
_ALERT = re.compile(r'role="alert">([^<]*)<')


# --- helpers ------------------------------------------------------------------------------


@asynccontextmanager
async def signin_app(
    database_url: str, data_dir: Path, *, users: dict[str, str] | None = None, **flags: Any
) -> AsyncIterator[Client]:
    """An app on ``database_url`` with the given users (name → role, password PASSWORD),
    created through the API with the bootstrap admin key (:data:`ADMIN`)."""
    settings = load_settings(
        {
            "server.database_url": database_url,
            "server.data_dir": str(data_dir),
            "auth.bootstrap_admin_key": ADMIN_KEY,
            **flags,
        },
        environ={},
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        for name, role in (users or {"alice": "manager"}).items():
            body = {"username": name, "password": PASSWORD, "role": role}
            created = await client.post("/api/v1/users", json=body, headers=ADMIN)
            assert created.status_code == 201, created.text
        yield client


async def login_token(client: Client) -> str:
    """Open the sign-in page (which sets the form's cookie) and return its form token."""
    page = await client.get("/login")
    assert page.status_code == 200, page.text
    found = _LOGIN_FORM_TOKEN.search(page.text)
    assert found, page.text
    return found.group(1)


async def sign_in(
    client: Client,
    username: str = "alice",
    password: str = PASSWORD,
    *,
    headers: dict[str, str] | None = None,
    next_url: str | None = None,
) -> httpx.Response:
    """Submit the sign-in form as a browser would (the page first, then the POST)."""
    form = {"username": username, "password": password, "csrf_token": await login_token(client)}
    if next_url is not None:
        form["next"] = next_url
    return await client.post("/login", data=form, headers=headers or {}, follow_redirects=False)


async def signed_in(client: Client, username: str = "alice") -> str:
    """Sign in (must succeed) and return the session cookie's value."""
    response = await sign_in(client, username)
    assert response.status_code == 303, response.text
    token = client.cookies.get(COOKIE)
    assert token
    return token


def session_csrf(page_html: str) -> str:
    """The session's CSRF token from a signed-in page (the sign-out form carries it)."""
    found = _FORM_TOKEN.search(page_html)
    assert found, page_html
    return found.group(1)


def alert(response: httpx.Response) -> str:
    found = _ALERT.search(response.text)
    assert found, response.text
    return found.group(1).replace("&#39;", "'")


def set_cookies(response: httpx.Response, name: str) -> list[str]:
    return [c for c in response.headers.get_list("set-cookie") if c.startswith(f"{name}=")]


def cookie_value(response: httpx.Response, name: str) -> str:
    """The value the response sets for cookie ``name`` (exactly one Set-Cookie)."""
    (cookie,) = set_cookies(response, name)
    return cookie.split(";")[0].split("=", 1)[1]


async def whoami(client: Client, token: str | None) -> int:
    """Status of an API read with only this session cookie (200 signed in, 401 not)."""
    # An explicit Cookie header replaces the client's cookie jar for this request.
    cookie = f"{COOKIE}={token}" if token else ""
    response = await client.get("/api/v1/workflows", headers={"Cookie": cookie})
    return response.status_code


async def count(database_url: str, query: Any) -> int:
    database = Database(database_url)
    try:
        async with database.reader() as session:
            return int((await session.execute(query)).scalar_one())
    finally:
        await database.dispose()


# --- signing in and out -------------------------------------------------------------------


async def test_sign_in_sets_an_httponly_lax_cookie_and_redirects(
    database_url: str, tmp_path: Path
) -> None:
    async with signin_app(database_url, tmp_path) as client:
        assert await whoami(client, None) == 401
        response = await sign_in(client)
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        (cookie,) = set_cookies(response, COOKIE)
        flags = [part.strip().lower() for part in cookie.split(";")]
        assert "httponly" in flags
        assert "samesite=lax" in flags
        assert "path=/" in flags
        assert "max-age=43200" in flags  # auth.session_max_age default 12h
        assert "secure" not in flags  # plain HTTP, no proxy saying otherwise
        token = client.cookies[COOKIE]
        assert await whoami(client, token) == 200
        home = await client.get("/")
        assert "Signed in as <strong>alice</strong>" in home.text
        # Only the token's hash is stored.
        stored = await count(
            database_url,
            select(func.count())
            .select_from(SessionRow)
            .where(SessionRow.token_hash == hashlib.sha256(token.encode()).hexdigest()),
        )
        assert stored == 1
        raw = await count(
            database_url,
            select(func.count()).select_from(SessionRow).where(SessionRow.token_hash == token),
        )
        assert raw == 0


async def test_cookie_is_secure_behind_an_https_proxy_or_https_public_url(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with signin_app(sqlite_url, tmp_path) as client:
        response = await sign_in(client, headers={"X-Forwarded-Proto": "https"})
        assert response.status_code == 303
        (cookie,) = set_cookies(response, COOKIE)
        assert "secure" in [part.strip().lower() for part in cookie.split(";")]
    async with signin_app(
        sqlite_url, tmp_path, users={"bob": "viewer"}, **{"server.public_url": "https://fy.test"}
    ) as client:
        page = await client.get("/login")
        (nonce_cookie,) = set_cookies(page, LOGIN_COOKIE)
        assert "secure" in [part.strip().lower() for part in nonce_cookie.split(";")]
        # A client on plain HTTP does not send Secure cookies back; send it as HTTPS would.
        found = _LOGIN_FORM_TOKEN.search(page.text)
        assert found
        response = await client.post(
            "/login",
            data={"username": "bob", "password": PASSWORD, "csrf_token": found.group(1)},
            headers={"Cookie": nonce_cookie.split(";")[0]},
            follow_redirects=False,
        )
        (cookie,) = set_cookies(response, COOKIE)
        assert "secure" in [part.strip().lower() for part in cookie.split(";")]


async def test_sign_in_issues_a_new_session_id_never_a_fixed_one(
    database_url: str, tmp_path: Path
) -> None:
    async with signin_app(database_url, tmp_path) as client:
        # A session id planted in the browser before sign-in (session fixation).
        planted = "attacker-chosen-session-id-0123456789abcdef"
        form = {"username": "alice", "password": PASSWORD, "csrf_token": await login_token(client)}
        cookie = f"{LOGIN_COOKIE}={client.cookies[LOGIN_COOKIE]}; {COOKIE}={planted}"
        response = await client.post(
            "/login", data=form, headers={"Cookie": cookie}, follow_redirects=False
        )
        assert response.status_code == 303
        first = cookie_value(response, COOKIE)
        assert first != planted
        assert await whoami(client, planted) == 401
        assert await whoami(client, first) == 200
        # Signing in again while signed in: another new id, and the old session ends.
        second = cookie_value(await sign_in(client), COOKIE)
        assert second not in (first, planted)
        assert await whoami(client, second) == 200
        assert await whoami(client, first) == 401


async def test_logout_ends_the_session_on_the_server(database_url: str, tmp_path: Path) -> None:
    async with signin_app(database_url, tmp_path) as client:
        token = await signed_in(client)
        csrf = session_csrf((await client.get("/")).text)
        response = await client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login"
        (cleared,) = set_cookies(response, COOKIE)
        assert "max-age=0" in cleared.lower()
        # The old cookie, replayed, no longer works: the row is gone.
        assert await whoami(client, token) == 401
        client.cookies.set(COOKIE, token)
        page = await client.get("/")
        assert 'href="/login"' in page.text
        assert "Signed in as" not in page.text
        assert await count(database_url, select(func.count()).select_from(SessionRow)) == 0


async def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(
    database_url: str, tmp_path: Path
) -> None:
    async with signin_app(database_url, tmp_path) as client:
        wrong_password = await sign_in(client, "alice", "not-the-password")
        unknown_user = await sign_in(client, "nobody-here", PASSWORD)
        for response in (wrong_password, unknown_user):
            assert response.status_code == 401
            assert alert(response) == WRONG
            assert not set_cookies(response, COOKIE)
        assert 'value="nobody-here"' in unknown_user.text  # the form keeps the username
        ok = await sign_in(client)
        assert ok.status_code == 303
    failed = await count(
        database_url,
        select(func.count()).select_from(AuditRow).where(AuditRow.action == "login.failed"),
    )
    succeeded = await count(
        database_url,
        select(func.count())
        .select_from(AuditRow)
        .where(AuditRow.action == "login.succeeded", AuditRow.actor == "alice"),
    )
    assert (failed, succeeded) == (2, 1)


async def test_hostile_form_values_get_the_page_not_a_server_error(
    database_url: str, tmp_path: Path
) -> None:
    async with signin_app(database_url, tmp_path) as client:
        for username in ("a\x00b", "x" * 5000, "alice\r\nSet-Cookie: y=1", "ålice"):
            response = await sign_in(client, username, PASSWORD)
            assert response.status_code == 401, (username[:20], response.text[:200])
            assert alert(response) == WRONG
        response = await sign_in(client, "alice", "p\x00" * 3000)
        assert response.status_code == 401
        missing = await client.post(
            "/login", data={"csrf_token": await login_token(client)}, follow_redirects=False
        )
        assert missing.status_code == 400
        assert alert(missing) == "Enter your username and password."
        as_json = await client.post("/login", json={"username": "alice"})
        assert as_json.status_code == 403  # no form, so no form token either


async def test_next_goes_back_to_the_page_but_never_to_another_site(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with signin_app(sqlite_url, tmp_path) as client:
        response = await sign_in(client, next_url="/api/v1/workflows?limit=5")
        assert response.headers["location"] == "/api/v1/workflows?limit=5"
        for hostile in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            response = await sign_in(client, next_url=hostile)
            assert response.status_code == 303
            assert response.headers["location"] == "/"


async def test_a_disabled_user_loses_their_session(database_url: str, tmp_path: Path) -> None:
    async with signin_app(database_url, tmp_path, users={"carol": "viewer"}) as client:
        token = await signed_in(client, "carol")
        assert await whoami(client, token) == 200
        listed = (await client.get("/api/v1/users", headers=ADMIN)).json()["users"]
        (carol,) = [user for user in listed if user["username"] == "carol"]
        changed = await client.patch(
            f"/api/v1/users/{carol['id']}", json={"disabled": True}, headers=ADMIN
        )
        assert changed.status_code == 200, changed.text
        assert await whoami(client, token) == 401


async def test_a_new_password_ends_the_sessions_signed_in_with_the_old_one(
    database_url: str, tmp_path: Path
) -> None:
    """A password reset after a leak must lock the thief's session out at once."""
    async with signin_app(database_url, tmp_path, users={"carol": "viewer"}) as client:
        token = await signed_in(client, "carol")
        assert await whoami(client, token) == 200
        listed = (await client.get("/api/v1/users", headers=ADMIN)).json()["users"]
        (carol,) = [user for user in listed if user["username"] == "carol"]
        changed = await client.patch(
            f"/api/v1/users/{carol['id']}",
            json={"password": "a-brand-new-passphrase-42"},
            headers=ADMIN,
        )
        assert changed.status_code == 200, changed.text
        assert await whoami(client, token) == 401
        assert await count(database_url, select(func.count()).select_from(SessionRow)) == 0


# --- expiry -------------------------------------------------------------------------------


async def test_idle_session_expires(database_url: str, tmp_path: Path) -> None:
    async with signin_app(database_url, tmp_path, **{"auth.session_idle_timeout": "1s"}) as client:
        token = await signed_in(client)
        assert await whoami(client, token) == 200
        await asyncio.sleep(1.1)  # the idle timeout itself: no request in between
        assert await whoami(client, token) == 401
        # The expired row was deleted when the cookie was presented.
        assert await count(database_url, select(func.count()).select_from(SessionRow)) == 0


async def test_activity_keeps_an_idle_session_alive(sqlite_url: str, tmp_path: Path) -> None:
    async with signin_app(sqlite_url, tmp_path, **{"auth.session_idle_timeout": "2s"}) as client:
        token = await signed_in(client)
        query = select(SessionRow.last_seen_at)
        database = Database(sqlite_url)
        try:
            async with database.reader() as session:
                before = (await session.execute(query)).scalar_one()
            await asyncio.sleep(0.3)  # past the refresh step (a tenth of the idle timeout)
            assert await whoami(client, token) == 200
            async with database.reader() as session:
                after = (await session.execute(query)).scalar_one()
        finally:
            await database.dispose()
        assert after > before


async def test_session_ends_at_its_absolute_age_however_active(
    database_url: str, tmp_path: Path
) -> None:
    async with signin_app(
        database_url,
        tmp_path,
        **{"auth.session_max_age": "1s", "auth.session_idle_timeout": "1h"},
    ) as client:
        response = await sign_in(client)
        (cookie,) = set_cookies(response, COOKIE)
        assert "max-age=1" in cookie.lower()
        token = client.cookies[COOKIE]
        assert await whoami(client, token) == 200
        # Poll with the session (each request counts as activity) until it is refused.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while await whoami(client, token) == 200:
            assert loop.time() < deadline, "the session outlived its absolute age"
            await asyncio.sleep(0.05)
        assert await whoami(client, token) == 401


# --- lock-out and rate limits ---------------------------------------------------------------


async def test_failed_sign_ins_lock_the_username_with_a_message(
    database_url: str, tmp_path: Path
) -> None:
    async with signin_app(
        database_url,
        tmp_path,
        users={"alice": "manager", "bob": "viewer"},
        **{"auth.login_max_failures": 3, "auth.login_lockout": "15m"},
    ) as client:
        for _ in range(2):
            response = await sign_in(client, "alice", "wrong-password")
            assert response.status_code == 401
            assert alert(response) == WRONG
        third = await sign_in(client, "alice", "wrong-password")
        assert third.status_code == 429
        assert "locked" in alert(third)
        # Now even the right password is refused, saying why and for how long.
        locked = await sign_in(client, "alice", PASSWORD)
        assert locked.status_code == 429
        message = alert(locked)
        assert "Too many failed sign-ins for 'alice'" in message
        assert "locked for 15 more minutes" in message
        assert 800 <= int(locked.headers["retry-after"]) <= 900
        assert not set_cookies(locked, COOKIE)
        # Another username is not affected.
        assert (await sign_in(client, "bob")).status_code == 303
    audited = await count(
        database_url,
        select(func.count())
        .select_from(AuditRow)
        .where(AuditRow.action == "login.locked", AuditRow.target_id == "alice"),
    )
    assert audited == 1


async def test_unknown_usernames_lock_too(sqlite_url: str, tmp_path: Path) -> None:
    """The lock does not tell which usernames exist."""
    async with signin_app(
        sqlite_url, tmp_path, **{"auth.login_max_failures": 2, "auth.login_lockout": "10m"}
    ) as client:
        await sign_in(client, "ghost", "whatever-1")
        response = await sign_in(client, "ghost", "whatever-2")
        assert response.status_code == 429
        assert "Too many failed sign-ins for 'ghost'" in alert(response)


async def test_a_success_resets_the_failure_count(sqlite_url: str, tmp_path: Path) -> None:
    async with signin_app(
        sqlite_url, tmp_path, **{"auth.login_max_failures": 2, "auth.login_lockout": "10m"}
    ) as client:
        assert (await sign_in(client, "alice", "wrong-password")).status_code == 401
        assert (await sign_in(client)).status_code == 303
        assert (await sign_in(client, "alice", "wrong-password")).status_code == 401
        assert (await sign_in(client)).status_code == 303


async def test_too_many_attempts_from_one_address_get_429(sqlite_url: str, tmp_path: Path) -> None:
    async with signin_app(
        sqlite_url,
        tmp_path,
        **{"auth.login_rate_per_minute": 1, "auth.login_rate_burst": 2},
    ) as client:
        assert (await sign_in(client, "alice", "wrong-1")).status_code == 401
        assert (await sign_in(client, "someone", "wrong-2")).status_code == 401
        third = await sign_in(client, "alice", PASSWORD)
        assert third.status_code == 429
        assert int(third.headers["retry-after"]) >= 1
        assert "too many sign-in attempts from this address" in alert(third)
        assert not set_cookies(third, COOKIE)


async def test_the_rate_limit_also_applies_per_username(database_url: str) -> None:
    """Attempts for one username from many addresses are limited too (service level:
    the test client has one address)."""
    database = Database(database_url)
    try:
        await upgrade(database)
        audit = AuditLog(database)
        users = UserService(database, audit)
        await users.create("dave", PASSWORD, "viewer", by="test")
        settings = load_settings(
            {"auth.login_rate_per_minute": 1, "auth.login_rate_burst": 2}, environ={}
        )
        sign_in_service = SignIn.from_settings(database, settings, users, audit)
        for address in ("10.0.0.1", "10.0.0.2"):
            outcome = await sign_in_service.attempt("dave", "wrong", remote_addr=address)
            assert outcome.new_session is None
        with pytest.raises(TooManyRequests, match="for this username"):
            await sign_in_service.attempt("dave", PASSWORD, remote_addr="10.0.0.3")
        # Another username from a fresh address is still let through.
        outcome = await sign_in_service.attempt("erin", "wrong", remote_addr="10.0.0.4")
        assert outcome.new_session is None
        assert outcome.lock is None
    finally:
        await database.dispose()
