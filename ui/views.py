"""``GET /``: API information for JSON clients, the dashboard for browsers.

The full dashboard arrives with its own issue; until then the page lists the stored
workflows (read-only) and points at the API and its documentation.
"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response, get
from litestar.di import NamedDependency
from litestar.response import Template

from server import __version__
from server.identity import Actor
from server.registry.service import WorkflowRegistry
from server.security.permissions import permission
from server.store.definitions import WorkflowFilter

API_INFO = {
    "name": "Flowyard",
    "version": __version__,
    "api": "/api/v1",
    "openapi": "/schema/openapi.json",
    "docs": "/schema",
    "health": "/api/v1/workflows/health",
}


@get(
    "/",
    opt=permission("public"),
    include_in_schema=True,
    summary="API information (JSON) or the dashboard (HTML)",
    tags=["operations"],
)
async def root(
    request: Request[Any, Any, Any],
    registry: NamedDependency[WorkflowRegistry],
    actor: NamedDependency[Actor],
) -> Template | Response[dict[str, Any]]:
    wanted = request.accept.best_match(["text/html", "application/json"], default="text/html")
    if wanted == "application/json":
        return Response(API_INFO, media_type=MediaType.JSON)
    if not actor.authenticated:
        # A browser without a session (or with an expired one): point it at /login.
        return Template(
            "pages/signed_out.html", context={"info": API_INFO}, media_type=MediaType.HTML
        )
    page = await registry.list(WorkflowFilter(limit=200, sort_by="name", sort_order="asc"))
    return Template(
        "pages/home.html",
        context={"workflows": page.items, "total": page.total, "info": API_INFO},
        media_type=MediaType.HTML,
    )
