"""What every dashboard template can use: filters, functions and the page response.

Templates are autoescaped (``.html``), so user text is escaped wherever it is printed;
nothing here marks text safe. The helpers below format what the services return
(ISO timestamps, durations, JSON values) for people, and cut big values short so a page
stays fast whatever an execution produced: the full value is always one link away
(the API's raw JSON).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import MediaType, Request
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template

from server.security.sessions import request_session

#: A JSON value longer than this (characters, pretty-printed) is shown cut short.
PREVIEW_CHARS = 4_000
#: The short notices a page shows after a form POST redirected to it (``?notice=``).
#: Fixed texts keyed by a word, so a link cannot make a page say something else.
NOTICES = {
    "uploaded": "The workflow was saved.",
    "activated": "The workflow is active: it can be run.",
    "deactivated": "The workflow is inactive: new runs are refused.",
    "started": "The execution started.",
    "cancelled": "The execution was cancelled.",
    "suspended": "The execution is suspended.",
    "resumed": "The execution resumed.",
    "retried": "The failed nodes are being retried.",
    "rerun": "The node is running again.",
    "skipped": "The node was skipped with the given output; the execution carries on.",
    "restarted": "A new execution was started from the beginning.",
    "decided": "Your decision was recorded.",
    "claimed": "The task is yours now.",
    "reassigned": "The task was reassigned.",
    "user-created": "The user was created.",
    "user-updated": "The user was updated.",
    "key-revoked": "The API key was revoked.",
    "secret-saved": "The secret was saved.",
    "secret-deleted": "The secret was deleted.",
}


def page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status: int = 200,
    **context: Any,
) -> Template:
    """A dashboard page: ``template`` with ``context``, plus the page's notice."""
    notice = NOTICES.get(request.query_params.get("notice") or "")
    return Template(
        template,
        context={"notice": notice, **context},
        status_code=status,
        media_type=MediaType.HTML,
    )


def after_post(url: str, notice: str | None = None) -> Redirect:
    """Post/redirect/get: a 303 to ``url`` (a path of ours), showing ``notice`` there."""
    if notice is not None:
        if notice not in NOTICES:
            raise ValueError(f"unknown notice {notice!r}")
        url = f"{url}{'&' if '?' in url else '?'}notice={notice}"
    return Redirect(url, status_code=303)


@dataclass(frozen=True, slots=True)
class JsonPreview:
    """A value pretty-printed for a page, cut at :data:`PREVIEW_CHARS`."""

    text: str
    truncated: bool
    size: int


def json_preview(value: Any, limit: int = PREVIEW_CHARS) -> JsonPreview:
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    if len(text) <= limit:
        return JsonPreview(text, False, len(text))
    return JsonPreview(text[:limit], True, len(text))


def when(value: str | datetime | None) -> str:
    """A timestamp as ``2026-11-21 09:14:03`` (UTC), or an empty string."""
    moment = _moment(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def iso(value: str | datetime | None) -> str:
    """The machine-readable form for ``<time datetime=…>``."""
    moment = _moment(value)
    return moment.isoformat() if moment else ""


def duration(seconds: float | int | None) -> str:
    """``850 ms``, ``12.4 s``, ``3 min 05 s``, ``2 h 04 min``, ``3 d 2 h``."""
    if seconds is None:
        return ""
    value = float(seconds)
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def between(start: str | datetime | None, end: str | datetime | None) -> float | None:
    """Seconds from ``start`` to ``end`` (to now while ``end`` is missing)."""
    first = _moment(start)
    if first is None:
        return None
    last = _moment(end) or datetime.now(UTC)
    return max(0.0, (last - first).total_seconds())


def _moment(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _signed_in(context: Mapping[str, Any]) -> Any:
    request = context.get("request")
    return request_session(request) if isinstance(request, Request) else None


#: ``app.state`` key: true when the server runs in demo mode (the nav shows the Mailbox).
DEMO_MODE_STATE = "demo_mode"


def _demo_mode(context: Mapping[str, Any]) -> bool:
    request = context.get("request")
    return isinstance(request, Request) and bool(request.app.state.get(DEMO_MODE_STATE))


def _current_path(context: Mapping[str, Any]) -> str:
    request = context.get("request")
    return request.url.path if isinstance(request, Request) else ""


def register(engine: JinjaTemplateEngine) -> None:
    """Give the templates their filters and functions.

    ``signed_in()`` is the request's session (``None`` unless the request was
    authenticated with one): ``base.html`` shows who is signed in and puts the session's
    CSRF token in every form (``csrf_field()`` in ``macros.html``) and in ``hx-headers``.
    """
    engine.register_template_callable("signed_in", _signed_in)
    engine.register_template_callable("current_path", _current_path)
    engine.register_template_callable("demo_mode", _demo_mode)
    filters = engine.engine.filters
    filters["when"] = when
    filters["iso"] = iso
    filters["duration"] = duration
    filters["json_preview"] = json_preview
    engine.engine.globals["between"] = between
