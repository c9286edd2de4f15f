"""Dashboard pages in a real app on a real database (SQLite and PostgreSQL), used the way
a browser does: signed in through the sign-in form, posting forms with the session's
CSRF token. Set-up goes through the REST API with the suite's admin key.

Fixtures: ``ui`` — a :class:`SignedIn` client of an app with the users ``mia``
(manager), ``otto`` (operator) and ``vera`` (viewer), signed in as ``mia``;
``switch_user`` signs the same client in as someone else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.auth import ADMIN_HEADERS
from tests.integration.security.test_sessions import (
    Client,
    session_csrf,
    signed_in,
    signin_app,
)

#: The users of the ``ui`` app (name → role); every password is ``PASSWORD``.
USERS = {"mia": "manager", "otto": "operator", "vera": "viewer"}
ADMIN = ADMIN_HEADERS


@dataclass
class SignedIn:
    """A client signed in through the form, and the session's CSRF token."""

    client: Client
    csrf: str
    username: str

    async def post_form(self, url: str, data: dict[str, str] | None = None) -> Any:
        """A form POST as the browser sends it (with the token), not following redirects."""
        return await self.client.post(
            url, data={"csrf_token": self.csrf, **(data or {})}, follow_redirects=False
        )


async def switch_user(ui: SignedIn, username: str) -> SignedIn:
    """Sign the same client in as ``username`` (a new session and CSRF token)."""
    await signed_in(ui.client, username)
    page = await ui.client.get("/", headers={"Accept": "text/html"})
    ui.csrf, ui.username = session_csrf(page.text), username
    return ui


@pytest.fixture
async def ui(database_url: str, tmp_path: Path) -> AsyncIterator[SignedIn]:
    async with signin_app(database_url, tmp_path, users=USERS) as client:
        await signed_in(client, "mia")
        page = await client.get("/", headers={"Accept": "text/html"})
        assert page.status_code == 200, page.text
        yield SignedIn(client, session_csrf(page.text), "mia")
