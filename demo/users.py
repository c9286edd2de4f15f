"""The demo's people: one user per seed role, with fresh random passwords (SPEC §10).

``flowyard demo`` starts on a fresh database, so the users are new each time; their
passwords are written to standard output with the URL, so whoever started the demo can
sign in as each role and see what it may do.
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass

from server.security.users import UserService

#: (username, role) of the demo users; each username is its role.
DEMO_USERS = (("admin", "admin"), ("manager", "manager"), ("operator", "operator"),
              ("viewer", "viewer"))  # fmt: skip


@dataclass(frozen=True, slots=True)
class DemoUser:
    username: str
    role: str
    password: str


async def create_demo_users(users: UserService) -> list[DemoUser]:
    """Create the demo users that do not exist yet; the ones created, with passwords."""
    created = []
    for username, role in DEMO_USERS:
        if await users.find(username) is not None:
            continue
        password = f"{username}-{secrets.token_urlsafe(9)}"
        await users.create(username, password, role, by="flowyard-demo")
        created.append(DemoUser(username, role, password))
    return created


def announce(created: list[DemoUser], url: str) -> None:
    """Write the demo users' credentials to standard output (the demo's console)."""
    if not created:
        return
    lines = [f"  demo users (sign in at {url}/login):"]
    lines += [f"    {u.username:<9} password {u.password}   (role {u.role})" for u in created]
    lines.append(
        "  API keys: sign in as admin and create one on the Admin page, or "
        f"POST {url}/api/v1/api-keys with an admin key"
    )
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
