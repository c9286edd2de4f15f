"""Audit rows for routes that declare ``audit=...`` in their permission (one mechanism).

Control actions on executions and task decisions are declared like
``opt=permission("execute", audit="execution.cancel")``; this middleware writes one
audit row — the caller, the action, the object id from the path, the status — when
such a route answers 2xx (or, for a dashboard form, its 303: :func:`succeeded`). The
row is written *before* the response starts, so a client that reads ``/api/v1/audit``
right after its call finds it.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from server.identity import AUTHENTICATOR, Actor
from server.security.audit import AuditLog
from server.security.authn import STATE_KEY as ACTOR_STATE_KEY
from server.security.permissions import OPT_AUDIT

log = logging.getLogger(__name__)

#: Path parameters that name the object a route acts on, most specific first.
TARGET_PARAMS = ("task_id", "execution_id", "workflow_id", "key_id", "user_id", "name")


def succeeded(scope: Scope, status: int) -> bool:
    """Whether the answer says the action was done.

    2xx, and 303 from the dashboard's forms (post/redirect/get) — but not the 303 that
    sends a browser without a valid session to the sign-in page: that request never
    reached its handler, so no authenticated caller was resolved for it.
    """
    if 200 <= status < 300:
        return True
    caller = (scope.get("state") or {}).get(ACTOR_STATE_KEY)
    return status == 303 and isinstance(caller, Actor) and caller.authenticated


class RouteAuditMiddleware(ASGIMiddleware):
    """Writes the audit row of a successful call to a route declaring ``audit``."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        handler = scope.get("route_handler")
        action = handler.opt.get(OPT_AUDIT) if handler is not None else None
        if not action:
            await next_app(scope, receive, send)
            return

        async def send_after_audit(message: Message) -> None:
            if message["type"] == "http.response.start" and succeeded(scope, message["status"]):
                await self._record(scope, str(action), message["status"])
            await send(message)

        await next_app(scope, receive, send_after_audit)

    async def _record(self, scope: Scope, action: str, status: int) -> None:
        params: dict[str, Any] = dict(scope.get("path_params") or {})
        target = next((str(params[p]) for p in TARGET_PARAMS if p in params), None)
        client = scope.get("client")
        try:
            connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope)
            actor = await connection.app.state[AUTHENTICATOR].actor(connection)
            await self._audit.record(
                action,
                actor=actor.name,
                target_type=action.split(".", 1)[0],
                target_id=target,
                data={"status": status, "via": actor.via},
                remote_addr=client[0] if client else None,
            )
        except Exception:
            # The action has happened; failing its response now would make the client
            # retry it. The failure is logged loudly instead.
            log.exception(
                "could not write an audit row",
                extra={"action": "audit.write_failed", "audit_action": action},
            )
