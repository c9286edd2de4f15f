"""Paging and filters of the dashboard's list pages."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from server.api.schemas import MAX_OFFSET
from server.api.schemas import Offset as Offset  # the typed query parameter (400 when bad)
from server.errors import BadRequest

#: Rows per page of the list pages.
PAGE_SIZE = 50


def read_offset(raw: str | None) -> int:
    """The ``offset`` query parameter of a list page, read like the API's ``Offset``:
    empty → 0; anything but ASCII digits up to :data:`MAX_OFFSET` (the widest number the
    databases bind) is a 400 page, never a driver overflow (500). ``str.isdigit`` is not
    enough: it accepts ``²`` and other digits ``int`` refuses."""
    text = (raw or "").strip()
    if not text:
        return 0
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > MAX_OFFSET:
        raise BadRequest(f"offset must be a whole number from 0 to {MAX_OFFSET}")
    return int(text)


def query_without(params: Mapping[str, str | None], *names: str) -> str:
    """The query string of ``params`` without ``names`` and empty values (for links
    that change one parameter and keep the others)."""
    kept = [(k, v) for k, v in params.items() if k not in names and v not in (None, "")]
    return urlencode(kept)
