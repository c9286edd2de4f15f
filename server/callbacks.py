"""Callbacks: the outside world answering a waiting ``webhook`` node (mode ``receive``).

``POST /api/v1/callbacks/{token}`` hands the request here. The token finds the wait (a
``waits`` row of kind ``callback``, read without the engine's writer); when the node was
given secrets, the request must be signed as Standard Webhooks say
(``server.signing.verify``: a matching signature and a timestamp at most 5 minutes
away). The body (JSON when it parses, else text) becomes
the wait's answer through ``store.runs.answer_wait`` on the engine's writer — exactly
once — and the engine resumes the node.

Answers: ``accepted`` for the first callback; ``duplicate`` for a repeat of the same
``webhook-id`` (a sender retrying), which changes nothing. Everything else — an unknown
token, a wait that timed out, was answered by another message or was abandoned — is the
same :class:`~server.errors.NotFound`, so the route never tells a caller which tokens
exist. When the wait has secrets the signature is checked before its state is looked
at, so a caller without the secret learns nothing about it either.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import Table, select

from processors.api import has_nul
from server.errors import InvalidInput, NotFound
from server.ratelimit import RateLimiter
from server.signing import SignatureError, verify
from server.store.database import Database
from server.store.models import WaitRow, utcnow
from server.store.runs import answer_wait

if TYPE_CHECKING:
    from server.engine.engine import Engine

log = logging.getLogger("flowyard.callbacks")

waits = cast(Table, WaitRow.__table__)
Outcome = Literal["accepted", "duplicate"]
UNKNOWN = "no callback is expected at this address (unknown token, or no longer waiting)"
MAX_TOKEN_LENGTH = 100
#: Request headers not kept in the node's output: credentials and connection framing.
HEADERS_LEFT_OUT = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "upgrade",
        "content-length",
    }
)
#: Above this many bytes, signature checks and JSON parsing run off the event loop.
OFF_LOOP_BYTES = 64 * 1024


async def find_callback_wait(database: Database, token: str) -> dict[str, Any] | None:
    """The callback wait with ``token``, in whatever state it is (``None``: none).

    A plain read (never the engine's writer): probing tokens costs no write transaction.
    """
    query = select(waits).where(waits.c.token == token, waits.c.kind == "callback")
    async with database.reader() as session:
        found = (await session.execute(query)).mappings().first()
    return dict(found) if found else None


class Callbacks:
    """Receives callbacks and answers the waits they are for."""

    def __init__(
        self, engine: Engine, database: Database, limiter: RateLimiter | None = None
    ) -> None:
        self.engine = engine
        self.database = database
        #: requests per client address (a public route: SPEC §8 rate limits)
        self.limiter = limiter or RateLimiter(per_minute=600, burst=100)

    async def _keys(self, data: Mapping[str, Any]) -> list[str]:
        """The wait's signing secrets (sealed by the vault when the node had one)."""
        sealed = data.get("sealed_secrets") or []
        if sealed:
            vault = self.engine.services.get("secrets")
            unseal = getattr(vault, "unseal", None)
            if unseal is None:
                raise SignatureError("this server cannot read the callback's signing secrets")
            try:
                return [await unseal(str(item)) for item in sealed]
            except Exception:  # the server key changed since the node started waiting
                raise SignatureError(
                    "the callback's signing secrets cannot be read with the server's key"
                ) from None
        return [str(key) for key in data.get("secrets") or []]

    async def receive(self, token: str, headers: Mapping[str, str], body: bytes) -> Outcome:
        """Answer the wait of ``token`` with this request.

        ``headers`` must have lower-case names. Raises :class:`NotFound`,
        :class:`~server.signing.SignatureError` (401) or :class:`InvalidInput`.
        """
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise NotFound(UNKNOWN)
        wait = await find_callback_wait(self.database, token)
        if wait is None:
            raise NotFound(UNKNOWN)
        now = utcnow()
        keys = await self._keys(wait.get("data") or {})
        if keys:
            message_id: str | None = await _off_loop(len(body), verify, keys, headers, body, now)
        else:
            message_id = headers.get("webhook-id") or None
        if wait["resolution"] is not None or wait["resolved_at"] is not None:
            return _repeat(wait, message_id)
        resolution = {
            "payload": await _off_loop(len(body), parse_body, body, headers.get("content-type")),
            "headers": kept_headers(headers),
            "received_at": iso(now),
            "webhook_id": message_id,
        }
        if has_nul(resolution):  # PostgreSQL's JSONB cannot store it
            raise InvalidInput("the callback contains a NUL character (\\u0000), which is refused")
        wait_id, execution_id = wait["id"], wait["execution_id"]
        answered = await self.engine.journal.run(
            lambda conn: answer_wait(conn, wait_id, resolution, now)
        )
        if not answered:  # another callback, or the timeout, came first
            return _repeat(await find_callback_wait(self.database, token), message_id)
        self.engine.wait_answered(execution_id, wait_id, resolution)
        log.info(
            "callback accepted",
            extra={
                "action": "callback.accepted",
                "execution_id": execution_id,
                "node_id": wait["node_id"],
                "signed": bool(keys),
            },
        )
        return "accepted"


def _repeat(wait: Mapping[str, Any] | None, message_id: str | None) -> Outcome:
    """A callback for a wait that is already answered: a retry of the same message is
    acknowledged; anything else is as unknown as a token that never existed."""
    stored = (wait or {}).get("resolution") or {}
    if message_id and isinstance(stored, dict) and stored.get("webhook_id") == message_id:
        return "duplicate"
    raise NotFound(UNKNOWN)


def parse_body(body: bytes, content_type: str | None) -> Any:
    """JSON when the body parses as JSON, else its text; ``None`` when it is empty."""
    if not body.strip():
        return None
    media = (content_type or "").split(";")[0].strip().lower()
    looks_json = media == "application/json" or media.endswith("+json") or not media
    if looks_json:
        try:
            return json.loads(body, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            pass
    return body.decode(errors="replace")


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The request headers the node's output shows (no credentials, no framing)."""
    return {name: value for name, value in headers.items() if name not in HEADERS_LEFT_OUT}


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def _off_loop(size: int, function: Any, *args: Any) -> Any:
    """``function(*args)``, in a thread when the body is large enough to stall the loop."""
    if size > OFF_LOOP_BYTES:
        return await asyncio.to_thread(function, *args)
    return function(*args)
