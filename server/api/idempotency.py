"""One ``Idempotency-Key`` mechanism for every mutating route (SPEC §6).

The first response to a (route, caller, key) is stored; a repeat with the same key and
the same body gets that response again and changes nothing; the same key with a
different body is refused, since the client has mixed two requests up. Keys are the
caller's own: another caller using the same key gets nothing of the first one's. The
body is kept only as an HMAC under a server key (a bare digest of ``PUT /secrets/X``
would let a short secret be guessed offline).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from server.errors import BadRequest, InvalidInput
from server.store.database import Database
from server.store.models import IdempotencyRow

HEADER = "idempotency-key"
#: ``app.state`` entry: a callable giving the HMAC key for request bodies
BODY_KEY_STATE = "idempotency_body_key"
_ACTOR_STATE = "flowyard.actor"  # set by server.security.authn


def idempotency_key(request: Request[Any, Any, Any]) -> str | None:
    key = request.headers.get(HEADER)
    if key is not None and not 1 <= len(key) <= 255:
        raise BadRequest("the Idempotency-Key header must be 1 to 255 characters")
    return key


async def idempotent(
    request: Request[Any, Any, Any],
    database: Database,
    produce: Callable[[], Awaitable[Response[Any]]],
) -> Response[Any]:
    key = idempotency_key(request)
    if key is None:
        return await produce()
    actor = request.scope.get("state", {}).get(_ACTOR_STATE)
    caller = getattr(actor, "name", None) or "-"
    route = f"{request.method} {request.url.path}"
    scope = f"{route[:240]} #{hashlib.sha256(caller.encode()).hexdigest()[:16]}"
    digest = _body_digest(request, await request.body())
    async with database.reader() as session:
        stored = await session.scalar(
            select(IdempotencyRow).where(IdempotencyRow.scope == scope, IdempotencyRow.key == key)
        )
    if stored is not None:
        return _replay(stored, digest)
    response = await produce()
    if (response.status_code or 200) < 500:
        try:
            async with database.session() as session, session.begin():
                session.add(
                    IdempotencyRow(
                        scope=scope,
                        key=key,
                        request_hash=digest,
                        status_code=response.status_code,
                        response=response.content,
                    )
                )
        except IntegrityError:
            pass  # a concurrent repeat stored its answer first; both answers are the same action
    return response


def _body_digest(request: Request[Any, Any, Any], body: bytes) -> str:
    key_of = request.app.state.get(BODY_KEY_STATE)
    if key_of is None:  # an app built without one (a bare test app): a plain digest
        return hashlib.sha256(body).hexdigest()
    return hmac.new(key_of(), body, hashlib.sha256).hexdigest()


def _replay(stored: IdempotencyRow, digest: str) -> Response[Any]:
    if stored.request_hash != digest:
        raise InvalidInput(
            "this Idempotency-Key was already used with a different request; use a new key "
            "for a new request"
        )
    return Response(stored.response, status_code=stored.status_code)
