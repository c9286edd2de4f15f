"""``GET /favicon.ico``: the icon browsers ask for on every page, JSON included.

Pages link ``/static/favicon.svg``; a browser showing something else from this server
(the raw JSON of an execution, say) still asks for ``/favicon.ico``, and a 404 there is
noise on every console.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get

from server.security.permissions import permission

ICON = (Path(__file__).resolve().parents[1] / "static" / "favicon.svg").read_bytes()


@get("/favicon.ico", opt=permission("public"), include_in_schema=False)
async def favicon() -> Response[bytes]:
    return Response(
        ICON,
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


HANDLERS = [favicon]
