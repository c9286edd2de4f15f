"""Security headers on every response, the strict ones on HTML pages, and CORS (SPEC §8).

Applied as a Litestar ``before_send`` hook, so every response gets them — routes,
static files, error responses and 404s alike, whichever layer produced them.

* every response: ``X-Content-Type-Options: nosniff`` (a browser never guesses a
  script out of a JSON or text body) and ``Referrer-Policy: same-origin`` (execution and
  task URLs never leak to other sites);
* HTML responses also: a Content-Security-Policy that allows scripts only from this
  server's own files (``script-src 'self'``: no inline script, no ``eval``, no CDN),
  ``frame-ancestors 'none'`` with ``X-Frame-Options: DENY`` for older browsers (no
  clickjacking), forms that post only back here, and ``Cache-Control: no-store`` so a
  signed-in page is not kept in shared caches or shown from history after sign-out.

Inline *styles* stay allowed (``style-src 'self' 'unsafe-inline'``): the dashboard's
SVG graph and status bars colour and size elements with ``style`` attributes, and a
style cannot run code. A response that already sets one of these headers keeps its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from litestar.config.cors import CORSConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

#: The policy of every HTML page.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

ALL_RESPONSES = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
HTML_RESPONSES = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


async def security_headers(message: Message, scope: Scope) -> None:
    """``before_send`` hook: add the headers to the start of each HTTP response."""
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    wanted = dict(ALL_RESPONSES)
    if headers.get("content-type", "").lower().startswith("text/html"):
        wanted.update(HTML_RESPONSES)
    for name, value in wanted.items():
        if name not in headers:
            headers[name] = value


def cors_config(origins: Sequence[str]) -> CORSConfig | None:
    """Cross-origin access for the browser pages of other sites (``auth.cors_origins``).

    None configured (the default): no CORS headers at all, so browsers keep other
    sites from reading any answer. Otherwise those origins (or ``*``) may call the API
    from a page's script, with the API's own credentials — ``Authorization`` or
    ``X-API-Key``. Cookies are never accepted cross-origin (no
    ``Access-Control-Allow-Credentials``): the dashboard session is for this server's
    own pages only.
    """
    if not origins:
        return None
    return CORSConfig(
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-API-Key", "Idempotency-Key"],
        allow_credentials=False,
        expose_headers=["Retry-After"],
        max_age=600,
    )
