"""Who may call which route: the permission table and the one guard that applies it.

Every route declares what it needs **next to its decorator**, with
``opt=permission("read")`` (or ``"write"``, ``"execute"``, ``"delete"``, ``"decide"``,
``"admin"``, ``"public"``). One app-wide guard, :func:`authorize`, reads that
declaration for every request; handlers never check roles themselves. A route that
declares nothing is refused (fail closed), and :func:`undeclared_routes` — checked when
the app is built and by the authorization-matrix test — names any such route, so a new
route cannot be forgotten. (Only the ``OPTIONS`` answers Litestar adds to every path are
public without a declaration.)

The seed's roles (SPEC §8):

========  ==========================================================================
admin     everything (users, API keys, secrets, audit included)
manager   read, write, execute, delete definitions and executions; decide any task
operator  read; execute (start, cancel, suspend, resume, retry, restart); decide the
          tasks assigned to them or their role
viewer    read
guest     nothing
========  ==========================================================================

``decide`` lets a caller *try* to complete or claim a task; which tasks they may decide
is then the task's own rule (:func:`server.identity.may_decide`). Reassigning a task,
rerunning a node with a patched input and skipping a node with a made-up output change
what an execution computes, so they need ``write`` (managers and admins).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from server.errors import Forbidden, Unauthorized
from server.identity import AUTHENTICATOR, Actor

Permission = Literal["public", "read", "write", "execute", "delete", "decide", "admin"]
PERMISSIONS: tuple[str, ...] = get_args(Permission)
#: The ``opt`` keys this module reads.
OPT_PERMISSION = "permission"
OPT_PUBLIC_WHEN = "public_when"
OPT_AUDIT = "audit"

ROLE_PERMISSIONS: Mapping[str, frozenset[str]] = {
    "admin": frozenset({"read", "write", "execute", "delete", "decide", "admin"}),
    "manager": frozenset({"read", "write", "execute", "delete", "decide"}),
    "operator": frozenset({"read", "execute", "decide"}),
    "viewer": frozenset({"read"}),
    "guest": frozenset(),
}
#: The least powerful role that holds each permission (for error messages).
LEAST_ROLE = {"read": "viewer", "execute": "operator", "decide": "operator", "write": "manager",
              "delete": "manager", "admin": "admin"}  # fmt: skip


def permission(
    needed: Permission, *, public_when: str | None = None, audit: str | None = None
) -> dict[str, Any]:
    """A route's ``opt``: what it needs, and optionally:

    * ``public_when``: the name of a boolean ``[auth]`` setting that makes the route
      public when true (``GET /metrics`` with ``metrics_public``);
    * ``audit``: an audit action (``execution.cancel``) recorded, with the caller and
      the path's id, for every successful (2xx) call.
    """
    if needed not in PERMISSIONS:
        raise ValueError(f"unknown permission {needed!r}; known: {', '.join(PERMISSIONS)}")
    opt: dict[str, Any] = {OPT_PERMISSION: needed}
    if public_when is not None:
        opt[OPT_PUBLIC_WHEN] = public_when
    if audit is not None:
        opt[OPT_AUDIT] = audit
    return opt


def allows(actor: Actor, needed: str) -> bool:
    """Whether ``actor``'s role holds the permission ``needed``."""
    if needed == "public":
        return True
    return actor.authenticated and needed in ROLE_PERMISSIONS.get(actor.role, frozenset())


def required(handler: BaseRouteHandler, settings_auth: Any) -> str | None:
    """What calling ``handler`` needs now (``None``: it declared nothing)."""
    needed = handler.opt.get(OPT_PERMISSION)
    if needed is None and _options_only(handler):
        return "public"
    if needed not in PERMISSIONS:
        return None
    public_when = handler.opt.get(OPT_PUBLIC_WHEN)
    if public_when and getattr(settings_auth, str(public_when), False) is True:
        return "public"
    return str(needed)


async def authorize(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The app-wide guard: 401 without valid credentials, 403 without the permission."""
    if not _declared(handler):
        raise Forbidden(
            "this route declares no permission, so nobody may call it (a server bug; "
            "please report it)"
        )
    authenticator = connection.app.state[AUTHENTICATOR]
    needed = required(handler, authenticator.settings) or "admin"  # declared: never None
    if needed == "public":
        authenticator.mark_public(connection)
        return
    if not authenticator.enabled:
        return
    actor: Actor = await authenticator.actor(connection)
    if not actor.authenticated:
        raise Unauthorized(
            "authentication required: sign in, or send an API key (Authorization: Bearer "
            "fy_… or X-API-Key) or a JWT (Authorization: Bearer …)"
        )
    if not allows(actor, needed):
        raise Forbidden(
            f"role {actor.role!r} lacks the {needed!r} permission this needs "
            f"({LEAST_ROLE.get(needed, 'admin')} or above)"
        )


def undeclared_routes(app: Litestar) -> list[str]:
    """``METHOD path`` of every route handler that declares no known permission."""
    missing = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not _declared(handler):
                methods = ",".join(sorted(getattr(handler, "http_methods", ()) or ["WS"]))
                missing.append(f"{methods} {route.path}")
    return sorted(missing)


def _declared(handler: BaseRouteHandler) -> bool:
    return handler.opt.get(OPT_PERMISSION) in PERMISSIONS or _options_only(handler)


def _options_only(handler: BaseRouteHandler) -> bool:
    """Litestar answers ``OPTIONS`` itself on every path (the allowed methods, and CORS
    preflights, which by the CORS standard carry no credentials): those are public."""
    return set(getattr(handler, "http_methods", ()) or ()) == {"OPTIONS"}


def check_routes(app: Litestar) -> None:
    """Refuse to build an app with a route that declares no permission."""
    missing = undeclared_routes(app)
    if missing:
        raise RuntimeError(
            "routes without a declared permission (add opt=permission(...) from "
            "server.security.permissions to each): " + "; ".join(missing)
        )
