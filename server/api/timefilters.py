"""Time filters (``started_from``, ``from``, ``to``…) read once, the same way by the REST
API and the dashboard.

A filter is compared with UTC timestamps in the database, so it is converted to UTC
here, where a time the conversion cannot represent (``9999-12-31T23:59:59-23:59`` is
in year 10000 in UTC; ``0001-01-01T00:00+05:00`` in year 0) is a clear 400/422 message —
not an ``OverflowError`` from the database driver (a 500). A time without an offset is
taken as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from server.errors import BadRequest, Problem

#: Formats a person types (``<input type="datetime-local">`` sends the first), read as UTC.
TYPED_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")
OUT_OF_RANGE = "the time is out of range: give one between years 1 and 9999 (UTC)"


def to_utc(moment: datetime) -> datetime:
    """``moment`` in UTC (naive → taken as UTC); ValueError when UTC cannot hold it."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(OUT_OF_RANGE) from None


def parse_time(text: str) -> datetime | None:
    """A typed or ISO 8601 time as UTC; ``None`` for empty text; ValueError saying why
    it cannot be used (not a time, or out of range)."""
    text = text.strip()
    if not text:
        return None
    for form in TYPED_FORMATS:
        try:
            return datetime.strptime(text, form).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise ValueError(
            f"not a time: write it like 2026-01-31T09:30 (UTC), not {text!r}"
        ) from None
    return to_utc(moment)


def utc_filter(moment: datetime | None, parameter: str) -> datetime | None:
    """A datetime query parameter the framework parsed, in UTC; a 400 naming
    ``parameter`` when it is out of range (as for any other bad query parameter)."""
    if moment is None:
        return None
    try:
        return to_utc(moment)
    except ValueError as problem:
        raise BadRequest(
            f"the query parameter {parameter} is invalid: {problem}",
            details=[Problem(f"/query/{parameter}", str(problem))],
        ) from None
