"""Dashboard sign-in sessions and the lock-out of usernames (SPEC §7, §8).

**Sessions.** Signing in creates a session: a random 256-bit token goes to the browser
in the cookie ``flowyard_session`` (``HttpOnly; SameSite=Lax; Path=/``, plus ``Secure``
when the request came over HTTPS — see :func:`is_https`); the database keeps only its
SHA-256 (``sessions.token_hash``), so a copy of the table lets nobody in. Every sign-in
makes a new token, whatever cookie the browser had before (no session fixation), and
ends the session that cookie named. A session ends:

* after ``auth.session_idle_timeout`` without a request (``last_seen_at``; refreshed at
  most every tenth of the idle timeout, so a busy page does not write on each request);
* ``auth.session_max_age`` after sign-in, however active (``expires_at``);
* at sign-out (the row is deleted: the old cookie no longer works, even replayed);
* when its user is disabled (checked on every request).

An expired session's row is deleted when it is next presented, and all expired rows
whenever someone signs in. The cookie resolves to the user's :class:`Actor` for the
dashboard and the API alike; an unsafe request authenticated this way must carry the
session's CSRF token (:mod:`server.security.csrf`).

**Lock-out.** ``auth.login_max_failures`` failed sign-ins for one username within
``auth.login_lockout`` lock that username until ``login_lockout`` after the last of
them; a successful sign-in resets the count. Attempts refused while locked do not
extend the lock. The count is read from the audit log (``login.failed`` /
``login.succeeded`` rows), so it holds across restarts and across every process that
shares the database; a username is locked whether or not such a user exists, so the
lock reveals nothing about which names are real.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from litestar.connection import ASGIConnection
from litestar.utils.scope.state import ScopeState
from sqlalchemy import delete, func, or_, select, update

from server.config import Settings
from server.durations import parse_duration
from server.identity import Actor
from server.ratelimit import RateLimiter
from server.security import csrf
from server.security.audit import AuditLog
from server.security.users import USERNAME, UserService, user_actor
from server.store.database import Database
from server.store.models import AuditRow, SessionRow, UserRow, utcnow

log = logging.getLogger(__name__)

Connection = ASGIConnection[Any, Any, Any, Any]

COOKIE = "flowyard_session"
#: Where :meth:`SessionService.actor_for_request` leaves the session (scope ``state``).
STATE_KEY = "flowyard.session"
LOGIN_FAILED = "login.failed"
LOGIN_SUCCEEDED = "login.succeeded"
LOGIN_LOCKED = "login.locked"


@dataclass(frozen=True, slots=True)
class Session:
    """A live session: who it is, and the token its forms must carry."""

    token_hash: str
    user_id: str
    actor: Actor
    csrf_token: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just made: ``token`` is the cookie value (shown only this once)."""

    token: str
    session: Session


def hash_token(token: str) -> str:
    """What the database keeps of a session token (the token itself only the browser)."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_https(request: Connection, public_url: str = "") -> bool:
    """Whether the browser talks to us over HTTPS, so cookies get ``Secure``.

    True when the request itself is HTTPS, when ``server.public_url`` is an https URL
    (the operator says people reach the server over TLS), or when a proxy in front says
    so with ``X-Forwarded-Proto: https`` or ``Forwarded: proto=https``. Trusting the
    header is safe here: it can only add ``Secure``, which makes a cookie stricter.
    """
    if request.url.scheme == "https" or public_url.startswith("https://"):
        return True
    forwarded_proto = request.headers.get("x-forwarded-proto", "")
    if forwarded_proto.split(",")[0].strip().lower() == "https":
        return True
    forwarded = request.headers.get("forwarded", "").lower()
    return any(
        part.strip().replace('"', "") == "proto=https"
        for hop in forwarded.split(",")[:1]
        for part in hop.split(";")
    )


class SessionService:
    """Sessions in the ``sessions`` table (``services``-style: one per app)."""

    def __init__(self, database: Database, *, idle_timeout: float, max_age: float) -> None:
        self._database = database
        self.idle_timeout = timedelta(seconds=idle_timeout)
        self.max_age = timedelta(seconds=max_age)
        # Refresh ``last_seen_at`` at most this often per session.
        self._touch_every = min(timedelta(seconds=60), self.idle_timeout / 10)

    @classmethod
    def from_settings(cls, database: Database, settings: Settings) -> SessionService:
        return cls(
            database,
            idle_timeout=parse_duration(settings.auth.session_idle_timeout),
            max_age=parse_duration(settings.auth.session_max_age),
        )

    @property
    def cookie_max_age(self) -> int:
        """The cookie's ``Max-Age``: the browser forgets it when the session must end."""
        return max(1, int(self.max_age.total_seconds()))

    async def create(self, user_id: str, actor: Actor) -> NewSession:
        """A new session for a user who just proved their password."""
        token = csrf.new_token()
        now = utcnow()
        row = SessionRow(
            token_hash=hash_token(token),
            user_id=user_id,
            csrf_token=csrf.new_token(),
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.max_age,
        )
        async with self._database.session() as db, db.begin():
            await db.execute(
                delete(SessionRow).where(
                    or_(
                        SessionRow.expires_at <= now,
                        SessionRow.last_seen_at <= now - self.idle_timeout,
                    )
                )
            )
            db.add(row)
        log.info("session started", extra={"action": "session.started", "user_id": user_id})
        return NewSession(
            token,
            Session(
                token_hash=row.token_hash,
                user_id=user_id,
                actor=actor,
                csrf_token=row.csrf_token,
                created_at=now,
                expires_at=row.expires_at,
            ),
        )

    async def resolve(self, token: str) -> Session | None:
        """The live session of a cookie value, or ``None`` (unknown, expired, disabled)."""
        if not token or len(token) > 200:
            return None
        token_hash = hash_token(token)
        now = utcnow()
        async with self._database.reader() as db:
            found = (
                await db.execute(
                    select(SessionRow, UserRow.username, UserRow.role, UserRow.disabled)
                    .join(UserRow, UserRow.id == SessionRow.user_id)
                    .where(SessionRow.token_hash == token_hash)
                )
            ).first()
        if found is None:
            return None
        row, username, role, disabled = found
        if now >= row.expires_at or now - row.last_seen_at >= self.idle_timeout:
            await self._delete(token_hash)
            log.info("session expired", extra={"action": "session.expired"})
            return None
        if disabled:
            return None
        if now - row.last_seen_at >= self._touch_every:
            async with self._database.session() as db, db.begin():
                await db.execute(
                    update(SessionRow)
                    .where(SessionRow.token_hash == token_hash)
                    .values(last_seen_at=now)
                )
        actor = dataclasses.replace(user_actor(username, role), via="session")
        return Session(
            token_hash=token_hash,
            user_id=row.user_id,
            actor=actor,
            csrf_token=row.csrf_token,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )

    async def end(self, token: str) -> bool:
        """Sign out: delete the session of this cookie value (``False``: there was none)."""
        if not token or len(token) > 200:
            return False
        ended = await self._delete(hash_token(token))
        if ended:
            log.info("session ended", extra={"action": "session.ended"})
        return ended

    async def end_all(self, user_id: str) -> int:
        """End every session of a user (password changed, user disabled); how many."""
        async with self._database.session() as db, db.begin():
            result = await db.execute(delete(SessionRow).where(SessionRow.user_id == user_id))
        return int(getattr(result, "rowcount", 0) or 0)

    async def actor_for_request(self, connection: Connection) -> Actor | None:
        """The credential source for the session cookie (``None``: no live session).

        Registered with ``server.security.authn.Authenticator.add_source``. A missing,
        unknown or expired cookie is "no credential" rather than an error, so a browser
        with a stale cookie still sees the public pages (and is asked to sign in
        elsewhere). An unsafe request (POST, PUT, PATCH, DELETE) authenticated by the
        cookie must carry the session's CSRF token, else
        :class:`~server.security.csrf.CsrfRejected` (403).
        """
        token = connection.cookies.get(COOKIE)
        if not token:
            return None
        session = await self.resolve(token)
        if session is None:
            return None
        remember(connection, session)
        await csrf.require_session_token(connection, session.csrf_token)
        return session.actor

    async def _delete(self, token_hash: str) -> bool:
        async with self._database.session() as db, db.begin():
            result = await db.execute(delete(SessionRow).where(SessionRow.token_hash == token_hash))
        return bool(getattr(result, "rowcount", 0))


def remember(connection: Connection, session: Session) -> None:
    """Keep ``session`` with the request, for the templates (account, CSRF fields)."""
    state: dict[str, Any] = connection.scope.setdefault("state", {})
    state[STATE_KEY] = session
    # Litestar's ``csrf_token()`` template function reads this.
    ScopeState.from_scope(connection.scope).csrf_token = session.csrf_token


def request_session(connection: Connection) -> Session | None:
    """The session this request was authenticated with, if it was."""
    state: dict[str, Any] = connection.scope.get("state", {})
    found = state.get(STATE_KEY)
    return found if isinstance(found, Session) else None


# --- lock-out ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lock:
    """A locked username: until when, and how many failures locked it."""

    until: datetime
    failures: int

    def seconds_left(self, now: datetime | None = None) -> int:
        left = (self.until - (now or utcnow())).total_seconds()
        return max(1, int(left + 0.999))


class LoginLockout:
    """Locks usernames after too many failed sign-ins (see the module docstring)."""

    def __init__(self, database: Database, *, max_failures: int, lockout: float) -> None:
        self._database = database
        self.max_failures = max_failures
        self.lockout = timedelta(seconds=lockout)

    @classmethod
    def from_settings(cls, database: Database, settings: Settings) -> LoginLockout:
        return cls(
            database,
            max_failures=settings.auth.login_max_failures,
            lockout=parse_duration(settings.auth.login_lockout),
        )

    async def lock(self, username: str) -> Lock | None:
        """The lock on ``username`` now, or ``None`` when it may try to sign in."""
        now = utcnow()
        # Failures older than two lock-out periods can neither be part of a current lock
        # nor start one: the scan stays small however long the audit log is.
        horizon = now - 2 * self.lockout
        target = username[:200]  # as the audit log stores it
        async with self._database.reader() as db:
            last_success = (
                await db.execute(
                    select(func.max(AuditRow.at)).where(
                        AuditRow.action == LOGIN_SUCCEEDED,
                        AuditRow.target_type == "user",
                        AuditRow.target_id == target,
                        AuditRow.at > horizon,
                    )
                )
            ).scalar_one_or_none()
            since = max(horizon, last_success) if last_success is not None else horizon
            failures = list(
                (
                    await db.execute(
                        select(AuditRow.at)
                        .where(
                            AuditRow.action == LOGIN_FAILED,
                            AuditRow.target_type == "user",
                            AuditRow.target_id == target,
                            AuditRow.at > since,
                        )
                        .order_by(AuditRow.at.desc())
                        .limit(self.max_failures)
                    )
                ).scalars()
            )
        if len(failures) < self.max_failures:
            return None
        newest, oldest = failures[0], failures[-1]
        if newest - oldest >= self.lockout:
            return None  # not that many failures within one lock-out period
        until = newest + self.lockout
        return Lock(until, len(failures)) if until > now else None


# --- signing in -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignInOutcome:
    """What a sign-in attempt gave: a new session, or none (and the lock, if locked)."""

    new_session: NewSession | None = None
    lock: Lock | None = None


class SignIn:
    """The sign-in procedure behind ``POST /login``: limits, lock-out, password, audit.

    Rate limits (``auth.login_rate_per_minute``/``login_rate_burst``) apply per client
    address and per username, before any password is checked, so a flood costs no
    argon2 work; over either, :class:`~server.ratelimit.TooManyRequests` (429). Every
    attempt is audited: ``login.succeeded``, ``login.failed`` or ``login.locked``.
    """

    def __init__(
        self,
        users: UserService,
        audit: AuditLog,
        sessions: SessionService,
        lockout: LoginLockout,
        *,
        per_minute: int,
        burst: int,
    ) -> None:
        self.users = users
        self.audit = audit
        self.sessions = sessions
        self.lockout = lockout
        self.by_address = RateLimiter(per_minute, burst)
        self.by_username = RateLimiter(per_minute, burst)

    @classmethod
    def from_settings(
        cls, database: Database, settings: Settings, users: UserService, audit: AuditLog
    ) -> SignIn:
        return cls(
            users,
            audit,
            SessionService.from_settings(database, settings),
            LoginLockout.from_settings(database, settings),
            per_minute=settings.auth.login_rate_per_minute,
            burst=settings.auth.login_rate_burst,
        )

    async def attempt(
        self, username: str, password: str, *, remote_addr: str | None
    ) -> SignInOutcome:
        """Check one sign-in; a new session when the password is right and not locked."""
        self.by_address.check(f"address:{remote_addr}", "sign-in attempts from this address")
        if not USERNAME.fullmatch(username):
            # No user can have this name (and text such as NUL must not reach the
            # database): a failure, audited under a printable form of the name.
            shown = username.encode("unicode_escape").decode("ascii")[:200]
            await self._audit(LOGIN_FAILED, shown, remote_addr, reason="not a valid username")
            return SignInOutcome()
        self.by_username.check(f"user:{username}", "sign-in attempts for this username")
        lock = await self.lockout.lock(username)
        if lock is not None:
            await self._audit(LOGIN_LOCKED, username, remote_addr, until=lock.until.isoformat())
            return SignInOutcome(lock=lock)
        actor = await self.users.authenticate(username, password)
        user = await self.users.find(username) if actor is not None else None
        if actor is None or user is None or user.disabled:
            await self._audit(LOGIN_FAILED, username, remote_addr)
            return SignInOutcome(lock=await self.lockout.lock(username))
        new_session = await self.sessions.create(user.id, dataclasses.replace(actor, via="session"))
        await self._audit(LOGIN_SUCCEEDED, username, remote_addr, actor=username)
        return SignInOutcome(new_session=new_session)

    async def _audit(
        self,
        action: str,
        username: str,
        remote_addr: str | None,
        *,
        actor: str | None = None,
        **data: Any,
    ) -> None:
        await self.audit.record(
            action,
            actor=actor,
            target_type="user",
            target_id=username,
            data={"via": "password", **data},
            remote_addr=remote_addr,
        )
