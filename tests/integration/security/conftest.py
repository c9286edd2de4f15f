"""An app with authentication on (SPEC §8), and credentials of every kind for it.

The app accepts API keys, HS256 JWTs (``JWT_SECRET``) and RS256 JWTs (a key pair made
per test session); its bootstrap admin key is ``tests.auth.ADMIN_KEY``. Helpers make
keys of a role, sign tokens, and read the database directly where a test must see what
is stored (hashes, audit rows).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.config import load_settings
from tests.auth import ADMIN_HEADERS, ADMIN_KEY

Client = AsyncTestClient[Any]
JWT_SECRET = "test-jwt-secret-0123456789-abcdefghijklmnop"
ROLES = ("admin", "manager", "operator", "viewer", "guest")


class KeyPair:
    """An RSA key pair for RS256 tokens (2048 bits: what PyJWT accepts without a warning)."""

    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )


@pytest.fixture(scope="session")
def rsa_keys() -> KeyPair:
    return KeyPair()


def token(
    sub: str = "jo",
    role: str | None = "operator",
    *,
    expires_in: float = 600,
    secret: str = JWT_SECRET,
    algorithm: str = "HS256",
    key: Any = None,
    **claims: Any,
) -> str:
    """A signed JWT; ``role=None`` leaves the claim out."""
    body: dict[str, Any] = {"sub": sub, "exp": int(time.time() + expires_in), **claims}
    if role is not None:
        body["role"] = role
    return jwt.encode(body, key if key is not None else secret, algorithm=algorithm)


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


@asynccontextmanager
async def secured_client(
    database_url: str, tmp_path: Path, rsa_keys: KeyPair | None = None, **flags: Any
) -> AsyncIterator[Client]:
    """The app with authentication on; the client sends no credentials by itself."""
    settings = load_settings(
        {
            "server.database_url": database_url,
            "server.data_dir": str(tmp_path / "data"),
            "auth.bootstrap_admin_key": ADMIN_KEY,
            "auth.jwt_secret": JWT_SECRET,
            "auth.jwt_public_key": rsa_keys.public_pem if rsa_keys else "",
            **flags,
        },
        environ={},
    )
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
async def client(database_url: str, tmp_path: Path, rsa_keys: KeyPair) -> AsyncIterator[Client]:
    async with secured_client(database_url, tmp_path, rsa_keys) as test_client:
        yield test_client


async def make_key(client: Client, role: str, name: str | None = None) -> dict[str, Any]:
    """A new API key of ``role`` (made by the bootstrap admin): the create answer."""
    response = await client.post(
        "/api/v1/api-keys",
        json={"name": name or f"{role} key", "role": role},
        headers=ADMIN_HEADERS,
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def make_user(
    client: Client, username: str, role: str, password: str = "correct horse battery"
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/users",
        json={"username": username, "password": password, "role": role, "email": None},
        headers=ADMIN_HEADERS,
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def audit(client: Client, **filters: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/audit", params=filters, headers=ADMIN_HEADERS)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page
