"""Identities a server makes sure of at start (SPEC §8).

* ``FLOWYARD_BOOTSTRAP_ADMIN_KEY`` (``auth.bootstrap_admin_key``): an admin API key with
  exactly that value exists, so automation (deploy scripts, CI, test harnesses) can
  call the API on a brand-new server;
* on a first start with no users at all, the user ``admin`` is created with a random
  password that is written to standard output **once** — never to the log, never
  stored in clear. Whoever starts the server signs in with it and changes it.
"""

from __future__ import annotations

import logging
import sys

from server.config import Settings
from server.security.apikeys import ApiKeyService
from server.security.users import FIRST_ADMIN, UserService

log = logging.getLogger(__name__)


async def ensure_identities(
    settings: Settings, users: UserService, api_keys: ApiKeyService
) -> None:
    """Create the bootstrap key and the first admin when they are missing."""
    if settings.auth.bootstrap_admin_key:
        await api_keys.ensure_bootstrap_key(settings.auth.bootstrap_admin_key)
    if not settings.auth.enabled or settings.demo.enabled:
        return  # development mode needs no password; the demo creates its own users
    password = await users.ensure_first_admin()
    if password is None:
        return
    log.info(
        "first start: created the admin user; its password is on standard output, once",
        extra={"action": "user.first_admin_created"},
    )
    url = settings.server.resolved_public_url
    sys.stdout.write(
        f"Flowyard: first start, no users yet. Created user {FIRST_ADMIN!r} with password\n"
        f"    {password}\n"
        f"Sign in at {url}/login and change it: it is not shown again.\n"
    )
    sys.stdout.flush()
