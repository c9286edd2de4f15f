"""Dashboard users: create, list, change, disable, and check a password (SPEC §8).

A user has a username, an optional e-mail address, one seed role (admin, manager,
operator, viewer, guest) and an argon2id password hash. Users are never deleted, only
disabled: their name stays in audit rows, task decisions and execution owners, and a
disabled user can neither sign in nor use a session made before.

Every change is committed together with its audit row. The login page calls
:meth:`UserService.authenticate` (and records the attempt with
:meth:`server.security.audit.AuditLog.record`); session resolution calls
:meth:`UserService.actor_for_id`.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.errors import Conflict, InvalidInput, NotFound, Problem
from server.identity import SEED_ROLES, Actor
from server.security import passwords
from server.security.audit import AuditLog
from server.store.database import Database
from server.store.models import SessionRow, UserRow, utcnow

log = logging.getLogger(__name__)

#: Usernames: letters, digits and ``_ . @ + : -`` (e-mail addresses fit), 1 to 150.
USERNAME = re.compile(r"[A-Za-z0-9_.@+:\-]{1,150}")
EMAIL = re.compile(r"[^@\s]{1,200}@[^@\s]{1,119}")
#: The first admin's name when a server starts with no users at all.
FIRST_ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class User:
    """A user as the API shows it (never the password hash)."""

    id: str
    username: str
    email: str | None
    role: str
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, row: UserRow) -> User:
        return cls(
            id=row.id,
            username=row.username,
            email=row.email,
            role=row.role,
            disabled=row.disabled,
            created_at=row.created_at,
            last_login_at=row.last_login_at,
        )

    @property
    def actor(self) -> Actor:
        return user_actor(self.username, self.role)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "role": self.role,
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat(),
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
        }


def user_actor(username: str, role: str) -> Actor:
    """The actor a signed-in user acts as: their name, their one seed role."""
    return Actor(username, role, frozenset({role}), via="password")


class UserService:
    """Users in the database, with their audit trail."""

    def __init__(self, database: Database, audit: AuditLog) -> None:
        self._database = database
        self._audit = audit
        self._dummy_hash: str | None = None

    # --- reading ---------------------------------------------------------------------

    async def list(self, *, limit: int, offset: int) -> dict[str, Any]:
        """One page of users, by username, and how many there are in all."""
        async with self._database.reader() as session:
            total = (await session.execute(select(func.count()).select_from(UserRow))).scalar_one()
            rows = await session.execute(
                select(UserRow).order_by(UserRow.username).limit(limit).offset(offset)
            )
            users = [User.of(row).as_dict() for row in rows.scalars()]
        return {"users": users, "total": int(total), "limit": limit, "offset": offset}

    async def get(self, user_id: str) -> User:
        async with self._database.reader() as session:
            row = await session.get(UserRow, user_id)
        if row is None:
            raise NotFound(f"no user with id {user_id!r}")
        return User.of(row)

    async def find(self, username: str) -> User | None:
        """The user with this exact username, disabled or not."""
        async with self._database.reader() as session:
            row = await _by_username(session, username)
        return User.of(row) if row is not None else None

    async def count(self) -> int:
        async with self._database.reader() as session:
            total = await session.execute(select(func.count()).select_from(UserRow))
        return int(total.scalar_one())

    async def actor_for_id(self, user_id: str) -> Actor | None:
        """The actor of an enabled user (for a dashboard session), else ``None``."""
        async with self._database.reader() as session:
            row = await session.get(UserRow, user_id)
        if row is None or row.disabled:
            return None
        return user_actor(row.username, row.role)

    # --- signing in ------------------------------------------------------------------

    async def authenticate(self, username: str, password: str) -> Actor | None:
        """The user's actor when ``password`` is theirs and they are enabled, else ``None``.

        Takes as long for an unknown or disabled user as for a wrong password (a hash is
        verified either way), so the answer time does not reveal which usernames exist.
        A successful sign-in records ``last_login_at`` and upgrades an old-parameter hash.
        """
        async with self._database.reader() as session:
            row = (
                await _by_username(session, username)
                if len(username) <= 150 and len(password) <= passwords.MAX_LENGTH
                else None
            )
        if row is None or row.disabled:
            await passwords.verify_password_async(await self._dummy(), password[:64])
            return None
        if not await passwords.verify_password_async(row.password_hash, password):
            return None
        new_hash = (
            await passwords.hash_password_async(password)
            if passwords.needs_rehash(row.password_hash)
            else None
        )
        async with self._database.session() as session, session.begin():
            current = await session.get(UserRow, row.id)
            if current is None or current.disabled:
                return None
            current.last_login_at = utcnow()
            if new_hash is not None:
                current.password_hash = new_hash
        return user_actor(row.username, row.role)

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await passwords.hash_password_async(secrets.token_urlsafe(16))
        return self._dummy_hash

    # --- changing --------------------------------------------------------------------

    async def create(
        self,
        username: str,
        password: str,
        role: str,
        email: str | None = None,
        *,
        by: str | None,
        remote_addr: str | None = None,
    ) -> User:
        """A new enabled user; 409 when the username is taken, 422 for invalid fields."""
        problems = _user_problems(username=username, password=password, role=role, email=email)
        if problems:
            raise InvalidInput("the user is invalid", details=problems)
        password_hash = await passwords.hash_password_async(password)
        try:
            async with self._database.session() as session, session.begin():
                if await _by_username(session, username) is not None:
                    raise Conflict(f"a user named {username!r} exists already")
                row = UserRow(
                    username=username,
                    email=email or None,
                    password_hash=password_hash,
                    role=role,
                    disabled=False,
                    created_at=utcnow(),
                )
                session.add(row)
                await session.flush()
                self._audit.add(
                    session,
                    "user.created",
                    actor=by,
                    target_type="user",
                    target_id=username,
                    data={"role": role},
                    remote_addr=remote_addr,
                )
                user = User.of(row)
        except IntegrityError:
            raise Conflict(f"a user named {username!r} exists already") from None
        log.info("user created", extra={"action": "user.created", "user_id": user.id})
        return user

    async def update(
        self,
        user_id: str,
        *,
        role: str | None = None,
        disabled: bool | None = None,
        email: str | None = None,
        password: str | None = None,
        by: str | None,
        remote_addr: str | None = None,
    ) -> User:
        """Change a user's role, enabled state, e-mail or password.

        The last enabled admin can be neither disabled nor demoted (409): that would
        leave nobody able to manage users and keys.
        """
        problems = _user_problems(role=role, email=email, password=password)
        if problems:
            raise InvalidInput("the change is invalid", details=problems)
        password_hash = (
            await passwords.hash_password_async(password) if password is not None else None
        )
        async with self._database.session() as session, session.begin():
            row = await session.get(UserRow, user_id)
            if row is None:
                raise NotFound(f"no user with id {user_id!r}")
            changes: dict[str, Any] = {}
            loses_admin = (
                row.role == "admin"
                and not row.disabled
                and ((role is not None and role != "admin") or disabled is True)
            )
            if loses_admin and await _enabled_admins(session) <= 1:
                raise Conflict(
                    f"{row.username!r} is the last enabled admin; make another user admin first"
                )
            if role is not None and role != row.role:
                changes["role"] = {"from": row.role, "to": role}
                row.role = role
            if disabled is not None and disabled != row.disabled:
                changes["disabled"] = disabled
                row.disabled = disabled
            if email is not None and (email or None) != row.email:
                changes["email"] = True
                row.email = email or None
            if password_hash is not None:
                changes["password"] = True
                row.password_hash = password_hash
            if password_hash is not None or changes.get("disabled") is True:
                # a new password (or a disabled user) ends every session signed in with
                # the old one, in the same transaction
                await session.execute(delete(SessionRow).where(SessionRow.user_id == row.id))
            if changes:
                action = "user.disabled" if changes.get("disabled") is True else "user.updated"
                if changes.get("disabled") is False:
                    action = "user.enabled"
                self._audit.add(
                    session,
                    action,
                    actor=by,
                    target_type="user",
                    target_id=row.username,
                    data=changes,
                    remote_addr=remote_addr,
                )
            return User.of(row)

    async def ensure_first_admin(self) -> str | None:
        """On a server with no users at all, create ``admin`` with a random password.

        Returns that password (for the caller to show once), or ``None`` when users
        exist. Several processes starting together on one database create it once: the
        loser of the race sees the unique username taken and returns ``None``.
        """
        if await self.count():
            return None
        password = secrets.token_urlsafe(18)
        password_hash = await passwords.hash_password_async(password)
        try:
            async with self._database.session() as session, session.begin():
                if (await session.execute(select(func.count()).select_from(UserRow))).scalar_one():
                    return None
                session.add(
                    UserRow(
                        username=FIRST_ADMIN,
                        email=None,
                        password_hash=password_hash,
                        role="admin",
                        disabled=False,
                        created_at=utcnow(),
                    )
                )
                self._audit.add(
                    session,
                    "user.created",
                    actor="flowyard",
                    target_type="user",
                    target_id=FIRST_ADMIN,
                    data={"role": "admin", "first_start": True},
                )
        except IntegrityError:
            return None
        return password


async def _by_username(session: AsyncSession, username: str) -> UserRow | None:
    result = await session.execute(select(UserRow).where(UserRow.username == username))
    return result.scalar_one_or_none()


async def _enabled_admins(session: AsyncSession) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(UserRow)
        .where(UserRow.role == "admin", UserRow.disabled.is_(False))
    )
    return int(result.scalar_one())


_UNSET: Any = object()


def _user_problems(
    *,
    username: str | None = _UNSET,
    password: str | None = _UNSET,
    role: str | None = _UNSET,
    email: str | None = _UNSET,
) -> list[Problem]:
    """What is wrong with the given fields (``_UNSET`` fields are not checked; ``None``
    means "not given" for a change and "missing" for a required field)."""
    problems = []
    if username is not _UNSET and (
        not isinstance(username, str) or not USERNAME.fullmatch(username)
    ):
        problems.append(Problem("/username", "required: 1 to 150 letters, digits or _ . @ + : -"))
    if password is not _UNSET and password is not None:
        reason = passwords.password_problem(password) if isinstance(password, str) else "text"
        if reason:
            problems.append(Problem("/password", reason))
    if role is not _UNSET and role is not None and role not in SEED_ROLES:
        problems.append(Problem("/role", f"must be one of {', '.join(SEED_ROLES)}"))
    if (
        email is not _UNSET
        and email
        and (not isinstance(email, str) or len(email) > 320 or not EMAIL.fullmatch(email))
    ):
        problems.append(Problem("/email", "must be an e-mail address such as ana@example.com"))
    return problems
