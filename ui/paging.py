"""Paging and filters of the dashboard's list pages."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

#: Rows per page of the list pages.
PAGE_SIZE = 50


def query_without(params: Mapping[str, str | None], *names: str) -> str:
    """The query string of ``params`` without ``names`` and empty values (for links
    that change one parameter and keep the others)."""
    kept = [(k, v) for k, v in params.items() if k not in names and v not in (None, "")]
    return urlencode(kept)
