"""API keys: random credentials for programs, each with a role (SPEC §8).

A key looks like ``fy_3kq9x2ab7d…`` (``fy_``, then 40 lowercase letters and digits).
Its first 11 characters are its **prefix**, stored in clear and shown in lists so
people can tell keys apart; the whole key is shown once, when it is created, and stored
only as a SHA-256 digest. A slow password hash is not needed here: a key carries about
200 random bits, so its digest cannot be reversed by guessing (unlike a password).

Checking a key is one indexed lookup by prefix and a constant-time comparison of
digests. Revoking sets ``revoked_at``; a revoked key never authenticates again.
``last_used_at`` is refreshed at most once a minute per key, so a busy client does not
turn every read into a write.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from server.errors import ConfigurationError, Conflict, InvalidInput, NotFound, Problem
from server.identity import SEED_ROLES, Actor
from server.security.audit import AuditLog
from server.store.database import Database
from server.store.models import ApiKeyRow, utcnow

log = logging.getLogger(__name__)

KEY_MARK = "fy_"
PREFIX_LENGTH = len(KEY_MARK) + 8
SECRET_LENGTH = 40
ALPHABET = string.ascii_lowercase + string.digits
#: Shortest value accepted for ``FLOWYARD_BOOTSTRAP_ADMIN_KEY`` (after ``fy_``).
MIN_BOOTSTRAP_LENGTH = 32
KEY_TEXT = re.compile(r"fy_[A-Za-z0-9_\-]{8,200}")
KEY_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
BOOTSTRAP_NAME = "bootstrap-admin"
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as lists show it: never the key itself, never its digest."""

    id: str
    name: str
    role: str
    prefix: str
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiKeyRow) -> ApiKey:
        return cls(
            id=row.id,
            name=row.name,
            role=row.role,
            prefix=row.prefix,
            created_at=row.created_at,
            created_by=row.created_by,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "prefix": self.prefix,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked": self.revoked_at is not None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def generate_key() -> str:
    """A new random key: ``fy_`` and 40 characters from ``[a-z0-9]`` (~206 bits)."""
    return KEY_MARK + "".join(secrets.choice(ALPHABET) for _ in range(SECRET_LENGTH))


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(value: str) -> bool:
    """Whether a bearer credential is an API key (else it is taken for a JWT)."""
    return value.startswith(KEY_MARK)


def check_bootstrap_key(key: str) -> None:
    """Refuse (at start) a bootstrap key that is too short or not shaped like a key."""
    if not KEY_TEXT.fullmatch(key) or len(key) < len(KEY_MARK) + MIN_BOOTSTRAP_LENGTH:
        raise ConfigurationError(
            "auth.bootstrap_admin_key",
            f"must be 'fy_' followed by at least {MIN_BOOTSTRAP_LENGTH} letters, digits, _ or -"
            " (e.g. generate one with: flowyard api-keys generate)",
        )


def key_actor(row: ApiKeyRow) -> Actor:
    """A key acts as ``key:<name>`` with its role (its name is not a user's name)."""
    return Actor(f"key:{row.name}", row.role, frozenset({row.role}), via="api_key")


class ApiKeyService:
    """Create, list, revoke and check API keys."""

    def __init__(self, database: Database, audit: AuditLog) -> None:
        self._database = database
        self._audit = audit

    async def create(
        self, name: str, role: str, *, by: str | None, remote_addr: str | None = None
    ) -> dict[str, Any]:
        """A new key: ``{id, name, role, prefix, key, created_at}`` — the only time the
        key itself is ever shown."""
        problems = []
        if not isinstance(name, str) or not KEY_NAME.fullmatch(name) or not name.strip():
            problems.append(
                Problem("/name", "required: 1 to 200 characters, no control characters")
            )
        if role not in SEED_ROLES:
            problems.append(Problem("/role", f"must be one of {', '.join(SEED_ROLES)}"))
        if problems:
            raise InvalidInput("the API key request is invalid", details=problems)
        for _ in range(3):  # a prefix collision (1 in 2.8e12) just draws another key
            key = generate_key()
            try:
                row = await self._insert(key, name, role, by, remote_addr)
            except IntegrityError:
                continue
            log.info("api key created", extra={"action": "api_key.created", "key_id": row.id})
            return {
                "id": row.id,
                "name": row.name,
                "role": row.role,
                "prefix": row.prefix,
                "key": key,
                "created_at": row.created_at.isoformat(),
            }
        raise Conflict("could not draw a unique key prefix; try again")  # pragma: no cover

    async def _insert(
        self,
        key: str,
        name: str,
        role: str,
        by: str | None,
        remote_addr: str | None,
        *,
        action: str = "api_key.created",
    ) -> ApiKeyRow:
        async with self._database.session() as session, session.begin():
            row = ApiKeyRow(
                name=name,
                prefix=key[:PREFIX_LENGTH],
                key_hash=digest(key),
                role=role,
                created_at=utcnow(),
                created_by=by,
            )
            session.add(row)
            await session.flush()
            self._audit.add(
                session,
                action,
                actor=by,
                target_type="api_key",
                target_id=row.id,
                data={"name": name, "role": role, "prefix": row.prefix},
                remote_addr=remote_addr,
            )
        return row

    async def list(self, *, limit: int, offset: int, revoked: bool | None = None) -> dict[str, Any]:
        """One page of keys, newest first (prefix only), and how many match in all."""
        query = select(ApiKeyRow)
        count = select(func.count()).select_from(ApiKeyRow)
        if revoked is not None:
            condition = (
                ApiKeyRow.revoked_at.is_not(None) if revoked else ApiKeyRow.revoked_at.is_(None)
            )
            query, count = query.where(condition), count.where(condition)
        async with self._database.reader() as session:
            total = (await session.execute(count)).scalar_one()
            rows = await session.execute(
                query.order_by(ApiKeyRow.created_at.desc(), ApiKeyRow.id)
                .limit(limit)
                .offset(offset)
            )
            keys = [ApiKey.of(row).as_dict() for row in rows.scalars()]
        return {"api_keys": keys, "total": int(total), "limit": limit, "offset": offset}

    async def get(self, key_id: str) -> ApiKey:
        async with self._database.reader() as session:
            row = await session.get(ApiKeyRow, key_id)
        if row is None:
            raise NotFound(f"no API key with id {key_id!r}")
        return ApiKey.of(row)

    async def resolve_id(self, id_or_prefix: str) -> str:
        """The id of the key with this id or this prefix (``fy_3kq9x2ab``); 404 if none."""
        condition = (
            ApiKeyRow.prefix == id_or_prefix
            if id_or_prefix.startswith(KEY_MARK)
            else ApiKeyRow.id == id_or_prefix
        )
        async with self._database.reader() as session:
            found = (await session.execute(select(ApiKeyRow.id).where(condition))).scalar()
        if found is None:
            raise NotFound(f"no API key with id or prefix {id_or_prefix!r}")
        return str(found)

    async def revoke(self, key_id: str, *, by: str | None, remote_addr: str | None = None) -> bool:
        """Revoke a key for good; ``False`` when it was revoked already (no change)."""
        async with self._database.session() as session, session.begin():
            row = await session.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFound(f"no API key with id {key_id!r}")
            if row.revoked_at is not None:
                return False
            row.revoked_at = utcnow()
            self._audit.add(
                session,
                "api_key.revoked",
                actor=by,
                target_type="api_key",
                target_id=row.id,
                data={"name": row.name, "prefix": row.prefix},
                remote_addr=remote_addr,
            )
        log.info("api key revoked", extra={"action": "api_key.revoked", "key_id": key_id})
        return True

    async def authenticate(self, key: str) -> Actor | None:
        """The key's actor, or ``None`` for an unknown, wrong or revoked key."""
        if not KEY_TEXT.fullmatch(key):
            return None
        async with self._database.reader() as session:
            row = (
                await session.execute(
                    select(ApiKeyRow).where(ApiKeyRow.prefix == key[:PREFIX_LENGTH])
                )
            ).scalar_one_or_none()
        if row is None or not hmac.compare_digest(row.key_hash, digest(key)):
            return None
        if row.revoked_at is not None:
            return None
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            async with self._database.session() as session, session.begin():
                await session.execute(
                    update(ApiKeyRow).where(ApiKeyRow.id == row.id).values(last_used_at=now)
                )
        return key_actor(row)

    async def ensure_bootstrap_key(self, key: str) -> None:
        """Make sure an admin key with exactly this value exists (for automation).

        A key revoked by an admin stays revoked (revoking is a deliberate act): the
        server logs a warning instead, and the value must be changed to get a working
        key again.
        """
        check_bootstrap_key(key)
        async with self._database.reader() as session:
            row = (
                await session.execute(
                    select(ApiKeyRow).where(ApiKeyRow.prefix == key[:PREFIX_LENGTH])
                )
            ).scalar_one_or_none()
        if row is not None:
            if not hmac.compare_digest(row.key_hash, digest(key)):
                raise ConfigurationError(
                    "auth.bootstrap_admin_key",
                    "its first 11 characters are the prefix of another API key; choose "
                    "another value",
                )
            if row.revoked_at is not None:
                log.warning(
                    "the bootstrap admin key was revoked; it stays revoked",
                    extra={"action": "api_key.bootstrap_revoked", "key_id": row.id},
                )
            elif row.role != "admin":
                async with self._database.session() as session, session.begin():
                    await session.execute(
                        update(ApiKeyRow).where(ApiKeyRow.id == row.id).values(role="admin")
                    )
            return
        try:
            await self._insert(
                key, BOOTSTRAP_NAME, "admin", "flowyard", None, action="api_key.bootstrapped"
            )
        except IntegrityError:
            return  # another process starting on the same database inserted it first
        log.info("bootstrap admin key created", extra={"action": "api_key.bootstrapped"})
