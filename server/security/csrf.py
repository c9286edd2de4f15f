"""CSRF protection for the dashboard (SPEC §7, §8).

A browser sends the session cookie with every request to this server, including those
another site makes it send. So a request authenticated by the session cookie that
changes something (POST, PUT, PATCH, DELETE) must also prove it came from one of our
pages: it carries the session's CSRF token, as the hidden form field ``csrf_token`` or
the ``X-CSRF-Token`` header (htmx sends it from ``hx-headers``). The token is random
per session and stored with it (``sessions.csrf_token``); a request without it, or with
another session's, is refused with 403. Requests authenticated with an API key or a JWT
(``Authorization``/``X-API-Key``) need no token: another site cannot make a browser send
those headers.

The sign-in form comes before any session, so it uses a **signed double-submit
cookie**: ``GET /login`` sets a random nonce in the cookie ``flowyard_login_csrf``
(HttpOnly, ``SameSite=Strict``, path ``/login``) and puts ``HMAC(server key, nonce)`` in
the form. ``POST /login`` recomputes the HMAC from the cookie and compares. Another site
can neither read the cookie nor compute the HMAC, so it cannot sign a victim in to an
account of its choosing (login CSRF).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from functools import cache
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType

from server.errors import Forbidden

FIELD = "csrf_token"
#: The field name of Litestar's own ``csrf_input`` template variable, accepted too.
LITESTAR_FIELD = "_csrf_token"
HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN_COOKIE = "flowyard_login_csrf"
#: What a nonce or token looks like (URL-safe base64, 43 characters for 32 bytes).
_TOKEN = re.compile(r"[A-Za-z0-9_\-]{20,100}")


class CsrfRejected(Forbidden):
    """The request is missing its CSRF token; reload the page and try again."""

    code = "csrf_failed"


def new_token() -> str:
    """A fresh random token (256 bits), for a session or a sign-in form."""
    return secrets.token_urlsafe(32)


async def submitted_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The token the request carries: the header, else the form field."""
    header = connection.headers.get(HEADER)
    if header:
        return header.strip()
    request = (
        connection
        if isinstance(connection, Request)
        else Request[Any, Any, Any](connection.scope, connection.receive)
    )
    content_type, _ = request.content_type
    if content_type in (RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART):
        # Parsed once: Litestar keeps the form in the connection state for the handler.
        form = await request.form()
        for name in (FIELD, LITESTAR_FIELD):
            value = form.get(name)
            if isinstance(value, str) and value:
                return value
    return None


async def require_session_token(
    connection: ASGIConnection[Any, Any, Any, Any], expected: str
) -> None:
    """Refuse (403) an unsafe request that lacks the session's CSRF token.

    Safe methods (GET, HEAD, OPTIONS) pass: they must not change anything anyway.
    """
    method = str(connection.scope.get("method", "GET")).upper()
    if method not in UNSAFE_METHODS:
        return
    given = await submitted_token(connection)
    if given is None:
        raise CsrfRejected(
            "CSRF token missing: a request signed in with the session cookie that changes "
            f"something must carry the session's token (form field {FIELD!r} or header "
            f"{HEADER}); reload the page and try again, or use an API key instead"
        )
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfRejected(
            "CSRF token does not match this session (the page may be from an earlier "
            "sign-in); reload the page and try again"
        )


class LoginCsrf:
    """Signed double-submit tokens for the sign-in form (see the module docstring).

    ``key`` gives the HMAC key; it is asked for on first use, so building the app does
    not create the server key file.
    """

    def __init__(self, key: Callable[[], bytes]) -> None:
        self._key = cache(key)

    @staticmethod
    def valid_nonce(nonce: str | None) -> bool:
        return nonce is not None and _TOKEN.fullmatch(nonce) is not None

    def token_for(self, nonce: str) -> str:
        """The form token that goes with the cookie's ``nonce``."""
        digest = hmac.new(self._key(), f"login:{nonce}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def verify(self, nonce: str | None, token: str | None) -> bool:
        """Whether ``token`` (from the form) was made for ``nonce`` (from the cookie)."""
        if not self.valid_nonce(nonce) or not token or len(token) > 100:
            return False
        assert nonce is not None
        return hmac.compare_digest(self.token_for(nonce).encode(), token.encode())
