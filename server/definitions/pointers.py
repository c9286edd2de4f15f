"""JSON pointers (RFC 6901) and short, readable listings for messages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from difflib import get_close_matches

from processors.base import escape_pointer_segment

Segment = str | int
_MAX_LISTED = 20


def pointer(*segments: Segment) -> str:
    """An absolute pointer from raw segments: ``pointer("nodes", 0, "id")`` → ``/nodes/0/id``."""
    return "".join("/" + escape_pointer_segment(segment) for segment in segments)


def join(base: str, relative: str) -> str:
    """Append an already-escaped relative pointer (``"rules/0"``) to ``base``."""
    return f"{base}/{relative}" if relative else base


def split(relative: str) -> list[str]:
    """The unescaped segments of a relative pointer."""
    if not relative:
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in relative.split("/")]


def under(path: str, prefix: str) -> bool:
    """Whether ``path`` is ``prefix`` or inside it."""
    return path == prefix or path.startswith(prefix + "/") or prefix == ""


def sort_key(path: str) -> tuple[tuple[int, int, str], ...]:
    """Document order for pointers: numeric segments compare as numbers."""
    parts = path.split("/")[1:] if path else []
    return tuple((0, int(p), "") if p.isascii() and p.isdigit() else (1, 0, p) for p in parts)


def listing(names: Iterable[str], limit: int = _MAX_LISTED) -> str:
    """``a, b, c`` — at most ``limit`` names, then how many more."""
    ordered = sorted(names)
    if not ordered:
        return "none"
    shown = ", ".join(ordered[:limit])
    more = len(ordered) - limit
    return f"{shown} … ({more} more)" if more > 0 else shown


def suggest(name: str, candidates: Sequence[str] | Iterable[str]) -> str:
    """`` (did you mean "x"?)`` for the closest candidate, or ``""``."""
    matches = get_close_matches(name, list(candidates), n=1)
    return f' (did you mean "{matches[0]}"?)' if matches else ""


def describe(value: object, limit: int = 60) -> str:
    """A short, human description of a JSON value for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
