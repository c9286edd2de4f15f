"""``GET /audit``: the global audit log (admin only, like ``GET /api/v1/audit``).

Who did what to which object and when — sign-ins, user and key changes, definition
changes, control actions, task decisions — newest first, paged in the database, with the
API's filters (``server.security.audit.AuditFilter``): actor, action (``user`` matches
every ``user.*``), target type, target id and a time range. Times typed without an
offset are UTC; a time that cannot be read shows the form again with the message next
to it (422).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency

from server.api.timefilters import OUT_OF_RANGE, parse_time
from server.security.audit import WIDTHS, AuditFilter, AuditLog
from server.security.permissions import permission
from ui.paging import PAGE_SIZE, Offset, query_without
from ui.templating import page

#: The filter inputs: query parameter → the longest value the column can hold.
FILTERS = {
    "actor": WIDTHS["actor"],
    "action": WIDTHS["action"],
    "target_type": WIDTHS["target_type"],
    "target": WIDTHS["target_id"],
    "from": 40,
    "to": 40,
}


def read_time(text: str) -> datetime | None:
    """A time typed in the filter (``2026-11-21T09:30`` or full ISO-8601), as UTC;
    ``None`` for an empty input. Raises ``ValueError`` for anything else, including a
    time UTC cannot hold (read by ``server.api.timefilters``, as the API reads it)."""
    return parse_time(text)


def read_filters(params: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The filter inputs as typed (trimmed, cut to their column's width), and the
    problems found in them (input name → message)."""
    typed = {name: (params.get(name) or "").strip()[:width] for name, width in FILTERS.items()}
    problems = {}
    for name in ("from", "to"):
        try:
            read_time(typed[name])
        except ValueError as problem:
            problems[name] = (
                str(problem)
                if str(problem) == OUT_OF_RANGE
                else "not a time: write it as 2026-11-21T09:30 (UTC)"
            )
    return typed, problems


@get("/audit", opt=permission("admin"), include_in_schema=False)
async def audit_page(
    request: Request[Any, Any, Any],
    audit: NamedDependency[AuditLog],
    offset: Offset = 0,
) -> Response[Any]:
    """The audit log, filtered and paged."""
    typed, problems = read_filters(request.query_params)
    context: dict[str, Any] = {
        "filters": typed,
        "problems": problems,
        "entries": [],
        "total": 0,
        "limit": PAGE_SIZE,
        "offset": offset,
        "base_query": query_without(typed),
    }
    if problems:
        return page(request, "pages/audit.html", status=422, **context)
    where = AuditFilter(
        actor=typed["actor"] or None,
        action=typed["action"] or None,
        target_type=typed["target_type"] or None,
        target=typed["target"] or None,
        at_from=read_time(typed["from"]),
        at_to=read_time(typed["to"]),
        limit=PAGE_SIZE,
        offset=offset,
    )
    found = await audit.search(where)
    context.update(entries=found["entries"], total=found["total"])
    return page(request, "pages/audit.html", **context)


HANDLERS = [audit_page]
