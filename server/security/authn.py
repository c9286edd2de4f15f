"""Authentication: turn a request's credentials into an :class:`~server.identity.Actor`.

Credential sources are tried in order; the first that recognises a credential in the
request decides:

1. **API key** — ``X-API-Key: fy_…`` or ``Authorization: Bearer fy_…``;
2. **JWT** — ``Authorization: Bearer <token>`` (any bearer value not starting ``fy_``);
3. sources registered with :meth:`Authenticator.add_source` — the dashboard's session
   cookie is one — in the order they were added.

A source answers ``None`` when its kind of credential is absent, an actor when it is
valid, and raises :class:`~server.errors.Unauthorized` when it is present but wrong
(unknown or revoked key, expired or forged token): a bad credential is never silently
treated as "no credential". A request with none is :data:`~server.identity.NOBODY`
(unauthenticated guest), which the permission guard turns into a 401 on any route
that is not public.

On a **public** route credentials are optional and never refused: an invalid one counts
as none there (a webhook sender's own ``Authorization`` header, a stale key on a health
probe, an expired session on ``GET /``), so the route sees :data:`NOBODY`.

The actor is resolved once per request and kept in the ASGI scope, so the guard, the
``actor`` dependency and the audit hook agree on who is calling. With
``auth.enabled = false`` (development mode) no credential is checked: the actor is the
one claimed by the development headers (:func:`server.identity.claimed_actor`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection

from server.config import AuthSettings
from server.errors import Unauthorized
from server.identity import NOBODY, Actor, claimed_actor
from server.security.apikeys import ApiKeyService, looks_like_key
from server.security.jwt import JwtVerifier

log = logging.getLogger(__name__)

Connection = ASGIConnection[Any, Any, Any, Any]
#: A further credential source: the actor for the request's credential of its kind,
#: ``None`` when the request carries none, :class:`Unauthorized` when it is not valid.
CredentialSource = Callable[[Connection], Awaitable[Actor | None]]
#: Where the resolved actor is kept in the ASGI scope's ``state``.
STATE_KEY = "flowyard.actor"
#: Set in the scope's ``state`` by the permission guard for a public route.
PUBLIC_KEY = "flowyard.public_route"
API_KEY_HEADER = "x-api-key"


class Authenticator:
    """Resolves and caches the actor of each request."""

    def __init__(
        self, settings: AuthSettings, api_keys: ApiKeyService, jwt: JwtVerifier | None
    ) -> None:
        self.settings = settings
        self.enabled = settings.enabled
        self._api_keys = api_keys
        self._jwt = jwt
        self._sources: list[CredentialSource] = [self._api_key, self._bearer_jwt]

    @classmethod
    def from_settings(cls, settings: AuthSettings, api_keys: ApiKeyService) -> Authenticator:
        return cls(settings, api_keys, JwtVerifier.from_settings(settings))

    def add_source(self, source: CredentialSource) -> None:
        """Accept one more kind of credential, tried after the ones already known."""
        self._sources.append(source)

    async def actor(self, connection: Connection) -> Actor:
        """Who sent ``connection`` (cached for the rest of the request)."""
        state: dict[str, Any] = connection.scope.setdefault("state", {})
        cached = state.get(STATE_KEY)
        if isinstance(cached, Actor):
            return cached
        try:
            actor = await self._resolve(connection)
        except Unauthorized:
            if not state.get(PUBLIC_KEY):
                raise
            actor = NOBODY
        state[STATE_KEY] = actor
        return actor

    @staticmethod
    def mark_public(connection: Connection) -> None:
        """The request is for a public route: invalid credentials count as none."""
        state: dict[str, Any] = connection.scope.setdefault("state", {})
        state[PUBLIC_KEY] = True

    async def _resolve(self, connection: Connection) -> Actor:
        if not self.enabled:
            return claimed_actor(connection)
        for source in self._sources:
            found = await source(connection)
            if found is not None:
                return found
        return NOBODY

    async def _api_key(self, connection: Connection) -> Actor | None:
        key = connection.headers.get(API_KEY_HEADER)
        if key is None:
            bearer = _bearer(connection)
            if bearer is None or not looks_like_key(bearer):
                return None
            key = bearer
        actor = await self._api_keys.authenticate(key.strip())
        if actor is None:
            log.info(
                "api key refused",
                extra={"action": "auth.api_key_refused", "prefix": key.strip()[:11]},
            )
            raise Unauthorized("the API key is not valid (unknown, mistyped or revoked)")
        return actor

    async def _bearer_jwt(self, connection: Connection) -> Actor | None:
        token = _bearer(connection)
        if token is None or looks_like_key(token):
            return None
        if self._jwt is None:
            raise Unauthorized(
                "this server accepts no JWTs (auth.jwt_secret and auth.jwt_public_key are "
                "not set); send an API key (fy_…)"
            )
        return self._jwt.actor(token)


def _bearer(connection: Connection) -> str | None:
    """The ``Authorization: Bearer`` value; 401 for another scheme or an empty value."""
    header = connection.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <API key or JWT>'")
    return value.strip()
