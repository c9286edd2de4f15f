"""Errors on dashboard pages: an HTML page for people, the JSON shape for programs.

The API's exception handlers (``server.api.errors``) decide the status, code, message
and details of every error. For a browser asking for a dashboard page, the same answer
is shown as a page instead: a 401 becomes a redirect to the sign-in page (coming back
here afterwards), anything else the error page with the message and the details. API
paths, and clients that do not ask for HTML first, keep the JSON shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from litestar import MediaType, Request, Response
from litestar.response import Redirect, Template

from ui.login import local_path

#: Paths that are the API (or machine endpoints) whatever the client accepts.
_API_PREFIXES = ("/api/", "/schema", "/metrics", "/demo/api/", "/static/")

Handler = Callable[[Request[Any, Any, Any], Exception], Response[Any]]


def wants_page(request: Request[Any, Any, Any]) -> bool:
    """Whether the request is a browser asking for a dashboard page."""
    path = request.url.path
    if path.startswith(_API_PREFIXES) or path == "/api":
        return False
    if "text/html" not in request.headers.get("accept", ""):
        return False  # browsers name it; ``*/*`` alone is a program (curl, httpx)
    best = request.accept.best_match(["text/html", "application/json"], default=None)
    return best == "text/html"


def html_aware(handler: Handler) -> Handler:
    """``handler``, answering dashboard page requests with a page instead of JSON."""

    def handle(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
        response = handler(request, error)
        if not wants_page(request):
            return response
        body = response.content if isinstance(response.content, Mapping) else {}
        problem = body.get("error", {}) if isinstance(body, Mapping) else {}
        status = response.status_code or 500
        if status == 401:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.method not in ("GET", "HEAD"):
                # A form posted after the session ended: back to the page it was on.
                referer = urlsplit(request.headers.get("referer", ""))
                target = local_path(referer.path + (f"?{referer.query}" if referer.query else ""))
            return Redirect(f"/login?next={quote(target, safe='/')}", status_code=303)
        headers = {
            name: value
            for name, value in (response.headers or {}).items()
            if name.lower() in ("retry-after", "allow")
        }
        return Template(
            "pages/error.html",
            context={
                "status": status,
                "code": problem.get("code", "error"),
                "message": problem.get("message", ""),
                "details": problem.get("details", []),
                "reference": problem.get("correlation_id"),
                "raw": json.dumps(body, indent=2),
            },
            status_code=status,
            media_type=MediaType.HTML,
            headers=headers or None,
        )

    return handle


def page_exception_handlers(
    handlers: Mapping[type[Exception] | int, Handler],
) -> dict[type[Exception] | int, Handler]:
    return {kind: html_aware(handler) for kind, handler in handlers.items()}
