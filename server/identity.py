"""Who is asking, and whether they may decide a human task.

:class:`Actor` is the caller as every service sees it: a name, the seed role that grants
permissions, the roles tasks are offered to, and how they proved who they are.
:func:`current_actor` is the Litestar dependency that gives it to a handler; the
credentials themselves (API keys, JWTs, dashboard sessions) are checked by
``server.security.authn`` (SPEC §8), once per request.

**Development mode** (``auth.enabled = false``, for tests and local use only): nothing
is checked and every route is open; the caller *claims* an identity with the headers
``X-Flowyard-User: alice`` and ``X-Flowyard-Roles: operator, finance``
(:func:`claimed_actor`). Without them the caller is ``anonymous`` with role
``operator``. With authentication on (the default) these headers are ignored.

The permission rule for deciding a task lives in one function, :func:`may_decide`.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

from litestar import Request
from litestar.connection import ASGIConnection

from server.errors import BadRequest, Unauthorized

USER_HEADER = "x-flowyard-user"
ROLES_HEADER = "x-flowyard-roles"
#: The seed's roles, most powerful first (SPEC §8).
SEED_ROLES = ("admin", "manager", "operator", "viewer", "guest")
#: Roles that may decide any task (SPEC §8: "a manager/admin").
DECIDE_ANY = frozenset({"admin", "manager"})
#: Roles that may decide tasks assigned to them or to one of their roles.
DECIDE_OWN = frozenset({"operator"})
#: User and role names: letters, digits and ``_ . @ + : -`` (e-mail addresses fit).
NAME = re.compile(r"[A-Za-z0-9_.@+:\-]{1,200}")
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Actor:
    """A person or client acting on the server.

    ``role`` is the seed role that grants permissions (admin, manager, operator, viewer,
    guest); ``roles`` is every role or group the actor belongs to (``role`` included),
    which is what a task's ``candidate_roles`` are matched against.
    """

    name: str
    role: str
    roles: frozenset[str]
    authenticated: bool = True
    #: how the caller proved it: ``api_key``, ``jwt``, ``session``, ``password``, or
    #: ``claimed`` (development headers) and ``anonymous`` (no credentials)
    via: str = "claimed"


#: The caller when no credentials came with a request (authentication on).
NOBODY = Actor(ANONYMOUS, "guest", frozenset({"guest"}), authenticated=False, via="anonymous")


class ActorSource(Protocol):
    """What resolves a request's credentials (``server.security.authn.Authenticator``)."""

    async def actor(self, connection: ASGIConnection[Any, Any, Any, Any]) -> Actor: ...


#: Where :func:`current_actor` finds the resolver: ``app.state[AUTHENTICATOR]``.
AUTHENTICATOR = "authenticator"


async def current_actor(request: Request[Any, Any, Any]) -> Actor:
    """The caller (a Litestar dependency): resolved from the request's credentials.

    :class:`~server.errors.Unauthorized` when credentials were sent but are not valid;
    :data:`NOBODY` when none were sent (routes that need someone refuse before).
    """
    source: ActorSource = request.app.state[AUTHENTICATOR]
    return await source.actor(request)


def acting_name(actor: Actor) -> str | None:
    """The name recorded as the one who acted (started, controlled, restarted): an
    authenticated caller's; ``None`` in development mode, where names are only claimed."""
    return actor.name if actor.authenticated and actor.via != "claimed" else None


def claimed_actor(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor:
    """Development mode only: the identity the request's headers claim (unchecked)."""
    name = connection.headers.get(USER_HEADER, "").strip() or ANONYMOUS
    if not NAME.fullmatch(name):
        raise BadRequest(
            f"the {USER_HEADER} header must be 1 to 200 letters, digits or _ . @ + : -"
        )
    given = [r.strip() for r in connection.headers.get(ROLES_HEADER, "").split(",") if r.strip()]
    bad = [r for r in given if not NAME.fullmatch(r)]
    if bad:
        raise BadRequest(f"invalid role name in the {ROLES_HEADER} header: {bad[0][:50]!r}")
    return actor_with_roles(name, given)


def actor_with_roles(name: str, roles: Collection[str]) -> Actor:
    """An actor whose seed role is the most powerful seed role among ``roles``
    (``operator`` when none is named: a named person may decide their own tasks)."""
    role = next((r for r in SEED_ROLES if r in roles), "operator")
    return Actor(name, role, frozenset({*roles, role}))


class DecidableTask(Protocol):
    """What :func:`may_decide` needs to know about a task."""

    @property
    def assignee(self) -> str | None: ...

    @property
    def candidate_roles(self) -> Collection[str]: ...

    @property
    def claimed_by(self) -> str | None: ...

    @property
    def allow_self_approval(self) -> bool: ...

    @property
    def started_by(self) -> Collection[str]:
        """Who started the task's execution (its ``owner`` and ``triggered_by``)."""
        ...


def may_decide(task: DecidableTask, actor: Actor) -> str | None:
    """``None`` when ``actor`` may decide ``task``, else the reason they may not.

    SPEC §8: the assignee, a member of a candidate role, or a manager/admin — and, with
    ``allow_self_approval: false`` (four eyes), never whoever started the execution, not
    even an admin. A task claimed by someone is theirs (managers and admins excepted).
    """
    if not actor.authenticated:
        return "sign in (or send an API key or JWT) to decide tasks"
    if not task.allow_self_approval and actor.name in task.started_by:
        return (
            f"four-eyes rule: {actor.name!r} started this execution, so someone else must "
            "decide its tasks (allow_self_approval is false)"
        )
    if actor.role in DECIDE_ANY:
        return None
    if actor.role not in DECIDE_OWN:
        return f"role {actor.role!r} may not decide tasks (operator, manager or admin needed)"
    if task.claimed_by and task.claimed_by != actor.name:
        return f"the task is claimed by {task.claimed_by!r}"
    if task.assignee is not None and task.assignee == actor.name:
        return None
    if set(task.candidate_roles) & actor.roles:
        return None
    allowed = []
    if task.assignee:
        allowed.append(f"its assignee {task.assignee!r}")
    if task.candidate_roles:
        allowed.append("members of " + ", ".join(sorted(task.candidate_roles)))
    allowed.append("a manager or admin")
    return f"{actor.name!r} may not decide this task: only {', '.join(allowed)} may"


def require_authenticated(actor: Actor) -> None:
    """Refuse (401) a change requested by an unauthenticated caller."""
    if not actor.authenticated:
        raise Unauthorized("sign in (or send an API key or JWT) to change tasks")
