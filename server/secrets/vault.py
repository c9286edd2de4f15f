"""The secrets service (``services["secrets"]``): encrypt, store, decrypt on use, cache.

Values are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key derived for the
purpose ``"secrets"`` from the server's master key (:mod:`server.keys`:
``FLOWYARD_SECRET_KEY``, else the generated 0600 key file in ``server.data_dir``), so
every process sharing a database must share that key. The key is read on first use.

The engine asks for the values a node's config names (:meth:`SecretsVault.values`) just
before the node runs. Decrypted values are cached in this process for
:data:`CACHE_SECONDS` (a node that runs in a loop does not cost a query per iteration);
a PUT or DELETE through this process drops its entry at once, one through another
process is seen within that time. Every value decrypted is added to the log mask
(:data:`server.secrets.redaction.LOG_MASK`), so no log line of this process shows it.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.exc import IntegrityError

from server.config import Settings
from server.errors import FlowyardError, InvalidInput, NotFound, Problem
from server.keys import derive, load_master_key
from server.secrets import store
from server.secrets.redaction import LOG_MASK
from server.security.audit import AuditLog
from server.store.database import Database
from server.store.models import utcnow

PURPOSE = "secrets"
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
NAME_RULE = "1 to 128 letters, digits or '_', not starting with a digit"
#: Values shorter than this would be hidden inside unrelated text ("***" for every "a").
MIN_VALUE_CHARS = 4
MAX_VALUE_CHARS = 65_536
#: How long a decrypted value (or a name's absence) is trusted without asking again.
CACHE_SECONDS = 5.0


class UnreadableSecret(FlowyardError):
    """A stored secret cannot be decrypted with this server's key."""

    code = "secret_unreadable"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"secret {name!r} cannot be decrypted with this server's key (was "
            "FLOWYARD_SECRET_KEY or the key file changed?); set it again with "
            f"PUT /api/v1/secrets/{name}"
        )


@dataclass(frozen=True)
class Stored:
    """What a PUT answers: the secret's name and times, and whether it is new."""

    info: dict[str, Any]
    created: bool


def check_name(name: str) -> None:
    """Refuse (422) a name ``${secrets.NAME}`` could not write."""
    if not NAME.fullmatch(name):
        raise InvalidInput(
            "invalid secret name",
            details=[Problem("/path/name", f"a secret name is {NAME_RULE}")],
        )


def check_value(value: object) -> str:
    """The value of a PUT body, or 422 (the message never repeats the value)."""
    if not isinstance(value, str):
        raise InvalidInput(
            'the body must be {"value": "…"}',
            details=[Problem("/value", "required: the secret as a string")],
        )
    if not MIN_VALUE_CHARS <= len(value) <= MAX_VALUE_CHARS:
        raise InvalidInput(
            "the secret value has an unusable length",
            details=[
                Problem(
                    "/value",
                    f"must be {MIN_VALUE_CHARS} to {MAX_VALUE_CHARS} characters (shorter "
                    "values cannot be told apart from ordinary text when they are redacted)",
                )
            ],
        )
    if "\x00" in value:
        raise InvalidInput(
            "the secret value contains a NUL character",
            details=[Problem("/value", "remove the NUL (\\u0000) character")],
        )
    return value


class SecretsVault:
    """Encrypted secrets on the database, decrypted on use; see the module docstring."""

    def __init__(
        self,
        database: Database,
        master_key: Callable[[], bytes],
        *,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self.database = database
        self._master_key = master_key
        self._fernet: Fernet | None = None
        self.cache_seconds = cache_seconds
        #: name → (monotonic time cached, value or None when there is no such secret)
        self._cache: dict[str, tuple[float, str | None]] = {}
        #: raised by every change, so a read that began before it does not cache stale data
        self._generation = 0

    @classmethod
    def from_settings(cls, database: Database, settings: Settings) -> SecretsVault:
        data_dir = settings.server.data_dir
        return cls(database, lambda: load_master_key(data_dir))

    async def _cipher(self) -> Fernet:
        if self._fernet is None:
            master = await asyncio.to_thread(self._master_key)  # may create the key file
            self._fernet = Fernet(base64.urlsafe_b64encode(derive(master, PURPOSE)))
        return self._fernet

    # --- sealing values that must be kept for a while (a webhook's signing secrets) ------

    async def seal(self, value: str) -> str:
        """``value`` encrypted with the server key, to keep in a row that is not a secret
        (a waiting webhook node's signing secrets): never stored in clear."""
        fernet = await self._cipher()
        return fernet.encrypt(value.encode()).decode()

    async def unseal(self, sealed: str) -> str:
        """The value :meth:`seal` encrypted (raises ``InvalidToken`` if the key changed)."""
        fernet = await self._cipher()
        return fernet.decrypt(sealed.encode()).decode()

    # --- use -------------------------------------------------------------------------------

    async def values(self, names: Collection[str]) -> dict[str, str]:
        """The plain value of each of ``names`` that exists (absent names are left out).

        Raises :class:`UnreadableSecret` for a value the key cannot decrypt.
        """
        now = time.monotonic()
        found: dict[str, str] = {}
        wanted = []
        for name in names:
            cached = self._cache.get(name)
            if cached is not None and now - cached[0] < self.cache_seconds:
                if cached[1] is not None:
                    found[name] = cached[1]
            else:
                wanted.append(name)
        if wanted:
            generation = self._generation
            fernet = await self._cipher()
            async with self.database.reader() as session:
                stored = await store.ciphertexts(session, wanted)
            fresh = {}
            for name in wanted:
                ciphertext = stored.get(name)
                fresh[name] = None if ciphertext is None else _decrypt(fernet, name, ciphertext)
            if generation == self._generation:
                fetched_at = time.monotonic()
                self._cache.update({name: (fetched_at, value) for name, value in fresh.items()})
            found.update({name: value for name, value in fresh.items() if value is not None})
        LOG_MASK.add(found.values())
        return found

    # --- administration (the /api/v1/secrets routes) ---------------------------------------

    async def put(self, name: str, value: object, actor: str | None) -> Stored:
        """Create or replace ``name`` (an audit entry records who, never the value)."""
        check_name(name)
        plain = check_value(value)
        ciphertext = (await self._cipher()).encrypt(plain.encode())
        LOG_MASK.add([plain])
        for attempt in (1, 2):
            try:
                created = await self._store(name, ciphertext, actor)
                break
            except IntegrityError:  # another process created the same name meanwhile
                if attempt == 2:
                    raise
        self._forget(name)
        async with self.database.reader() as session:
            info = await store.info(session, name)
        return Stored(info or {"name": name}, created)

    async def _store(self, name: str, ciphertext: bytes, actor: str | None) -> bool:
        async with self.database.session() as session, session.begin():
            created = await store.upsert(session, name, ciphertext, actor, utcnow())
            AuditLog.add(
                session,
                "secret.created" if created else "secret.replaced",
                actor=actor,
                target_type="secret",
                target_id=name,
            )
        return created

    async def delete(self, name: str, actor: str | None) -> None:
        """Delete ``name``; :class:`NotFound` when there is no such secret."""
        check_name(name)
        async with self.database.session() as session, session.begin():
            if not await store.remove(session, name):
                raise NotFound(f"no secret named {name!r}")
            AuditLog.add(
                session, "secret.deleted", actor=actor, target_type="secret", target_id=name
            )
        self._forget(name)

    async def catalog(self) -> list[dict[str, Any]]:
        """Every secret's name and times — never a value."""
        async with self.database.reader() as session:
            return await store.all_info(session)

    def _forget(self, name: str) -> None:
        self._generation += 1
        self._cache.pop(name, None)


def _decrypt(fernet: Fernet, name: str, ciphertext: bytes) -> str:
    try:
        return fernet.decrypt(ciphertext).decode()
    except (InvalidToken, UnicodeDecodeError):
        raise UnreadableSecret(name) from None
