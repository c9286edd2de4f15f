"""An in-process app on a real database (SQLite and PostgreSQL) and a client for it."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.config import load_settings
from tests.auth import ADMIN_HEADERS, with_admin_key

Client = AsyncTestClient[Any]

MINIMAL: dict[str, Any] = {
    "id": "orders",
    "name": "Order intake",
    "version": "1.0.0",
    "category": "sales",
    "owner": "team-a",
    "tags": ["orders"],
    "nodes": [
        {
            "id": "total",
            "name": "Compute total",
            "type": "transform",
            "config": {"transform_type": "expression", "expression": "1 + 1"},
        }
    ],
    "edges": [],
}


def definition(**overrides: Any) -> dict[str, Any]:
    """A small valid definition; keyword arguments replace top-level fields."""
    document = copy.deepcopy(MINIMAL)
    document.update(overrides)
    return document


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = load_settings(with_admin_key({"server.database_url": database_url}), environ={})
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        test_client.headers.update(ADMIN_HEADERS)
        yield test_client
