"""Credentials the test suite's in-process apps and servers are started with.

Authentication is on by default (SPEC §8), so test apps get an admin API key through
``auth.bootstrap_admin_key`` (``FLOWYARD_BOOTSTRAP_ADMIN_KEY`` for subprocess servers)
and their clients send it. Tests about permissions make their own keys and users.
"""

from __future__ import annotations

from typing import Any

#: The admin key of every test app (not a secret: it exists only in test databases).
ADMIN_KEY = "fy_testsuiteadmin0123456789abcdefghijklmnop"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}


def with_admin_key(flags: dict[str, Any]) -> dict[str, Any]:
    """``flags`` plus the bootstrap admin key (unless the test sets auth options itself)."""
    return {"auth.bootstrap_admin_key": ADMIN_KEY, **flags}
