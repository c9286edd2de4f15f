"""The dashboard's pages (SPEC §7): thin handlers over the services, one module per area.

Each module exports ``HANDLERS``; every handler declares its permission like the API's
routes do (``opt=permission(...)``), and every form POST carries the session's CSRF
token (checked by the session credential source, ``server.security.sessions``).
"""

from __future__ import annotations

from typing import Any

from ui.pages import admin, approvals, assets, audit, executions, overview, workflows

HANDLERS: list[Any] = [
    *overview.HANDLERS,
    *approvals.HANDLERS,
    *audit.HANDLERS,
    *admin.HANDLERS,
    *executions.HANDLERS,
    *workflows.HANDLERS,
    *assets.HANDLERS,
]
