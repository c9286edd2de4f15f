"""One ``Idempotency-Key`` mechanism for every mutating route (SPEC §6).

The first response to a (route, key) is stored; a repeat with the same key and the same
body gets that response again and changes nothing; the same key with a different body
is refused, since the client has mixed two requests up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from server.errors import BadRequest, InvalidInput
from server.store.database import Database
from server.store.models import IdempotencyRow

HEADER = "idempotency-key"


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
    scope = f"{request.method} {request.url.path}"
    digest = hashlib.sha256(await request.body()).hexdigest()
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


def _replay(stored: IdempotencyRow, digest: str) -> Response[Any]:
    if stored.request_hash != digest:
        raise InvalidInput(
            "this Idempotency-Key was already used with a different request; use a new key "
            "for a new request"
        )
    return Response(stored.response, status_code=stored.status_code)
