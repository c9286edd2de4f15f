"""Password hashing with argon2id (SPEC §8: dashboard users sign in with a password).

Hashes are argon2id strings in the PHC format (``$argon2id$v=19$m=…,t=…,p=…$salt$hash``),
so the parameters travel with each hash and can be raised later without a migration:
:func:`needs_rehash` tells a sign-in to store a stronger hash.

argon2's default parameters cost about 0.3 s per hash on purpose. Never call
:func:`hash_password` or :func:`verify_password` on the event loop: use the ``*_async``
twins, which run them in a thread. Tests may make hashing cheap with
:func:`use_parameters` (production keeps the library's defaults).
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: Shortest password accepted for a new user.
MIN_LENGTH = 8
#: Longest password accepted: argon2 takes any length, but hashing megabytes on every
#: sign-in attempt would be an easy way to burn the server's CPU.
MAX_LENGTH = 1024

_hasher = PasswordHasher()


def use_parameters(*, time_cost: int, memory_cost: int, parallelism: int = 1) -> None:
    """Change the cost of new hashes (tests use cheap ones; existing hashes still verify)."""
    global _hasher
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` with a fresh random salt (blocking: ~0.3 s)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (blocking: ~0.3 s).

    A hash that is not an argon2 hash (a corrupted row, a disabled account's
    placeholder) verifies nothing.
    """
    try:
        return _hasher.verify(password_hash, password)
    except VerifyMismatchError:
        return False
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than new hashes use now."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


async def hash_password_async(password: str) -> str:
    """:func:`hash_password` in a thread, so the event loop keeps serving."""
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password_hash: str, password: str) -> bool:
    """:func:`verify_password` in a thread, so the event loop keeps serving."""
    return await asyncio.to_thread(verify_password, password_hash, password)


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be a user's password, or ``None`` when it can."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    return None
